// The tern weight blob: one little-endian file, versioned and checksummed.
// docs/blob_format.md is the specification; this header is its single C++
// transcription, linked by both the packer (writer) and the runtime (reader),
// so the two cannot drift. Fields are written and read one by one with the
// helpers below, never by copying structs, so the format does not depend on
// the compiler's struct layout.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tern::blob {

// ---- File header: kHeaderBytes at offset 0 -------------------------------
constexpr char kMagic[8] = {'T', 'E', 'R', 'N', 'B', 'L', 'O', 'B'};
// Version 2 (issue 14): per-layer architecture section, hparams of 256
// bytes, new tensor roles (QK-norm, post-norms, Q/K/V bias), the SentencePiece
// tokenizer model.
// Version 3: storage type kInt5G32 (5-bit weights, Q5_0/Q5_1/Q5_K sources
// kept at their own bits). A version-2 blob is the same format without it, so
// readers take 2 and 3; any other version is refused with the numbers.
// Version 4: storage types kInt8G32R16 and kInt4G32R16 (int8 / int4 rows
// interleaved by 16 for the kernels, tern-pack --layout r16). Otherwise the
// same as 3.
// Version 5: the memory plan section gains the default KV cache type
// (plan::kKvType: f16 or int8), 72 bytes instead of 64. Readers take 2 to 5;
// a 64-byte plan (versions 2 to 4) means f16 KV.
constexpr uint32_t kFormatVersion = 5;
constexpr uint32_t kOldestReadableVersion = 2;
constexpr uint32_t kEndianMarker = 0x01020304u;  // stored LE: 04 03 02 01
constexpr uint32_t kHeaderBytes = 128;
constexpr uint32_t kSectionEntryBytes = 32;
constexpr uint32_t kMaxSections = 16;
constexpr uint32_t kTensorAlignment = 64;  // every tensor payload starts 64-byte aligned

// Byte offsets of header fields.
namespace hdr {
constexpr size_t kMagic = 0;             // char[8]
constexpr size_t kVersion = 8;           // u32
constexpr size_t kEndian = 12;           // u32
constexpr size_t kFileBytes = 16;        // u64, whole file size
constexpr size_t kHeaderBytes = 24;      // u32, = 128
constexpr size_t kSectionCount = 28;     // u32
constexpr size_t kSectionTable = 32;     // u64, offset of the section table
constexpr size_t kSectionTableCrc = 40;  // u32, CRC-32 of the section table bytes
constexpr size_t kFlags = 44;            // u32, reserved, 0
// 48..123 reserved, zero
constexpr size_t kHeaderCrc = 124;       // u32, CRC-32 of bytes [0, 124)
}  // namespace hdr

// ---- Section table: kSectionEntryBytes per entry --------------------------
// entry: u32 kind, u32 reserved(0), u64 offset, u64 bytes, u32 crc32, u32 reserved(0)
enum class SectionKind : uint32_t {
  kHparams = 1,       // model hyperparameters, fixed fields (hp:: offsets)
  kMemoryPlan = 2,    // default arena plan inputs (plan:: offsets)
  kTokenizer = 3,     // vocabulary, token types, merges (tok:: layout)
  kChatTemplate = 4,  // UTF-8 text of the source chat template (not NUL-terminated)
  kTensorDir = 5,     // tensor directory (tdir:: layout)
  kTensorData = 6,    // tensor payloads; offsets in the directory are relative to it
  kLayers = 7,        // per-layer architecture (layer:: layout), one entry per layer
};
constexpr uint32_t kSectionKindCount = 8;  // kinds are 1..7

// ---- Hyperparameter limits ------------------------------------------------------
// The one copy of the bounds a blob's shape must respect: the packer refuses
// a GGUF beyond them, the loader a blob beyond them (and every per-layer
// table is sized by kMaxLayers).
namespace limits {
constexpr uint32_t kMaxLayers = 512;
constexpr uint32_t kMaxDim = 1u << 16;      // model width, heads * head_dim
constexpr uint32_t kMaxHeadDim = 1024;
constexpr uint32_t kMaxFfn = 1u << 18;
constexpr uint32_t kMaxVocab = 1u << 22;
constexpr uint32_t kMaxMerges = 4 * kMaxVocab;
constexpr uint32_t kMaxWindow = 1u << 20;   // a sliding window longer is refused
}  // namespace limits

// ---- Hyperparameters section ------------------------------------------------
// The GGUF architecture the blob was packed from. The runtime does not branch
// on it: the hparams and per-layer sections describe everything the forward
// pass does. It names the model in reports.
enum class Arch : uint32_t { kLlama = 1, kQwen2 = 2, kQwen3 = 3, kGemma3 = 4 };
constexpr uint32_t kArchCount = 5;  // valid values 1..4
enum class Activation : uint32_t {
  kSilu = 0,      // gated FFN: silu(gate) * up (llama, qwen)
  kGeluTanh = 1,  // gated FFN: gelu_tanh(gate) * up (gemma)
};
// Rope scaling of the linear kind; the llama3 kind is kFlagRopeFreqs (the
// converter's per-frequency divisors, as llama.cpp stores and applies them).
enum class RopeScaling : uint32_t {
  kNone = 0,
  kLinear = 1,  // positions divided by rope_scale_factor (on layers whose entry says so)
};
// hp::kFlags bits.
constexpr uint32_t kFlagQkNorm = 1u << 0;     // per-head RMSNorm of Q and K before RoPE (attn_q_norm, attn_k_norm)
constexpr uint32_t kFlagPostNorms = 1u << 1;  // RMSNorm of the attention and FFN outputs before the residual add
constexpr uint32_t kFlagQkvBias = 1u << 2;    // Q, K and V projections have a bias vector
constexpr uint32_t kFlagRopeFreqs = 1u << 3;  // llama3 rope: inv_freq[i] / rope_freqs[i] (on rope-scaled layers)
constexpr uint32_t kKnownFlags = 15u;
enum class RopePairing : uint32_t {
  kAdjacent = 0,  // rotate (x[2i], x[2i+1]); GGUF llama weights are permuted for this
  kHalves = 1,    // rotate (x[i], x[i + rope_dim/2]); HF "rotate_half"
};
namespace hp {
constexpr size_t kArch = 0;           // u32 Arch
constexpr size_t kLayers = 4;         // u32
constexpr size_t kDim = 8;            // u32 model width
constexpr size_t kHeads = 12;         // u32 query heads
constexpr size_t kKvHeads = 16;       // u32
constexpr size_t kHeadDim = 20;       // u32
constexpr size_t kFfnDim = 24;        // u32
constexpr size_t kVocab = 28;         // u32
constexpr size_t kTrainContext = 32;  // u32 context length the model was trained for
constexpr size_t kRopeDim = 36;       // u32 rotated dims per head (<= head_dim)
constexpr size_t kRopeBase = 40;      // f32
constexpr size_t kNormEps = 44;       // f32
constexpr size_t kRopePairing = 48;   // u32 RopePairing
constexpr size_t kTiedEmbed = 52;     // u32 0/1: output head is token_embd
constexpr size_t kBos = 56;           // i32, -1 if none
constexpr size_t kEos = 60;           // i32
constexpr size_t kPad = 64;           // i32
constexpr size_t kUnk = 68;           // i32
constexpr size_t kImStart = 72;       // i32 "<|im_start|>" or -1
constexpr size_t kImEnd = 76;         // i32 "<|im_end|>" or -1
constexpr size_t kAddBos = 80;        // u32 0/1
constexpr size_t kWeightKind = 84;    // u32 WeightKind the packer was asked for (summary only)
// 88..95 reserved, zero
constexpr size_t kActivation = 96;        // u32 Activation
constexpr size_t kFlags = 100;            // u32 kFlag* bits
constexpr size_t kEmbedScale = 104;       // f32 token embeddings are multiplied by this (1; gemma sqrt(dim))
constexpr size_t kAttnScale = 108;        // f32 attention scores scale (usually 1/sqrt(head_dim))
constexpr size_t kFinalSoftcap = 112;     // f32 logits = c * tanh(logits / c) when > 0; 0 = none
constexpr size_t kRopeScaling = 116;      // u32 RopeScaling
constexpr size_t kRopeScaleFactor = 120;  // f32 linear scaling factor, 1 = none
constexpr size_t kBytes = 256;            // section size; 124..255 reserved, zero
}  // namespace hp

// ---- Per-layer section: layer::kEntryBytes per layer, hp.layers entries -----
enum class AttentionKind : uint32_t { kGlobal = 0, kSliding = 1 };
namespace layer {
constexpr size_t kAttention = 0;   // u32 AttentionKind
constexpr size_t kWindow = 4;      // u32 sliding: a token sees itself and the window-1 before it; global: 0
constexpr size_t kRopeBase = 8;    // f32 this layer's RoPE base
constexpr size_t kRopeScaled = 12; // u32 0/1: the model's rope scaling applies to this layer
constexpr size_t kEntryBytes = 16;
}  // namespace layer

// ---- Memory plan section: the packer's defaults for the arena -------------
namespace plan {
constexpr size_t kMaxContext = 0;     // u32 tokens per sequence
constexpr size_t kMaxSequences = 4;   // u32
constexpr size_t kPrefillChunk = 8;   // u32 tokens per batched forward call
constexpr size_t kKvBlockTokens = 12; // u32 tokens per KV block
constexpr size_t kLogitRows = 16;     // u32 rows of logits kept per forward call
// The plan for these inputs (tern::plan_memory, 1 thread, full KV pool), by
// category. The runtime recomputes it and, started with exactly these limits,
// refuses a blob whose stored plan differs (a packer/runtime planner mismatch).
constexpr size_t kSamplerBytes = 20;     // u32 sampler candidate buffers
constexpr size_t kArenaBytes = 24;       // u64 total arena bytes (the sum below + sampler + 64 slack)
constexpr size_t kActivationBytes = 32;  // u64 activations and scratch (incl. the model table)
constexpr size_t kKvBytes = 40;          // u64 KV block pool, block tables, free list
constexpr size_t kLogitBytes = 48;       // u64 logits rows
constexpr size_t kTokenizerBytes = 56;   // u64 tokenizer tables and token histories
constexpr size_t kBytesV3 = 64;          // the section's size in versions 2 to 4 (ends here: f16 KV)
constexpr size_t kKvType = 64;           // u32 KV cache type, tern::KvType: 0 f16, 1 int8 (version 5)
// 68..71 reserved, zero
constexpr size_t kBytes = 72;
constexpr uint32_t kKvTypeCount = 2;
// The plan section's size in a blob of this format version.
constexpr size_t bytes_for_version(uint32_t version) { return version >= 5 ? kBytes : kBytesV3; }
}  // namespace plan

// ---- Tokenizer section ------------------------------------------------------
// u32 model  (Model: 1 = byte-level BPE with the GPT-2 byte map, 2 = SentencePiece-style)
// u32 pre    (Pre: model 1: 1 = smollm pre-tokenizer; model 2: 0 = none)
// u32 n_tokens, u32 n_merges (model 2: 0), u32 pool_bytes, u32 flags (model 1: 0)
// u32 token_offset[n_tokens + 1]   offsets into pool, non-decreasing, last == pool_bytes
// u8  token_type[n_tokens]         TokenType, then zero padding to a multiple of 4
// u32 merges[n_merges][3]          (left id, right id, merged id); rank = index
// f32 scores[n_tokens]             model 2 only: merge priority, higher first
// u8  pool[pool_bytes]             token texts (model 1: GPT-2 byte-to-unicode alphabet;
//                                  model 2: SentencePiece form, U+2581 for a space)
namespace tok {
constexpr size_t kHeaderBytes = 24;
// Header fields.
constexpr size_t kModel = 0;      // u32 Model
constexpr size_t kPre = 4;        // u32 Pre
constexpr size_t kNTokens = 8;    // u32 = hparams vocab
constexpr size_t kNMerges = 12;   // u32
constexpr size_t kPoolBytes = 16; // u32
constexpr size_t kFlags = 20;     // u32 kFlag* (model 2); 0 for model 1
enum class Model : uint32_t { kByteBpe = 1, kSentencePiece = 2 };
enum class Pre : uint32_t { kNone = 0, kSmollm = 1 };
// flags (model 2): prepend U+2581 to a text fragment at the start or after a
// special token (llama.cpp's add_space_prefix; Gemma 3: off, Llama 2: on).
constexpr uint32_t kFlagAddSpacePrefix = 1u << 0;
constexpr uint32_t kKnownFlags = kFlagAddSpacePrefix;
enum class TokenType : uint8_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// Byte offsets of the arrays relative to the section start, and the section
// size, for these counts. Computed in 64 bits from u32 counts: cannot wrap.
// scores == pool (no scores) for model 1.
struct Layout {
  uint64_t offsets, types, merges, scores, pool, total;
};
inline Layout layout(uint32_t model, uint32_t n_tokens, uint32_t n_merges, uint32_t pool_bytes) {
  Layout l;
  l.offsets = kHeaderBytes;
  l.types = l.offsets + 4 * (uint64_t(n_tokens) + 1);
  l.merges = l.types + ((uint64_t(n_tokens) + 3) & ~uint64_t(3));
  l.scores = l.merges + 12 * uint64_t(n_merges);
  l.pool = l.scores + (model == uint32_t(Model::kSentencePiece) ? 4 * uint64_t(n_tokens) : 0);
  l.total = l.pool + pool_bytes;
  return l;
}
}  // namespace tok

// ---- Tensor directory -------------------------------------------------------
// u32 n_tensors, u32 reserved, then n_tensors entries of kEntryBytes:
//   char name[48] (NUL padded, at least one NUL)
//   u32 role, u32 layer, u32 dtype, u32 rows, u32 cols, u32 reserved
//   u64 offset (relative to the tensor data section, multiple of 64), u64 bytes
namespace tdir {
constexpr size_t kHeaderBytes = 8;
constexpr size_t kNameBytes = 48;
constexpr size_t kEntryBytes = 88;
}  // namespace tdir

enum class TensorRole : uint32_t {
  kTokenEmbd = 1,   // [vocab, dim]
  kOutputNorm = 2,  // [1, dim]
  kOutput = 3,      // [vocab, dim]; absent when tied
  kRopeFreqs = 4,   // [1, rope_dim/2] with kFlagRopeFreqs
  kAttnNorm = 10,   // [1, dim]
  kAttnQ = 11,      // [heads*head_dim, dim]
  kAttnK = 12,      // [kv_heads*head_dim, dim]
  kAttnV = 13,      // [kv_heads*head_dim, dim]
  kAttnOut = 14,    // [dim, heads*head_dim]
  kFfnNorm = 15,    // [1, dim]
  kFfnGate = 16,    // [ffn, dim]
  kFfnUp = 17,      // [ffn, dim]
  kFfnDown = 18,    // [dim, ffn]
  kAttnQNorm = 19,    // [1, head_dim]  with kFlagQkNorm
  kAttnKNorm = 20,    // [1, head_dim]  with kFlagQkNorm
  kAttnPostNorm = 21, // [1, dim]       with kFlagPostNorms
  kFfnPostNorm = 22,  // [1, dim]       with kFlagPostNorms
  kAttnQBias = 23,    // [1, q_dim]     with kFlagQkvBias
  kAttnKBias = 24,    // [1, kv_dim]    with kFlagQkvBias
  kAttnVBias = 25,    // [1, kv_dim]    with kFlagQkvBias
};

// Weight storage types. A matrix [rows, cols] is y = W x with x of length cols.
// cols must be a multiple of kGroup (32). Layout = two planes, back to back:
//   kF32:     f32 [rows][cols]
//   kInt8G32: i8  q[rows][cols] (values in [-127, 127]),
//             then f16 d[rows][cols/32];                 w = d * q
//   kInt4G32: u8  q[rows][cols/2] (per group of 32: byte j holds element j in
//             the low nibble and element j+16 in the high nibble),
//             then f16 dm[rows][cols/32][2] = {d, m};    w = d * q + m, q in [0, 15]
//   kInt5G32: u8  q[rows][cols/2], the low 4 bits as kInt4G32,
//             then u8 h[rows][cols/8] (per group of 32, 4 bytes: bit i of
//             byte b is bit 4 of element 8b + i),
//             then f16 dm[rows][cols/32][2] = {d, m};    w = d * q + m, q in [0, 31]
//   kInt8G32R16: kInt8G32's values and scales with rows interleaved by 16
//             (rows % 16 == 0): per row block b of 16 rows,
//             i8 q[b][cols/32][8][16][4]: 4 columns (32g + 4k ..) of the
//             block's 16 rows per 64 bytes, then for the whole matrix
//             f16 d[rows/16][cols/32][16];               w = d * q
//   kInt4G32R16: kInt4G32's bytes and scales with rows interleaved by 16
//             (rows % 16 == 0): per row block b, u8 q[b][cols/32][4][16][4]
//             (row 16b + i's kInt4G32 bytes 16g + 4L .. + 3 at [b][g][L][i]),
//             then f16 dm[rows/16][cols/32][2][16] (16 d, then 16 m)
// The same numbering as the kernels' WeightType (kernels/kernels.h).
enum class DType : uint32_t { kF32 = 0, kInt8G32 = 1, kInt4G32 = 2, kInt5G32 = 3, kInt8G32R16 = 4, kInt4G32R16 = 5 };
constexpr uint32_t kDTypeCount = 6;

// The oldest format version that may hold a storage type (readers refuse a
// tensor whose type is newer than its blob).
constexpr uint32_t dtype_min_version(uint32_t dtype) {
  return dtype == uint32_t(DType::kInt8G32R16) || dtype == uint32_t(DType::kInt4G32R16) ? 4
         : dtype == uint32_t(DType::kInt5G32)                                               ? 3
                                                                                            : 2;
}

// Weight kind requested from the packer (--weights).
// kF32: every matrix kF32 (exact for F32/F16/BF16 sources; large and slow:
// the conformance tests' float path, not for deployment).
enum class WeightKind : uint32_t { kInt8 = 1, kInt4 = 2, kF32 = 3 };

// Exact byte size of a tensor payload; 0 if the shape is invalid for the type
// or its size does not fit in 64 bits.
uint64_t tensor_bytes(DType dtype, uint64_t rows, uint64_t cols);

// ---- Checked size arithmetic ---------------------------------------------------
// Every size computed from file contents goes through these: false (and *out
// untouched) when the exact result does not fit in 64 bits.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > UINT64_MAX / a) return false;
  *out = a * b;
  return true;
}
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) {
  if (b > UINT64_MAX - a) return false;
  *out = a + b;
  return true;
}
// a * b + c * d, all checked.
inline bool checked_mul_add(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t* out) {
  uint64_t x, y;
  return checked_mul(a, b, &x) && checked_mul(c, d, &y) && checked_add(x, y, out);
}

// ---- Little-endian field access ---------------------------------------------
inline uint32_t load_u32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
inline uint64_t load_u64(const uint8_t* p) {
  return uint64_t(load_u32(p)) | (uint64_t(load_u32(p + 4)) << 32);
}
inline int32_t load_i32(const uint8_t* p) { return int32_t(load_u32(p)); }
inline float load_f32(const uint8_t* p) {
  uint32_t u = load_u32(p);
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline void store_u32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v); p[1] = uint8_t(v >> 8); p[2] = uint8_t(v >> 16); p[3] = uint8_t(v >> 24);
}
inline void store_u64(uint8_t* p, uint64_t v) {
  store_u32(p, uint32_t(v));
  store_u32(p + 4, uint32_t(v >> 32));
}
inline void store_i32(uint8_t* p, int32_t v) { store_u32(p, uint32_t(v)); }
inline void store_f32(uint8_t* p, float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  store_u32(p, u);
}

// CRC-32 (IEEE 802.3, the zlib polynomial; Python's zlib.crc32 gives the same).
uint32_t crc32(const void* data, size_t bytes, uint32_t crc = 0);

}  // namespace tern::blob
