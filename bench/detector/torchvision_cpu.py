#!/usr/bin/env python3
"""Times torchvision's Faster R-CNN on the CPU (2 threads) on the work bench/detector/Engine.Bench.Detector does: a
training step (data, forward, backward, SGD step) and inference, split into data / backbone / RPN / ROI heads /
backward+step, for the demo case (slim ResNet-18 FPN, 160 px synthetic JPEGs, batch 8) or the R50-FPN case
(800x1067, 1203 classes, training 2 images per step, inference 1 image). The model is built from the settings file
the engine's `prepare` wrote (read off the engine's configs), and reads the same images and boxes. Prints one
`case<TAB>metric<TAB>value` line per median, as the engine does.

    python3 torchvision_cpu.py demo|r50|profile DIR
    python3 torchvision_cpu.py r50 DIR --device cuda [--tf32]

On a GPU (`--device cuda`, the peer of the engine's `r50 --device cuda`) the box head and predictor are torchvision's
own TwoMLPHead and FastRCNNPredictor (cuBLAS, no reference-BLAS detour), the images are uploaded in each step's data
time, each step and inference call ends with torch.cuda.synchronize(), TF32 is off in cuBLAS and cuDNN unless --tf32
turns both on, and the stage split is launch time only (the stages are not synchronized).

`profile` times the R50 backbone's forward part by part (stem, res2..res5, FPN) on the first R50 image, as the engine's
`profile` mode does.

Matched with the engine: backbone depth and widths, norm (FrozenBN for R50 with stem + res2 frozen; GroupNorm(32) in
ResNet and FPN for the demo, all trainable), FPN channels with a max-pooled P6, anchors, RPN top-k before/after NMS,
NMS thresholds, sampled anchors and RoIs per image and their positive fractions, ground truth appended to the
proposals, 2-FC box head, class count (+1 background), score threshold, detections per image, pixel mean/std,
SGD momentum/weight decay/lr. What differs (torchvision has no option for it):
  - the 2-FC box head and the predictor run as the equivalent 7x7 and 1x1 convolutions: Debian's torch links a
    reference BLAS whose Linear takes ~100 s for the R50 head's 1024x12544x1024 product, so nn.Linear would measure
    that BLAS, not torchvision (PERFORMANCE.md's peer rows were run the same way);
  - ROIAlign is torchvision's aligned=False (detectron2/engine: aligned=True); sampling ratio matched (adaptive);
  - ResNet stride in the 3x3 conv (torchvision) instead of the 1x1 (detectron2 MSRA, STRIDE_IN_1X1);
  - box regression loss smooth-L1 with beta 1/9 (torchvision) instead of L1 (detectron2 beta 0);
  - its transform resizes every image (scale factor 1.0 here, so the same size) and small proposals are dropped
    at 1e-3 px instead of 0.
"""
import json
import os
import statistics
import sys
import time
from collections import OrderedDict

import torch
import torchvision
from torch import nn
from torchvision.io import decode_jpeg, read_file
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.resnet import BasicBlock, resnet18, resnet34, resnet50, resnet101
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool


class ConvTwoFcHead(nn.Module):
    """fc6 and fc7 of the box head as a (resolution x resolution) and a 1x1 convolution: the same function as two
    Linear layers on the flattened (R, C*res*res) features, computed by oneDNN instead of the reference BLAS."""

    def __init__(self, in_channels, resolution, dim):
        super().__init__()
        self.fc6 = nn.Conv2d(in_channels, dim, resolution)
        self.fc7 = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        return torch.relu(self.fc7(torch.relu(self.fc6(x))))  # (R, dim, 1, 1)


class ConvPredictor(nn.Module):
    """FastRCNNPredictor's two Linear layers as 1x1 convolutions over the (R, dim, 1, 1) head output."""

    def __init__(self, dim, num_classes):
        super().__init__()
        self.cls_score = nn.Conv2d(dim, num_classes, 1)
        self.bbox_pred = nn.Conv2d(dim, num_classes * 4, 1)

    def forward(self, x):
        return self.cls_score(x).flatten(1), self.bbox_pred(x).flatten(1)


class SlimResNetFpn(nn.Module):
    """A ResNet-18 of the engine's stem/res2 widths (the demo halves them) with GroupNorm, and an FPN with GroupNorm
    and a max-pooled P6: the demo config's backbone, built from torchvision's BasicBlock and FeaturePyramidNetwork."""

    def __init__(self, s):
        super().__init__()
        if s["depth"] != 18:
            raise SystemExit(f"the demo backbone is built for ResNet-18, the settings say depth {s['depth']}")
        gn = lambda c: nn.GroupNorm(32, c)  # detectron2's GN: 32 groups
        stem = s["stem_out_channels"]
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 7, 2, 3, bias=False), gn(stem), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        widths = [s["res2_out_channels"] * 2 ** i for i in range(4)]
        layers, inplanes = [], stem
        for i, planes in enumerate(widths):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or inplanes != planes:
                down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), gn(planes))
            layers.append(nn.Sequential(BasicBlock(inplanes, planes, stride, down, norm_layer=gn), BasicBlock(planes, planes, norm_layer=gn)))
            inplanes = planes
        self.layers = nn.ModuleList(layers)
        norm = gn if s["fpn_norm"] == "GroupNorm" else None
        self.fpn = torchvision.ops.FeaturePyramidNetwork(widths, s["fpn_out_channels"], extra_blocks=LastLevelMaxPool(), norm_layer=norm)
        self.out_channels = s["fpn_out_channels"]

    def forward(self, x):
        x = self.stem(x)
        feats = OrderedDict()
        for i, layer in enumerate(self.layers):
            x = layer(x)
            feats[str(i)] = x
        return self.fpn(feats)


def build_model(s, linear_head=False):
    if s["resnet_norm"] == "FrozenBatchNorm":
        resnet = {18: resnet18, 34: resnet34, 50: resnet50, 101: resnet101}[s["depth"]](weights=None, norm_layer=FrozenBatchNorm2d)
        # FREEZE_AT 2 freezes the stem and res2: torchvision's trainable_layers counts the 5 stages from the top
        backbone = _resnet_fpn_extractor(resnet, trainable_layers=5 - s["freeze_at"])
        if backbone.out_channels != s["fpn_out_channels"]:
            raise SystemExit(f"torchvision's ResNet-FPN has {backbone.out_channels} FPN channels, the settings say {s['fpn_out_channels']}")
    else:
        if s["freeze_at"] != 0:
            raise SystemExit("the GroupNorm backbone is built fully trainable; the settings freeze part of it")
        backbone = SlimResNetFpn(s)
    classes = s["num_classes"] + 1  # + background
    resolution = s["pooler_resolution"]
    if s["num_fc"] != 2:
        raise SystemExit(f"the box head is built with 2 FC layers, the settings say {s['num_fc']}")
    # torchvision normalizes RGB in 0..1; the inputs below are given as BGR 0..255 floats like the engine's, so the
    # engine's mean/std (BGR, 0..255) apply unchanged
    model = FasterRCNN(
        backbone, num_classes=None,
        min_size=s["min_size"], max_size=s["max_size"],
        image_mean=s["pixel_mean_bgr"], image_std=s["pixel_std_bgr"],
        rpn_anchor_generator=AnchorGenerator(tuple(tuple(int(v) for v in a) for a in s["anchor_sizes"]),
                                             (tuple(s["aspect_ratios"]),) * len(s["anchor_sizes"])),
        rpn_pre_nms_top_n_train=s["rpn_pre_nms_topk_train"], rpn_pre_nms_top_n_test=s["rpn_pre_nms_topk_test"],
        rpn_post_nms_top_n_train=s["rpn_post_nms_topk_train"], rpn_post_nms_top_n_test=s["rpn_post_nms_topk_test"],
        rpn_nms_thresh=s["rpn_nms_thresh"],
        rpn_bg_iou_thresh=s["rpn_iou_thresholds"][0], rpn_fg_iou_thresh=s["rpn_iou_thresholds"][1],
        rpn_batch_size_per_image=s["rpn_batch_size_per_image"], rpn_positive_fraction=s["rpn_positive_fraction"],
        box_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], resolution, sampling_ratio=s["pooler_sampling_ratio"]),
        box_head=(TwoMLPHead(backbone.out_channels * resolution ** 2, s["fc_dim"]) if linear_head
                  else ConvTwoFcHead(backbone.out_channels, resolution, s["fc_dim"])),
        box_predictor=FastRCNNPredictor(s["fc_dim"], classes) if linear_head else ConvPredictor(s["fc_dim"], classes),
        box_score_thresh=s["score_thresh_test"], box_nms_thresh=s["nms_thresh_test"],
        box_detections_per_img=s["detections_per_image"],
        box_fg_iou_thresh=s["roi_iou_threshold"], box_bg_iou_thresh=s["roi_iou_threshold"],
        box_batch_size_per_image=s["roi_batch_size_per_image"], box_positive_fraction=s["roi_positive_fraction"],
    )
    return model


class StageClock:
    """Wall time of the transform + backbone, RPN and ROI heads (+ the rescale to the original size), from forward
    hooks, so the split is cut where the engine's GeneralizedRcnn cuts it."""

    def __init__(self, model):
        self.times = {}
        self.last = None
        model.transform.register_forward_pre_hook(lambda m, i: self.start())
        model.backbone.register_forward_hook(lambda m, i, o: self.lap("backbone"))
        model.rpn.register_forward_hook(lambda m, i, o: self.lap("rpn"))
        postprocess = model.transform.postprocess

        def timed_postprocess(*args, **kwargs):
            result = postprocess(*args, **kwargs)
            self.lap("roi_heads")
            return result

        # the forward calls postprocess after the ROI heads in both modes (with no detections in training)
        model.roi_heads.register_forward_hook(lambda m, i, o: self.lap("roi_heads"))
        model.transform.postprocess = timed_postprocess

    def start(self):
        self.times = {"backbone": 0.0, "rpn": 0.0, "roi_heads": 0.0}
        self.last = time.perf_counter()

    def lap(self, stage):
        now = time.perf_counter()
        self.times[stage] += (now - self.last) * 1000
        self.last = now


def read_records(path):
    records = []
    with open(path) as f:
        for line in f:
            file, boxes, classes = line.rstrip("\n").split("\t")
            b = [[float(v) for v in box.split(",")] for box in boxes.split(";")] if boxes else []
            c = [int(v) for v in classes.split(",")] if classes else []
            records.append((file, torch.tensor(b, dtype=torch.float32).reshape(-1, 4), torch.tensor(c, dtype=torch.int64)))
    return records


def load_jpeg_bgr(file):
    rgb = decode_jpeg(read_file(file))  # (3, H, W) uint8, the same libjpeg-turbo decode as the engine's
    return rgb.flip(0).float()


def median(values):
    return statistics.median(values)


def run(case, directory, device):
    with open(os.path.join(directory, f"{case}_settings.json")) as f:
        s = json.load(f)
    torch.manual_seed(20240611)
    cuda = device.type == "cuda"
    model = build_model(s, linear_head=cuda).to(device)

    def complete():
        if cuda:
            torch.cuda.synchronize(device)
    clock = StageClock(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=s["lr"], momentum=s["momentum"], weight_decay=s["weight_decay"])

    if case == "demo":
        train, val = read_records(os.path.join(directory, "demo_train.tsv")), read_records(os.path.join(directory, "demo_val.tsv"))

        def train_batch(step):
            # the engine's loader reads the records in order (no shuffle, no flip), batch after batch, wrapping around
            picked = [train[(step * s["train_batch"] + j) % len(train)] for j in range(s["train_batch"])]
            return [load_jpeg_bgr(r[0]) for r in picked], [{"boxes": r[1], "labels": r[2] + 1} for r in picked]

        def infer_batch(step):
            picked = val[step * s["infer_batch"]:(step + 1) * s["infer_batch"]]
            return [load_jpeg_bgr(r[0]) for r in picked]
    else:
        n, h, w, b = s["train_batch"], s["height"], s["width"], s["boxes_per_image"]
        with open(os.path.join(directory, "r50_images.u8"), "rb") as f:
            pixels = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).reshape(n, 3, h, w).float()
        with open(os.path.join(directory, "r50_boxes.f32"), "rb") as f:
            boxes = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(n, b, 4)
        with open(os.path.join(directory, "r50_classes.i64"), "rb") as f:
            classes = torch.frombuffer(bytearray(f.read()), dtype=torch.int64).reshape(n, b)

        def train_batch(step):
            return ([pixels[i].to(device, copy=True) for i in range(n)],
                    [{"boxes": boxes[i].to(device, copy=True), "labels": (classes[i] + 1).to(device)} for i in range(n)])

        def infer_batch(step):
            return [pixels[step % n].to(device, copy=True)]

    rows = []
    model.train()
    train_steps = []
    # ENGINE_BENCH_PROFILE=train|infer: the first timed step of that phase runs inside a profiler range
    # (`ncu --profile-from-start off` records its kernels alone), as the engine's bench does
    profiled = os.environ.get("ENGINE_BENCH_PROFILE", "")
    if profiled not in ("", "train", "infer"):
        raise SystemExit(f"ENGINE_BENCH_PROFILE is '{profiled}'; it takes train or infer")

    def profile_range(phase, step, warmup, start):
        if cuda and profiled == phase and step == warmup:
            torch.cuda.synchronize(device)
            (torch.cuda.profiler.start if start else torch.cuda.profiler.stop)()

    for step in range(s["train_warmup"] + s["train_steps"]):
        profile_range("train", step, s["train_warmup"], True)
        cpu0, t0 = time.process_time(), time.perf_counter()
        images, targets = train_batch(step)
        complete()
        t1 = time.perf_counter()
        optimizer.zero_grad()
        losses = model(images, targets)
        t2 = time.perf_counter()
        total = sum(losses.values())
        if not torch.isfinite(total):
            raise SystemExit(f"{case}: the training loss is {total.item()}; the benchmark times finite steps only")
        total.backward()
        optimizer.step()
        complete()
        t3 = time.perf_counter()
        cpu = (time.process_time() - cpu0) * 1000
        profile_range("train", step, s["train_warmup"], False)
        row = dict(step=(t3 - t0) * 1000, data=(t1 - t0) * 1000, backward_step=(t3 - t2) * 1000, cpu=cpu, **clock.times)
        log(case, "train", step, s["train_warmup"], row)
        if step >= s["train_warmup"]:
            train_steps.append(row)

    model.eval()
    infer_steps = []
    with torch.no_grad():
        for step in range(s["infer_warmup"] + s["infer_steps"]):
            profile_range("infer", step, s["infer_warmup"], True)
            cpu0, t0 = time.process_time(), time.perf_counter()
            images = infer_batch(step)
            complete()
            t1 = time.perf_counter()
            detections = sum(len(o["boxes"]) for o in model(images))
            complete()
            t3 = time.perf_counter()
            cpu = (time.process_time() - cpu0) * 1000
            profile_range("infer", step, s["infer_warmup"], False)
            row = dict(step=(t3 - t0) * 1000, data=(t1 - t0) * 1000, backward_step=0.0, cpu=cpu, detections=detections, **clock.times)
            log(case, "infer", step, s["infer_warmup"], row)
            if step >= s["infer_warmup"]:
                infer_steps.append(row)

    for phase, steps, batch in (("train", train_steps, s["train_batch"]), ("infer", infer_steps, s["infer_batch"])):
        step_ms = median([r["step"] for r in steps])
        rows.append((f"{phase}.images_per_s", batch * 1000 / step_ms))
        rows.append((f"{phase}.step_ms", step_ms))
        for key in ("data", "backbone", "rpn", "roi_heads") + (("backward_step",) if phase == "train" else ()):
            rows.append((f"{phase}.{key}_ms", median([r[key] for r in steps])))
        rows.append((f"{phase}.cpu_ms", median([r["cpu"] for r in steps])))
    for metric, value in rows:
        print(f"{case}\t{metric}\t{value:.3f}")


def profile(directory):
    """The R50 backbone's stem, stages and FPN timed on their own (first image, padded to a multiple of 32, no grad),
    median of 3 after a warm-up: `profile part wall_ms cpu_ms` lines."""
    with open(os.path.join(directory, "r50_settings.json")) as f:
        s = json.load(f)
    h, w = s["height"], s["width"]
    with open(os.path.join(directory, "r50_images.u8"), "rb") as f:
        image = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)[:3 * h * w].reshape(1, 3, h, w).float()
    x = torch.zeros(1, 3, (h + 31) // 32 * 32, (w + 31) // 32 * 32)
    x[:, :, :h, :w] = image
    body = build_model(s).backbone
    r = body.body
    parts = [("stem", nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool)), ("res2", r.layer1), ("res3", r.layer2), ("res4", r.layer3), ("res5", r.layer4)]
    features = OrderedDict()
    with torch.no_grad():
        for name, part in parts:
            wall, cpu = median_of_3(lambda: part(x))
            print(f"profile\t{name}\t{wall:.3f}\t{cpu:.3f}")
            x = part(x)
            if name != "stem":
                features[str(len(features))] = x
        wall, cpu = median_of_3(lambda: body.fpn(features))
        print(f"profile\tfpn\t{wall:.3f}\t{cpu:.3f}")


def median_of_3(fn):
    fn()
    walls, cpus = [], []
    for _ in range(3):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append((time.perf_counter() - t0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    return median(walls), median(cpus)


def log(case, phase, step, warmup, r):
    kind = "warm-up" if step < warmup else "step"
    print(f"  torchvision {case} {phase} {kind} {step}: {r['step']:.0f} ms (data {r['data']:.0f}, backbone {r['backbone']:.0f}, "
          f"rpn {r['rpn']:.0f}, roi_heads {r['roi_heads']:.0f}, backward+step {r['backward_step']:.0f}; cpu {r['cpu']:.0f})"
          + (f", {r['detections']} detections" if "detections" in r else ""),
          file=sys.stderr, flush=True)


def main():
    args = sys.argv[1:]
    usage = "usage: torchvision_cpu.py demo|r50|profile DIR, or r50 DIR --device cuda [--tf32]"
    if len(args) < 2 or args[0] not in ("demo", "r50", "profile"):
        raise SystemExit(usage)
    device, tf32, rest = torch.device("cpu"), False, args[2:]
    while rest:
        if rest[0] == "--device" and len(rest) > 1:
            device, rest = torch.device(rest[1]), rest[2:]
        elif rest[0] == "--tf32":
            tf32, rest = True, rest[1:]
        else:
            raise SystemExit(f"unknown argument {rest[0]!r}; {usage}")
    if device.type == "cuda":
        if args[0] != "r50":
            raise SystemExit("--device cuda is for the r50 case")
        # PyTorch allows TF32 in cuDNN by default; both libraries are set explicitly so FP32 means FP32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True
    elif tf32:
        raise SystemExit("--tf32 applies to --device cuda")
    else:
        torch.set_num_threads(2)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, device {device}, tf32 {tf32}, threads {torch.get_num_threads()}",
          file=sys.stderr)
    if args[0] == "profile":
        profile(args[1])
    else:
        run(args[0], args[1], device)


if __name__ == "__main__":
    main()
