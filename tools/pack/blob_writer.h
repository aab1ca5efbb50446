// Serializes a model into the tern blob (runtime/blob_format.h,
// docs/blob_format.md): header, section table, hparams, memory plan,
// tokenizer, chat template, tensor directory, tensor data. Every field is
// written one by one in little-endian; every section gets its CRC-32.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/blob_format.h"
#include "runtime/memory_plan.h"
#include "runtime/status.h"

namespace tern::pack {

// The data section starts on a page boundary, so mapped weights are page
// aligned; tensors inside it are blob::kTensorAlignment (64) aligned.
constexpr uint64_t kDataSectionAlignment = 4096;
// Every other section starts 8-byte aligned (u64 fields, u32 arrays).
constexpr uint64_t kSectionAlignment = 8;

// One layer's attention (blob::layer::), as the packer decides it.
struct BlobLayerConfig {
  bool sliding = false;
  uint32_t window = 0;
  float rope_base = 10000.0f;
  bool rope_scaled = false;
};

struct BlobHparams {
  blob::Arch arch = blob::Arch::kLlama;
  uint32_t layers = 0, dim = 0, heads = 0, kv_heads = 0, head_dim = 0, ffn = 0, vocab = 0;
  uint32_t train_context = 0, rope_dim = 0;
  float rope_base = 10000.0f, norm_eps = 1e-5f;
  blob::RopePairing rope_pairing = blob::RopePairing::kAdjacent;
  bool tied_embed = false;
  int32_t bos = -1, eos = -1, pad = -1, unk = -1, im_start = -1, im_end = -1;
  bool add_bos = false;
  blob::WeightKind weight_kind = blob::WeightKind::kInt4;
  // Architecture (blob format 2; see blob::hp).
  blob::Activation activation = blob::Activation::kSilu;
  uint32_t flags = 0;  // blob::kFlag*
  float embed_scale = 1.0f;
  float attn_scale = 0.0f;  // set from head_dim unless the model says otherwise
  float final_softcap = 0.0f;
  blob::RopeScaling rope_scaling = blob::RopeScaling::kNone;
  float rope_scale_factor = 1.0f;
  std::vector<BlobLayerConfig> layer_configs;  // [layers]
};

struct BlobPlan {
  RunLimits limits;
  uint64_t arena_bytes = 0;  // tern::plan_memory total for these limits
  MemoryPlan bytes;          // the same plan by category (stored beside the total)
};

struct BlobTokenizer {
  uint32_t model = 1;  // blob::tok::Model: 1 byte-level BPE, 2 SentencePiece
  uint32_t pre = 1;    // blob::tok::Pre: smollm (model 1), none (model 2)
  uint32_t flags = 0;  // blob::tok::kFlag* (model 2 only)
  std::vector<std::string> tokens;               // [n_tokens] texts, verbatim
  std::vector<uint8_t> types;                    // [n_tokens] blob::tok::TokenType
  std::vector<std::array<uint32_t, 3>> merges;   // [n_merges] (left, right, merged), rank order (model 1)
  std::vector<float> scores;                     // [n_tokens] (model 2), finite
};

struct BlobTensor {
  std::string name;  // GGUF name, < blob::tdir::kNameBytes bytes
  blob::TensorRole role = blob::TensorRole::kTokenEmbd;
  uint32_t layer = 0;  // 0 for the global tensors
  blob::DType dtype = blob::DType::kF32;
  uint32_t rows = 0, cols = 0;
  std::vector<uint8_t> payload;  // exactly blob::tensor_bytes(dtype, rows, cols) bytes
};

struct BlobContents {
  BlobHparams hparams;
  BlobPlan plan;
  BlobTokenizer tokenizer;
  std::string chat_template;
  std::vector<BlobTensor> tensors;  // written in this order
};

// The tokenizer section alone (blob::tok layout), as layout_blob writes it:
// for tests and tools that run a tokenizer without a model.
Status serialize_tokenizer_section(const BlobTokenizer& tokenizer, std::vector<uint8_t>* out);

// Build the whole blob image in memory. Fails (kInvalidArgument) on anything
// the format cannot represent: a name too long, a payload of the wrong size,
// counts beyond u32, a token type out of range, a merge id out of range.
Status serialize_blob(const BlobContents& contents, std::vector<uint8_t>* out);

// The same in two steps, so tensors can be converted straight into the image
// (no second copy of every payload): layout_blob writes everything but the
// tensor payloads and the CRCs; a tensor's payload may be empty, and
// (*payload_at)[i] is where in *out tensor i's tern::blob::tensor_bytes bytes
// go (a non-empty payload is copied there). Then fill them and seal_blob.
Status layout_blob(const BlobContents& contents, std::vector<uint8_t>* out, std::vector<uint64_t>* payload_at);
// Fill in the CRC of every section, then of the section table, then of the header.
void seal_blob(std::vector<uint8_t>* blob);

// Where write_file_atomic(path) really writes: `path` itself, or, when `path`
// is a symbolic link, the file it finally resolves to (the link is written
// through, never replaced). Refused (kInvalidArgument, naming the reason):
//  - an existing output that is not a regular file (a device node, a FIFO, a
//    directory, a socket): a tool never writes through or over a device;
//  - a symbolic link whose target does not exist (dangling) or loops;
//  - an output that is the same file as `input` (same device and inode: the
//    same path, a hard link or a symbolic link to it), when `input` is given:
//    the blob must never replace its own source.
// On success *target is the path the file will be renamed onto.
Status resolve_output_path(const std::string& path, const char* input, std::string* target);

// Write `bytes` to `path` atomically: resolve_output_path first (so the same
// refusals apply), then a new temporary file in the target's directory
// (O_EXCL, never following a link), flushed, renamed over the target, and the
// directory flushed. On failure the temporary file is removed and the target
// is untouched. A replaced file keeps its permission bits; a new one gets
// 0644 less the umask.
Status write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes, const char* input = nullptr);

}  // namespace tern::pack
