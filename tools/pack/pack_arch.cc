#include "tools/pack/pack_arch.h"

#include <cmath>

#include "kernels/blocks.h"

namespace tern::pack {
namespace {

struct ArchEntry {
  const char* name;
  blob::Arch arch;
  Status (*configure)(const GgufFile&, BlobHparams*);
};
constexpr ArchEntry kArchs[] = {
    {"llama", blob::Arch::kLlama, configure_llama},
    {"qwen2", blob::Arch::kQwen2, configure_qwen2},
    {"qwen3", blob::Arch::kQwen3, configure_qwen3},
    {"gemma3", blob::Arch::kGemma3, configure_gemma3},
};

}  // namespace

const char* supported_architectures() { return "llama, qwen2, qwen3, gemma3"; }

Status read_common_hparams(const GgufFile& g, const std::string& a, BlobHparams* h) {
  TERN_RETURN_IF_ERROR(g.get_u32(a + ".block_count", &h->layers));
  TERN_RETURN_IF_ERROR(g.get_u32(a + ".embedding_length", &h->dim));
  TERN_RETURN_IF_ERROR(g.get_u32(a + ".attention.head_count", &h->heads));
  h->kv_heads = h->heads;
  TERN_RETURN_IF_ERROR(g.get_u32_opt(a + ".attention.head_count_kv", &h->kv_heads));
  TERN_RETURN_IF_ERROR(g.get_u32(a + ".feed_forward_length", &h->ffn));
  TERN_RETURN_IF_ERROR(g.get_u32(a + ".context_length", &h->train_context));
  TERN_RETURN_IF_ERROR(g.get_f32_opt(a + ".rope.freq_base", &h->rope_base));
  TERN_RETURN_IF_ERROR(g.get_f32(a + ".attention.layer_norm_rms_epsilon", &h->norm_eps));
  if (h->layers == 0 || h->dim == 0 || h->heads == 0 || h->kv_heads == 0 || h->ffn == 0)
    return Status::error(StatusCode::kBadHparams, "zero layers, dim, heads, kv heads or ffn");
  if (h->layers > blob::limits::kMaxLayers || h->dim > blob::limits::kMaxDim || h->heads > blob::limits::kMaxDim ||
      h->ffn > blob::limits::kMaxFfn)
    return Status::error(StatusCode::kBadHparams, "hyperparameters out of range (layers %u, dim %u, heads %u, ffn %u)",
                         h->layers, h->dim, h->heads, h->ffn);
  if (h->heads % h->kv_heads != 0)
    return Status::error(StatusCode::kBadHparams, "heads %u not a multiple of kv heads %u", h->heads, h->kv_heads);
  if (g.find(a + ".attention.key_length")) {
    TERN_RETURN_IF_ERROR(g.get_u32(a + ".attention.key_length", &h->head_dim));
    uint32_t vl = h->head_dim;
    TERN_RETURN_IF_ERROR(g.get_u32_opt(a + ".attention.value_length", &vl));
    if (vl != h->head_dim)
      return Status::error(StatusCode::kUnsupported, "value_length %u != key_length %u", vl, h->head_dim);
  } else {
    if (h->dim % h->heads != 0)
      return Status::error(StatusCode::kBadHparams, "dim %u not a multiple of heads %u", h->dim, h->heads);
    h->head_dim = h->dim / h->heads;
  }
  h->rope_dim = h->head_dim;
  TERN_RETURN_IF_ERROR(g.get_u32_opt(a + ".rope.dimension_count", &h->rope_dim));
  if (h->head_dim == 0 || h->head_dim > blob::limits::kMaxHeadDim || h->rope_dim == 0 || h->rope_dim > h->head_dim || h->rope_dim % 2 != 0)
    return Status::error(StatusCode::kBadHparams, "head_dim %u / rope_dim %u invalid", h->head_dim, h->rope_dim);
  if (!(h->rope_base > 0.0f) || !std::isfinite(h->rope_base) || !(h->norm_eps > 0.0f) || !(h->norm_eps < 1.0f))
    return Status::error(StatusCode::kBadHparams, "rope base %g or norm eps %g invalid", double(h->rope_base),
                         double(h->norm_eps));
  if (h->dim % kGroup != 0 || h->ffn % kGroup != 0 || (h->heads * h->head_dim) % kGroup != 0)
    return Status::error(StatusCode::kBadHparams, "dim %u, ffn %u and q_dim %u must be multiples of 32", h->dim, h->ffn,
                         h->heads * h->head_dim);
  h->attn_scale = 1.0f / std::sqrt(float(h->head_dim));
  // Rope scaling: the linear kind from keys; the llama3 kind is the
  // rope_freqs tensor the converter writes (divisors per frequency).
  if (g.find(a + ".rope.scaling.type")) {
    std::string type;
    TERN_RETURN_IF_ERROR(g.get_string(a + ".rope.scaling.type", &type));
    if (type == "linear") {
      h->rope_scaling = blob::RopeScaling::kLinear;
      TERN_RETURN_IF_ERROR(g.get_f32(a + ".rope.scaling.factor", &h->rope_scale_factor));
      if (!(h->rope_scale_factor >= 1.0f) || !std::isfinite(h->rope_scale_factor))
        return Status::error(StatusCode::kBadHparams, "rope scaling factor %g must be >= 1",
                             double(h->rope_scale_factor));
    } else if (type != "none") {
      return Status::error(StatusCode::kUnsupported, "rope scaling \"%.40s\" (tern reads none, linear and llama3)",
                           type.c_str());
    }
  }
  if (g.find_tensor("rope_freqs.weight")) h->flags |= blob::kFlagRopeFreqs;
  if (g.find(a + ".final_logit_softcapping")) {
    TERN_RETURN_IF_ERROR(g.get_f32(a + ".final_logit_softcapping", &h->final_softcap));
    if (!(h->final_softcap >= 0.0f) || !std::isfinite(h->final_softcap))
      return Status::error(StatusCode::kBadHparams, "final logit soft-cap %g invalid", double(h->final_softcap));
  }
  h->layer_configs.assign(h->layers, BlobLayerConfig{false, 0, h->rope_base, true});
  return Status::ok();
}

Status read_arch_hparams(const GgufFile& g, blob::WeightKind kind, BlobHparams* h) {
  std::string name;
  TERN_RETURN_IF_ERROR(g.get_string("general.architecture", &name));
  for (const ArchEntry& e : kArchs) {
    if (name != e.name) continue;
    h->arch = e.arch;
    h->weight_kind = kind;
    TERN_RETURN_IF_ERROR(read_common_hparams(g, name, h));
    return e.configure(g, h);
  }
  return Status::error(StatusCode::kUnsupported, "unsupported architecture \"%.40s\" (tern reads %s)", name.c_str(),
                       supported_architectures());
}

}  // namespace tern::pack
