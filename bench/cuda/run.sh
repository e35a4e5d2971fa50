#!/usr/bin/env bash
# The custom CUDA kernels against torchvision/PyTorch on one GPU, in one run: torch_peer.py generates the inputs and
# times torchvision (CUDA events, medians), then Engine.Bench.Cuda checks the engine's kernels against torchvision's
# outputs on the same inputs, times them the same way and prints the table. Needs an NVIDIA GPU, PyTorch and
# torchvision. Usage: bench/cuda/run.sh [REPEATS=50]
# ENGINE_BENCH_CUDA=/path/Engine.Bench.Cuda.dll runs a prebuilt benchmark with `dotnet exec` (a machine with only the
# .NET runtime); otherwise it is built and run with the SDK.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repeats="${1:-50}"
# the inputs take about 0.5 GB: a temporary folder, removed at the end, unless ENGINE_BENCH_OUT names one to keep
if [ -n "${ENGINE_BENCH_OUT:-}" ]; then
  out="$ENGINE_BENCH_OUT"
  mkdir -p "$out"
else
  out="$(mktemp -d /tmp/engine-cuda-bench.XXXXXX)"
  trap 'rm -rf "$out"' EXIT
fi
python3 "$here/torch_peer.py" "$out" "$repeats" > "$out/torch.log"
if [ -n "${ENGINE_BENCH_CUDA:-}" ]; then
  dotnet exec "$ENGINE_BENCH_CUDA" "$out" "$repeats"
else
  dotnet run -c Release --project "$here/Engine.Bench.Cuda" -- "$out" "$repeats"
fi
