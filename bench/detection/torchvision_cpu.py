#!/usr/bin/env python3
"""Times torchvision's CPU roi_align and batched_nms (LVIS post-processing and the RPN's per-level NMS) on the
inputs the engine's detection benchmark wrote (bench/detection/Engine.Bench.Detection, raw little-endian arrays),
with 2 threads, median of repeats, after checking that torchvision computes the same results as the engine.
Prints one `case<TAB>ms` line per case.

    python3 torchvision_cpu.py DIR [REPEATS]
"""
import os
import statistics
import sys
import time

import torch
import torchvision
from torchvision.ops import batched_nms, roi_align

N, C, H, W, R, POOLED, SCALE = 2, 256, 100, 167, 1024, 7, 1.0 / 8


def load(directory, name, dtype, shape):
    with open(os.path.join(directory, name), "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=dtype).reshape(shape).clone()


def median_ms(repeats, fn):
    fn()
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    directory = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 11
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, threads {torch.get_num_threads()}", file=sys.stderr)

    features = load(directory, "roi_features.f32", torch.float32, (N, C, H, W))
    rois = load(directory, "roi_rois.f32", torch.float32, (R, 5))
    grad = load(directory, "roi_grad.f32", torch.float32, (R, C, POOLED, POOLED))

    def forward():
        return roi_align(features, rois, (POOLED, POOLED), spatial_scale=SCALE, sampling_ratio=0, aligned=True)

    engine_out = load(directory, "roi_out_engine.f32", torch.float32, (R, C, POOLED, POOLED))
    diff = (forward() - engine_out).abs().max().item()
    if not diff < 5e-4:
        raise SystemExit(f"roi_align: torchvision and the engine differ by up to {diff}")
    print(f"roi_align: torchvision and the engine agree (max abs difference {diff:.2e})", file=sys.stderr)

    def forward_backward():
        x = features.detach().requires_grad_(True)
        y = roi_align(x, rois, (POOLED, POOLED), spatial_scale=SCALE, sampling_ratio=0, aligned=True)
        y.backward(grad)

    results = [("roi_align forward", median_ms(repeats, forward)),
               ("roi_align forward+backward", median_ms(repeats, forward_backward))]

    for count in (1000, 10000, 30000):
        boxes = load(directory, f"nms{count}_boxes.f32", torch.float32, (count, 4))
        scores = load(directory, f"nms{count}_scores.f32", torch.float32, (count,))
        classes = load(directory, f"nms{count}_classes.i64", torch.int64, (count,))
        engine_keep = load(directory, f"nms{count}_keep_engine.i64", torch.int64, (-1,))
        keep = batched_nms(boxes, scores, classes, 0.5)
        # the benchmark's scores are distinct, so both keep lists are fully ordered by score and must be equal
        if not torch.equal(keep, engine_keep):
            raise SystemExit(f"batched_nms {count}: torchvision keeps {keep.numel()} boxes, the engine {engine_keep.numel()}; they differ")
        print(f"batched_nms {count}: torchvision and the engine keep the same {keep.numel()} boxes", file=sys.stderr)
        results.append((f"batched_nms {count}", median_ms(repeats * 3, lambda: batched_nms(boxes, scores, classes, 0.5))))

    boxes = load(directory, "rpn_boxes.f32", torch.float32, (-1, 4))
    scores = load(directory, "rpn_scores.f32", torch.float32, (-1,))
    classes = load(directory, "rpn_classes.i64", torch.int64, (-1,))
    engine_keep = load(directory, "rpn_keep_engine.i64", torch.int64, (-1,))
    keep = batched_nms(boxes, scores, classes, 0.7)
    if not torch.equal(keep, engine_keep):
        raise SystemExit(f"rpn nms: torchvision keeps {keep.numel()} boxes, the engine {engine_keep.numel()}; they differ")
    print(f"rpn nms: torchvision and the engine keep the same {keep.numel()} boxes", file=sys.stderr)
    results.append((f"rpn nms {boxes.shape[0]}", median_ms(repeats * 3, lambda: batched_nms(boxes, scores, classes, 0.7))))

    for name, ms in results:
        print(f"{name}\t{ms:.3f}")


if __name__ == "__main__":
    main()
