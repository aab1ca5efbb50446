#!/usr/bin/env bash
# tern vs llama.cpp on the same GGUF files, per model: throughput, latency, decode speed against
# context, footprint, the bytes roofline and greedy-decoding agreement, as a markdown report and PNG
# plots in bench/results/.
#
#   bench/run.sh                      full run, SmolLM2-135M-Instruct and Gemma 3 270M (~40-60 min on 2 idle cores)
#   MODELS=gemma3 REPS=3 bench/run.sh one model, fewer repetitions (default 5, after WARMUP=1 dropped round)
#
# Self-contained, as a new user runs it after scripts/chat.sh alone: it builds tern-bench, tern-run,
# tern-pack and tern-info (Release, in $BUILD); fetches the GGUFs with scripts/fetch_model.sh
# (checksummed; Gemma 3 is under the Gemma Terms of Use); packs the tern blobs with that tern-pack
# when a blob is missing, older than its GGUF or than the tern-pack binary, or refused by this
# runtime (tern-info fails, e.g. "repack" after a blob format change); creates the git-ignored venv
# with llama-cpp-python (compiled from source for this CPU) and matplotlib (bench/peer/setup_venv.sh,
# the first time takes many minutes; an existing ready venv is left alone); makes SmolLM2's Q8_0 GGUF
# with llama.cpp's quantizer; then runs bench/peer/bench.py (every run its own process, systems
# alternating) and bench/report.py.
#
#   smollm2  SmolLM2-135M-Instruct.Q4_1.gguf: tern int4 vs llama.cpp Q4_1, tern int8 vs llama.cpp Q8_0
#   gemma3   gemma-3-270m-q4_k_m.gguf: tern int4 (tern-pack --weights int4) vs llama.cpp Q4_K_M
#
# Environment: MODELS (smollm2,gemma3), REPS, WARMUP, THREADS (1,2), BUILD, TERN_MODEL_DIR (GGUFs and
# blobs, default .cache/models), BENCH_VENV, BENCH_WORK (scratch: Q8_0 GGUF, ids), BENCH_OUT (report
# folder, default bench/results; raw JSON in BENCH_OUT/raw), PHASES (throughput,footprint,equivalence),
# SYSTEMS (tern,llama.cpp), CONTEXTS, FOOTPRINT_CONTEXTS, OVERHEAD (1: also run bench/overhead.sh,
# callgrind, a few minutes per model).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build/bench}"
MODEL_DIR="${TERN_MODEL_DIR:-$ROOT/.cache/models}"
MODEL_LIST="${MODELS:-smollm2,gemma3}"
VENV="${BENCH_VENV:-$ROOT/.venv-bench}"
OUT="${BENCH_OUT:-${OUT:-$ROOT/bench/results}}"
RAW="$OUT/raw"
WORK="${BENCH_WORK:-$ROOT/.cache/bench}"

IFS=',' read -r -a model_names <<< "$MODEL_LIST"
for m in "${model_names[@]}"; do
  case "$m" in
    smollm2 | gemma3) ;;
    *) echo "bench/run.sh: unknown model '$m' in MODELS (known: smollm2, gemma3)" >&2; exit 2 ;;
  esac
done

echo "== building tern-bench, tern-run, tern-pack and tern-info in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTERN_BUILD_TESTS=OFF > /dev/null
cmake --build "$BUILD" --target tern-bench tern-run tern-pack tern-info -j"${JOBS:-2}" > /dev/null
PACK="$BUILD/bin/tern-pack"

mkdir -p "$MODEL_DIR" "$RAW" "$WORK"
# pack GGUF BLOB WEIGHTS: (re)pack when the blob is missing, older than its GGUF or than this
# tern-pack, or refused by this runtime (the blob format changed: the loader says "repack").
pack() {
  local gguf="$MODEL_DIR/$1" blob="$MODEL_DIR/$2" why=""
  if [[ ! -f "$blob" ]]; then why="missing"
  elif [[ "$blob" -ot "$gguf" ]]; then why="older than its GGUF"
  elif [[ "$blob" -ot "$PACK" ]]; then why="older than $PACK"
  elif ! "$BUILD/bin/tern-info" "$blob" > /dev/null 2> "$WORK/tern-info.err"; then why="refused: $(head -c 300 "$WORK/tern-info.err")"
  fi
  [[ -z "$why" ]] && return 0
  echo "== packing $2 (--weights $3): $why"
  "$PACK" "$gguf" -o "$blob" --weights "$3" > "$WORK/pack-$2.log" 2>&1 || {
    echo "bench/run.sh: tern-pack failed; last lines of $WORK/pack-$2.log:" >&2
    tail -20 "$WORK/pack-$2.log" >&2
    exit 1
  }
}
for m in "${model_names[@]}"; do
  echo "== model $m"
  TERN_MODEL_DIR="$MODEL_DIR" "$ROOT/scripts/fetch_model.sh" "$m"
  case "$m" in
    smollm2)
      pack SmolLM2-135M-Instruct.Q4_1.gguf smollm2-135m-int4.tern int4
      pack SmolLM2-135M-Instruct.Q4_1.gguf smollm2-135m-int8.tern int8 ;;
    gemma3)
      pack gemma-3-270m-q4_k_m.gguf gemma3-270m-int4.tern int4 ;;
  esac
done

if [[ "${SYSTEMS:-tern,llama.cpp}" == *llama* ]] || [[ ! -x "$VENV/bin/python" ]]; then
  echo "== bench venv (llama-cpp-python, matplotlib) in $VENV"
  BENCH_VENV="$VENV" "$ROOT/bench/peer/setup_venv.sh"
fi

echo "== measuring $MODEL_LIST (REPS=${REPS:-5}, load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
"$VENV/bin/python" "$ROOT/bench/peer/bench.py" --build "$BUILD" --model-dir "$MODEL_DIR" --models "$MODEL_LIST" \
  --work "$WORK" --out "$RAW" \
  --reps "${REPS:-5}" --warmup "${WARMUP:-1}" --threads "${THREADS:-1,2}" \
  --contexts "${CONTEXTS:-0,512,1024,2048,4096}" --footprint-contexts "${FOOTPRINT_CONTEXTS:-512,2048,8192}" \
  --phases "${PHASES:-throughput,footprint,equivalence}" --systems "${SYSTEMS:-tern,llama.cpp}"
if [[ "${OVERHEAD:-1}" == 1 ]] && command -v valgrind > /dev/null; then
  for m in "${model_names[@]}"; do
    case "$m" in
      smollm2) blob=smollm2-135m-int4.tern ;;
      gemma3) blob=gemma3-270m-int4.tern ;;
    esac
    echo "== $m: per-token work outside the matrix kernels (callgrind, int4, 1 thread; OVERHEAD=0 skips)"
    "$ROOT/bench/overhead.sh" "$BUILD" "$MODEL_DIR/$blob" > "$RAW/overhead-$m.txt"
    head -1 "$RAW/overhead-$m.txt"
  done
fi
echo "== report"
"$VENV/bin/python" "$ROOT/bench/report.py" "$RAW" "$OUT"
