#!/usr/bin/env bash
# f16 against int8 KV cache (issue 17): tern-bench decode tok/s at each
# context, one thread, ROUNDS rounds, each round one f16 process and one int8
# process (the order alternating per round), one timed repetition per process
# after one warm-up; the table gives the median of the rounds and the
# int8 / f16 ratio. JSON summaries go to OUT (default
# bench/results/raw/kv_int8.jsonl, git-ignored).
#   BIN=build/kv/bin BLOB=.cache/models/smollm2-135m-int4.tern CONTEXTS=0,1024,4096 ROUNDS=5 bench/kv_int8.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN=${BIN:-$ROOT/build/release/bin}
BLOB=${BLOB:-$ROOT/.cache/models/smollm2-135m-int4.tern}
CONTEXTS=${CONTEXTS:-0,1024,4096}
ROUNDS=${ROUNDS:-5}
THREADS=${THREADS:-1}
OUT=${OUT:-$ROOT/bench/results/raw/kv_int8.jsonl}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
max_ctx=$(( $(tr ',' '\n' <<<"$CONTEXTS" | sort -n | tail -1) + 130 ))
for ((r = 0; r < ROUNDS; ++r)); do
  if (( r % 2 == 0 )); then order="f16 int8"; else order="int8 f16"; fi
  for kv in $order; do
    "$BIN/tern-bench" -m "$BLOB" --kv "$kv" --contexts "$CONTEXTS" --prompts 16 --reps 1 --warmup 1 \
      -t "$THREADS" -c "$max_ctx" --json | tail -1 | sed "s/^{/{\"round\":$r,/" >> "$OUT"
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    for d in r["decodes"]:
        by.setdefault((r["kv_type"], d["context"]), []).append(d["tok_s"])
ctxs = sorted({c for _, c in by})
print(f"isa {rows[0]['isa']}, {rows[0]['threads']} thread(s), {len(rows) // 2} rounds; KV bytes/token: " +
      ", ".join(f"{r['kv_type']} {r['kv_bytes_per_token']}" for r in rows[:2]))
print("| context | f16 KV tok/s (median) | int8 KV tok/s (median) | int8 / f16 | f16 runs | int8 runs |")
print("|---:|---:|---:|---:|---|---|")
for c in ctxs:
    f, i = by[("f16", c)], by[("int8", c)]
    mf, mi = statistics.median(f), statistics.median(i)
    print(f"| {c} | {mf:.1f} | {mi:.1f} | {mi / mf:.2f}x | {', '.join(f'{x:.1f}' for x in f)} | {', '.join(f'{x:.1f}' for x in i)} |")
PY
