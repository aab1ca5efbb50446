// llama (SmolLM2, Llama 2/3, TinyLlama...): the baseline every other
// architecture file describes itself against. llama.cpp's converter permutes
// the Q and K rows so that RoPE rotates adjacent pairs.
#include "tools/pack/pack_arch.h"

namespace tern::pack {

Status configure_llama(const GgufFile&, BlobHparams* h) {
  h->rope_pairing = blob::RopePairing::kAdjacent;
  h->activation = blob::Activation::kSilu;
  return Status::ok();
}

}  // namespace tern::pack
