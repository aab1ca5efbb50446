#!/usr/bin/env bash
# The main job: fetch a model, build tern, pack the model into an int4 blob,
# and chat with it.
#   scripts/chat.sh [smollm2|gemma3] [tern-chat options...]
# smollm2 (default): SmolLM2-135M-Instruct, Q4_1 GGUF, ChatML.
# gemma3: Gemma 3 270M, the base model (Q4_K_M GGUF; Gemma Terms of Use), its
#         <start_of_turn> chat format: it continues text more than it chats.
# Extra arguments go to tern-chat (e.g. --threads 2, --temp 0.7, --max-context
# 4096). The blob goes to .cache/models/<name>-int4.tern and is re-packed when
# the GGUF or tern-pack is newer, or when this runtime refuses it (a blob of an
# older format version).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
model=smollm2
case "${1:-}" in smollm2|gemma3) model=$1; shift ;; esac
scripts/install_deps.sh --chat
scripts/fetch_model.sh "$model"
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target tern-pack tern-chat tern-run tern-info
models="$root/.cache/models"
case "$model" in
  smollm2) gguf="$models/SmolLM2-135M-Instruct.Q4_1.gguf"; blob="$models/smollm2-135m-int4.tern" ;;
  gemma3) gguf="$models/gemma-3-270m-q4_k_m.gguf"; blob="$models/gemma3-270m-int4.tern" ;;
esac
pack=build/release/bin/tern-pack
if [ ! -f "$blob" ] || [ "$gguf" -nt "$blob" ] || [ "$pack" -nt "$blob" ] ||
   ! build/release/bin/tern-info "$blob" >/dev/null 2>&1; then
  "$pack" "$gguf" -o "$blob" --weights int4
fi
exec build/release/bin/tern-chat --model "$blob" "$@"
