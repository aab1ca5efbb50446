// Quantization groups and the scalar float16 conversions every kernel shares.
// Mirrors the weight layouts of runtime/blob_format.h (kInt8G32, kInt4G32) and
// defines the quantized-activation layout the integer dot products read.
#pragma once
#include <cstdint>
#include <cstring>

namespace tern {

// Weights and activations are quantized in groups of 32 along the reduction
// dimension: one scale per 32 values keeps the int32 accumulators exact and the
// float work to one multiply-add per group.
constexpr uint32_t kGroup = 32;

// Activations quantized for the integer dot products: two int8 planes per
// row, a coarse one and the rounding residual of the coarse one, so that
//   x ~= d * (kResidualScale * q + r)        (error <= d / 2 per value)
// One int8 plane alone (x ~= 254 d q) costs about 2.5% top-1 agreement with
// the float reference on SmolLM2; the residual plane brings the activations to
// ~16-bit accuracy while every product stays an exact int8 x int8 (or
// u4 x int8) integer dot product. Per group of 32 the kernels compute
//   isum = kResidualScale * sum(w * q) + sum(w * r)        (exact in int32)
// and scale it once by d_w * d.
//   q[cols]       int8 in [-127, 127] (never -128, so SIMD sign tricks are exact)
//   r[cols]       int8 in [-127, 127], residual plane
//   d[cols/32]    float unit scale: amax / (127 * kResidualScale)
//   s[cols/32]    float d * (kResidualScale * sum(q) + sum(r)) ~= sum(x): lets
//                 int4 weights (w = dw * q4 + m) add m * sum(x)
// Rows of a batch are `cols` bytes / `cols/32` floats apart.
constexpr int32_t kResidualScale = 254;
// A group whose amax is below this quantizes as all zeros (q = r = 0,
// d = s = 0), in every variant: the scales and products of smaller groups
// would involve denormals (or overflow 127 / amax to inf), which SIMD units
// may flush (ARMv7 NEON always does). From 2^-100 up every scale and
// intermediate is a normal float, and a denormal x quantizes to q = r = 0
// whether or not it is flushed (|x * 127 / amax| < 2^-19).
constexpr float kTinyGroupAmax = 0x1p-100f;
struct ActRowsQ8 {
  int8_t* q;
  int8_t* r;
  float* d;
  float* s;
  uint32_t cols;
};

// IEEE binary16 <-> binary32, round-to-nearest-even; exact for every f16.
inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) { mant <<= 1; --exp; }
      mant &= 0x3ffu;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return uint16_t(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0));  // inf/nan
  if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {  // below the smallest normal f16: subnormal or zero
    if (abs < 0x33000000u) return sign;  // < 2^-25 rounds to zero
    const uint32_t e = abs >> 23;
    const uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14..24
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t r = ((abs >> 13) - ((127 - 15) << 10));
  const uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return uint16_t(sign | r);
}

}  // namespace tern
