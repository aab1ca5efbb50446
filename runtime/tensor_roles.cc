#include "runtime/tensor_roles.h"

namespace tern {

using blob::TensorRole;

const TensorRoleInfo kTensorRoles[] = {
    // role                      GGUF name                     per_layer matrix rows            cols             presence
    {TensorRole::kTokenEmbd,     "token_embd.weight",          false,    true,  Extent::kVocab, Extent::kDim,    Presence::kAlways},
    {TensorRole::kOutputNorm,    "output_norm.weight",         false,    false, Extent::kOne,   Extent::kDim,    Presence::kAlways},
    {TensorRole::kOutput,        "output.weight",              false,    true,  Extent::kVocab, Extent::kDim,    Presence::kUntied},
    {TensorRole::kRopeFreqs,     "rope_freqs.weight",          false,    false, Extent::kOne,   Extent::kRopeHalf, Presence::kRopeFreqs},
    {TensorRole::kAttnNorm,      "attn_norm.weight",           true,     false, Extent::kOne,   Extent::kDim,    Presence::kAlways},
    {TensorRole::kAttnQ,         "attn_q.weight",              true,     true,  Extent::kQDim,  Extent::kDim,    Presence::kAlways},
    {TensorRole::kAttnK,         "attn_k.weight",              true,     true,  Extent::kKvDim, Extent::kDim,    Presence::kAlways},
    {TensorRole::kAttnV,         "attn_v.weight",              true,     true,  Extent::kKvDim, Extent::kDim,    Presence::kAlways},
    {TensorRole::kAttnQBias,     "attn_q.bias",                true,     false, Extent::kOne,   Extent::kQDim,   Presence::kQkvBias},
    {TensorRole::kAttnKBias,     "attn_k.bias",                true,     false, Extent::kOne,   Extent::kKvDim,  Presence::kQkvBias},
    {TensorRole::kAttnVBias,     "attn_v.bias",                true,     false, Extent::kOne,   Extent::kKvDim,  Presence::kQkvBias},
    {TensorRole::kAttnQNorm,     "attn_q_norm.weight",         true,     false, Extent::kOne,   Extent::kHeadDim, Presence::kQkNorm},
    {TensorRole::kAttnKNorm,     "attn_k_norm.weight",         true,     false, Extent::kOne,   Extent::kHeadDim, Presence::kQkNorm},
    {TensorRole::kAttnOut,       "attn_output.weight",         true,     true,  Extent::kDim,   Extent::kQDim,   Presence::kAlways},
    {TensorRole::kAttnPostNorm,  "post_attention_norm.weight", true,     false, Extent::kOne,   Extent::kDim,    Presence::kPostNorm},
    {TensorRole::kFfnNorm,       "ffn_norm.weight",            true,     false, Extent::kOne,   Extent::kDim,    Presence::kAlways},
    {TensorRole::kFfnGate,       "ffn_gate.weight",            true,     true,  Extent::kFfn,   Extent::kDim,    Presence::kAlways},
    {TensorRole::kFfnUp,         "ffn_up.weight",              true,     true,  Extent::kFfn,   Extent::kDim,    Presence::kAlways},
    {TensorRole::kFfnDown,       "ffn_down.weight",            true,     true,  Extent::kDim,   Extent::kFfn,    Presence::kAlways},
    {TensorRole::kFfnPostNorm,   "post_ffw_norm.weight",       true,     false, Extent::kOne,   Extent::kDim,    Presence::kPostNorm},
};
const size_t kTensorRoleCount = sizeof(kTensorRoles) / sizeof(kTensorRoles[0]);
static_assert(sizeof(kTensorRoles) / sizeof(kTensorRoles[0]) == 4 + kLayerRoleCount, "one row per role");

const TensorRoleInfo* tensor_role_info(uint32_t role) {
  for (size_t i = 0; i < kTensorRoleCount; ++i) {
    if (uint32_t(kTensorRoles[i].role) == role) return &kTensorRoles[i];
  }
  return nullptr;
}

uint32_t extent_value(Extent e, const RoleDims& d) {
  switch (e) {
    case Extent::kOne: return 1;
    case Extent::kDim: return d.dim;
    case Extent::kVocab: return d.vocab;
    case Extent::kQDim: return d.q_dim;
    case Extent::kKvDim: return d.kv_dim;
    case Extent::kFfn: return d.ffn;
    case Extent::kHeadDim: return d.head_dim;
    case Extent::kRopeHalf: return d.rope_dim / 2;
  }
  return 0;
}

bool role_required(const TensorRoleInfo& r, uint32_t flags, bool tied_embeddings) {
  switch (r.presence) {
    case Presence::kAlways: return true;
    case Presence::kUntied: return !tied_embeddings;
    case Presence::kQkNorm: return (flags & blob::kFlagQkNorm) != 0;
    case Presence::kPostNorm: return (flags & blob::kFlagPostNorms) != 0;
    case Presence::kQkvBias: return (flags & blob::kFlagQkvBias) != 0;
    case Presence::kRopeFreqs: return (flags & blob::kFlagRopeFreqs) != 0;
  }
  return false;
}

void role_tensor_name(const TensorRoleInfo& r, uint32_t layer, char* out) {
  size_t n = 0;
  if (r.per_layer) {
    char digits[12];
    size_t nd = 0;
    do {
      digits[nd++] = char('0' + layer % 10);
      layer /= 10;
    } while (layer != 0);
    for (const char* c = "blk."; *c;) out[n++] = *c++;
    while (nd > 0) out[n++] = digits[--nd];
    out[n++] = '.';
  }
  for (const char* c = r.gguf_name; *c;) out[n++] = *c++;  // at most 4 + 10 + 1 + 26 bytes
  out[n] = '\0';
}

}  // namespace tern
