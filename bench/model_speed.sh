#!/usr/bin/env bash
# Whole-model prefill and decode speed of tern on SmolLM2-135M, per blob
# (int4, int8), kernel variant and thread count. Each cell is the median of
# REPS runs of tern-run --json (a PROMPT_TOKENS-token prompt, then N decoded
# tokens), the variants interleaved run by run so machine noise spreads
# evenly. Prints a markdown table.
#
#   bench/model_speed.sh [build/release]     (REPS=5 N=128 ISAS="avx2 scalar" THREADS="1 2")
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build/release}"
models="${TERN_MODEL_DIR:-$root/.cache/models}"
reps="${REPS:-5}"
n="${N:-128}"
isas="${ISAS:-avx2 scalar}"
threads="${THREADS:-1 2}"
blobs="${BLOBS:-int4 int8}"
run="$build/bin/tern-run"

# A fixed prompt of about 128 tokens.
prompt="The history of computing is a story of machines that became smaller, cheaper and closer to the people who use them. Mainframes filled rooms and served whole institutions; minicomputers brought computing to departments; personal computers put it on every desk; phones put it in every pocket. Each step moved the work nearer to the data and the person, and each step was made possible by engineers who fit more useful work into less memory, less energy and less money. Language models are following the same path today."

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
field() { grep -o "\"$1\":[0-9.]*" | tail -1 | cut -d: -f2; }

declare -A pre dec
for rep in $(seq "$reps"); do
  for b in $blobs; do
    for isa in $isas; do
      for t in $threads; do
        out=$("$run" --model "$models/smollm2-135m-$b.tern" --isa "$isa" --threads "$t" --prompt "$prompt" \
              -n "$n" --ignore-eos --json 2>/dev/null | tail -1)
        key="$b $isa $t"
        pre[$key]+="$(field prefill_tok_s <<<"$out") "
        dec[$key]+="$(field decode_tok_s <<<"$out") "
      done
    done
  done
done

echo "| blob | kernels | threads | prefill tok/s (~128-token prompt) | decode tok/s ($n tokens) |"
echo "|---|---|---:|---:|---:|"
for b in $blobs; do
  for isa in $isas; do
    for t in $threads; do
      key="$b $isa $t"
      p=$(tr ' ' '\n' <<<"${pre[$key]}" | grep . | median)
      d=$(tr ' ' '\n' <<<"${dec[$key]}" | grep . | median)
      echo "| $b | $isa | $t | $p | $d |"
    done
  done
done
echo
echo "medians of $reps runs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
