// A validated view of a tern blob: hyperparameters, tokenizer section, chat
// template and weight views pointing straight into the mapped bytes. Opening
// validates everything the file claims (magic, version, endianness, sizes,
// offsets, alignment, checksums, tensor shapes) before anything is used;
// nothing is copied and no heap is touched.
#pragma once
#include <cstddef>
#include <cstdint>

#include "arena/arena.h"
#include "kernels/kernels.h"
#include "runtime/blob_format.h"
#include "runtime/memory_plan.h"
#include "runtime/status.h"

namespace tern {

struct Hparams {
  uint32_t layers = 0, dim = 0, heads = 0, kv_heads = 0, head_dim = 0, ffn = 0, vocab = 0;
  uint32_t train_context = 0, rope_dim = 0;
  float rope_base = 10000.0f, norm_eps = 1e-5f;
  bool rope_adjacent_pairs = true;
  bool tied_embeddings = false;
  int32_t bos = -1, eos = -1, pad = -1, unk = -1, im_start = -1, im_end = -1;
  bool add_bos = false;
  uint32_t weight_kind = 0;  // blob::WeightKind the packer was asked for
  uint32_t arch = 0;         // blob::Arch, for reports
  // Architecture (blob format 2): what the forward pass does besides llama's.
  blob::Activation activation = blob::Activation::kSilu;
  uint32_t flags = 0;          // blob::kFlag* (QK-norm, post-norms, Q/K/V bias)
  float embed_scale = 1.0f;    // token embeddings times this
  float attn_scale = 0.0f;     // attention scores scale
  float final_softcap = 0.0f;  // > 0: logits = c * tanh(logits / c)
  blob::RopeScaling rope_scaling = blob::RopeScaling::kNone;
  float rope_scale_factor = 1.0f;
  uint32_t q_dim() const { return heads * head_dim; }
  uint32_t kv_dim() const { return kv_heads * head_dim; }
  bool qk_norm() const { return (flags & blob::kFlagQkNorm) != 0; }
  bool post_norms() const { return (flags & blob::kFlagPostNorms) != 0; }
  bool qkv_bias() const { return (flags & blob::kFlagQkvBias) != 0; }
};

// One layer's attention, from the per-layer section (blob::layer::).
struct LayerConfig {
  bool sliding = false;  // attends to the last `window` positions (itself included)
  uint32_t window = 0;   // sliding only
  float rope_base = 10000.0f;
  bool rope_scaled = false;
};

// One transformer block's weights. Norm weights are float [dim].
struct LayerWeights {
  const float* attn_norm;
  WeightMatrix wq;    // [q_dim, dim]
  WeightMatrix wk;    // [kv_dim, dim]
  WeightMatrix wv;    // [kv_dim, dim]
  WeightMatrix wo;    // [dim, q_dim]
  const float* ffn_norm;
  WeightMatrix gate;  // [ffn, dim]
  WeightMatrix up;    // [ffn, dim]
  WeightMatrix down;  // [dim, ffn]
  // Present only with the matching hparams flag, else null.
  const float* q_norm = nullptr;     // [head_dim]
  const float* k_norm = nullptr;     // [head_dim]
  const float* attn_post_norm = nullptr;  // [dim]
  const float* ffn_post_norm = nullptr;   // [dim]
  const float* q_bias = nullptr;     // [q_dim]
  const float* k_bias = nullptr;     // [kv_dim]
  const float* v_bias = nullptr;     // [kv_dim]
};

// Arena bytes reserved per layer for its LayerWeights. A fixed figure rather
// than sizeof, because the struct holds pointers: the packer (64-bit host)
// stores the plan in the blob, and a 32-bit device (Cortex-M, ARMv7) must
// compute the same plan byte for byte to accept it.
constexpr size_t kLayerWeightsArenaBytes = 320;
static_assert(sizeof(LayerWeights) <= kLayerWeightsArenaBytes, "grow kLayerWeightsArenaBytes");

struct Section {
  uint64_t offset = 0;
  uint64_t bytes = 0;
  uint32_t crc = 0;
  bool present = false;
};

struct ModelFile {
  const uint8_t* data = nullptr;  // the whole blob
  size_t size = 0;
  uint32_t version = 0;           // blob format version (blob::kOldestReadableVersion .. kFormatVersion)
  Hparams hp;
  RunLimits default_limits;       // from the memory-plan section
  MemoryPlan stored_plan;         // the packer's plan for default_limits, by category (same section)
  Section sections[blob::kSectionKindCount];  // indexed by blob::SectionKind
  const uint8_t* tokenizer = nullptr;
  size_t tokenizer_bytes = 0;
  const char* chat_template = nullptr;  // not NUL-terminated
  size_t chat_template_bytes = 0;
  uint32_t n_merges = 0, n_tokens = 0;
  uint32_t tok_model = 0, tok_text_bytes = 0;  // tokenizer section header: blob::tok::Model, pool_bytes

  WeightMatrix token_embd;  // [vocab, dim]
  const float* output_norm = nullptr;
  const float* rope_freqs = nullptr;  // [rope_dim / 2] with kFlagRopeFreqs, else null
  WeightMatrix output;      // [vocab, dim]; == token_embd when tied
  LayerWeights* layers = nullptr;  // [hp.layers], allocated from the arena by bind_weights

  // Byte counts by storage type, for reports.
  uint64_t bytes_f32 = 0, bytes_int8 = 0, bytes_int4 = 0, bytes_int5 = 0;

  const uint8_t* layer_configs = nullptr;  // the per-layer section, validated at open
  LayerConfig layer_config(uint32_t layer) const;
  // The largest window of a sliding layer; 0 if every layer is global.
  uint32_t max_window = 0;

  ModelShape shape() const;
};

// Validate the header, section table, every section except tensor data
// payloads, hyperparameters and the tensor directory. Fills everything but
// `layers` (see bind_weights). No allocation.
Status open_model_file(const uint8_t* data, size_t size, ModelFile* out);

// Allocate the per-layer weight table from the arena and bind every tensor.
// Fails with kMissingTensor / kBadTensor naming the tensor.
Status bind_weights(ModelFile* file, Arena* arena);

// Recompute the CRC-32 of the tensor data section (reads every weight byte).
Status verify_tensor_data(const ModelFile& file);

}  // namespace tern
