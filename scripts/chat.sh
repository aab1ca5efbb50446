#!/usr/bin/env bash
# The main job: fetch SmolLM2-135M-Instruct (Q4_1 GGUF), build tern, pack the
# model into an int4 blob, and chat with it. Extra arguments go to tern-chat
# (e.g. --threads 2, --temp 0.7, --max-context 4096). The blob goes to
# .cache/models/smollm2-135m-int4.tern (re-packed when the GGUF is newer).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/install_deps.sh --chat
scripts/fetch_model.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target tern-pack tern-chat tern-run
models="$root/.cache/models"
blob="$models/smollm2-135m-int4.tern"
if [ ! -f "$blob" ] || [ "$models/SmolLM2-135M-Instruct.Q4_1.gguf" -nt "$blob" ]; then
  build/release/bin/tern-pack "$models/SmolLM2-135M-Instruct.Q4_1.gguf" -o "$blob" --weights int4
fi
exec build/release/bin/tern-chat --model "$blob" "$@"
