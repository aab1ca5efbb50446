#!/usr/bin/env bash
# Many sequences at once, tern against llama.cpp side by side in one run (issue 16):
# N requests of PROMPT benchmark ids each (a different slice per request, the same
# ids for both systems), GEN tokens generated greedily each, all arriving at once.
#   tern:      tern-bench --sequences N (the continuous-batching scheduler)
#   llama.cpp: bench/peer/llama_peer.py batched (llama_batch rows of N seq_ids, one
#              llama_decode per step), llama-cpp-python from bench/peer/setup_venv.sh
# Pairs: SmolLM2 int8 blob / Q8_0 GGUF and int4 blob / Q4_1 GGUF, each blob also
# packed with --layout r16 (rows interleaved for the AVX-512 / AMX kernels; llama.cpp
# runs its GGUF once per pair). One JSON line per run to OUT (default
# bench/results/raw/sequences.jsonl), then a table on stdout.
#   SEQS=1,8 THREADS=1,2 REPS=3 PROMPT=64 GEN=64 bench/sequences_vs_llama.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SEQS=${SEQS:-1,8}
THREADS=${THREADS:-1,2}
REPS=${REPS:-3}
PROMPT=${PROMPT:-64}
GEN=${GEN:-64}
OUT=${OUT:-$ROOT/bench/results/raw/sequences.jsonl}  # bench/results/raw/ is git-ignored
VENV="${BENCH_VENV:-$ROOT/.venv-bench}"
models="$ROOT/.cache/models"
work="$ROOT/.cache/bench"
mkdir -p "$work" "$(dirname "$OUT")"

scripts/fetch_model.sh smollm2 >/dev/null
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target tern-pack tern-bench tern-info >/dev/null
bin="$ROOT/build/release/bin"
for w in int4 int8; do
  for layout in rows r16; do
    blob="$models/smollm2-135m-$w$([ $layout = r16 ] && echo -r16 || true).tern"
    if [ ! -f "$blob" ] || ! "$bin/tern-info" "$blob" >/dev/null 2>&1; then
      "$bin/tern-pack" "$models/SmolLM2-135M-Instruct.Q4_1.gguf" -o "$blob" --weights "$w" --layout $layout >/dev/null
    fi
  done
done
bench/peer/setup_venv.sh
py="$VENV/bin/python"
q8="$work/SmolLM2-135M-Instruct.Q8_0.gguf"
[ -f "$q8" ] || "$py" bench/peer/llama_peer.py quantize --model "$models/SmolLM2-135M-Instruct.Q4_1.gguf" --out "$q8" \
  --type Q8_0 >/dev/null
ids="$work/bench_ids_smollm2.txt"
max_seqs=$(tr ',' '\n' <<<"$SEQS" | sort -n | tail -1)
"$bin/tern-bench" -m "$models/smollm2-135m-int4.tern" --print-ids $((PROMPT + 7 * max_seqs)) > "$ids"

: > "$OUT"
for t in ${THREADS//,/ }; do
  for pair in "int8:$models/smollm2-135m-int8:$q8" "int4:$models/smollm2-135m-int4:$models/SmolLM2-135M-Instruct.Q4_1.gguf"; do
    IFS=: read -r name blob gguf <<<"$pair"
    for n in ${SEQS//,/ }; do
      for layout in rows r16; do
        suffix=$([ $layout = r16 ] && echo -r16 || true)
        r=$("$bin/tern-bench" -m "$blob$suffix.tern" --ids-file "$ids" --sequences "$n" --seq-prompt "$PROMPT" \
            --seq-gen "$GEN" --reps "$REPS" --threads "$t" --json 2>/dev/null | tail -1)
        echo "{\"system\":\"tern\",\"blob\":\"$name$suffix\",\"threads\":$t,\"n\":$n,\"r\":$r}" >> "$OUT"
      done
      r=$("$py" bench/peer/llama_peer.py batched --model "$gguf" --ids-file "$ids" --sequences "$n" --prompt "$PROMPT" \
          --gen "$GEN" --reps "$REPS" --threads "$t" 2>/dev/null | tail -1)
      echo "{\"system\":\"llama.cpp\",\"blob\":\"$name\",\"threads\":$t,\"n\":$n,\"r\":$r}" >> "$OUT"
    done
  done
done

python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
get = lambda s, b, t, n: next(r["r"] for r in rows if (r["system"], r["blob"], r["threads"], r["n"]) == (s, b, t, n))
ns = sorted({r["n"] for r in rows})
print("| blob / GGUF | threads | sequences | tern aggregate decode tok/s | llama.cpp | tern / llama.cpp | tern vs its 1 sequence | TTFT p50 ms tern / llama.cpp |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
for b in ("int8", "int8-r16", "int4", "int4-r16"):
    for t in sorted({r["threads"] for r in rows}):
        one = get("tern", b, t, ns[0])["aggregate_decode_tok_s"]
        for n in ns:
            a, l = get("tern", b, t, n), get("llama.cpp", b.split("-")[0], t, n)
            gguf = "Q8_0" if b.startswith("int8") else "Q4_1"
            print(f"| {b} / {gguf} | {t} | {n} | {a['aggregate_decode_tok_s']:.1f} | {l['aggregate_decode_tok_s']:.1f} | "
                  f"{a['aggregate_decode_tok_s'] / l['aggregate_decode_tok_s']:.2f}x | "
                  f"{a['aggregate_decode_tok_s'] / one:.2f}x | {a['ttft_ms']['p50']:.1f} / {l['ttft_ms_p50']:.1f} |")
PY
