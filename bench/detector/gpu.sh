#!/usr/bin/env bash
# R50-FPN Faster R-CNN end to end on one GPU against torchvision's on the same GPU: the engine's `prepare` writes the
# two 800x1067 images, their boxes and the settings read off configs/lvis_v1/faster_rcnn_r50_fpn_1x.yaml (README.md:
# what is matched and what differs), then for FP32 and for TF32 torchvision and the engine each run the r50 case
# with --device cuda (training 2 images per step, inference 1 image), alternating, `rounds` times; prints one markdown
# table of medians with the ratio (engine images/s / torchvision images/s). Needs an NVIDIA GPU and a python3 with
# PyTorch (CUDA) and torchvision.
#
#   bench/detector/gpu.sh [--rounds N] [--quick]
#
# ENGINE_BENCH_DETECTOR=/path/Engine.Bench.Detector.dll runs a prebuilt benchmark with `dotnet exec` (a machine with
# only the .NET runtime); otherwise it is built with the SDK.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rounds=1
quick=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift ;;
    --quick) quick="--quick" ;;
    *) echo "unknown argument '$1'; usage: gpu.sh [--rounds N] [--quick]" >&2; exit 2 ;;
  esac
  shift
done
out="$(mktemp -d /tmp/engine-detector-gpu.XXXXXX)"
trap 'rm -rf "$out"' EXIT

if [ -n "${ENGINE_BENCH_DETECTOR:-}" ]; then
  engine=(dotnet exec "$ENGINE_BENCH_DETECTOR")
else
  bin="$root/build/bench-detector"
  dotnet build "$root/bench/detector/Engine.Bench.Detector" -c Release -o "$bin" >&2
  engine=(dotnet "$bin/Engine.Bench.Detector.dll")
fi
"${engine[@]}" prepare --dir "$out" --root "$root" --gpu-steps $quick >&2

# one file of `side precision round metric value` lines
results="$out/results.tsv"
: > "$results"
for round in $(seq 1 "$rounds"); do
  for precision in fp32 tf32; do
    flag=""
    [ "$precision" = tf32 ] && flag="--tf32"
    order="torchvision engine"
    [ $((round % 2)) -eq 0 ] && order="engine torchvision"
    for side in $order; do
      echo "== round $round, $precision, $side" >&2
      if [ "$side" = torchvision ]; then
        python3 "$here/torchvision_cpu.py" r50 "$out" --device cuda $flag > "$out/run.tsv"
      else
        "${engine[@]}" r50 --dir "$out" --root "$root" --device cuda $flag > "$out/run.tsv"
      fi
      awk -v s="$side" -v p="$precision" -v r="$round" -F'\t' '{ print s "\t" p "\t" r "\t" $2 "\t" $3 }' "$out/run.tsv" >> "$results"
    done
  done
done

python3 - "$results" <<'PY'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
value = {}
for side, precision, _, metric, v in rows:
    value.setdefault((side, precision, metric), []).append(float(v))
med = lambda side, precision, metric: statistics.median(value[(side, precision, metric)])
print("| precision | phase | torchvision images/s | engine images/s | engine / torchvision | torchvision step ms | engine step ms |")
print("|---|---|---:|---:|---:|---:|---:|")
for precision in ("fp32", "tf32"):
    for phase in ("train", "infer"):
        t, e = med("torchvision", precision, f"{phase}.images_per_s"), med("engine", precision, f"{phase}.images_per_s")
        print(f"| {precision} | {phase} | {t:.2f} | {e:.2f} | {e / t:.2f}x | {med('torchvision', precision, f'{phase}.step_ms'):.1f} | "
              f"{med('engine', precision, f'{phase}.step_ms'):.1f} |")
PY
