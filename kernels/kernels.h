// The kernel table: every hot op of the forward pass as a plain function
// pointer. One table per ISA variant (scalar reference, AVX2, NEON, ...); the
// runtime picks one at init (kernels/dispatch.h) and calls only through it.
//
// Conventions for every kernel:
//   - plain pointers and small structs, no allocation, no globals, no OS calls;
//   - shapes in comments as [rows, cols]; matrices are row-major, y = W x;
//   - row ranges [r0, r1) let the caller split work across threads;
//   - the scalar reference (kernels/ref) is the specification: integer
//     accumulations of every variant are bit-exact to it, float results equal
//     within the tolerance its test states.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/blocks.h"

namespace tern {

// A weight matrix in the blob's storage layout (see runtime/blob_format.h).
// The kernel table has one matrix product per type (KernelTable::matmul);
// kernels name both operand types, as ggml's vec_dot_q4_K_q8_K does:
//   f32    float weights                                   matmul_f32_f32
//   i8g32  int8 q, f16 d per 32:        w = d * q          matmul_i8g32_q8r
//   u4g32  4-bit q, f16 {d, m} per 32:  w = d * q + m      matmul_u4g32_q8r
//   u5g32  5-bit q (4-bit plane + high-bit plane), f16 {d, m} per 32:
//          w = d * q + m, q in 0..31                       matmul_u5g32_q8r
//   i8g32r16  the i8g32 values and scales with rows interleaved by 16
//          (below): one 64-byte load is 4 columns of 16 rows   matmul_i8g32r16_q8r
//   u4g32r16  the u4g32 values and scales, rows interleaved by 16:
//          one 64-byte load is 8 columns of 16 rows            matmul_u4g32r16_q8r
// where q8r is the two-plane int8 activation layout (ActRowsQ8 in blocks.h).
enum class WeightType : uint32_t {
  kF32 = 0,
  kInt8G32 = 1,
  kInt4G32 = 2,
  kInt5G32 = 3,
  kInt8G32R16 = 4,
  kInt4G32R16 = 5,
};
constexpr uint32_t kWeightTypeCount = 6;

constexpr const char* weight_type_name(WeightType t) {
  switch (t) {
    case WeightType::kF32: return "f32";
    case WeightType::kInt8G32: return "i8g32";
    case WeightType::kInt4G32: return "u4g32";
    case WeightType::kInt5G32: return "u5g32";
    case WeightType::kInt8G32R16: return "i8g32r16";
    case WeightType::kInt4G32R16: return "u4g32r16";
  }
  return "unknown";
}

struct WeightMatrix {
  WeightType type;
  uint32_t rows;
  uint32_t cols;           // multiple of kGroup for the quantized types
  const void* data;        // kF32: float[rows][cols]; quantized: q plane
  const uint16_t* scales;  // kInt8G32: f16 d[rows][cols/32]; kInt4G32, kInt5G32: f16 {d,m}[rows][cols/32];
                           // kInt8G32R16: f16 d[rows/16][cols/32][16];
                           // kInt4G32R16: f16 dm[rows/16][cols/32][2][16] (16 d, then 16 m); kF32: null
};

// kInt8G32R16: rows % 16 == 0. Row block b (rows 16b .. 16b + 15) is
// cols * 16 bytes at data + b * cols * 16:
//   q[b][g][k][i][j] = q of row 16b + i, column 32g + 4k + j   (k < 8, i < 16, j < 4)
// and its scales at scales + b * (cols/32) * 16: d[b][g][i]. A zmm load is
// 4 columns of 16 rows, one row per 32-bit lane, so one broadcast 4-byte
// group of activations feeds all 16 rows through vpdpbusd and no horizontal
// sums are needed; it is also the B-tile layout of AMX's tdpb*d.
// kInt4G32R16 permutes kInt4G32's bytes the same way, 4 bytes (8 values) of
// a row at a time: block b is cols * 8 bytes, and its byte
//   q[b][g][L][i][j] (L < 4) = row 16b + i's byte 16g + 4L + j in kInt4G32,
// so the low nibbles of a 64-byte load are columns 32g + 4L .. + 3 of the 16
// rows and the high nibbles columns 32g + 16 + 4L .. + 3. Written by
// the packer (tern-pack --layout r16); kernels without a native product for
// it read it through a de-interleaving adapter (kernels/r16_adapter.h).
constexpr uint32_t kInterleaveRows = 16;

// kInt5G32: `data` holds the low 4 bits of every value in the kInt4G32
// nibble order, [rows][cols/2], directly followed by the high-bit plane
// [rows][cols/8]: per group of 32, bit i of byte b is bit 4 of value 8b + i.
// (Derived, not a field: WeightMatrix stays the size the memory plan counts
// per layer, see runtime/model_file.h.)
inline const uint8_t* int5_high_bits(const WeightMatrix& w) {
  return static_cast<const uint8_t*>(w.data) + size_t(w.rows) * (w.cols / 2);
}

// Bytes of a [rows, cols] matrix of each type (q planes + scales), the sizes
// the blob stores and the kernels read; static_asserted below per group.
constexpr size_t weight_bytes(WeightType t, size_t rows, size_t cols) {
  switch (t) {
    case WeightType::kF32: return rows * cols * 4;
    case WeightType::kInt8G32: return rows * (cols + cols / kGroup * 2);
    case WeightType::kInt4G32: return rows * (cols / 2 + cols / kGroup * 4);
    case WeightType::kInt5G32: return rows * (cols / 2 + cols / 8 + cols / kGroup * 4);
    case WeightType::kInt8G32R16: return rows * (cols + cols / kGroup * 2);  // the i8g32 bytes, permuted
    case WeightType::kInt4G32R16: return rows * (cols / 2 + cols / kGroup * 4);  // the u4g32 bytes, permuted
  }
  return 0;
}
static_assert(weight_bytes(WeightType::kInt8G32, 1, kGroup) == 34, "i8g32: 32 q + f16 d");
static_assert(weight_bytes(WeightType::kInt4G32, 1, kGroup) == 20, "u4g32: 16 nibble bytes + f16 d, m");
static_assert(weight_bytes(WeightType::kInt5G32, 1, kGroup) == 24, "u5g32: 16 nibble bytes + 4 high-bit bytes + f16 d, m");

// The input of a matrix product, in the form each weight type reads: float
// rows for kF32, the same rows quantized (ActRowsQ8) for the integer types.
struct MatmulInput {
  const float* f32;  // [n_tokens, cols], or null when no kF32 weight reads it
  ActRowsQ8 q8;
};

// y[t * y_stride + r] = sum_c W[r, c] * x_t[c] for r in [r0, r1), t in [0, n_tokens).
// n_tokens == 1 is decode (matrix-vector), > 1 is prefill (matrix-matrix).
using MatmulFn = void (*)(const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens, uint32_t r0,
                          uint32_t r1, float* y, size_t y_stride);

// The element type of the KV cache (KernelTable::attention / kv_store for
// kF16, attention_i8kv / kv_store_i8 for kInt8).
enum class KvType : uint32_t { kF16 = 0, kInt8 = 1 };

constexpr const char* kv_type_name(KvType t) {
  switch (t) {
    case KvType::kF16: return "f16";
    case KvType::kInt8: return "int8";
  }
  return "unknown";
}

// int8 KV block layout (KvType::kInt8). Values are of each head's K and V
// rotated by a normalized Walsh-Hadamard matrix (ref::kv_rotate in
// kernels/ref/kernels_ref.h: it spreads K's outlier channels before the
// per-token scale is taken); attention rotates the query the same way and its
// output back. One K or V block of BT tokens
// (BT % kKvTile == 0), KH kv heads, head dim HD (HD % kKvTile == 0) is
//   values u8 [KH][BT / 16 tiles][16 * HD]   stored = q + 128, q in [-127, 127]
//   scales f32 [KH][BT]                     x ~= scale * q, per (token, kv head)
// so a block copy moves the scales with the values. Inside a tile of 16
// consecutive positions the values are interleaved for 4-way integer dot
// products (vpdpbusd, sdot):
//   K tile: [HD / 4][16 tokens][4 dims]  -- 4 dims of 16 tokens per 64 bytes;
//   V tile: [4 quads][HD][4 tokens]      -- 4 tokens of every dim together.
// The +128 offset makes K and V the unsigned operand of vpdpbusd (whose
// signed operand is the broadcast one); a kernel subtracts 128 * sum(q).
constexpr uint32_t kKvTile = 16;
constexpr size_t kv_i8_block_bytes(uint32_t block_tokens, uint32_t kv_heads, uint32_t head_dim) {
  return size_t(block_tokens) * kv_heads * (head_dim + sizeof(float));
}
static_assert(kv_i8_block_bytes(16, 1, 64) == 16 * 64 + 16 * 4, "i8 KV block: values then one f32 per token");

// Paged KV for one layer and one sequence. The pool holds fixed-size blocks;
// the block table lists this sequence's blocks in position order.
// kF16: K and V blocks are f16 [block_tokens, kv_heads, head_dim] at k_pool / v_pool.
// kInt8: K and V blocks are bytes in the layout above at k_i8 / v_i8.
struct PagedKv {
  const uint16_t* k_pool;       // kF16: block b starts at k_pool + b * block_stride
  const uint16_t* v_pool;
  size_t block_stride;          // kF16: elements between consecutive blocks; kInt8: bytes
  const uint32_t* block_table;  // [ceil(n_ctx / block_tokens)]
  uint32_t block_tokens;
  uint32_t kv_heads;
  uint32_t head_dim;
  KvType type = KvType::kF16;
  const uint8_t* k_i8 = nullptr;  // kInt8: block b starts at k_i8 + b * block_stride
  const uint8_t* v_i8 = nullptr;
};

// Byte offsets inside an int8 block (layout above) of token row r (r < BT),
// kv head kvh, dimension d.
inline size_t kv_i8_k_offset(const PagedKv& kv, uint32_t r, uint32_t kvh, uint32_t d) {
  const size_t tile = size_t(kvh) * (kv.block_tokens / kKvTile) + r / kKvTile;
  return tile * kKvTile * kv.head_dim + (d / 4) * 64 + (r % kKvTile) * 4 + d % 4;
}
inline size_t kv_i8_v_offset(const PagedKv& kv, uint32_t r, uint32_t kvh, uint32_t d) {
  const size_t tile = size_t(kvh) * (kv.block_tokens / kKvTile) + r / kKvTile;
  return tile * kKvTile * kv.head_dim + ((r % kKvTile) / 4) * (size_t(kv.head_dim) * 4) + size_t(d) * 4 + r % 4;
}
// Byte offset of the f32 scale of (row r, kv head kvh) inside a block.
inline size_t kv_i8_scale_offset(const PagedKv& kv, uint32_t r, uint32_t kvh) {
  return size_t(kv.block_tokens) * kv.kv_heads * kv.head_dim + (size_t(kvh) * kv.block_tokens + r) * sizeof(float);
}

// One query row for attention: heads [h0, h1) of a token attend to KV
// positions [first, n_ctx) (first > 0: a sliding window). GQA: query head h
// reads kv head h / (heads / kv_heads).
struct AttentionArgs {
  const float* q;      // [heads, head_dim] for this token
  float* out;          // [heads, head_dim]
  float* scratch;      // [n_ctx - first] scores for one head at a time
  uint32_t heads;
  uint32_t h0, h1;
  uint32_t n_ctx;      // causal: positions [first, n_ctx) are visible
  float scale;         // usually 1/sqrt(head_dim)
  uint32_t first = 0;  // 0, or the oldest position a sliding window keeps (< n_ctx)
};

struct KernelTable {
  const char* name;  // "scalar", "avx2", "neon", "neon-dotprod", ...

  // Quantize `n_rows` rows of x [n_rows, cols] (row stride `cols`) to the
  // ActRowsQ8 layout. cols % 32 == 0.
  void (*quantize_rows_q8)(const float* x, uint32_t n_rows, uint32_t cols, ActRowsQ8 out);

  // The matrix product for each weight type, indexed by WeightType (see
  // matmul_for). A null entry means this variant lacks the type: the runtime
  // refuses such a blob at init, naming the type and the variant (never a
  // silent misread through another type's kernel).
  // Every variant is batch-invariant: each token's outputs are computed the
  // same way whatever n_tokens, the call's other tokens and the row range
  // (one float evaluation order for decode and every prefill tile), so a
  // sequence's logits do not depend on what else shares a batched step.
  // tests/kernels/kernel_variants_test.cc checks it bit for bit.
  MatmulFn matmul[kWeightTypeCount];

  // out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i], n values; out may alias x.
  void (*rmsnorm)(const float* x, const float* weight, uint32_t n, float eps, float* out);

  // Rotate `n_heads` heads of `head_dim` floats in place by position angles:
  // cos_sin [rope_dim/2][2] = {cos(pos * theta_i), sin(pos * theta_i)}.
  // adjacent_pairs: pairs (2i, 2i+1); otherwise (i, i + rope_dim/2).
  void (*rope)(float* x, uint32_t n_heads, uint32_t head_dim, uint32_t rope_dim,
               const float* cos_sin, bool adjacent_pairs);

  // x[i] = exp(x[i] - max) / sum, n values.
  void (*softmax)(float* x, uint32_t n);

  // gate[i] = silu(gate[i]) * up[i], n values.
  void (*silu_mul)(float* gate, const float* up, uint32_t n);

  // Causal attention of one token's query heads over the paged KV cache.
  void (*attention)(const PagedKv& kv, const AttentionArgs& args);

  // Store k, v [kv_heads * head_dim] floats as f16 at `pos` of the block table.
  void (*kv_store)(const PagedKv& kv, uint16_t* k_pool, uint16_t* v_pool, uint32_t pos,
                   const float* k, const float* v);

  // gate[i] = gelu_tanh(gate[i]) * up[i], n values (Gemma's GeGLU).
  void (*gelu_mul)(float* gate, const float* up, uint32_t n);

  // int8 KV (KvType::kInt8, layout above). attention_i8kv: the query of each
  // head is rotated into the cache's basis and quantized to int8 (one scale,
  // symmetric absmax / 127), scores are integer dot products with K times
  // both scales, and V is accumulated from int8 per tile of 16 positions with
  // the tile's weights p * v_scale quantized to [0, 127]
  // (kernels/ref/attention_i8kv_ref.cc is the specification); the output is
  // rotated back. args.scratch is not used.
  // kv_store_i8 rotates and quantizes one token's k and v per kv head
  // (symmetric absmax / 127, one f32 scale each).
  // Needs block_tokens % 16 == 0 and head_dim % 16 == 0.
  void (*attention_i8kv)(const PagedKv& kv, const AttentionArgs& args) = nullptr;
  void (*kv_store_i8)(const PagedKv& kv, uint8_t* k_pool, uint8_t* v_pool, uint32_t pos, const float* k,
                      const float* v) = nullptr;
};

// The table's product for weight type t, or null if it has none.
inline MatmulFn matmul_for(const KernelTable& k, WeightType t) {
  return uint32_t(t) < kWeightTypeCount ? k.matmul[uint32_t(t)] : nullptr;
}

}  // namespace tern
