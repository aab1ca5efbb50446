#!/usr/bin/env bash
# Decode speed against context for both KV cache types of both systems (issue 17, item 4):
# tern f16 KV, tern int8 KV, llama.cpp f16 KV (flash attention auto) and llama.cpp q8_0 K and V
# (flash attention on), on the same GGUF, contexts 0 .. 8192 in one growing sequence each.
# ROUNDS rounds; in each, one process per system (order rotated per round), one timed
# repetition after one warm-up. Prints a markdown table of medians, the ratios and tern int8's
# share of the bytes roofline (weights + KV bytes read per token over the read bandwidth
# tern-bench --bw-only measures before the rounds), and plots them.
#
#   bench/kv_sweep.sh                                   SmolLM2 int4 blob vs its Q4_1 GGUF, 1 thread
#   ROUNDS=5 THREADS=2 CONTEXTS=0,1024,4096 bench/kv_sweep.sh
#
# Needs what bench/run.sh makes: the blob and GGUF in TERN_MODEL_DIR (default .cache/models), the
# venv with llama-cpp-python and matplotlib (bench/peer/setup_venv.sh). Builds tern-bench (Release,
# in BUILD, default build/bench). Raw JSON lines: OUT (default bench/results/raw/kv_sweep.jsonl,
# git-ignored); the plot: PLOT (default bench/results/kv_sweep.png). SUMMARY_ONLY=1: only the table
# and plot again from an existing OUT. Also printed: each system's peak RSS (the whole process,
# getrusage at its end: the context filled to the largest of CONTEXTS plus TG; llama.cpp's
# includes its Python interpreter and numpy).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=${BUILD:-$ROOT/build/bench}
MODEL_DIR=${TERN_MODEL_DIR:-$ROOT/.cache/models}
BLOB=${BLOB:-$MODEL_DIR/smollm2-135m-int4.tern}
GGUF=${GGUF:-$MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf}
VENV=${BENCH_VENV:-$ROOT/.venv-bench}
CONTEXTS=${CONTEXTS:-0,512,1024,2048,4096,8192}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-1}
TG=${TG:-64}
OUT=${OUT:-$ROOT/bench/results/raw/kv_sweep.jsonl}
PLOT=${PLOT:-$ROOT/bench/results/kv_sweep.png}
WORK=${BENCH_WORK:-$ROOT/.cache/bench}

if [[ ${SUMMARY_ONLY:-0} != 1 ]]; then
for f in "$BLOB" "$GGUF" "$VENV/bin/python"; do
  [[ -e $f ]] || { echo "kv_sweep: $f is missing (bench/run.sh fetches, packs and sets up the venv)" >&2; exit 1; }
done
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTERN_BUILD_TESTS=OFF > /dev/null
cmake --build "$BUILD" --target tern-bench -j"${JOBS:-2}" > /dev/null
BENCH="$BUILD/bin/tern-bench"
PEER="$ROOT/bench/peer/llama_peer.py"
mkdir -p "$(dirname "$OUT")" "$(dirname "$PLOT")" "$WORK"
: > "$OUT"

max_ctx=$(tr ',' '\n' <<< "$CONTEXTS" | sort -n | tail -1)
need=$((max_ctx + TG + 20))
ids="$WORK/kv_sweep_ids.txt"
"$BENCH" -m "$BLOB" --print-ids "$need" > "$ids"
"$BENCH" --bw-only --threads "$THREADS" --json | tail -1 | sed 's/^{/{"bw":true,/' >> "$OUT"

systems=(tern:f16 tern:int8 llama.cpp:f16 llama.cpp:q8_0)
for ((r = 0; r < ROUNDS; ++r)); do
  for ((k = 0; k < ${#systems[@]}; ++k)); do
    s=${systems[$(((k + r) % ${#systems[@]}))]}
    sys=${s%%:*} kv=${s##*:}
    echo "kv_sweep: round $((r + 1))/$ROUNDS $sys $kv KV" >&2
    if [[ $sys == tern ]]; then
      "$BENCH" -m "$BLOB" --kv "$kv" --contexts "$CONTEXTS" --prompts 16 --tg "$TG" --tg-ctx "$TG" --reps 1 \
        --warmup 1 -t "$THREADS" -c "$((need + 16))" --ids-file "$ids" --json | tail -1
    else
      "$VENV/bin/python" "$PEER" bench --model "$GGUF" --kv "$kv" --contexts "$CONTEXTS" --prompts 16 --tg "$TG" \
        --tg-ctx "$TG" --reps 1 --warmup 1 --threads "$THREADS" --ids-file "$ids" | tail -1
    fi | sed "s/^{/{\"system\":\"$sys\",\"kv\":\"$kv\",\"round\":$r,/" >> "$OUT"
  done
done
fi

"$VENV/bin/python" - "$OUT" "$PLOT" "$THREADS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
bw = next(r for r in rows if r.get("bw"))["read_bw_gbs"]
runs = [r for r in rows if not r.get("bw")]
names = [("tern", "f16"), ("tern", "int8"), ("llama.cpp", "f16"), ("llama.cpp", "q8_0")]
by, tern_bytes = {}, {}
for r in runs:
    for d in r["decodes"]:
        by.setdefault((r["system"], r["kv"], d["context"]), []).append(d["tok_s"])
        if r["system"] == "tern":
            tern_bytes[(r["kv"], d["context"])] = d["bytes_per_token"]
ctxs = sorted({c for (_, _, c) in by})
med = lambda s, k, c: statistics.median(by[(s, k, c)])
t0 = next(r for r in runs if r["system"] == "tern")
l0 = next(r for r in runs if r["system"] == "llama.cpp")
print(f"tern {t0['isa']}, llama.cpp {l0.get('llama_cpp_python', '?')}; {sys.argv[3]} thread(s); "
      f"{len({r['round'] for r in runs})} rounds; read bandwidth {bw:.1f} GB/s")
print("| context | tern f16 KV | tern int8 KV | llama.cpp f16 KV | llama.cpp q8_0 KV + FA | tern int8 / f16 | "
      "tern int8 / llama.cpp q8_0 | tern int8 % of bytes roofline |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in ctxs:
    v = [med(s, k, c) for s, k in names]
    roof = tern_bytes[("int8", c)] * v[1] / (bw * 1e9)
    print(f"| {c} | {v[0]:.1f} | {v[1]:.1f} | {v[2]:.1f} | {v[3]:.1f} | {v[1] / v[0]:.2f}x | {v[1] / v[3]:.2f}x | "
          f"{100 * roof:.0f}% |")
rss = {n: statistics.median([r["peak_rss_bytes"] / 2**20 for r in runs if (r["system"], r["kv"]) == n]) for n in names}
print(f"peak RSS MiB at {max(ctxs)}+ tokens of context (median): " +
      ", ".join(f"{s} {k} {rss[(s, k)]:.1f}" for s, k in names) +
      f"; tern int8 / llama.cpp q8_0 {rss[('tern', 'int8')] / rss[('llama.cpp', 'q8_0')]:.2f}x")
print("runs (tok/s per round):")
for s, k in names:
    print(f"  {s} {k}: " + "; ".join(f"{c}: " + ", ".join(f"{x:.1f}" for x in by[(s, k, c)]) for c in ctxs))
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(7, 4.2))
for (s, k), style in zip(names, ["o-", "s-", "o--", "s--"]):
    ax.plot(ctxs, [med(s, k, c) for c in ctxs], style, label=f"{s} {k} KV" + (" + FA" if k == "q8_0" else ""))
ax.set_xlabel("context (tokens)")
ax.set_ylabel("decode tok/s (median)")
ax.set_title(f"SmolLM2-135M decode against context, {t0['isa']}, {sys.argv[3]} thread(s)")
ax.set_ylim(bottom=0)
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
print(f"plot: {sys.argv[2]}")
PY
