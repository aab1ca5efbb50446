#!/usr/bin/env bash
# Cross-build tern for Arm and run the unit tests that exercise the Arm code
# under qemu-user.
#
#   aarch64: build/aarch64 with toolchains/aarch64-linux-gnu.cmake; the
#            selected tests run twice:
#            QEMU_CPU=max        (has dotprod: neon-dotprod, neon and scalar run)
#            QEMU_CPU=cortex-a53 (ARMv8.0, no dotprod: that variant is skipped,
#                                 and any armv8.2 instruction leaking into the
#                                 baseline code dies with SIGILL)
#   armv7:   build/armv7 with toolchains/arm-linux-gnueabihf.cmake (NEON,
#            hard float); the same tests under qemu-arm
#            (set TERN_ARMV7_TESTS=0 to compile only).
#
# Which tests: by default the kernel, arena and runtime unit tests
# (TERN_CROSS_TESTS, a ctest -R regex) except the slow pure-logic ones the
# host suite already covers (TERN_CROSS_EXCLUDE, a ctest -E regex); never the
# real-model tests (label `model`). Only those test executables (and what
# they link) are built. TERN_CROSS_TESTS=. TERN_CROSS_EXCLUDE='^$' builds and
# runs every non-model test.
#
# kernels.kernel_variants_test runs directly, not through ctest, so that one
# run per CPU model both passes/fails the suite and shows that the variant
# that CPU is meant to exercise really ran (a variant the CPU lacks is
# skipped, not failed).
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
TESTS_RE=${TERN_CROSS_TESTS:-'^(kernels|arena|runtime)\.'}
EXCLUDE_RE=${TERN_CROSS_EXCLUDE:-'^(runtime\.sampler_test|tools\.blob_writer_test)$'}
VARIANTS_TEST=kernels.kernel_variants_test

step() { printf '\n=== %s (%ds)\n' "$*" "$SECONDS"; }
summary=()

for tool in aarch64-linux-gnu-g++ arm-linux-gnueabihf-g++ qemu-aarch64 qemu-arm cmake ctest; do
  command -v "$tool" >/dev/null || { echo "cross_test.sh: $tool not found" >&2; exit 2; }
done
[[ -d /usr/src/googletest ]] || { echo "cross_test.sh: /usr/src/googletest missing" >&2; exit 2; }

# The selected tests, as ctest names <area>.<name> (tests/CMakeLists.txt
# registers tests/<area>/<name>_test.cc so, built as test_<area>_<name>).
selected=()
for src in "$ROOT"/tests/*/*_test.cc; do
  area=$(basename "$(dirname "$src")")
  name="$area.$(basename "$src" .cc)"
  [[ $area == model ]] && continue
  grep -qE "$TESTS_RE" <<<"$name" || continue
  grep -qE "$EXCLUDE_RE" <<<"$name" && continue
  selected+=("$name")
done
[[ ${#selected[@]} -gt 0 ]] || { echo "cross_test.sh: no test matches '$TESTS_RE'" >&2; exit 2; }
targets=()
for t in "${selected[@]}"; do targets+=("test_${t/./_}"); done
# ctest regex of the selection minus the variants test (run directly).
others=()
for t in "${selected[@]}"; do [[ $t == "$VARIANTS_TEST" ]] || others+=("^${t//./\\.}\$"); done
others_re=$(IFS='|'; echo "${others[*]:-}")
run_variants=0
for t in "${selected[@]}"; do [[ $t == "$VARIANTS_TEST" ]] && run_variants=1; done
echo "cross_test.sh: tests: ${selected[*]}"

# $1 build dir, $2 toolchain file: configure and build the selected tests.
build() {
  cmake -S "$ROOT" -B "$1" -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE="$2" \
    -DTERN_GTEST_FROM_SOURCE=ON >/dev/null
  cmake --build "$1" -j"$JOBS" --target "${targets[@]}"
}

# $1 label, $2 build dir, $3 log: ctest over the selection minus the variants test.
run_ctest() {
  if [[ -z $others_re ]]; then summary+=("$1 ctest: nothing selected"); return 0; fi
  local rc=0
  ctest --test-dir "$2" -R "$others_re" -LE model --output-on-failure -j"$JOBS" 2>&1 | tee "$3" || rc=1
  summary+=("$1 ctest: $(grep -E 'tests passed' "$3" || echo 'no summary')")
  return "$rc"
}

# $1 label, $2 log, $3.. command running the variants test; then the gtest
# variant suffixes that must have run with none skipped.
run_variants() {
  local label=$1 log=$2 rc=0 v ran skipped line; shift 2
  local cmd=() expect=()
  while [[ $1 != -- ]]; do cmd+=("$1"); shift; done; shift
  expect=("$@")
  "${cmd[@]}" >"$log" 2>&1 || rc=1
  grep -E '^\[  (FAILED|PASSED) |^\[  SKIPPED \] [0-9]|Failure' "$log" | sort -u | head -20 || true
  count() {  # gtest's closing "[  PASSED  ] 38 tests." / "[  FAILED  ] 3 tests, listed below:"
    local n; n=$(sed -n "s/^\[  $1 *\] \([0-9]*\) tests\{0,1\}[,.].*/\1/p" "$log" | head -1); echo "${n:-0}"
  }
  summary+=("$label $VARIANTS_TEST: $(count PASSED) passed, $(count FAILED) failed, $(count SKIPPED) skipped")
  [[ $rc == 0 ]] || summary+=("  full output: $log")
  for v in "${expect[@]}"; do
    ran=$(grep -cE "^\[ +OK \] AllVariants/.*/$v " "$log" || true)
    skipped=$(grep -cE "^\[ +SKIPPED \] AllVariants/.*/$v " "$log" || true)
    line="variant $v: $ran ran, $skipped skipped"
    if [[ $ran -eq 0 || $skipped -ne 0 ]]; then rc=1; line+="  <- FAILED"; fi
    summary+=("  $line")
  done
  return "$rc"
}

status=0
step "configure + build aarch64 -> $A64_DIR"
build "$A64_DIR" "$ROOT/toolchains/aarch64-linux-gnu.cmake"
for cpu in $A64_CPUS; do
  step "aarch64 tests under qemu -cpu $cpu"
  export QEMU_CPU=$cpu
  run_ctest "aarch64 -cpu $cpu" "$A64_DIR" "$A64_DIR/ctest-$cpu.log" || status=1
  if [[ $run_variants == 1 ]]; then
    variants=(neon scalar)
    [[ $cpu == max ]] && variants+=(neon_dotprod)  # qemu's `max` has every extension
    run_variants "aarch64 -cpu $cpu" "$A64_DIR/variants-$cpu.log" \
      qemu-aarch64 -L /usr/aarch64-linux-gnu "$A64_DIR/tests/test_kernels_kernel_variants_test" \
      -- "${variants[@]}" || status=1
  fi
  unset QEMU_CPU
done

step "configure + build armv7 -> $V7_DIR"
build "$V7_DIR" "$ROOT/toolchains/arm-linux-gnueabihf.cmake"
if [[ "$V7_TESTS" == 1 ]]; then
  step "armv7 tests under qemu-arm"
  run_ctest "armv7" "$V7_DIR" "$V7_DIR/ctest.log" || status=1
  if [[ $run_variants == 1 ]]; then
    run_variants "armv7" "$V7_DIR/variants.log" \
      qemu-arm -L /usr/arm-linux-gnueabihf "$V7_DIR/tests/test_kernels_kernel_variants_test" \
      -- neon scalar || status=1
  fi
else
  summary+=("armv7: compiled, tests not run")
fi

step "summary"
printf '  %s\n' "${summary[@]}"
echo "  total ${SECONDS}s"
exit "$status"
