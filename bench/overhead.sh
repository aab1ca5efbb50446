#!/usr/bin/env bash
# Where a tern decode step's instructions go: callgrind over Model::forward of a short greedy run
# (8-token prompt, 16 decoded tokens, 1 thread), split into the quantized matrix kernels
# (functions named matmul* and their prefill tiles::) and everything else (attention, norms, RoPE, activation quantization,
# and the greedy sampler, Engine::sample, which is collected too). Instruction counts, not time: a memory-bound kernel
# costs more time per instruction than the rest, so the time share outside the kernels is lower
# than the instruction share printed here. Slow (valgrind): ~1-3 min on an idle core.
#
#   bench/overhead.sh [build dir] [blob]      prints one line of JSON and a top-15 table
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build/bench}"
BLOB="${2:-${TERN_MODEL_DIR:-$ROOT/.cache/models}/smollm2-135m-int4.tern}"
command -v valgrind > /dev/null || { echo "bench/overhead.sh: valgrind is not installed" >&2; exit 1; }
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
IDS=$("$BUILD/bin/tern-bench" --model "$BLOB" --print-ids 8)
valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" --toggle-collect='tern::Model::forward*' --toggle-collect='tern::Engine::sample*' \
  "$BUILD/bin/tern-run" --model "$BLOB" --prompt-ids "$IDS" -n 17 --ignore-eos --threads 1 > /dev/null 2> "$OUT/log"
callgrind_annotate --threshold=100 "$OUT/cg.out" > "$OUT/annotate.txt"
python3 - "$OUT/annotate.txt" "$BLOB" <<'PY'
import json, re, sys
rows = []
for line in open(sys.argv[1]):
    m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*)$", line)
    if m and "PROGRAM TOTALS" not in line and ":" in m.group(2):
        rows.append((int(m.group(1).replace(",", "")), m.group(2).split(" [")[0]))
total = sum(r[0] for r in rows)
# Matrix kernels: matmul_* and the prefill tile micro-kernels they call.
is_kernel = lambda fn: re.search(r"matmul|::tiles::", fn) is not None
kern = sum(r[0] for r in rows if is_kernel(r[1]))
print(json.dumps({"blob": sys.argv[2], "forward_ir": total, "matmul_ir": kern,
                  "outside_matmul_fraction": round(1 - kern / total, 4) if total else None}))
print("| Ir share | function |\n|---:|---|")
for ir, fn in sorted(rows, reverse=True)[:15]:
    print(f"| {100 * ir / total:.1f}% | {fn.split(':', 1)[-1][:100]} |")
PY
