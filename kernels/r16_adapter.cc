// De-interleaving adapter for kInt8G32R16 (see r16_adapter.h).
#include "kernels/r16_adapter.h"

#include "kernels/ref/kernels_ref.h"
#include "kernels/weight_quant.h"

namespace tern {

namespace {
// Rows are copied while they fit this buffer (16 rows of up to 4,096
// columns; fewer, down to one, for wider matrices), small enough for any
// worker's stack and to stay in L1/L2 while the row kernel reads them.
constexpr size_t kBufferBytes = 64 * 1024;
}  // namespace

void matmul_i8g32r16_via_rows(MatmulFn rows_kernel, const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens,
                              uint32_t r0, uint32_t r1, float* y, size_t y_stride) {
  if (w.cols > kBufferBytes) {  // not one row fits: the reference reads the interleave directly
    ref::matmul_i8g32r16_q8r(w, x, n_tokens, r0, r1, y, y_stride);
    return;
  }
  alignas(64) int8_t q[kBufferBytes];
  alignas(64) uint16_t d[kBufferBytes / kGroup];
  const uint32_t fit = uint32_t(kBufferBytes / w.cols);
  const uint32_t chunk = fit < kInterleaveRows ? fit : kInterleaveRows;
  for (uint32_t r = r0; r < r1; r += chunk) {
    const uint32_t n = r1 - r < chunk ? r1 - r : chunk;
    deinterleave_rows_int8_g32(w, r, n, q, d);
    WeightMatrix rows;
    rows.type = WeightType::kInt8G32;
    rows.rows = n;
    rows.cols = w.cols;
    rows.data = q;
    rows.scales = d;
    rows_kernel(rows, x, n_tokens, 0, n, y + r, y_stride);
  }
}

void matmul_u4g32r16_via_rows(MatmulFn rows_kernel, const WeightMatrix& w, const MatmulInput& x, uint32_t n_tokens,
                              uint32_t r0, uint32_t r1, float* y, size_t y_stride) {
  const size_t row_bytes = w.cols / 2;
  if (row_bytes > kBufferBytes) {
    ref::matmul_u4g32r16_q8r(w, x, n_tokens, r0, r1, y, y_stride);
    return;
  }
  alignas(64) uint8_t q[kBufferBytes];
  alignas(64) uint16_t dm[kBufferBytes / (kGroup / 2) * 2];
  const uint32_t fit = uint32_t(kBufferBytes / row_bytes);
  const uint32_t chunk = fit < kInterleaveRows ? fit : kInterleaveRows;
  for (uint32_t r = r0; r < r1; r += chunk) {
    const uint32_t n = r1 - r < chunk ? r1 - r : chunk;
    deinterleave_rows_int4_g32(w, r, n, q, dm);
    WeightMatrix rows;
    rows.type = WeightType::kInt4G32;
    rows.rows = n;
    rows.cols = w.cols;
    rows.data = q;
    rows.scales = dm;
    rows_kernel(rows, x, n_tokens, 0, n, y + r, y_stride);
  }
}

}  // namespace tern
