#!/usr/bin/env bash
# The sanitizer job: every CTest test (tokenizer, model and fuzz-corpus
# replays included, none left out) under ASan + UBSan with
# -fno-sanitize-recover=all (any report fails the test), then the worker-pool
# tests under ThreadSanitizer.
#
#   scripts/sanitize_test.sh
#
# The SIMD kernel files are built without ASan's stack instrumentation and
# UBSan's alignment / null / pointer-overflow checks (kernels/CMakeLists.txt
# says why and what stays on): with them, this suite took 19 minutes, 15x
# slower decode in the model suites; without, 6.5 (AMD EPYC Zen 5, 2 cores).
#
# The forward-pass-heavy model suites run at a reduced scale here: at full
# scale each golden / ISA-equivalence case and the long run costs minutes
# under ASan (the scalar kernels score ~2 tok/s). The ordinary CI job runs
# them in full. Every
# assertion stays on; only the amount of input shrinks:
#   golden_test, isa_equivalence_test: the forward passes run on one golden
#     prompt (TERN_GOLDEN_PROMPTS=plain_capital: 5 prompt tokens, 34
#     teacher-forced positions, 30 greedy tokens; every prompt must still
#     tokenize like the reference) for every blob x kernel variant this CPU
#     runs, scalar included;
#   isa_equivalence_test: 32 greedy tokens per prompt instead of 64
#     (TERN_EQUIV_TOKENS), scored by the scalar kernels;
#   long_run_test: 3,000 tokens instead of 20,000 (TERN_LONG_RUN_TOKENS):
#     the 1,500-token warm-up, then as many tokens checked for flat memory,
#     and still >= 10 resets (10 at 3,000 with each x86 variant). It runs
#     the host's best kernels (under ASan the AVX-512 decode is 3x the AVX2
#     one) with ASan's detect_stack_use_after_return off
#     (tests/CMakeLists.txt says why).
# Same kernels, blobs and thresholds as the full run.
#
# Environment:
#   SAN_BUILD        ASan build folder (default build/asan, the asan preset's)
#   TSAN_BUILD       TSan build folder (default build/tsan, the tsan preset's)
#   SAN_JOBS         build and ctest parallelism (default 2)
#   SAN_CTEST_ARGS   extra ctest selection (default none: every test)
#   SAN_GOLDEN_PROMPTS, SAN_EQUIV_TOKENS, SAN_LONG_RUN_TOKENS
#                    the reduced scale above (defaults plain_capital, 32,
#                    3000; '' = the full run's all prompts / 64 / 20,000)
#   TERN_MODEL_DIR   model cache (default .cache/models; the model tests pack the
#                    blobs there with the ASan tern-pack)
#   SAN_SKIP_TSAN=1  ASan/UBSan part only
# Needs the fetched model for the model tests (scripts/fetch_model.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SAN_BUILD=${SAN_BUILD:-$ROOT/build/asan}
TSAN_BUILD=${TSAN_BUILD:-$ROOT/build/tsan}
JOBS=${SAN_JOBS:-2}
MODEL_DIR=${TERN_MODEL_DIR:-$ROOT/.cache/models}

t0=$(date +%s)
echo "sanitize_test: ASan + UBSan build in $SAN_BUILD"
cmake -S "$ROOT" -B "$SAN_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTERN_SANITIZE=ON \
  -DTERN_MODEL_DIR="$MODEL_DIR" >/dev/null
cmake --build "$SAN_BUILD" -j"$JOBS" >/dev/null
t1=$(date +%s)
echo "sanitize_test: built in $((t1 - t0)) s; running ctest"
# handle_sigbus=0: tests/hostile provoke SIGBUS on purpose (truncated mapping) and
# catch it themselves; an unexpected SIGBUS still kills the test.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:handle_sigbus=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The reduced scale of the forward-pass-heavy suites (see the top). One ctest
# run for everything, so the long cases overlap the rest of the suite.
export TERN_GOLDEN_PROMPTS=${SAN_GOLDEN_PROMPTS-plain_capital,capital}  # SmolLM2 and Gemma 3 goldens
export TERN_EQUIV_TOKENS=${SAN_EQUIV_TOKENS-32}
export TERN_LONG_RUN_TOKENS=${SAN_LONG_RUN_TOKENS-3000}
echo "sanitize_test: model suites at TERN_GOLDEN_PROMPTS='$TERN_GOLDEN_PROMPTS'" \
     "TERN_EQUIV_TOKENS='$TERN_EQUIV_TOKENS' TERN_LONG_RUN_TOKENS='$TERN_LONG_RUN_TOKENS' ('' = full)"
# shellcheck disable=SC2086
ctest --test-dir "$SAN_BUILD" -j"$JOBS" --output-on-failure --timeout 900 ${SAN_CTEST_ARGS:-}
t2=$(date +%s)
echo "sanitize_test: ASan/UBSan suite passed in $((t2 - t1)) s"

if [ "${SAN_SKIP_TSAN:-0}" != 1 ]; then
  echo "sanitize_test: ThreadSanitizer build in $TSAN_BUILD"
  cmake -S "$ROOT" -B "$TSAN_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTERN_TSAN=ON \
    -DTERN_MODEL_DIR="$MODEL_DIR" >/dev/null
  cmake --build "$TSAN_BUILD" -j"$JOBS" --target test_port_thread_pool_test >/dev/null
  export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
  ctest --test-dir "$TSAN_BUILD" -R '^port\.thread_pool_test$' --output-on-failure --timeout 900
  t3=$(date +%s)
  echo "sanitize_test: TSan worker-pool tests passed ($((t3 - t2)) s)"
fi
echo "sanitize_test: all passed in $(( $(date +%s) - t0 )) s"
