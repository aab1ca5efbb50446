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
enum class WeightType : uint32_t { kF32 = 0, kInt8G32 = 1, kInt4G32 = 2 };
struct WeightMatrix {
  WeightType type;
  uint32_t rows;
  uint32_t cols;           // multiple of kGroup for the quantized types
  const void* data;        // kF32: float[rows][cols]; quantized: q plane
  const uint16_t* scales;  // kInt8G32: f16 d[rows][cols/32]; kInt4G32: f16 {d,m}[rows][cols/32]; kF32: null
};

// Paged KV for one layer and one sequence. The pool holds fixed-size blocks;
// the block table lists this sequence's blocks in position order.
// K and V blocks are f16 [block_tokens, kv_heads, head_dim].
struct PagedKv {
  const uint16_t* k_pool;       // block b starts at k_pool + b * block_stride
  const uint16_t* v_pool;
  size_t block_stride;          // elements between consecutive blocks
  const uint32_t* block_table;  // [ceil(n_ctx / block_tokens)]
  uint32_t block_tokens;
  uint32_t kv_heads;
  uint32_t head_dim;
};

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

  // y[t * y_stride + r] = sum_c W[r, c] * x_t[c] for r in [r0, r1), t in [0, n_tokens).
  // n_tokens == 1 is decode (matrix-vector), > 1 is prefill (matrix-matrix).
  // x is the quantized activations, n_tokens rows. W is kInt8G32 or kInt4G32.
  void (*matmul_q8)(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens,
                    uint32_t r0, uint32_t r1, float* y, size_t y_stride);

  // Float matrix product for kF32 weights (small models, tests):
  // y[t * y_stride + r] = sum_c W[r, c] * x[t * cols + c].
  void (*matmul_f32)(const WeightMatrix& w, const float* x, uint32_t n_tokens,
                     uint32_t r0, uint32_t r1, float* y, size_t y_stride);

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
};

}  // namespace tern
