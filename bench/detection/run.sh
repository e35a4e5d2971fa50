#!/usr/bin/env bash
# Detection ops against torchvision on the CPU: builds and runs the engine's benchmark (which validates against the
# double reference and writes its inputs), times the same cases with Debian's torchvision (2 threads), and prints one
# table of medians. Installs python3-torchvision with apt when it is missing. Usage: bench/detection/run.sh [REPEATS]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
repeats="${1:-11}"
out="$(mktemp -d /tmp/engine-detection-bench.XXXXXX)"
trap 'rm -rf "$out"' EXIT

# Debian's python, not a pyenv or virtualenv one: that is where python3-torch and python3-torchvision install
py=/usr/bin/python3
if ! "$py" -c "import torchvision" 2>/dev/null; then
  echo "installing python3-torchvision (about 50 MB) ..." >&2
  if [ "$(id -u)" -eq 0 ]; then apt-get install -y python3-torchvision >&2; else sudo apt-get install -y python3-torchvision >&2; fi
fi

echo "load before: $(uptime)" >&2
dotnet run -c Release --project "$root/bench/detection/Engine.Bench.Detection" -- --out "$out" --repeats "$repeats" >&2
"$py" "$here/torchvision_cpu.py" "$out" "$repeats" > "$out/torchvision_ms.tsv"
echo "load after:  $(uptime)" >&2

printf '%-28s | %15s | %10s | %8s\n' "case" "torchvision ms" "engine ms" "speed-up"
printf '%-28s-+-%15s-+-%10s-+-%8s\n' "----------------------------" "---------------" "----------" "--------"
while IFS=$'\t' read -r name tv; do
  engine="$(awk -F'\t' -v n="$name" '$1 == n { print $2 }' "$out/engine_ms.tsv")"
  awk -v n="$name" -v t="$tv" -v e="$engine" 'BEGIN { printf "%-28s | %15.3f | %10.3f | %7.1fx\n", n, t, e, t / e }'
done < "$out/torchvision_ms.tsv"
