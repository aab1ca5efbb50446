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
constexpr uint32_t kFormatVersion = 1;
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
};

// ---- Hyperparameters section ------------------------------------------------
enum class Arch : uint32_t { kLlama = 1 };
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
constexpr size_t kBytes = 128;        // section size; 88..127 reserved, zero
}  // namespace hp

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
constexpr size_t kBytes = 64;
}  // namespace plan

// ---- Tokenizer section ------------------------------------------------------
// u32 model (1 = byte-level BPE, GPT-2 byte map)
// u32 pre   (1 = smollm pre-tokenizer: individual digits + GPT-2 regex)
// u32 n_tokens, u32 n_merges, u32 pool_bytes, u32 reserved
// u32 token_offset[n_tokens + 1]   offsets into pool, non-decreasing, last == pool_bytes
// u8  token_type[n_tokens]         TokenType, then zero padding to a multiple of 4
// u32 merges[n_merges][3]          (left id, right id, merged id); rank = index
// u8  pool[pool_bytes]             token texts, in the GPT-2 byte-to-unicode alphabet
namespace tok {
constexpr size_t kHeaderBytes = 24;
enum class TokenType : uint8_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };
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
  kAttnNorm = 10,   // [1, dim]
  kAttnQ = 11,      // [heads*head_dim, dim]
  kAttnK = 12,      // [kv_heads*head_dim, dim]
  kAttnV = 13,      // [kv_heads*head_dim, dim]
  kAttnOut = 14,    // [dim, heads*head_dim]
  kFfnNorm = 15,    // [1, dim]
  kFfnGate = 16,    // [ffn, dim]
  kFfnUp = 17,      // [ffn, dim]
  kFfnDown = 18,    // [dim, ffn]
};

// Weight storage types. A matrix [rows, cols] is y = W x with x of length cols.
// cols must be a multiple of kGroup (32). Layout = two planes, back to back:
//   kF32:     f32 [rows][cols]
//   kInt8G32: i8  q[rows][cols] (values in [-127, 127]),
//             then f16 d[rows][cols/32];                 w = d * q
//   kInt4G32: u8  q[rows][cols/2] (per group of 32: byte j holds element j in
//             the low nibble and element j+16 in the high nibble),
//             then f16 dm[rows][cols/32][2] = {d, m};    w = d * q + m, q in [0, 15]
enum class DType : uint32_t { kF32 = 0, kInt8G32 = 1, kInt4G32 = 2 };

// Weight kind requested from the packer (--weights).
enum class WeightKind : uint32_t { kInt8 = 1, kInt4 = 2 };

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
