#!/usr/bin/env bash
# Cross-build tern for Arm and run the unit suite under qemu-user.
#
#   aarch64: build/aarch64 with toolchains/aarch64-linux-gnu.cmake; the whole
#            ctest suite except the real-model tests (label `model`) runs twice:
#            QEMU_CPU=max        (has dotprod: neon-dotprod, neon and scalar run)
#            QEMU_CPU=cortex-a53 (ARMv8.0, no dotprod: that variant is skipped,
#                                 and any armv8.2 instruction leaking into the
#                                 baseline code dies with SIGILL)
#   armv7:   build/armv7 with toolchains/arm-linux-gnueabihf.cmake (NEON,
#            hard float), compiled; its kernels.* tests run under qemu-arm
#            (set TERN_ARMV7_TESTS=0 to compile only).
#
# Exits nonzero on any configure, build or test failure. Timings printed by
# tests are meaningless under qemu. Needs: g++-aarch64-linux-gnu,
# g++-arm-linux-gnueabihf, qemu-user, /usr/src/googletest (googletest package).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=${JOBS:-$(nproc)}
A64_DIR=${TERN_A64_DIR:-$ROOT/build/aarch64}
V7_DIR=${TERN_V7_DIR:-$ROOT/build/armv7}
A64_CPUS=${TERN_QEMU_CPUS:-"max cortex-a53"}
V7_TESTS=${TERN_ARMV7_TESTS:-1}

step() { printf '\n=== %s (%ds)\n' "$*" "$SECONDS"; }
summary=()

for tool in aarch64-linux-gnu-g++ arm-linux-gnueabihf-g++ qemu-aarch64 qemu-arm cmake ctest; do
  command -v "$tool" >/dev/null || { echo "cross_test.sh: $tool not found" >&2; exit 2; }
done
[[ -d /usr/src/googletest ]] || { echo "cross_test.sh: /usr/src/googletest missing" >&2; exit 2; }

# A variant the emulated CPU lacks is skipped, not failed; make sure the one
# each CPU model is meant to exercise really ran. $1 cpu, $2 gtest variant
# suffix (neon, neon_dotprod). Prints the count; fails if none ran or any skipped.
expect_variant_ran() {
  local bin="$A64_DIR/tests/test_kernels_kernel_variants_test" out ran skipped
  out=$(QEMU_CPU=$1 qemu-aarch64 -L /usr/aarch64-linux-gnu "$bin" \
        --gtest_filter="AllVariants/*/$2" 2>&1) || { echo "$out"; return 1; }
  ran=$(grep -cE '^\[ +OK \]' <<<"$out" || true)
  skipped=$(grep -cE '^\[ +SKIPPED \] AllVariants' <<<"$out" || true)
  echo "$2: $ran ran, $skipped skipped"
  [[ $ran -gt 0 && $skipped -eq 0 ]]
}

step "configure + build aarch64 -> $A64_DIR"
cmake -S "$ROOT" -B "$A64_DIR" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$ROOT/toolchains/aarch64-linux-gnu.cmake" \
  -DTERN_GTEST_FROM_SOURCE=ON
cmake --build "$A64_DIR" -j"$JOBS"

status=0
for cpu in $A64_CPUS; do
  step "ctest aarch64 under qemu -cpu $cpu"
  log="$A64_DIR/ctest-$cpu.log"
  if QEMU_CPU=$cpu ctest --test-dir "$A64_DIR" -LE model --output-on-failure -j"$JOBS" \
      2>&1 | tee "$log"; then :; else status=1; fi
  summary+=("aarch64 -cpu $cpu: $(grep -E 'tests passed' "$log" || echo 'no summary')")
  variants=(neon)
  [[ $cpu == max ]] && variants+=(neon_dotprod)  # qemu's `max` has every extension
  for v in "${variants[@]}"; do
    if line=$(expect_variant_ran "$cpu" "$v"); then :; else status=1; line="$line  <- FAILED"; fi
    summary+=("  variant $line")
  done
done

step "configure + build armv7 -> $V7_DIR"
cmake -S "$ROOT" -B "$V7_DIR" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$ROOT/toolchains/arm-linux-gnueabihf.cmake" \
  -DTERN_GTEST_FROM_SOURCE=ON
cmake --build "$V7_DIR" -j"$JOBS"
if [[ "$V7_TESTS" == 1 ]]; then
  step "ctest armv7 (kernels.*) under qemu-arm"
  log="$V7_DIR/ctest-kernels.log"
  if ctest --test-dir "$V7_DIR" -R '^kernels\.' --output-on-failure -j"$JOBS" \
      2>&1 | tee "$log"; then :; else status=1; fi
  summary+=("armv7 kernels.*: $(grep -E 'tests passed' "$log" || echo 'no summary')")
else
  summary+=("armv7: compiled, tests not run")
fi

step "summary"
printf '  %s\n' "${summary[@]}"
exit "$status"
