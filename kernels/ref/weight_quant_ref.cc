// Reference weight quantizers (packer) and row dequantizer (packer, runtime
// embedding lookup). Scales are rounded to f16 first and the rounded value is
// what q is computed against, so the stored (q, d[, m]) reconstruct the input
// as closely as the stored scale allows.
#include <cstring>

#include "kernels/weight_quant.h"

#include <cmath>

namespace tern {
namespace {

constexpr uint16_t kF16MaxFinite = 0x7bff;  // 65504

// f16 of a non-negative scale; saturates instead of becoming inf, so a huge
// group still dequantizes to finite values (the packer rejects such inputs).
inline uint16_t scale_to_f16(float s) {
  const uint16_t h = f32_to_f16(s);
  return (h & 0x7c00u) == 0x7c00u ? kF16MaxFinite : h;
}

// Round half away from zero, like roundf; inputs are bounded by the callers.
inline int round_to_int(float v) { return int(std::round(v)); }

}  // namespace

void quantize_row_int8_g32(const float* x, uint32_t n, int8_t* q, uint16_t* d) {
  for (uint32_t g = 0; g < n / kGroup; ++g) {
    const float* xg = x + size_t(g) * kGroup;
    float amax = 0.0f;
    for (uint32_t i = 0; i < kGroup; ++i) amax = std::fmax(amax, std::fabs(xg[i]));
    const uint16_t dh = scale_to_f16(amax / 127.0f);
    const float df = f16_to_f32(dh);
    d[g] = dh;
    int8_t* qg = q + size_t(g) * kGroup;
    for (uint32_t i = 0; i < kGroup; ++i) {
      int v = 0;
      if (df > 0.0f) {
        const float r = xg[i] / df;  // |r| <= ~127.07: f16 rounding of d can shrink it slightly
        v = round_to_int(std::fmin(std::fmax(r, -127.0f), 127.0f));
      }
      qg[i] = int8_t(v);
    }
  }
}

// int4 (levels 15) and int5 (levels 31, h != null): min/max scaling.
static void quantize_row_unsigned_g32(const float* x, uint32_t n, int levels, uint8_t* q, uint8_t* h, uint16_t* dm) {
  for (uint32_t g = 0; g < n / kGroup; ++g) {
    const float* xg = x + size_t(g) * kGroup;
    float mn = xg[0], mx = xg[0];
    for (uint32_t i = 1; i < kGroup; ++i) {
      mn = std::fmin(mn, xg[i]);
      mx = std::fmax(mx, xg[i]);
    }
    const uint16_t dh = scale_to_f16((mx - mn) / float(levels));
    uint16_t mh = f32_to_f16(mn);
    if ((mh & 0x7c00u) == 0x7c00u) mh = uint16_t((mh & 0x8000u) | kF16MaxFinite);
    const float df = f16_to_f32(dh);
    const float mf = f16_to_f32(mh);
    dm[2 * g + 0] = dh;
    dm[2 * g + 1] = mh;
    uint8_t nib[kGroup];
    for (uint32_t i = 0; i < kGroup; ++i) {
      int v = 0;
      if (df > 0.0f) {
        const float r = (xg[i] - mf) / df;
        v = round_to_int(std::fmin(std::fmax(r, 0.0f), float(levels)));
      }
      nib[i] = uint8_t(v);
    }
    // Byte j: element j in the low nibble, element j + 16 in the high nibble (GGML order).
    uint8_t* qg = q + size_t(g) * (kGroup / 2);
    for (uint32_t j = 0; j < kGroup / 2; ++j) qg[j] = uint8_t((nib[j] & 0x0f) | ((nib[j + 16] & 0x0f) << 4));
    if (h != nullptr) {
      uint8_t* hg = h + size_t(g) * (kGroup / 8);
      for (uint32_t b = 0; b < kGroup / 8; ++b) {
        uint8_t bits = 0;
        for (uint32_t i = 0; i < 8; ++i) bits = uint8_t(bits | ((nib[8 * b + i] >> 4) & 1u) << i);
        hg[b] = bits;
      }
    }
  }
}

void quantize_row_int4_g32(const float* x, uint32_t n, uint8_t* q, uint16_t* dm) {
  quantize_row_unsigned_g32(x, n, 15, q, nullptr, dm);
}

void quantize_row_int5_g32(const float* x, uint32_t n, uint8_t* q, uint8_t* h, uint16_t* dm) {
  quantize_row_unsigned_g32(x, n, 31, q, h, dm);
}

namespace {

// Both interleaved types permute whole 4-byte units of a row (8 per int8
// group, 4 per int4 group): unit u of row r goes to its block at u * 64 +
// 4 (r % 16). Scales: `per` f16 values per row and group (1: d; 2: d, m),
// stored per block and group as `per` runs of 16 (all d, then all m).
void interleave(const uint8_t* q, const uint16_t* s, uint32_t rows, uint32_t row_bytes, uint32_t groups, uint32_t per,
                uint8_t* out_q, uint16_t* out_s) {
  for (uint32_t r = 0; r < rows; ++r) {
    const uint32_t b = r / kInterleaveRows, i = r % kInterleaveRows;
    uint8_t* blk = out_q + size_t(b) * row_bytes * kInterleaveRows;
    for (uint32_t u = 0; u < row_bytes / 4; ++u) std::memcpy(blk + size_t(u) * 64 + 4 * i, q + size_t(r) * row_bytes + 4 * u, 4);
    for (uint32_t g = 0; g < groups; ++g)
      for (uint32_t k = 0; k < per; ++k)
        out_s[((size_t(b) * groups + g) * per + k) * kInterleaveRows + i] = s[(size_t(r) * groups + g) * per + k];
  }
}

void deinterleave(const WeightMatrix& w, uint32_t row_bytes, uint32_t per, uint32_t r, uint32_t n, uint8_t* q,
                  uint16_t* s) {
  const uint32_t groups = w.cols / kGroup;
  const uint8_t* src = static_cast<const uint8_t*>(w.data);
  for (uint32_t j = 0; j < n; ++j) {
    const uint32_t b = (r + j) / kInterleaveRows, i = (r + j) % kInterleaveRows;
    const uint8_t* blk = src + size_t(b) * row_bytes * kInterleaveRows;
    for (uint32_t u = 0; u < row_bytes / 4; ++u) std::memcpy(q + size_t(j) * row_bytes + 4 * u, blk + size_t(u) * 64 + 4 * i, 4);
    for (uint32_t g = 0; g < groups; ++g)
      for (uint32_t k = 0; k < per; ++k)
        s[(size_t(j) * groups + g) * per + k] = w.scales[((size_t(b) * groups + g) * per + k) * kInterleaveRows + i];
  }
}

}  // namespace

void interleave_rows_int8_g32(const int8_t* q, const uint16_t* d, uint32_t rows, uint32_t cols, int8_t* out_q,
                              uint16_t* out_d) {
  interleave(reinterpret_cast<const uint8_t*>(q), d, rows, cols, cols / kGroup, 1, reinterpret_cast<uint8_t*>(out_q),
             out_d);
}

void deinterleave_rows_int8_g32(const WeightMatrix& w, uint32_t r, uint32_t n, int8_t* q, uint16_t* d) {
  deinterleave(w, w.cols, 1, r, n, reinterpret_cast<uint8_t*>(q), d);
}

void interleave_rows_int4_g32(const uint8_t* q, const uint16_t* dm, uint32_t rows, uint32_t cols, uint8_t* out_q,
                              uint16_t* out_dm) {
  interleave(q, dm, rows, cols / 2, cols / kGroup, 2, out_q, out_dm);
}

void deinterleave_rows_int4_g32(const WeightMatrix& w, uint32_t r, uint32_t n, uint8_t* q, uint16_t* dm) {
  deinterleave(w, w.cols / 2, 2, r, n, q, dm);
}

void dequantize_row(const WeightMatrix& w, uint32_t row, float* out) {
  const uint32_t cols = w.cols;
  const uint32_t groups = cols / kGroup;
  switch (w.type) {
    case WeightType::kF32: {
      const float* src = static_cast<const float*>(w.data) + size_t(row) * cols;
      for (uint32_t c = 0; c < cols; ++c) out[c] = src[c];
      return;
    }
    case WeightType::kInt8G32: {
      const int8_t* qr = static_cast<const int8_t*>(w.data) + size_t(row) * cols;
      const uint16_t* dr = w.scales + size_t(row) * groups;
      for (uint32_t g = 0; g < groups; ++g) {
        const float d = f16_to_f32(dr[g]);
        for (uint32_t i = 0; i < kGroup; ++i) out[g * kGroup + i] = d * float(qr[g * kGroup + i]);
      }
      return;
    }
    case WeightType::kInt8G32R16: {  // the embedding row of a tied head: gather it from its block
      const uint32_t b = row / kInterleaveRows, i = row % kInterleaveRows;
      const int8_t* blk = static_cast<const int8_t*>(w.data) + size_t(b) * cols * kInterleaveRows;
      const uint16_t* db = w.scales + size_t(b) * groups * kInterleaveRows;
      for (uint32_t c = 0; c < cols; ++c) {
        out[c] = f16_to_f32(db[(c / kGroup) * kInterleaveRows + i]) * float(blk[size_t(c / 4) * 64 + 4 * i + c % 4]);
      }
      return;
    }
    case WeightType::kInt4G32R16: {  // gathered from its block: 4-byte unit u of the row at u * 64 + 4 i
      const uint32_t b = row / kInterleaveRows, i = row % kInterleaveRows;
      const uint8_t* blk = static_cast<const uint8_t*>(w.data) + size_t(b) * (cols / 2) * kInterleaveRows;
      const uint16_t* dmb = w.scales + size_t(b) * groups * 2 * kInterleaveRows;
      for (uint32_t g = 0; g < groups; ++g) {
        const float d = f16_to_f32(dmb[(size_t(g) * 2 + 0) * kInterleaveRows + i]);
        const float m = f16_to_f32(dmb[(size_t(g) * 2 + 1) * kInterleaveRows + i]);
        for (uint32_t j = 0; j < kGroup / 2; ++j) {
          const uint8_t v = blk[(size_t(g) * 4 + j / 4) * 64 + 4 * i + j % 4];
          out[g * kGroup + j] = d * float(v & 0x0f) + m;
          out[g * kGroup + j + 16] = d * float(v >> 4) + m;
        }
      }
      return;
    }
    case WeightType::kInt4G32: {
      const uint8_t* qr = static_cast<const uint8_t*>(w.data) + size_t(row) * (cols / 2);
      const uint16_t* dmr = w.scales + size_t(row) * groups * 2;
      for (uint32_t g = 0; g < groups; ++g) {
        const float d = f16_to_f32(dmr[2 * g + 0]);
        const float m = f16_to_f32(dmr[2 * g + 1]);
        const uint8_t* qg = qr + g * (kGroup / 2);
        float* og = out + g * kGroup;
        for (uint32_t j = 0; j < kGroup / 2; ++j) {
          og[j] = d * float(qg[j] & 0x0f) + m;
          og[j + 16] = d * float(qg[j] >> 4) + m;
        }
      }
      return;
    }
    case WeightType::kInt5G32: {
      const uint8_t* qr = static_cast<const uint8_t*>(w.data) + size_t(row) * (cols / 2);
      const uint8_t* hr = int5_high_bits(w) + size_t(row) * (cols / 8);
      const uint16_t* dmr = w.scales + size_t(row) * groups * 2;
      for (uint32_t g = 0; g < groups; ++g) {
        const float d = f16_to_f32(dmr[2 * g + 0]);
        const float m = f16_to_f32(dmr[2 * g + 1]);
        const uint8_t* qg = qr + g * (kGroup / 2);
        const uint8_t* hg = hr + g * (kGroup / 8);
        float* og = out + g * kGroup;
        for (uint32_t j = 0; j < kGroup; ++j) {
          const uint32_t nibble = j < kGroup / 2 ? qg[j] & 0x0f : qg[j - kGroup / 2] >> 4;
          og[j] = d * float(nibble | (((hg[j / 8] >> (j % 8)) & 1u) << 4)) + m;
        }
      }
      return;
    }
  }
}

}  // namespace tern
