#!/usr/bin/env bash
# The detector end to end against torchvision on the CPU: builds the engine's benchmark, writes the shared inputs
# (synthetic JPEGs for the demo config, two 800x1067 images for R50-FPN) and the settings read off the engine's
# configs, then times the engine and Debian's torchvision (both at 2 threads) on them, alternating engine and
# torchvision case by case, and prints one markdown table of medians with the ratio. Installs python3-torchvision
# with apt when it is missing.
#
#   bench/detector/run.sh [--quick] [--rounds N] [--cases "demo r50"] [--profile]
#
# --quick runs fewer steps (demo 5 timed steps, R50 2 training / 3 inference; full: 15, 4 / 6). With --rounds N each
# side runs each case N times, the order alternating between rounds, and the table shows the median over rounds of
# each side's per-run medians.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
quick=""
rounds=1
cases="demo r50"
profile=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick="--quick" ;;
    --rounds) rounds="$2"; shift ;;
    --cases) cases="$2"; shift ;;
    --profile) profile=1 ;;
    *) echo "unknown argument '$1'; usage: run.sh [--quick] [--rounds N] [--cases \"demo r50\"] [--profile]" >&2; exit 2 ;;
  esac
  shift
done
out="$(mktemp -d /tmp/engine-detector-bench.XXXXXX)"
trap 'rm -rf "$out"' EXIT

# Debian's python, not a pyenv or virtualenv one: that is where python3-torch and python3-torchvision install
py=/usr/bin/python3
if ! "$py" -c "import torchvision" 2>/dev/null; then
  echo "installing python3-torchvision (about 50 MB) ..." >&2
  if [ "$(id -u)" -eq 0 ]; then apt-get install -y python3-torchvision >&2; else sudo apt-get install -y python3-torchvision >&2; fi
fi

# both sides at 2 threads: oneDNN/OpenMP for the engine and torch; torchvision_cpu.py also calls set_num_threads(2)
export OMP_NUM_THREADS=2
bin="$root/build/bench-detector"
dotnet build "$root/bench/detector/Engine.Bench.Detector" -c Release -o "$bin" >&2
engine=(dotnet "$bin/Engine.Bench.Detector.dll")
"${engine[@]}" prepare --dir "$out" --root "$root" $quick >&2

loads=()
run_side() { # side case round
  loads+=("$1 $2 round $3: $(uptime | sed 's/.*load average/load average/')")
  echo "--- $1 $2 (round $3), $(uptime)" >&2
  if [ "$1" = engine ]; then
    "${engine[@]}" "$2" --dir "$out" --root "$root" >> "$out/engine.tsv"
  else
    "$py" "$here/torchvision_cpu.py" "$2" "$out" >> "$out/torchvision.tsv"
  fi
}
for ((r = 1; r <= rounds; r++)); do
  for c in $cases; do
    if ((r % 2 == 1)); then run_side engine "$c" "$r"; run_side torchvision "$c" "$r"
    else run_side torchvision "$c" "$r"; run_side engine "$c" "$r"; fi
  done
done
loads+=("end: $(uptime | sed 's/.*load average/load average/')")

echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); ${quick:+quick, }rounds $rounds"
echo "Load (uptime) before each run:"
for l in "${loads[@]}"; do echo "- $l"; done
echo
"$py" - "$out/engine.tsv" "$out/torchvision.tsv" "$cases" <<'EOF'
import statistics
import sys

def read(path):
    values = {}
    with open(path) as f:
        for line in f:
            case, metric, value = line.rstrip("\n").split("\t")
            values.setdefault((case, metric), []).append(float(value))
    return {k: statistics.median(v) for k, v in values.items()}

engine, torchvision = read(sys.argv[1]), read(sys.argv[2])
names = {"images_per_s": "images/s", "step_ms": "step, ms", "data_ms": "  data, ms", "backbone_ms": "  backbone, ms",
         "rpn_ms": "  RPN, ms", "roi_heads_ms": "  ROI heads, ms", "backward_step_ms": "  backward + step, ms",
         "cpu_ms": "CPU time per step (all threads), ms"}
titles = {"demo": "demo (R18-FPN slim, 160x160, batch 8)", "r50": "R50-FPN 800x1067 (train 2 img/step, infer 1 img)"}
print("| case | phase | metric | engine | torchvision | speed-up |")
print("|---|---|---|---:|---:|---:|")
for case in sys.argv[3].split():
    for phase in ("train", "infer"):
        for key, label in names.items():
            k = (case, f"{phase}.{key}")
            if k not in engine or k not in torchvision:
                continue
            e, t = engine[k], torchvision[k]
            # images/s: engine / torchvision; times: torchvision / engine; "-" where a side spends ~nothing
            if key == "images_per_s":
                ratio, digits = e / t, 3
            else:
                ratio, digits = (t / e if min(e, t) >= 0.5 else float("nan")), 1
            ratio_text = f"{ratio:.2f}x" if ratio == ratio else "-"
            print(f"| {titles[case]} | {phase} | {label} | {e:.{digits}f} | {t:.{digits}f} | {ratio_text} |")
EOF

if [ -n "$profile" ]; then
  echo "--- profile, $(uptime)" >&2
  load_profile="$(uptime | sed 's/.*load average/load average/')"
  "${engine[@]}" profile --dir "$out" --root "$root" > "$out/engine_profile.tsv"
  "$py" "$here/torchvision_cpu.py" profile "$out" > "$out/torchvision_profile.tsv"
  echo
  echo "R50 backbone forward ($load_profile before; engine first), 1 image 800x1067 (padded to 800x1088), no grad, median of 3:"
  echo
  echo "| part | engine ms | engine CPU ms | torchvision ms | torchvision CPU ms | speed-up (wall) |"
  echo "|---|---:|---:|---:|---:|---:|"
  awk -F'\t' 'NR == FNR { w[$2] = $3; c[$2] = $4; next }
               ($2 in w) { printf "| %s | %.0f | %.0f | %.0f | %.0f | %.2fx |\n", $2, w[$2], c[$2], $3, $4, $3 / w[$2] }' \
    "$out/engine_profile.tsv" "$out/torchvision_profile.tsv"
fi
