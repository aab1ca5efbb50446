// int8 KV attention with the ARMv8.2 dot product (sdot: 4 int8 products
// summed into each int32 lane); see attention_i8kv_neon.h.
#include "kernels/neon/attention_i8kv_neon.h"
#include "kernels/neon/kernels_neon.h"

namespace tern {
namespace {
struct DotSdot {
  static inline int32x4_t dot4(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }
};
}  // namespace

namespace neondot {
void attention_i8kv(const PagedKv& kv, const AttentionArgs& a) { i8kv_attention<DotSdot>(kv, a); }
}  // namespace neondot
}  // namespace tern
