// Qwen 2 / 2.5 and Qwen 3: llama blocks with RoPE over halves of each head
// (NEOX style; the converter does not permute Q/K), plus
//   qwen2: a bias on the Q, K and V projections;
//   qwen3: per-head RMSNorm of Q and K before RoPE, no biases.
#include "tools/pack/pack_arch.h"

namespace tern::pack {

Status configure_qwen2(const GgufFile&, BlobHparams* h) {
  h->rope_pairing = blob::RopePairing::kHalves;
  h->flags |= blob::kFlagQkvBias;
  return Status::ok();
}

Status configure_qwen3(const GgufFile&, BlobHparams* h) {
  h->rope_pairing = blob::RopePairing::kHalves;
  h->flags |= blob::kFlagQkNorm;
  return Status::ok();
}

}  // namespace tern::pack
