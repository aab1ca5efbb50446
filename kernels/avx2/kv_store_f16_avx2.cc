// AVX2 KV store: F16C vcvtps2ph with round-to-nearest-even, bit-exact to
// f32_to_f16 for every non-NaN input (NaN payloads may differ).
#include "kernels/avx2/kernels_avx2.h"
#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace avx2 {

void kv_store(const PagedKv& kv, uint16_t* k_pool, uint16_t* v_pool, uint32_t pos, const float* k,
              const float* v) {
  const size_t off = ref::kv_offset(kv, pos, 0);
  const uint32_t n = kv.kv_heads * kv.head_dim;
  uint32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(k_pool + off + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(k + i), _MM_FROUND_TO_NEAREST_INT));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(v_pool + off + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(v + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) {
    k_pool[off + i] = f32_to_f16(k[i]);
    v_pool[off + i] = f32_to_f16(v[i]);
  }
}

}  // namespace avx2
}  // namespace tern
