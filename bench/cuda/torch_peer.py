#!/usr/bin/env python3
"""The PyTorch/torchvision side of the CUDA kernel benchmark (bench/cuda/run.sh).

Generates the inputs of every case with a fixed seed, times the same operation in torchvision/PyTorch with CUDA
events (warm-up, then the median of REPEATS timed calls; the small cases rotate over 8 copies of their inputs so the
50 MB L2 cache does not flatter either side; the logit-sized cases, a few microseconds each, are timed as device work
behind a queued 128 MiB copy, so that neither side's launch latency counts), and writes, into OUT:
  inputs.safetensors   every input and torchvision's outputs, read by Engine.Bench.Cuda, which checks its own
                       outputs against them before it times anything;
  torch_ms.json        {case: median milliseconds} and the device-to-device copy bandwidth of the small cases' size.

Usage: python3 bench/cuda/torch_peer.py OUT [REPEATS=50]
"""
import json
import math
import statistics
import sys

import torch
from safetensors.torch import save_file
from torchvision.ops import batched_nms, roi_align

out = sys.argv[1]
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 50
device = "cuda"
torch.manual_seed(20261122)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
ROTATE = 8

tensors = {}
timings = {}


# Queue filler for the device-time cases: a 128 MiB copy before each timed call empties the L2 cache and keeps the
# device busy while the host issues the call, so the events bracket the device's work alone.
pad_src, pad_dst = torch.empty(32 << 20, device=device), torch.empty(32 << 20, device=device)


def median_ms(fn, warm=5, device_time=False):
    """Median of `repeats` calls of fn(i), each between two CUDA events. By default the host's work inside fn is
    counted (the device waits for it); with device_time, a long copy queued before each call hides it."""
    for i in range(warm):
        fn(i)
    torch.cuda.synchronize()
    pairs = []
    for i in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        if device_time:
            pad_dst.copy_(pad_src)
        start.record()
        fn(i)
        end.record()
        pairs.append((start, end))
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in pairs)


def keep(name, t):
    tensors[name] = t.detach().contiguous().cpu()


# ---------------------------------------------------------------- ROIAlign: 1024 RoIs x 256 ch x 7x7 over P2-P5
# Two 800x1333 images padded to 800x1344 (divisible by 32): P2 200x336 ... P5 25x42.
N, C, R, P = 2, 256, 1024, 7
sizes = [(200, 336), (100, 168), (50, 84), (25, 42)]
scales = [1 / 4, 1 / 8, 1 / 16, 1 / 32]
features = [torch.randn(N, C, h, w, device=device) for h, w in sizes]
# 512 RoIs per image, sides log-uniform in [16, 640] px so every level gets RoIs
side = torch.exp(torch.empty(R, 2, device=device).uniform_(math.log(16), math.log(640)))
x1 = torch.rand(R, device=device) * (1333 - side[:, 0])
y1 = torch.rand(R, device=device) * (800 - side[:, 1])
batch = torch.arange(R, device=device) // (R // N)
rois = torch.stack([batch.float(), x1, y1, x1 + side[:, 0], y1 + side[:, 1]], 1)
# torchvision's LevelMapper (canonical size 224 at level 4, clamped to P2..P5), computed once for both sides
area = (rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2])
level = torch.clamp(torch.floor(4 + torch.log2(torch.sqrt(area) / 224) + 1e-6), 2, 5).long() - 2
index_of_level = [torch.nonzero(level == l).squeeze(1) for l in range(4)]
rois_of_level = [rois[i] for i in index_of_level]


def tv_roi_align(feats):
    # what MultiScaleRoIAlign does per level, with aligned=True and the adaptive sampling ratio (0)
    result = torch.zeros(R, C, P, P, device=device)
    for f, idx, r, s in zip(feats, index_of_level, rois_of_level, scales):
        result.index_put_((idx,), roi_align(f, r, (P, P), spatial_scale=s, sampling_ratio=0, aligned=True))
    return result


grad_out = torch.randn(R, C, P, P, device=device)
with torch.no_grad():
    timings["roi_align.forward"] = median_ms(lambda i: tv_roi_align(features))
    pooled = tv_roi_align(features)
leaves = [f.clone().requires_grad_(True) for f in features]
pooled_graph = tv_roi_align(leaves)
timings["roi_align.backward"] = median_ms(lambda i: torch.autograd.grad(pooled_graph, leaves, grad_out, retain_graph=True))
grads = torch.autograd.grad(pooled_graph, leaves, grad_out, retain_graph=True)
for l in range(4):
    keep(f"roi_align.p{l + 2}", features[l])
    keep(f"roi_align.grad_p{l + 2}", grads[l])
keep("roi_align.rois", rois)
keep("roi_align.level", level)
keep("roi_align.grad_out", grad_out)
keep("roi_align.pooled", pooled)
del leaves, pooled_graph, grads

# ---------------------------------------------------------------- batched NMS over 1203 classes, IoU 0.5
for count in (1000, 10000, 30000):
    sets = []
    for k in range(ROTATE):
        centre = torch.rand(count, 2, device=device) * torch.tensor([1333.0, 800.0], device=device)
        wh = 10 + torch.rand(count, 2, device=device) * 190
        boxes = torch.cat([centre - wh / 2, centre + wh / 2], 1)
        scores = torch.rand(count, device=device)
        classes = torch.randint(0, 1203, (count,), device=device)
        sets.append((boxes, scores, classes))
    timings[f"nms.{count}"] = median_ms(lambda i: batched_nms(*sets[i % ROTATE], 0.5))
    boxes, scores, classes = sets[0]
    keep(f"nms.{count}.boxes", boxes)
    keep(f"nms.{count}.scores", scores)
    keep(f"nms.{count}.classes", classes)
    keep(f"nms.{count}.keep", batched_nms(boxes, scores, classes, 0.5))

# ---------------------------------------------------------------- LogN and group softmax on 1024 x 1204 logits
rows, cols = 1024, 1204
logits = [torch.randn(rows, cols, device=device) * 3 for _ in range(ROTATE)]
mean0 = torch.randn(cols, device=device)
var0 = torch.rand(cols, device=device) * 4 + 0.05
momentum = 0.01
mean, var = mean0.clone(), var0.clone()


def tv_logn_update(z):
    v, m = torch.var_mean(z, dim=0, unbiased=True)
    mean.lerp_(m, momentum)
    var.lerp_(v, momentum)


def tv_logn_calibrate(z, softmax):
    shift = mean0[:-1] - mean0[:-1].min()
    sd = torch.sqrt(torch.clamp_min(var0[:-1], 1e-11))
    y = torch.cat([(z[:, :-1] - shift) / sd, z[:, -1:]], 1)
    return torch.softmax(y, 1) if softmax else y


timings["logn.update"] = median_ms(lambda i: tv_logn_update(logits[i % ROTATE]), device_time=True)
timings["logn.calibrate"] = median_ms(lambda i: tv_logn_calibrate(logits[i % ROTATE], False), device_time=True)
timings["logn.calibrate_softmax"] = median_ms(lambda i: tv_logn_calibrate(logits[i % ROTATE], True), device_time=True)
mean, var = mean0.clone(), var0.clone()
tv_logn_update(logits[0])
keep("logn.logits", logits[0])
keep("logn.mean0", mean0)
keep("logn.var0", var0)
keep("logn.mean1", mean)
keep("logn.var1", var)
keep("logn.calibrated", tv_logn_calibrate(logits[0], False))
keep("logn.scores", tv_logn_calibrate(logits[0], True))

# LogN `repo` mode: the affine-free batch normalization of the logits in training, with its running statistics
# (torch's batch_norm is the peer: the same batch mean, biased variance for the output, unbiased for the EMA)
bn_mean, bn_var = mean0.clone(), var0.clone()


def tv_logn_standardize(z, m, v):
    return torch.nn.functional.batch_norm(z, m, v, None, None, True, 1e-4, 1e-5)


with torch.no_grad():
    timings["logn.standardize"] = median_ms(lambda i: tv_logn_standardize(logits[i % ROTATE], bn_mean, bn_var), device_time=True)
st_leaves = [z.clone().requires_grad_(True) for z in logits]
st_out = [tv_logn_standardize(z, bn_mean, bn_var) for z in st_leaves]
st_gy = torch.randn(rows, cols, device=device)
timings["logn.standardize_backward"] = median_ms(lambda i: torch.autograd.grad(st_out[i % ROTATE], st_leaves[i % ROTATE], st_gy, retain_graph=True), device_time=True)
bn_mean, bn_var = mean0.clone(), var0.clone()
st_leaf = logits[0].clone().requires_grad_(True)
st_y = tv_logn_standardize(st_leaf, bn_mean, bn_var)
keep("logn.standardize.y", st_y)
keep("logn.standardize.mean1", bn_mean)
keep("logn.standardize.var1", bn_var)
keep("logn.standardize.grad_y", st_gy)
keep("logn.standardize.grad_x", torch.autograd.grad(st_y, st_leaf, st_gy)[0])

# BAGS groups of LVIS v1 (background + others; then 0-10, 10-100, 100-1000, >1000 training instances, each with its
# "others" column): 2 + 314 + 461 + 336 + 91 = 1204 columns
offsets = [0, 2, 316, 777, 1113, 1204]


def tv_group_softmax(x):
    return torch.cat([torch.softmax(x[:, a:b], 1) for a, b in zip(offsets[:-1], offsets[1:])], 1)


with torch.no_grad():
    timings["group_softmax.forward"] = median_ms(lambda i: tv_group_softmax(logits[i % ROTATE]), device_time=True)
gs_leaves = [z.clone().requires_grad_(True) for z in logits]
gs_out = [tv_group_softmax(z) for z in gs_leaves]
gy = torch.randn(rows, cols, device=device)
timings["group_softmax.backward"] = median_ms(lambda i: torch.autograd.grad(gs_out[i % ROTATE], gs_leaves[i % ROTATE], gy, retain_graph=True), device_time=True)
keep("group_softmax.offsets", torch.tensor(offsets))
keep("group_softmax.y", gs_out[0])
keep("group_softmax.grad_y", gy)
keep("group_softmax.grad_x", torch.autograd.grad(gs_out[0], gs_leaves[0], gy)[0])

# ---------------------------------------------------------------- device-to-device copy bandwidth
small = [torch.empty(rows, cols, device=device) for _ in range(ROTATE)]
small_ms = median_ms(lambda i: small[i % ROTATE].copy_(logits[i % ROTATE]), device_time=True)
big_src, big_dst = torch.empty(256 << 20, device=device), torch.empty(256 << 20, device=device)
big_ms = median_ms(lambda i: big_dst.copy_(big_src))
timings["copy.logits"] = small_ms
bandwidth = {
    "copy_logits_gbps": 2 * rows * cols * 4 / small_ms / 1e6,
    "copy_1gib_gbps": 2 * big_src.numel() * 4 / big_ms / 1e6,
}

save_file(tensors, f"{out}/inputs.safetensors")
with open(f"{out}/torch_ms.json", "w") as f:
    json.dump({"repeats": repeats, "torch": torch.__version__, "gpu": torch.cuda.get_device_name(), "ms": timings, **bandwidth}, f, indent=1)
print(json.dumps(timings, indent=1))
print(json.dumps(bandwidth))
