// AVX2 quantized matmul, kInt8G32 and kInt4G32 weights x int8 activations.
//
// Inner step for one group of 32 (one weight row r, one token t):
//   int8 weights: maddubs(|w|, sign(x, w))  -- u8 x s8 -> 16 x i16 pair sums
//   int4 weights: maddubs(q4, x)             -- q4 in 0..15 is already unsigned
//   then madd_epi16 with ones -> 8 x i32 partial sums of the group (each exact:
//   |pair| <= 2*127*127 < 2^15), converted to float (exact: < 2^24) and FMA'd
//   with the combined scale d_w[r,g] * x.d[t,g] into an 8-lane accumulator.
// So every integer partial of the reference's group sum is exact; only the
// float accumulation order differs (lanes, then a horizontal sum per output).
// For int4 the m_w[r,g] * x.s[t,g] term is FMA'd 8 groups at a time into the
// same accumulator.
//
// Register tiles: decode (n_tokens == 1) runs 4 rows x 1 token so four weight
// streams are in flight; prefill runs 2 rows x 4 tokens so each weight group
// is loaded (and, for int8, its |w| computed) once and used for 4 tokens.
#include "kernels/avx2/kernels_avx2.h"

namespace tern {
namespace avx2 {

namespace {

constexpr uint32_t kChunk = 8;  // groups whose scales are converted together

// Up to 8 consecutive floats (zero past n) as a vector. The partial path is
// a plain loop (no memcpy call) so the accumulators stay in registers.
inline __m256 load_partial(const float* p, uint32_t n) {
  if (n == kChunk) return _mm256_loadu_ps(p);
  alignas(32) float buf[kChunk] = {};
  for (uint32_t i = 0; i < n; ++i) buf[i] = p[i];
  return _mm256_load_ps(buf);
}

// f16 scales of groups [g0, g0+n) of one row as floats (zero past n).
// int8: ws = d[groups]; int4: ws = {d, m}[groups], split into d and m.
inline __m256 load_scales_int8(const uint16_t* ws, uint32_t n) {
  if (n == kChunk) return load_f16x8(ws);
  alignas(32) float buf[kChunk] = {};
  for (uint32_t i = 0; i < n; ++i) buf[i] = _cvtsh_ss(ws[i]);
  return _mm256_load_ps(buf);
}

inline void load_scales_int4(const uint16_t* ws, uint32_t n, __m256* d, __m256* m) {
  if (n != kChunk) {
    alignas(32) float bd[kChunk] = {}, bm[kChunk] = {};
    for (uint32_t i = 0; i < n; ++i) {
      bd[i] = _cvtsh_ss(ws[2 * i]);
      bm[i] = _cvtsh_ss(ws[2 * i + 1]);
    }
    *d = _mm256_load_ps(bd);
    *m = _mm256_load_ps(bm);
    return;
  }
  const __m256 a = load_f16x8(ws);      // d0 m0 d1 m1 | d2 m2 d3 m3
  const __m256 b = load_f16x8(ws + 8);  // d4 m4 d5 m5 | d6 m6 d7 m7
  // shuffle gives d0 d1 d4 d5 | d2 d3 d6 d7; the 64-bit permute restores order.
  *d = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xd8));
  *m = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xdd)), 0xd8));
}

// 32 int4 weights of one group in element order (low nibbles = 0..15, high =
// 16..31): the 16 bytes go to both 128-bit lanes, the upper lane shifted by 4.
inline __m256i load_q4(const uint8_t* p) {
  const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m256i shifted = _mm256_srlv_epi64(b, _mm256_setr_epi64x(0, 0, 4, 4));
  return _mm256_and_si256(shifted, _mm256_set1_epi8(0x0f));
}

// One R x T tile: rows [r, r+R), tokens [t, t+T), all groups.
template <bool kInt4, int R, int T>
void tile(const WeightMatrix& w, const ActRowsQ8& x, uint32_t r, uint32_t t, float* y,
          size_t y_stride) {
  const uint32_t groups = w.cols / kGroup;
  const size_t row_bytes = kInt4 ? w.cols / 2 : w.cols;
  const size_t row_scales = kInt4 ? 2 * groups : groups;
  const uint8_t* wq[R];
  const uint16_t* ws[R];
  for (int i = 0; i < R; ++i) {
    wq[i] = static_cast<const uint8_t*>(w.data) + (r + i) * row_bytes;
    ws[i] = w.scales + (r + i) * row_scales;
  }
  const int8_t* xq[T];
  const float* xd[T];
  const float* xs[T];
  for (int j = 0; j < T; ++j) {
    xq[j] = x.q + size_t(t + j) * x.cols;
    xd[j] = x.d + size_t(t + j) * groups;
    xs[j] = x.s + size_t(t + j) * groups;
  }
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R][T];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < T; ++j) acc[i][j] = _mm256_setzero_ps();

  for (uint32_t g0 = 0; g0 < groups; g0 += kChunk) {
    const uint32_t n = groups - g0 < kChunk ? groups - g0 : kChunk;
    // Combined scales d_w * x.d for this chunk: [R][T][8].
    alignas(32) float sc[R][T][kChunk];
    __m256 xd8[T];
    for (int j = 0; j < T; ++j) xd8[j] = load_partial(xd[j] + g0, n);
    for (int i = 0; i < R; ++i) {
      __m256 d, m;
      if (kInt4) {
        load_scales_int4(ws[i] + 2 * g0, n, &d, &m);
        for (int j = 0; j < T; ++j)
          acc[i][j] = _mm256_fmadd_ps(m, load_partial(xs[j] + g0, n), acc[i][j]);
      } else {
        d = load_scales_int8(ws[i] + g0, n);
      }
      for (int j = 0; j < T; ++j) _mm256_store_ps(sc[i][j], _mm256_mul_ps(d, xd8[j]));
    }
    for (uint32_t gi = 0; gi < n; ++gi) {
      const uint32_t g = g0 + gi;
      __m256i wv[R], aw[R];
      for (int i = 0; i < R; ++i) {
        if (kInt4) {
          wv[i] = load_q4(wq[i] + g * (kGroup / 2));
        } else {
          wv[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wq[i] + g * kGroup));
          aw[i] = _mm256_sign_epi8(wv[i], wv[i]);  // |w|; w != -128
        }
      }
      for (int j = 0; j < T; ++j) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[j] + g * kGroup));
        for (int i = 0; i < R; ++i) {
          const __m256i p16 = kInt4 ? _mm256_maddubs_epi16(wv[i], xv)
                                    : _mm256_maddubs_epi16(aw[i], _mm256_sign_epi8(xv, wv[i]));
          const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
          acc[i][j] = _mm256_fmadd_ps(p, _mm256_broadcast_ss(&sc[i][j][gi]), acc[i][j]);
        }
      }
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < T; ++j) y[(t + j) * y_stride + r + i] = hsum(acc[i][j]);
}

template <bool kInt4, int R>
void tile_tokens(const WeightMatrix& w, const ActRowsQ8& x, uint32_t nt, uint32_t r, uint32_t t,
                 float* y, size_t y_stride) {
  switch (nt) {
    case 1: tile<kInt4, R, 1>(w, x, r, t, y, y_stride); break;
    case 2: tile<kInt4, R, 2>(w, x, r, t, y, y_stride); break;
    case 3: tile<kInt4, R, 3>(w, x, r, t, y, y_stride); break;
    default: tile<kInt4, R, 4>(w, x, r, t, y, y_stride); break;
  }
}

template <bool kInt4>
void matmul_typed(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0,
                  uint32_t r1, float* y, size_t y_stride) {
  if (n_tokens == 1) {  // decode: matrix-vector, 4 weight rows at a time
    uint32_t r = r0;
    for (; r + 4 <= r1; r += 4) tile<kInt4, 4, 1>(w, x, r, 0, y, y_stride);
    for (; r < r1; ++r) tile<kInt4, 1, 1>(w, x, r, 0, y, y_stride);
    return;
  }
  // prefill: 2 rows x 4 tokens tiles; tokens outer so a token block's
  // activations stay in L1 while the weights stream through.
  for (uint32_t t = 0; t < n_tokens; t += 4) {
    const uint32_t nt = n_tokens - t < 4 ? n_tokens - t : 4;
    uint32_t r = r0;
    for (; r + 2 <= r1; r += 2) tile_tokens<kInt4, 2>(w, x, nt, r, t, y, y_stride);
    if (r < r1) tile_tokens<kInt4, 1>(w, x, nt, r, t, y, y_stride);
  }
}

}  // namespace

void matmul_q8(const WeightMatrix& w, const ActRowsQ8& x, uint32_t n_tokens, uint32_t r0,
               uint32_t r1, float* y, size_t y_stride) {
  if (w.type == WeightType::kInt4G32)
    matmul_typed<true>(w, x, n_tokens, r0, r1, y, y_stride);
  else
    matmul_typed<false>(w, x, n_tokens, r0, r1, y, y_stride);
}

}  // namespace avx2
}  // namespace tern
