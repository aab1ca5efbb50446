// De-interleaving adapter for kInt8G32R16 and kInt4G32R16 (see r16_adapter.h).
#include "kernels/r16_adapter.h"

#include "kernels/ref/kernels_ref.h"
#include "kernels/weight_quant.h"

namespace tern {

namespace {

// Rows are copied while they fit this buffer (16 rows of up to 4,096 int8
// or 8,192 int4 columns; fewer, down to one, for wider matrices), small
// enough for any worker's stack and to stay in L1/L2 while the row kernel
// reads them.
constexpr size_t kBufferBytes = 64 * 1024;

// Per interleaved type: the row layout's type, a row's q bytes per group of
// 32 and the de-interleaver.
struct Layout {
  WeightType rows_type;
  uint32_t q_bytes_per_32;  // 32 int8, 16 int4
  void (*deinterleave)(const WeightMatrix&, uint32_t r, uint32_t n, uint8_t* q, uint16_t* s);
  MatmulFn reference;  // for a row wider than the buffer
};

void deinterleave_int8(const WeightMatrix& w, uint32_t r, uint32_t n, uint8_t* q, uint16_t* s) {
  deinterleave_rows_int8_g32(w, r, n, reinterpret_cast<int8_t*>(q), s);
}

void via_rows(const Layout& l, MatmulFn rows_kernel, const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens,
              uint32_t r0, uint32_t r1, float* y, size_t y_stride) {
  const size_t row_bytes = size_t(w.cols / kGroup) * l.q_bytes_per_32;
  if (row_bytes > kBufferBytes) {  // not one row fits: the reference reads the interleave directly
    l.reference(w, x, n_tokens, r0, r1, y, y_stride);
    return;
  }
  alignas(64) uint8_t q[kBufferBytes];
  alignas(64) uint16_t s[kBufferBytes / 16 * 2];  // int4: 2 scales per 16 bytes; int8: 1 per 32
  const uint32_t fit = uint32_t(kBufferBytes / row_bytes);
  const uint32_t chunk = fit < kInterleaveRows ? fit : kInterleaveRows;
  for (uint32_t r = r0; r < r1; r += chunk) {
    const uint32_t n = r1 - r < chunk ? r1 - r : chunk;
    l.deinterleave(w, r, n, q, s);
    WeightMatrix rows;
    rows.type = l.rows_type;
    rows.rows = n;
    rows.cols = w.cols;
    rows.data = q;
    rows.scales = s;
    rows_kernel(rows, x, n_tokens, 0, n, y + r, y_stride);
  }
}

constexpr Layout kInt8Layout{WeightType::kInt8G32, 32, deinterleave_int8, ref::matmul_i8g32r16_q8r};
constexpr Layout kInt4Layout{WeightType::kInt4G32, 16, deinterleave_rows_int4_g32, ref::matmul_u4g32r16_q8r};

}  // namespace

void matmul_i8g32r16_via_rows(MatmulFn rows_kernel, const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens,
                              uint32_t r0, uint32_t r1, float* y, size_t y_stride) {
  via_rows(kInt8Layout, rows_kernel, w, x, n_tokens, r0, r1, y, y_stride);
}

void matmul_u4g32r16_via_rows(MatmulFn rows_kernel, const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens,
                              uint32_t r0, uint32_t r1, float* y, size_t y_stride) {
  via_rows(kInt4Layout, rows_kernel, w, x, n_tokens, r0, r1, y, y_stride);
}

}  // namespace tern
