#!/usr/bin/env bash
# R50-FPN Faster R-CNN end to end on one GPU against torchvision's on the same GPU: the engine's `prepare` writes the
# two 800x1067 images, their boxes and the settings read off configs/lvis_v1/faster_rcnn_r50_fpn_1x.yaml (README.md:
# what is matched and what differs), then for FP32 and for TF32 torchvision and the engine each run the r50 case
# with --device cuda (training 2 images per step, inference 1 image), alternating, `rounds` times; prints one markdown
# table of medians with the ratio (engine images/s / torchvision images/s). Needs an NVIDIA GPU and a python3 with
# PyTorch (CUDA) and torchvision.
#
#   bench/detector/gpu.sh [--rounds N] [--quick] [--conv legacy,graph] [--conv-reports DIR]
#
# --conv lists the cuDNN APIs the engine's convolutions run through (graph by default); each is timed as its own
# engine run, in the same rounds. --conv-reports DIR keeps, per run, what each API chose for every convolution shape.
#
# ENGINE_BENCH_DETECTOR=/path/Engine.Bench.Detector.dll runs a prebuilt benchmark with `dotnet exec` (a machine with
# only the .NET runtime); otherwise it is built with the SDK.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rounds=1
quick=""
convs="graph"
reports=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift ;;
    --quick) quick="--quick" ;;
    --conv) convs="$2"; shift ;;
    --conv-reports) reports="$2"; shift ;;
    *) echo "unknown argument '$1'; usage: gpu.sh [--rounds N] [--quick] [--conv legacy,graph] [--conv-reports DIR]" >&2; exit 2 ;;
  esac
  shift
done
sides="torchvision"
for c in ${convs//,/ }; do
  case "$c" in legacy|graph) sides="$sides engine-$c" ;; *) echo "--conv: unknown API '$c' (legacy, graph)" >&2; exit 2 ;; esac
done
[ -n "$reports" ] && mkdir -p "$reports"
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
    order="$sides"
    [ $((round % 2)) -eq 0 ] && order="$(echo $sides | tr ' ' '\n' | tac | tr '\n' ' ')"
    for side in $order; do
      echo "== round $round, $precision, $side" >&2
      if [ "$side" = torchvision ]; then
        python3 "$here/torchvision_cpu.py" r50 "$out" --device cuda $flag > "$out/run.tsv"
      else
        report=()
        [ -n "$reports" ] && report=(--conv-report "$reports/${side#engine-}-$precision-$round.txt")
        "${engine[@]}" r50 --dir "$out" --root "$root" --device cuda $flag --conv "${side#engine-}" "${report[@]}" > "$out/run.tsv"
      fi
      awk -v s="$side" -v p="$precision" -v r="$round" -F'\t' '{ print s "\t" p "\t" r "\t" $2 "\t" $3 }' "$out/run.tsv" >> "$results"
    done
  done
done

python3 - "$results" $sides <<'PY'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
engines = sys.argv[3:]
value = {}
for side, precision, _, metric, v in rows:
    value.setdefault((side, precision, metric), []).append(float(v))
med = lambda side, precision, metric: statistics.median(value[(side, precision, metric)])
print("| precision | phase | torchvision images/s | torchvision step ms | " +
      " | ".join(f"{e} images/s | {e} / torchvision | {e} step ms" for e in engines) + " |")
print("|---|---|---:|---:|" + "---:|---:|---:|" * len(engines))
for precision in ("fp32", "tf32"):
    for phase in ("train", "infer"):
        t = med("torchvision", precision, f"{phase}.images_per_s")
        cells = [f"{med(e, precision, f'{phase}.images_per_s'):.2f} | {med(e, precision, f'{phase}.images_per_s') / t:.2f}x | "
                 f"{med(e, precision, f'{phase}.step_ms'):.1f}" for e in engines]
        print(f"| {precision} | {phase} | {t:.2f} | {med('torchvision', precision, f'{phase}.step_ms'):.1f} | " + " | ".join(cells) + " |")
PY
