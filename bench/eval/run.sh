#!/usr/bin/env bash
# Times `engine eval` on a synthetic LVIS-shaped case under /usr/bin/time -v and prints the wall time
# and peak resident memory of the whole process.
#
#   bench/eval/run.sh [--images 5000] [--dets-per-image 300] [--iou-type bbox] [--runs 3] [--ap-fixed]
#
# The default case has the shape of the official evaluator's reference figure (lvis-eval.md section
# 10: 5000 images x 1203 categories, ~1.46 M detections): 100 s and 5.46 GiB for the whole official
# process on a 2-core machine. --images 20000 gives a case the size of LVIS v1 val.
set -euo pipefail
cd "$(dirname "$0")/../.."

images=5000 dets=300 iou=bbox runs=3 extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --images) images=$2; shift 2 ;;
    --dets-per-image) dets=$2; shift 2 ;;
    --iou-type) iou=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --ap-fixed) extra+=(--ap-fixed); shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing: run scripts/setup.sh" >&2; exit 1; }

export ENGINE_BUILD_SLOT=${ENGINE_BUILD_SLOT:-bench-eval}
dotnet build src/Engine.Cli -c Release -v q -nologo >/dev/null
dotnet build bench/eval/EvalCaseGenerator -c Release -v q -nologo >/dev/null
bin=build/slots/$ENGINE_BUILD_SLOT/bin
case_dir=build/bench-eval/case-${images}x${dets}
if [ ! -f "$case_dir/results.json" ]; then
  "$bin/EvalCaseGenerator/release/EvalCaseGenerator" --out "$case_dir" --images "$images" --dets-per-image "$dets"
fi
ls -l "$case_dir"

for run in $(seq "$runs"); do
  log=$(mktemp)
  /usr/bin/time -v "$bin/Engine.Cli/release/engine" eval --gt "$case_dir/gt.json" --results "$case_dir/results.json" \
    --iou-type "$iou" --no-progress --timings --out "$case_dir/out" "${extra[@]}" >"$log.out" 2>"$log"
  [ "$run" = 1 ] && cat "$log.out"
  wall=$(grep 'Elapsed (wall clock)' "$log" | awk '{print $NF}')
  rss=$(grep 'Maximum resident set size' "$log" | awk '{print $NF}')
  cpu=$(awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{print u+s}' "$log")
  printf 'run %d: wall %s, cpu %.2f s, peak RSS %.0f MiB\n' "$run" "$wall" "$cpu" "$(awk -v r="$rss" 'BEGIN{print r/1024}')"
  grep -h '^timings' -A2 "$log.out" | tr -s ' \n' ' '; echo
  rm -f "$log" "$log.out"
done
