#!/usr/bin/env bash
# Times the ResNet-50 convolution rows and box-head FC matmuls through the engine (C# OneDnn API ->
# libengine_native -> oneDNN) and through oneDNN called directly (bench/onednn), alternating the two
# programs for several rounds, and prints one table:
#   shape | plain oneDNN GFLOP/s (NCHW in/out) | engine GFLOP/s | ratio | oneDNN blocked GFLOP/s
# Each program reports medians over `repeats` calls; per row the best median over the rounds is kept,
# which filters out rounds disturbed by other load on the machine.
# Usage: bench/conv_compare.sh [rounds=3] [repeats=11]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
repeats=${2:-11}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

cmake -S bench/onednn -B build/bench-onednn -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build/bench-onednn > /dev/null
dotnet build bench/Engine.Bench -c Release --nologo -v q > /dev/null

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
for round in $(seq 1 "$rounds"); do
  echo "round $round/$rounds ..." >&2
  build/bench-onednn/onednn_bench "$repeats" | grep '^row ' | sed 's/^row /onednn /' >> "$log/rows"
  dotnet run -c Release --no-build --project bench/Engine.Bench -- --quick "$repeats" | grep '^row ' | sed 's/^row /engine /' >> "$log/rows"
done

echo "threads: $(nproc) cores; best of $rounds rounds of the median of $repeats calls"
awk '
  $1 == "onednn" { id = $2; if (!(id in blocked) || $3 < blocked[id]) blocked[id] = $3;
                   if (!(id in nchw) || $4 < nchw[id]) nchw[id] = $4; flop[id] = $5;
                   if (!(id in seen)) { order[++n] = id; seen[id] = 1 } }
  $1 == "engine" { id = $2; if (!(id in engine) || $3 < engine[id]) engine[id] = $3 }
  END {
    printf "%-34s | %22s | %14s | %13s | %22s\n", "shape", "plain oneDNN GFLOP/s", "engine GFLOP/s", "engine/oneDNN", "oneDNN blocked GFLOP/s"
    for (i = 1; i <= n; i++) {
      id = order[i]
      printf "%-34s | %22.1f | %14.1f | %13.2f | %22.1f\n", id, flop[id] / nchw[id] * 1000, flop[id] / engine[id] * 1000,
             nchw[id] / engine[id], flop[id] / blocked[id] * 1000
    }
  }' "$log/rows"
