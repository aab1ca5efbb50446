#!/usr/bin/env bash
# f16 against int8 KV cache (issue 17): tern-bench decode tok/s at each
# context, one thread, ROUNDS rounds, each round one f16 process and one int8
# process (the order alternating per round), one timed repetition per process
# after one warm-up; the table gives the median of the rounds and the
# int8 / f16 ratio. JSON summaries go to OUT (default
# bench/results/raw/kv_int8.jsonl, git-ignored). BASE_BENCH=path/to/an/older/tern-bench
# adds its f16 run to each round (a column "f16 base": e.g. the kernels
# before a change; it must read BLOB).
#   BIN=build/kv/bin BLOB=.cache/models/smollm2-135m-int4.tern CONTEXTS=0,1024,4096 ROUNDS=5 bench/kv_int8.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN=${BIN:-$ROOT/build/release/bin}
BLOB=${BLOB:-$ROOT/.cache/models/smollm2-135m-int4.tern}
CONTEXTS=${CONTEXTS:-0,1024,4096}
ROUNDS=${ROUNDS:-5}
THREADS=${THREADS:-1}
OUT=${OUT:-$ROOT/bench/results/raw/kv_int8.jsonl}
BASE_BENCH=${BASE_BENCH:-}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
max_ctx=$(( $(tr ',' '\n' <<<"$CONTEXTS" | sort -n | tail -1) + 130 ))
for ((r = 0; r < ROUNDS; ++r)); do
  if (( r % 2 == 0 )); then order="base f16 int8"; else order="int8 f16 base"; fi
  for kv in $order; do
    exe="$BIN/tern-bench" tag=""
    if [[ $kv == base ]]; then
      [[ -n $BASE_BENCH ]] || continue
      exe=$BASE_BENCH kv=f16 tag='"base":true,'
    fi
    "$exe" -m "$BLOB" --kv "$kv" --contexts "$CONTEXTS" --prompts 16 --reps 1 --warmup 1 \
      -t "$THREADS" -c "$max_ctx" --json | tail -1 | sed "s/^{/{$tag\"round\":$r,/" >> "$OUT"
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    for d in r["decodes"]:
        by.setdefault(("f16 base" if r.get("base") else r["kv_type"], d["context"]), []).append(d["tok_s"])
ctxs = sorted({c for _, c in by})
base = any(r.get("base") for r in rows)
rounds = len({r["round"] for r in rows})
print(f"isa {rows[0]['isa']}, {rows[0]['threads']} thread(s), {rounds} rounds; KV bytes/token: " +
      ", ".join(f"{k} {v}" for k, v in sorted({r['kv_type']: r['kv_bytes_per_token'] for r in rows}.items())))
runs = lambda xs: ", ".join(f"{x:.1f}" for x in xs)
med = lambda k, c: statistics.median(by[(k, c)])
if base:
    print("| context | f16 base tok/s | f16 KV tok/s | int8 KV tok/s | int8 / f16 | int8 / f16 base | f16 base runs | f16 runs | int8 runs |")
    print("|---:|---:|---:|---:|---:|---:|---|---|---|")
else:
    print("| context | f16 KV tok/s | int8 KV tok/s | int8 / f16 | f16 runs | int8 runs |")
    print("|---:|---:|---:|---:|---|---|")
for c in ctxs:
    mf, mi = med("f16", c), med("int8", c)
    if base:
        mb = med("f16 base", c)
        print(f"| {c} | {mb:.1f} | {mf:.1f} | {mi:.1f} | {mi / mf:.2f}x | {mi / mb:.2f}x | {runs(by[('f16 base', c)])} | "
              f"{runs(by[('f16', c)])} | {runs(by[('int8', c)])} |")
    else:
        print(f"| {c} | {mf:.1f} | {mi:.1f} | {mi / mf:.2f}x | {runs(by[('f16', c)])} | {runs(by[('int8', c)])} |")
PY
