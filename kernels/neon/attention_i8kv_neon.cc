// int8 KV attention, base AArch64 NEON: the 4-way dot product as vmull_s8
// (int16 products), a pairwise add (two products of int8 <= 127 in magnitude
// stay within int16) and a pairwise accumulate into int32. See
// attention_i8kv_neon.h. ARMv7 tables keep the scalar reference.
#if defined(__aarch64__)
#include "kernels/neon/attention_i8kv_neon.h"
#include "kernels/neon/kernels_neon.h"

namespace tern {
namespace {
struct DotMull {
  // acc[i] += sum_{j<4} a[4i + j] * b[4i + j]
  static inline int32x4_t dot4(int32x4_t acc, int8x16_t a, int8x16_t b) {
    const int16x8_t p0 = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    const int16x8_t p1 = vmull_high_s8(a, b);
    return vpadalq_s16(acc, vpaddq_s16(p0, p1));
  }
};
}  // namespace

namespace neon {
void attention_i8kv(const PagedKv& kv, const AttentionArgs& a) { i8kv_attention<DotMull>(kv, a); }
}  // namespace neon
}  // namespace tern
#endif  // __aarch64__
