// The AArch64 NEON intrinsics that kernels/neon/matmul_q8_neoni8mm.cc uses,
// in plain C++ with their architectural semantics (Arm ARM / ACLE), so that
// file compiles on any host as the test-only "neon-i8mm-emulated" table
// (kernels/neon/emulated/). Only the intrinsics that file calls are here;
// vector types are structs of lanes (lane 0 first, as little-endian
// AArch64 stores them), integer arithmetic wraps as the instructions do, and
// float arithmetic is one IEEE operation per lane in the default rounding
// mode (round to nearest even, no flush to zero: Linux's FPCR default).
//
// Everything is in an unnamed namespace inside tern::neon_emulation: nothing
// here has external linkage, so no inline copy can be merged with another
// object's, and the names never meet <arm_neon.h>'s (the emulated file does
// not include it, and its lookups find these first).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tern {
namespace neon_emulation {
namespace {

template <class T, int N>
struct Vec {
  T v[N];
};
using int8x16_t = Vec<int8_t, 16>;
using uint8x16_t = Vec<uint8_t, 16>;
using int32x4_t = Vec<int32_t, 4>;
using uint32x4_t = Vec<uint32_t, 4>;
using int64x2_t = Vec<int64_t, 2>;
using float32x4_t = Vec<float, 4>;

// Bit casts (vreinterpretq_*): the same 16 bytes.
template <class To, class From>
inline To bits_as(const From& a) {
  static_assert(sizeof(To) == 16 && sizeof(From) == 16, "128-bit vectors");
  To r;
  std::memcpy(&r, &a, 16);
  return r;
}
inline uint8x16_t vreinterpretq_u8_u32(uint32x4_t a) { return bits_as<uint8x16_t>(a); }
inline int8x16_t vreinterpretq_s8_u8(uint8x16_t a) { return bits_as<int8x16_t>(a); }
inline int64x2_t vreinterpretq_s64_s8(int8x16_t a) { return bits_as<int64x2_t>(a); }
inline int8x16_t vreinterpretq_s8_s64(int64x2_t a) { return bits_as<int8x16_t>(a); }

// Loads and stores (no alignment required).
inline int8x16_t vld1q_s8(const int8_t* p) {
  int8x16_t r;
  std::memcpy(r.v, p, 16);
  return r;
}
inline uint8x16_t vld1q_u8(const uint8_t* p) {
  uint8x16_t r;
  std::memcpy(r.v, p, 16);
  return r;
}
inline float32x4_t vld1q_f32(const float* p) {
  float32x4_t r;
  std::memcpy(r.v, p, 16);
  return r;
}
inline void vst1q_s8(int8_t* p, int8x16_t a) { std::memcpy(p, a.v, 16); }
inline void vst1q_f32(float* p, float32x4_t a) { std::memcpy(p, a.v, 16); }

// Broadcasts.
template <class V, class T>
inline V dup(T x) {
  V r;
  for (auto& lane : r.v) lane = x;
  return r;
}
inline int8x16_t vdupq_n_s8(int8_t x) { return dup<int8x16_t>(x); }
inline uint8x16_t vdupq_n_u8(uint8_t x) { return dup<uint8x16_t>(x); }
inline int32x4_t vdupq_n_s32(int32_t x) { return dup<int32x4_t>(x); }
inline uint32x4_t vdupq_n_u32(uint32_t x) { return dup<uint32x4_t>(x); }
inline float32x4_t vdupq_n_f32(float x) { return dup<float32x4_t>(x); }

// Bytes.
inline uint8x16_t vandq_u8(uint8x16_t a, uint8x16_t b) {
  for (int i = 0; i < 16; ++i) a.v[i] = uint8_t(a.v[i] & b.v[i]);
  return a;
}
// USHR #n, 1 <= n <= 8 (n = 8 gives 0).
inline uint8x16_t vshrq_n_u8(uint8x16_t a, int n) {
  for (int i = 0; i < 16; ++i) a.v[i] = uint8_t(n >= 8 ? 0 : a.v[i] >> n);
  return a;
}
// BSL: bits of a where mask is 1, of b where it is 0.
inline uint8x16_t vbslq_u8(uint8x16_t mask, uint8x16_t a, uint8x16_t b) {
  for (int i = 0; i < 16; ++i) a.v[i] = uint8_t((mask.v[i] & a.v[i]) | (~mask.v[i] & b.v[i]));
  return a;
}
// CMTST: all ones where a & b != 0.
inline uint8x16_t vtstq_u8(uint8x16_t a, uint8x16_t b) {
  for (int i = 0; i < 16; ++i) a.v[i] = (a.v[i] & b.v[i]) ? 0xff : 0x00;
  return a;
}
// TBL (one table register): t[idx] for idx < 16, else 0.
inline uint8x16_t vqtbl1q_u8(uint8x16_t t, uint8x16_t idx) {
  uint8x16_t r;
  for (int i = 0; i < 16; ++i) r.v[i] = idx.v[i] < 16 ? t.v[idx.v[i]] : 0;
  return r;
}

// ZIP1 / ZIP2 on 64-bit lanes: {a0, b0} and {a1, b1}.
inline int64x2_t vzip1q_s64(int64x2_t a, int64x2_t b) { return int64x2_t{{a.v[0], b.v[0]}}; }
inline int64x2_t vzip2q_s64(int64x2_t a, int64x2_t b) { return int64x2_t{{a.v[1], b.v[1]}}; }

// 32-bit integers, modulo 2^32 like the instructions.
inline int32_t wrap32(int64_t x) { return int32_t(uint32_t(uint64_t(x))); }
// MLA (by element): a + b * c.
inline int32x4_t vmlaq_n_s32(int32x4_t a, int32x4_t b, int32_t c) {
  for (int i = 0; i < 4; ++i) a.v[i] = wrap32(int64_t(a.v[i]) + int64_t(b.v[i]) * c);
  return a;
}
// SMMLA: a and b are 2x8 int8 matrices (row i = bytes 8i..8i+7), r a 2x2
// int32 matrix (lane 2i + j); r[i][j] += sum_k a[i][k] * b[j][k], i.e.
// r += a * transpose(b).
inline int32x4_t vmmlaq_s32(int32x4_t r, int8x16_t a, int8x16_t b) {
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      int64_t sum = r.v[2 * i + j];
      for (int k = 0; k < 8; ++k) sum += int32_t(a.v[8 * i + k]) * int32_t(b.v[8 * j + k]);
      r.v[2 * i + j] = wrap32(sum);
    }
  return r;
}

// Floats: SCVTF (round to nearest even) and single-rounding FMUL / FADD.
inline float32x4_t vcvtq_f32_s32(int32x4_t a) {
  float32x4_t r;
  for (int i = 0; i < 4; ++i) r.v[i] = float(a.v[i]);
  return r;
}
inline float32x4_t vmulq_f32(float32x4_t a, float32x4_t b) {
  for (int i = 0; i < 4; ++i) a.v[i] = a.v[i] * b.v[i];
  return a;
}
inline float32x4_t vaddq_f32(float32x4_t a, float32x4_t b) {
  for (int i = 0; i < 4; ++i) a.v[i] = a.v[i] + b.v[i];
  return a;
}

}  // namespace
}  // namespace neon_emulation
}  // namespace tern
