#!/usr/bin/env bash
# Runs the whole test suite: installs missing system packages, builds everything (native shim
# included) in Release, runs every test project, and ends with one plain line of totals,
# "N passed, N failed, N skipped". Exits non-zero if anything failed or no test ran.
# Extra arguments go to `dotnet test` (e.g. --filter "FullyQualifiedName~Conv").
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet test Engine.sln -c Release --nologo "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# Each test assembly prints one summary line:
#   "Passed!  - Failed:     0, Passed:    42, Skipped:     1, Total:    43, Duration: ..."
sum() { grep -oE "$1: +[0-9]+" "$log" | awk '{s += $2} END {print s + 0}'; }
passed=$(sum Passed); failed=$(sum Failed); skipped=$(sum Skipped)
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi   # build error or crashed host
echo "$passed passed, $failed failed, $skipped skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
