// The one table of tensor roles: for every role, its GGUF name, its shape as
// a function of the hyperparameters, and when a blob must hold it. The packer
// (tools/pack) picks GGUF tensors and checks their shapes with it; the
// runtime (model_file.cc) validates the tensor directory and binds weights
// with it. Adding a tensor to an architecture is one row here (and its use
// in the forward pass), in the spirit of gemma.cpp's tensor_info.h.
#pragma once
#include <cstddef>
#include <cstdint>

#include "runtime/blob_format.h"

namespace tern {

// A shape's rows and cols, as hyperparameter names.
enum class Extent : uint8_t { kOne, kDim, kVocab, kQDim, kKvDim, kFfn, kHeadDim, kRopeHalf };

// When the blob must hold a role (and may not hold it otherwise).
enum class Presence : uint8_t {
  kAlways,
  kUntied,    // the output head, when the embeddings are not tied
  kQkNorm,    // blob::kFlagQkNorm
  kPostNorm,  // blob::kFlagPostNorms
  kQkvBias,   // blob::kFlagQkvBias
  kRopeFreqs, // blob::kFlagRopeFreqs
};

struct TensorRoleInfo {
  blob::TensorRole role;
  const char* gguf_name;  // global: the full name; per layer: the part after "blk.N."
  bool per_layer;
  bool matrix;            // a weight matrix (quantized or f32); else an f32 vector [1, cols]
  Extent rows, cols;
  Presence presence;
};

// Every role, globals first, then per-layer roles in blob directory order.
extern const TensorRoleInfo kTensorRoles[];
extern const size_t kTensorRoleCount;

// The role's entry, or nullptr for an unknown role number.
const TensorRoleInfo* tensor_role_info(uint32_t role);

// Per-layer roles are numbered kFirstLayerRole.. densely: a bit per role.
constexpr uint32_t kFirstLayerRole = 10;
constexpr uint32_t kLayerRoleCount = 16;  // roles 10..25

// The dimensions a shape is made of.
struct RoleDims {
  uint32_t dim, vocab, q_dim, kv_dim, ffn, head_dim, rope_dim;
};
uint32_t extent_value(Extent e, const RoleDims& d);

// Whether a blob with these flags and tying must hold the role.
bool role_required(const TensorRoleInfo& r, uint32_t flags, bool tied_embeddings);

// The role's GGUF tensor name for `layer` into out[blob::tdir::kNameBytes]
// ("blk.7.attn_q.weight", "token_embd.weight"); no allocation.
void role_tensor_name(const TensorRoleInfo& r, uint32_t layer, char* out);

}  // namespace tern
