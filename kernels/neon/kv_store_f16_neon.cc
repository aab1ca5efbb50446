// Store one token's k and v as f16 with vcvt_f16_f32 (AArch64 base ISA; round
// to nearest even under the default FPCR, as f32_to_f16). Identical to the
// reference for every finite and infinite value; a NaN keeps its payload's top
// bits here where the reference writes one canonical quiet NaN.
// ARMv7 NEON without the fp16 extension has no conversion: that table keeps
// the scalar reference.
#if defined(__aarch64__)
#include "kernels/neon/kernels_neon.h"
#include "kernels/neon/neon_util.h"
#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace neon {

void kv_store(const PagedKv& kv, uint16_t* k_pool, uint16_t* v_pool, uint32_t pos, const float* k,
              const float* v) {
  const size_t off = ref::kv_offset(kv, pos, 0);  // kv heads of one token are contiguous
  const uint32_t n = kv.kv_heads * kv.head_dim;
  uint16_t* ko = k_pool + off;  // [kv_heads * head_dim]
  uint16_t* vo = v_pool + off;
  uint32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    vst1_u16(ko + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(k + i))));
    vst1_u16(vo + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(v + i))));
  }
  for (; i < n; ++i) {
    ko[i] = f32_to_f16(k[i]);
    vo[i] = f32_to_f16(v[i]);
  }
}

}  // namespace neon
}  // namespace tern
#endif  // __aarch64__
