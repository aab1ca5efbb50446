#!/usr/bin/env bash
# Decode speed against thread count, with the cores free and with one core
# taken by another process: does the worker pool degrade gracefully when
# threads outnumber free cores? (issue 18, "thread collapse")
#
#   bench/thread_contention.sh                 (REPS=5 THREADS="1 2 3 4 8" TG=64)
#
# Each cell is the median of REPS runs of tern-bench (one process per run:
# a 16-token prompt, then TG greedy decode tokens at context 0, after one
# untimed warm-up round). Runs are interleaved (rep by rep, free and loaded,
# every thread count) so drift in the machine spreads evenly over the cells.
# "loaded" runs a busy loop pinned to the last CPU (taskset) for the length of
# the run; it stops itself after HOG_MAX_S seconds whatever happens.
# The "other load" column is the CPU time spent during the runs by neither
# tern-bench nor the busy loop, in cores (other programs on the machine).
#
# Prints the markdown table and writes it to $OUT.
# Environment:
#   BUILD       build folder with bin/tern-bench (default build/release; built if missing)
#   MODEL       blob (default $TERN_MODEL_DIR/smollm2-135m-int4.tern, TERN_MODEL_DIR=.cache/models)
#   REPS, THREADS, TG, MODES ("free loaded"), HOG_MAX_S (default 120)
#   QUIET_WAIT_S  before each run, wait up to this many seconds for the other
#               load to drop under 10% of one core (default 0: do not wait; on a
#               shared machine 60 makes the "free" column mean free)
#   OUT         default bench/results/thread_contention.md
#   LABEL       a line printed under the table (e.g. which pool was measured)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build/release}"
MODEL="${MODEL:-${TERN_MODEL_DIR:-$ROOT/.cache/models}/smollm2-135m-int4.tern}"
REPS="${REPS:-5}"
THREADS="${THREADS:-1 2 3 4 8}"
TG="${TG:-64}"
MODES="${MODES:-free loaded}"
HOG_MAX_S="${HOG_MAX_S:-120}"
QUIET_WAIT_S="${QUIET_WAIT_S:-0}"
OUT="${OUT:-$ROOT/bench/results/thread_contention.md}"
BIN="$BUILD/bin/tern-bench"
NCPU=$(getconf _NPROCESSORS_ONLN)
HOG_CPU=$((NCPU - 1))
HZ=$(getconf CLK_TCK)

if [[ ! -f "$MODEL" ]]; then
  echo "thread_contention: $MODEL is missing (scripts/fetch_model.sh, then tern-pack)" >&2
  exit 1
fi
if [[ ! -x "$BIN" ]]; then
  echo "== building tern-bench in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTERN_BUILD_TESTS=OFF > /dev/null
  cmake --build "$BUILD" --target tern-bench -j"${JOBS:-2}" > /dev/null
fi
PIN=()
if command -v taskset > /dev/null; then PIN=(taskset -c "$HOG_CPU"); fi

hog_pid=""
stop_hog() {
  if [[ -n "$hog_pid" ]]; then
    kill "$hog_pid" 2> /dev/null || true
    wait "$hog_pid" 2> /dev/null || true
    hog_pid=""
  fi
}
trap stop_hog EXIT
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }     # user nice system irq softirq
proc_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2> /dev/null || echo 0; }  # utime + stime
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# Wait (up to QUIET_WAIT_S) until the machine was nearly idle for half a second.
wait_quiet() {
  local t0=$SECONDS a b
  while (( SECONDS - t0 < QUIET_WAIT_S )); do
    a=$(busy_ticks); sleep 0.5; b=$(busy_ticks)
    (( (b - a) * 100 <= HZ * 10 / 2 )) && return 0  # under 10% of one core
  done
}

# One run: sets RESULT to "tok/s other_load_cores" (in this shell, so the EXIT
# trap can always stop the busy loop).
run_once() {
  local threads=$1 mode=$2 out b0 b1 h0=0 h1=0 t0 t1 self
  wait_quiet
  if [[ "$mode" == loaded ]]; then
    "${PIN[@]}" bash -c "while (( SECONDS < $HOG_MAX_S )); do :; done" &
    hog_pid=$!
    sleep 0.2
    h0=$(proc_ticks "$hog_pid")
  fi
  b0=$(busy_ticks)
  t0=$(date +%s%N)
  local tf
  tf=$(mktemp)
  # bash's `time` gives the child's CPU time; TIMEFORMAT = user + sys seconds.
  { TIMEFORMAT='%U %S'; time "$BIN" --model "$MODEL" --threads "$threads" --prompts 16 --contexts 0 --tg "$TG" \
      --reps 1 --warmup 1 --json > "$tf.json" 2> /dev/null; } 2> "$tf"
  t1=$(date +%s%N)
  b1=$(busy_ticks)
  if [[ -n "$hog_pid" ]]; then h1=$(proc_ticks "$hog_pid"); fi
  stop_hog
  out=$(tail -1 "$tf.json" | grep -o '"tok_s":[0-9.]*' | head -1 | cut -d: -f2)
  self=$(awk '{print $1 + $2}' "$tf")
  rm -f "$tf" "$tf.json"
  RESULT=$(awk -v tok="${out:--}" -v b="$((b1 - b0))" -v h="$((h1 - h0))" -v hz="$HZ" -v self="$self" \
      -v wall="$(( (t1 - t0) / 1000 ))" \
      'BEGIN { other = (b - h) / hz - self; if (other < 0) other = 0; printf "%s %.2f\n", tok, other / (wall / 1e6) }')
}

declare -A tok other ratios
mkdir -p "$(dirname "$OUT")"
echo "== $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $NCPU CPUs; REPS=$REPS TG=$TG; load now $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for rep in $(seq "$REPS"); do
  for mode in $MODES; do
    for t in $THREADS; do
      run_once "$t" "$mode"
      read -r v o <<< "$RESULT"
      tok[$mode,$t]+="$v "
      other[$mode,$t]+="$o "
      # The ratio to the first thread count of the same rep and mode: runs
      # seconds apart see about the same load from other programs.
      if [[ "$t" == "${THREADS%% *}" ]]; then base=$v; fi
      ratios[$mode,$t]+="$(awk -v a="$v" -v b="$base" 'BEGIN { if (b > 0 && a != "-") printf "%.4f", a / b; else printf "-" }') "
      echo "rep $rep $mode threads=$t: $v tok/s (other load $o cores)" >&2
    done
  done
done

med() { tr ' ' '\n' <<< "$1" | grep -v '^-*$' | median; }
{
  header="| threads |"
  rule="|---:|"
  for mode in $MODES; do
    header+=" $mode: decode tok/s | vs ${THREADS%% *} thread | other load |"
    rule+="---:|---:|---:|"
  done
  echo "$header"
  echo "$rule"
  for t in $THREADS; do
    row="| $t |"
    for mode in $MODES; do
      m=$(med "${tok[$mode,$t]}")
      row+=" $m | $(med "${ratios[$mode,$t]}" | awk '{ if ($1 == "-") print "-"; else printf "%.2f", $1 }') | $(med "${other[$mode,$t]}") |"
    done
    echo "$row"
  done
  echo
  echo "Decode tok/s at context 0 ($TG tokens after a 16-token prompt), median of $REPS runs of tern-bench," \
       "interleaved; 'vs' is the median of the per-rep ratios to the ${THREADS%% *}-thread run of the same rep and mode (runs seconds apart, so other programs' load is about the same); 'loaded': a busy loop pinned to CPU $HOG_CPU during the run; 'other load': CPU time of" \
       "other programs during the runs, in cores (median). $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
       "$NCPU CPUs, $(date -u +%Y-%m-%d)."
  if [[ -n "${LABEL:-}" ]]; then echo "$LABEL"; fi
} | tee "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
