#!/usr/bin/env bash
# tern vs llama.cpp on the same model (SmolLM2-135M-Instruct): throughput, latency, footprint and
# greedy-decoding agreement, as a markdown report and PNG plots in bench/results/.
#
#   bench/run.sh                 full run (~15-25 min on 2 idle cores)
#   REPS=3 bench/run.sh          fewer repetitions (default 5, after WARMUP=1 dropped round)
#
# Steps: build tern-bench and tern-run (Release, in $BUILD), create the git-ignored venv with
# llama-cpp-python (compiled from source for this CPU) and matplotlib (bench/peer/setup_venv.sh;
# the first time takes many minutes), make the Q8_0 GGUF with llama.cpp's quantizer, then run
# bench/peer/bench.py (every run its own process, systems alternating) and bench/report.py.
# Environment: REPS, WARMUP, THREADS (1,2), BUILD, TERN_MODEL_DIR, BENCH_VENV, PHASES
# (throughput,footprint,equivalence), SYSTEMS (tern,llama.cpp), CONTEXTS, FOOTPRINT_CONTEXTS,
# OVERHEAD (1: also run bench/overhead.sh, callgrind, a few minutes).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build/bench}"
MODELS="${TERN_MODEL_DIR:-$ROOT/.cache/models}"
VENV="${BENCH_VENV:-$ROOT/.venv-bench}"
OUT="$ROOT/bench/results"
RAW="$OUT/raw"
WORK="${BENCH_WORK:-$ROOT/.cache/bench}"

for f in SmolLM2-135M-Instruct.Q4_1.gguf smollm2-135m-int4.tern smollm2-135m-int8.tern; do
  if [[ ! -f "$MODELS/$f" ]]; then
    echo "bench/run.sh: $MODELS/$f is missing; run scripts/fetch_model.sh and pack the blobs first" >&2
    exit 1
  fi
done

echo "== building tern-bench and tern-run in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTERN_BUILD_TESTS=OFF > /dev/null
cmake --build "$BUILD" --target tern-bench tern-run -j"${JOBS:-2}" > /dev/null

if [[ "${SYSTEMS:-tern,llama.cpp}" == *llama* ]] || [[ ! -x "$VENV/bin/python" ]]; then
  echo "== bench venv (llama-cpp-python, matplotlib) in $VENV"
  BENCH_VENV="$VENV" "$ROOT/bench/peer/setup_venv.sh"
fi

mkdir -p "$RAW" "$WORK"
echo "== measuring (REPS=${REPS:-5}, load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
"$VENV/bin/python" "$ROOT/bench/peer/bench.py" --build "$BUILD" --models "$MODELS" --work "$WORK" --out "$RAW" \
  --reps "${REPS:-5}" --warmup "${WARMUP:-1}" --threads "${THREADS:-1,2}" \
  --contexts "${CONTEXTS:-0,512,1024,2048,4096}" --footprint-contexts "${FOOTPRINT_CONTEXTS:-512,2048,8192}" \
  --phases "${PHASES:-throughput,footprint,equivalence}" --systems "${SYSTEMS:-tern,llama.cpp}"
if [[ "${OVERHEAD:-1}" == 1 ]] && command -v valgrind > /dev/null; then
  echo "== per-token work outside the matrix kernels (callgrind, int4, 1 thread; OVERHEAD=0 skips)"
  "$ROOT/bench/overhead.sh" "$BUILD" > "$RAW/overhead.txt"
  head -1 "$RAW/overhead.txt"
fi
echo "== report"
"$VENV/bin/python" "$ROOT/bench/report.py" "$RAW" "$OUT"
