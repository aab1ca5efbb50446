// Gemma 3 (text): llama blocks with
//  - sliding-window attention on five layers of every six (layer l slides
//    when l % 6 < 5; llama.cpp's swa pattern 6), window from
//    gemma3.attention.sliding_window; local layers use RoPE base 10,000
//    (gemma3.rope.freq_base_swa when present), global ones the model's base
//    and the model's rope scaling;
//  - per-head RMSNorm of Q and K, RMSNorm of the attention and FFN outputs
//    (sandwich), GELU(tanh) gate, embeddings times sqrt(dim), RoPE over halves;
//  - norm weights stored with Gemma's "+1" already added by the converter, so
//    they are plain RMSNorm weights here.
#include <cmath>

#include "tools/pack/pack_arch.h"

namespace tern::pack {

Status configure_gemma3(const GgufFile& g, BlobHparams* h) {
  h->rope_pairing = blob::RopePairing::kHalves;
  h->activation = blob::Activation::kGeluTanh;
  h->flags |= blob::kFlagQkNorm | blob::kFlagPostNorms;
  h->embed_scale = std::sqrt(float(h->dim));
  // llama.cpp: 1/sqrt(head_dim), except Gemma 3 27B (query_pre_attn_scalar =
  // dim / heads); a GGUF key, when present, wins.
  if (g.find("gemma3.attention.scale")) TERN_RETURN_IF_ERROR(g.get_f32("gemma3.attention.scale", &h->attn_scale));
  if (!(h->attn_scale > 0.0f) || !std::isfinite(h->attn_scale))
    return Status::error(StatusCode::kBadHparams, "attention scale %g invalid", double(h->attn_scale));
  uint32_t window = 0;
  TERN_RETURN_IF_ERROR(g.get_u32("gemma3.attention.sliding_window", &window));
  if (window == 0 || window > blob::limits::kMaxWindow)
    return Status::error(StatusCode::kBadHparams, "gemma3.attention.sliding_window %u outside [1, 2^20]", window);
  float local_base = 10000.0f;
  TERN_RETURN_IF_ERROR(g.get_f32_opt("gemma3.rope.freq_base_swa", &local_base));
  if (!(local_base > 0.0f) || !std::isfinite(local_base))
    return Status::error(StatusCode::kBadHparams, "local rope base %g invalid", double(local_base));
  constexpr uint32_t kPattern = 6;
  for (uint32_t l = 0; l < h->layers; ++l) {
    BlobLayerConfig& c = h->layer_configs[l];
    if (l % kPattern < kPattern - 1) c = BlobLayerConfig{true, window, local_base, false};
  }
  return Status::ok();
}

}  // namespace tern::pack
