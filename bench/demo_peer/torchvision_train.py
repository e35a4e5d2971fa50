"""The demo's peer on the demo's own data: torchvision Faster R-CNN with a slim ResNet-18 FPN trained from scratch on
the engine's synthetic long-tail set (`engine synth`), on the CPU, with the settings PERFORMANCE.md gives for its
"slim" row (half-width ResNet-18 with BatchNorm, FPN 128, 2x512 box head, 64 RoIs per image, SGD lr 0.02 with
warm-up, batch 8, horizontal flip). It trains the same number of iterations with the same step schedule as
configs/synth/faster_rcnn_r18_fpn.yaml (or a wall-clock budget), then writes the validation detections as an LVIS
results file that `engine eval` scores, so both detectors are measured by one evaluator on one dataset.

Debian's torch uses a reference BLAS, so the 2-FC box head runs as the equivalent 7x7 and 1x1 convolutions
(PERFORMANCE.md ran its peer the same way). Anchors are the demo config's (16..256 on P2..P6).

    /usr/bin/python3 bench/demo_peer/torchvision_train.py --data DIR/synth_lt --out OUT [--iters 1000] [--minutes M]
    engine eval --gt DIR/synth_lt/val.json --results OUT/lvis_results.json --out OUT
"""
import argparse
import json
import os
import random
import time
from collections import OrderedDict

import torch
from torch import nn
from torchvision.io import decode_jpeg, read_file
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.resnet import BasicBlock
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool


class SlimResNet18Fpn(nn.Module):
    """ResNet-18 at half width (stem 32, stages 32/64/128/256) with BatchNorm, and an FPN of 128 channels on C2..C5
    with a max-pooled P6, returning torchvision's feature names."""

    def __init__(self, width=32, fpn_channels=128):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        widths = [width * 2 ** i for i in range(4)]
        stages, inplanes = [], width
        for i, planes in enumerate(widths):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or inplanes != planes:
                down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            stages.append(nn.Sequential(BasicBlock(inplanes, planes, stride, down), BasicBlock(planes, planes)))
            inplanes = planes
        self.stages = nn.ModuleList(stages)
        self.fpn = FeaturePyramidNetwork(widths, fpn_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = fpn_channels
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m not in list(self.fpn.modules()):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.stem(x)
        features = OrderedDict()
        for i, stage in enumerate(self.stages):
            x = stage(x)
            features[str(i)] = x
        return self.fpn(features)


class ConvBoxHead(nn.Module):
    """TwoMLPHead as convolutions: fc6 = 7x7 conv over the pooled 7x7 map, fc7 = 1x1 conv."""

    def __init__(self, channels, resolution, dim):
        super().__init__()
        self.fc6 = nn.Conv2d(channels, dim, resolution)
        self.fc7 = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        x = torch.relu(self.fc6(x))
        return torch.relu(self.fc7(x)).flatten(1)


def build_model(num_classes):
    anchors = AnchorGenerator(sizes=((16,), (32,), (64,), (128,), (256,)), aspect_ratios=((0.5, 1.0, 2.0),) * 5)
    return FasterRCNN(SlimResNet18Fpn(), num_classes=None, min_size=160, max_size=160,
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
                      rpn_anchor_generator=anchors,
                      box_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2),
                      box_head=ConvBoxHead(128, 7, 512), box_predictor=FastRCNNPredictor(512, num_classes + 1),
                      box_batch_size_per_image=64, box_score_thresh=1e-4, box_detections_per_img=300)


def load_set(root, split):
    with open(os.path.join(root, split + ".json")) as f:
        d = json.load(f)
    cats = sorted(c["id"] for c in d["categories"])
    label_of = {cid: i + 1 for i, cid in enumerate(cats)}
    anns = {}
    for a in d["annotations"]:
        x, y, w, h = a["bbox"]
        anns.setdefault(a["image_id"], []).append(([x, y, x + w, y + h], label_of[a["category_id"]]))
    images = [(im["id"], os.path.join(root, im["file_name"]), anns.get(im["id"], [])) for im in d["images"]]
    return images, cats


def load_image(path):
    return decode_jpeg(read_file(path)).float().div_(255)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--iters", type=int, default=1000)
    p.add_argument("--minutes", type=float, default=0, help="stop training after this wall-clock budget (0: --iters)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    os.makedirs(a.out, exist_ok=True)

    train, cats = load_set(a.data, "train")
    train = [t for t in train if t[2]]
    val, _ = load_set(a.data, "val")
    model = build_model(len(cats))
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if param.ndim <= 1 else decay).append(param)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=a.lr, momentum=0.9)
    steps = (round(a.iters * 2 / 3), round(a.iters * 8 / 9))
    warmup = 100

    def lr_at(it):
        factor = 0.1 ** sum(it >= s for s in steps)
        if it < warmup:
            factor *= 0.001 + (1 - 0.001) * it / warmup
        return a.lr * factor

    model.train()
    order, pos = [], 0
    start = time.time()
    log = open(os.path.join(a.out, "train_log.jsonl"), "w")
    it = 0
    while it < a.iters:
        if a.minutes > 0 and time.time() - start > a.minutes * 60:
            break
        images, targets = [], []
        for _ in range(a.batch):
            if pos == len(order):
                order = list(range(len(train)))
                random.shuffle(order)
                pos = 0
            _, path, objs = train[order[pos]]
            pos += 1
            img = load_image(path)
            boxes = torch.tensor([o[0] for o in objs], dtype=torch.float32)
            if random.random() < 0.5:
                img = img.flip(-1)
                w = img.shape[-1]
                boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
            images.append(img)
            targets.append({"boxes": boxes, "labels": torch.tensor([o[1] for o in objs], dtype=torch.int64)})
        for g in opt.param_groups:
            g["lr"] = lr_at(it)
        losses = model(images, targets)
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        it += 1
        if it % 20 == 0:
            entry = {"iter": it, "total_loss": total.item(), "lr": lr_at(it - 1), "elapsed": time.time() - start}
            entry.update({k: v.item() for k, v in losses.items()})
            log.write(json.dumps(entry) + "\n")
            log.flush()
            print(json.dumps(entry), flush=True)
    train_seconds = time.time() - start

    model.eval()
    results = []
    t0 = time.time()
    with torch.no_grad():
        for i in range(0, len(val), 8):
            chunk = val[i:i + 8]
            outs = model([load_image(path) for _, path, _ in chunk])
            for (image_id, _, _), o in zip(chunk, outs):
                for box, label, score in zip(o["boxes"].tolist(), o["labels"].tolist(), o["scores"].tolist()):
                    x1, y1, x2, y2 = box
                    results.append({"image_id": image_id, "category_id": cats[label - 1], "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score})
    with open(os.path.join(a.out, "lvis_results.json"), "w") as f:
        json.dump(results, f)
    summary = {"iterations": it, "train_seconds": train_seconds, "images_per_second": it * a.batch / train_seconds,
               "inference_seconds": time.time() - t0, "detections": len(results)}
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
