#!/usr/bin/env bash
# Build the libFuzzer targets (tests/fuzz/, clang, ASan + UBSan, no recovery)
# and run each for a bounded time; fail on any finding (crash, sanitizer
# report, failed invariant, leak, timeout, out-of-memory).
#
#   scripts/fuzz.sh [TARGET...]      default: every target
#
# Environment:
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_RUNS      also stop a target after this many execs (default: no limit;
#                  the long run: FUZZ_RUNS=10000000 with a large FUZZ_SECONDS)
#   FUZZ_JOBS      targets run at once (default 2)
#   FUZZ_BUILD     build folder (default build/fuzz; configured with the fuzz preset's settings)
#   FUZZ_WORK      where the growing corpora, logs and crash artifacts go (default $FUZZ_BUILD/fuzz-work)
#   TERN_FUZZ_BLOB the packed model whose vocabulary fuzz_tokenizer uses
#                  (default .cache/models/smollm2-135m-int4.tern: run scripts/fetch_model.sh and pack first)
#
# Each target first replays tests/fuzz/regressions/<target>/ (past findings),
# then fuzzes from the committed seeds (tests/fuzz/corpus/<target>/) plus what
# earlier runs in FUZZ_WORK found. The summary lists execs and exec/s per target.
# A long run is the same command with a larger FUZZ_SECONDS (see tests/fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_EACH=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-2}
BUILD=${FUZZ_BUILD:-$ROOT/build/fuzz}
WORK=${FUZZ_WORK:-$BUILD/fuzz-work}
ALL=()
for f in tests/fuzz/fuzz_*.cc; do n=${f#tests/fuzz/fuzz_}; ALL+=("${n%.cc}"); done
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (scripts/install_deps.sh --fuzz)"; exit 2; }
export TERN_FUZZ_BLOB=${TERN_FUZZ_BLOB:-$ROOT/.cache/models/smollm2-135m-int4.tern}
for t in "${TARGETS[@]}"; do
  if [ "$t" = tokenizer ] && [ ! -f "$TERN_FUZZ_BLOB" ]; then
    echo "fuzz.sh: fuzz_tokenizer needs the packed model at $TERN_FUZZ_BLOB (fetch and pack it first)"
    exit 2
  fi
done

echo "fuzz.sh: building ${TARGETS[*]} in $BUILD"
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTERN_FUZZ=ON -DTERN_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"${FUZZ_BUILD_JOBS:-2}" --target $(printf 'fuzz_%s ' "${TARGETS[@]}") >/dev/null

mkdir -p "$WORK"
rm -rf "$WORK/artifacts"  # this run's findings only
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
  local t=$1 exe=$BUILD/bin/fuzz_$1 log=$WORK/$1.log
  mkdir -p "$WORK/corpus/$t" "$WORK/artifacts"
  : >"$log"
  local reg=()
  if [ -d "$ROOT/tests/fuzz/regressions/$t" ]; then
    while IFS= read -r -d '' f; do reg+=("$f"); done < <(find "$ROOT/tests/fuzz/regressions/$t" -type f ! -name '*.md' -print0)
  fi
  if [ ${#reg[@]} -gt 0 ]; then
    "$exe" "${reg[@]}" >>"$log" 2>&1 || { echo "regression replay failed" >>"$log"; return 1; }
  fi
  local runs=()
  [ -z "${FUZZ_RUNS:-}" ] || runs=(-runs="$FUZZ_RUNS")
  # fuzz_kv_pages reads at most 6 + 512 * 2 bytes: longer inputs only waste mutations.
  [ "$t" != kv_pages ] || runs+=(-max_len=1030)
  "$exe" -max_total_time="$SECONDS_EACH" "${runs[@]}" -timeout=30 -rss_limit_mb=2560 -print_final_stats=1 \
    -artifact_prefix="$WORK/artifacts/$t-" "$WORK/corpus/$t" "$ROOT/tests/fuzz/corpus/$t" >>"$log" 2>&1
}

pids=() names=() fail=0
for t in "${TARGETS[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
  echo "fuzz.sh: fuzz_$t for ${SECONDS_EACH}s"
  run_one "$t" & pids+=($!) names+=("$t")
done
status=()
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then status+=(ok); else status+=(FAIL); fail=1; fi
done

printf '\n%-12s %8s %14s %10s %8s %s\n' target seconds execs exec/s corpus result
for i in "${!names[@]}"; do
  t=${names[$i]} log=$WORK/${names[$i]}.log
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  secs=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  corpus=$(find "$WORK/corpus/$t" -type f | wc -l)
  printf '%-12s %8s %14s %10s %8s %s\n' "$t" "$SECONDS_EACH" "${execs:-?}" "${secs:-?}" "$corpus" "${status[$i]}"
  if [ "${status[$i]}" != ok ]; then
    echo "---- fuzz_$t log (tail) ----"
    tail -40 "$log"
  fi
done
if ls "$WORK/artifacts/" 2>/dev/null | grep -q .; then
  echo "fuzz.sh: artifacts in $WORK/artifacts:"; ls -l "$WORK/artifacts/"
fi
exit $fail
