#!/usr/bin/env bash
# Cross-build tern for Arm and run the unit tests that exercise the Arm code
# under qemu-user.
#
#   aarch64: build/aarch64 with toolchains/aarch64-linux-gnu.cmake; the
#            selected tests run twice:
#            QEMU_CPU=max        (has dotprod and i8mm: neon-i8mm, its
#                                 emulated twin, neon-dotprod, neon and scalar run)
#            QEMU_CPU=cortex-a53 (ARMv8.0, no dotprod: those variants are
#                                 skipped, and any armv8.2 / 8.6 instruction
#                                 leaking into the baseline code dies with SIGILL)
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
# Real model under qemu (aarch64 only): after each CPU model's unit tests,
# the whole-model golden test (tests/model/golden_test.cc: tokenization,
# teacher-forced agreement with the transformers reference, greedy
# continuations) runs for the cases in TERN_CROSS_GOLDEN_CASES, a list of
# <qemu cpu>:<gtest case suffix>; default: the int4 blob with neon-i8mm on
# `max` (i8mm prefill, dotprod decode; the Gemma run below prefills with
# neon-dotprod) and with neon on `cortex-a53`, so every NEON path runs a real model
# (the scalar and int8 cases are left to the host suite: under qemu they
# would cost many minutes). Every golden prompt must tokenize like the
# reference, but the forward passes run on the shortest golden prompt only
# (TERN_CROSS_GOLDEN_PROMPTS, a comma list passed to the test as
# TERN_GOLDEN_PROMPTS; empty: all eight): qemu runs the NEON model at a few
# tokens per second, and plain_capital alone (34 teacher-forced positions,
# 30 greedy tokens) took 167 s per CPU model on the loaded dev machine; all
# eight prompts are ~2,200 tokens teacher-forced plus ~350 greedy.
# The blob is read from TERN_CROSS_MODEL_DIR
# (default <repo>/.cache/models, compiled into the aarch64 tests; qemu-user
# sees the host file system); if it is missing it is packed there with the
# host tern-pack (TERN_HOST_PACK, default <repo>/build/release/bin/tern-pack,
# which scripts/test.sh builds first) from the fetched GGUF.
# TERN_CROSS_GOLDEN=0 skips this part.
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
GOLDEN=${TERN_CROSS_GOLDEN:-1}
GOLDEN_CASES=${TERN_CROSS_GOLDEN_CASES:-"max:int4_neon_i8mm cortex-a53:int4_neon"}
GOLDEN_PROMPTS=${TERN_CROSS_GOLDEN_PROMPTS-plain_capital}
MODEL_DIR=${TERN_CROSS_MODEL_DIR:-$ROOT/.cache/models}
HOST_PACK=${TERN_HOST_PACK:-$ROOT/build/release/bin/tern-pack}
GOLDEN_EXE=test_model_golden_test
# Gemma 3 270M (issue 14): its golden test on one prompt, neon_dotprod, qemu -cpu max.
GEMMA_GOLDEN=${TERN_CROSS_GEMMA_GOLDEN:-1}
GEMMA_GOLDEN_EXE=test_model_gemma3_golden_test
GEMMA_GOLDEN_PROMPTS=${TERN_CROSS_GEMMA_GOLDEN_PROMPTS-capital}

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
# Plus the check that the armv8.2 / i8mm objects define no weak symbol (no
# source file of its own: tests/CMakeLists.txt; aarch64 only, armv7 has none).
NO_WEAK_TEST=kernels.neon_objects_define_no_weak_symbols
grep -qE "$TESTS_RE" <<<"$NO_WEAK_TEST" && ! grep -qE "$EXCLUDE_RE" <<<"$NO_WEAK_TEST" &&
  others+=("^${NO_WEAK_TEST//./\\.}\$")
others_re=$(IFS='|'; echo "${others[*]:-}")
run_variants=0
for t in "${selected[@]}"; do [[ $t == "$VARIANTS_TEST" ]] && run_variants=1; done
echo "cross_test.sh: tests: ${selected[*]}"

# $1 build dir, $2 toolchain file, $3.. extra targets: configure and build
# the selected tests.
build() {
  local dir=$1 toolchain=$2; shift 2
  cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
    -DTERN_GTEST_FROM_SOURCE=ON -DTERN_MODEL_DIR="$MODEL_DIR" >/dev/null
  cmake --build "$dir" -j"$JOBS" --target "${targets[@]}" "$@"
}

# The int4 blob the qemu golden runs read: packed by the host suite's
# model.pack_int4 (scripts/test.sh runs it first), else packed here.
ensure_int4_blob() {
  local blob=$MODEL_DIR/smollm2-135m-int4.tern gguf=$MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf
  [[ -f $blob ]] && return 0
  if [[ ! -x $HOST_PACK || ! -f $gguf ]]; then
    echo "cross_test.sh: $blob missing and cannot pack it (need $gguf from scripts/fetch_model.sh and the" \
         "host tern-pack $HOST_PACK); set TERN_CROSS_GOLDEN=0 to skip the qemu golden run" >&2
    return 1
  fi
  "$HOST_PACK" "$gguf" -o "$blob" --weights int4
}

# The Gemma 3 blob the qemu Gemma golden run reads (model.pack_gemma3 packs it).
ensure_gemma_blob() {
  local blob=$MODEL_DIR/gemma3-270m-int4.tern gguf=$MODEL_DIR/gemma-3-270m-q4_k_m.gguf
  [[ -f $blob ]] && return 0
  [[ -x $HOST_PACK && -f $gguf ]] || return 1
  "$HOST_PACK" "$gguf" -o "$blob" --weights int4 >/dev/null
}

# $1 label, $2 log, $3 gtest case suffix (e.g. int4_neon), [$4 test exe, $5 prompts]: the golden test's
# cases of that suffix under qemu (QEMU_CPU set by the caller); every test of
# the case must run and pass, none skipped.
run_golden() {
  local label=$1 log=$2 case=$3 exe=${4:-$GOLDEN_EXE} prompts=${5-$GOLDEN_PROMPTS} rc=0 ran skipped t0=$SECONDS
  TERN_GOLDEN_PROMPTS=$prompts qemu-aarch64 -L /usr/aarch64-linux-gnu "$A64_DIR/tests/$exe" \
    --gtest_filter="*/$case" >"$log" 2>&1 || rc=1
  grep -E '^\[smollm2|^\[gemma3|Failure|^\[  (FAILED|SKIPPED) ' "$log" | head -30 || true
  ran=$(grep -cE "^\[ +OK \] .*/$case " "$log" || true)
  skipped=$(grep -cE "^\[ +SKIPPED \] .*/$case " "$log" || true)
  local line="$label golden $case: $ran passed, $skipped skipped, $((SECONDS - t0))s"
  if [[ $rc != 0 || $ran -eq 0 || $skipped -ne 0 ]]; then rc=1; line+="  <- FAILED (full output: $log)"; fi
  summary+=("$line")
  return "$rc"
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
a64_extra=()
[[ $GOLDEN == 1 ]] && a64_extra+=("$GOLDEN_EXE" "$GEMMA_GOLDEN_EXE")
build "$A64_DIR" "$ROOT/toolchains/aarch64-linux-gnu.cmake" "${a64_extra[@]}"
if [[ $GOLDEN == 1 ]]; then
  ensure_int4_blob || { status=1; GOLDEN=0; summary+=("aarch64 golden: int4 blob missing  <- FAILED"); }
  ensure_gemma_blob || { status=1; GEMMA_GOLDEN=0; summary+=("aarch64 Gemma golden: blob missing  <- FAILED"); }
fi
for cpu in $A64_CPUS; do
  step "aarch64 tests under qemu -cpu $cpu"
  export QEMU_CPU=$cpu
  run_ctest "aarch64 -cpu $cpu" "$A64_DIR" "$A64_DIR/ctest-$cpu.log" || status=1
  if [[ $run_variants == 1 ]]; then
    variants=(neon scalar)
    [[ $cpu == max ]] && variants+=(neon_i8mm neon_i8mm_emulated neon_dotprod)  # qemu's `max` has every extension
    run_variants "aarch64 -cpu $cpu" "$A64_DIR/variants-$cpu.log" \
      qemu-aarch64 -L /usr/aarch64-linux-gnu "$A64_DIR/tests/test_kernels_kernel_variants_test" \
      -- "${variants[@]}" || status=1
  fi
  if [[ $GOLDEN == 1 ]]; then
    for gc in $GOLDEN_CASES; do
      [[ ${gc%%:*} == "$cpu" ]] || continue
      step "aarch64 real-model golden ${gc#*:} under qemu -cpu $cpu"
      run_golden "aarch64 -cpu $cpu" "$A64_DIR/golden-${gc#*:}-$cpu.log" "${gc#*:}" || status=1
    done
    if [[ $GEMMA_GOLDEN == 1 && $cpu == max ]]; then
      step "aarch64 Gemma 3 golden neon_dotprod under qemu -cpu $cpu (prompt $GEMMA_GOLDEN_PROMPTS)"
      run_golden "aarch64 -cpu $cpu" "$A64_DIR/gemma3-golden-$cpu.log" neon_dotprod "$GEMMA_GOLDEN_EXE" \
        "$GEMMA_GOLDEN_PROMPTS" || status=1
    fi
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
