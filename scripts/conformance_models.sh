#!/usr/bin/env bash
# Regenerate the synthetic conformance GGUFs (tests/conformance/make_models.py)
# into .cache/conformance/, for model.conformance_test. Needs the two real
# GGUFs (their tokenizers are copied: scripts/fetch_model.sh all) and a small
# Python venv with the pinned gguf + numpy (tests/conformance/requirements.txt),
# made once in .cache/venv-conformance. Skips the work when every file already
# has the SHA-256 that tests/conformance/goldens/models.tsv records.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.cache/conformance
up_to_date=1
while IFS=$'\t' read -r name _arch file sha _rest; do
  case "$name" in '#'*|'') continue ;; esac
  if [ ! -f "$out/$file" ] || [ "$(sha256sum "$out/$file" | cut -d' ' -f1)" != "$sha" ]; then up_to_date=0; fi
done < tests/conformance/goldens/models.tsv
if [ "$up_to_date" = 1 ]; then
  echo "conformance_models: $out is up to date"
  exit 0
fi
venv=.cache/venv-conformance
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/conformance/requirements.txt
fi
"$venv/bin/python" tests/conformance/make_models.py --out "$out"
