// The streaming sum both benchmarks measure read bandwidth with: the loads a
// bandwidth-bound kernel does, and nothing else. AVX2 when the CPU has it
// (checked at run time, so the binary still runs on a CPU without it).
#pragma once
#include <cstddef>
#include <cstdint>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tern {
namespace bench {

#if defined(__x86_64__)
__attribute__((target("avx2"))) inline uint64_t stream_sum_avx2(const uint8_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  alignas(32) uint64_t out[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(out), s);
  return out[0] + out[1] + out[2] + out[3];
}
#endif

inline uint64_t stream_sum_generic(const uint8_t* p, size_t n) {
  uint64_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const uint64_t* q = reinterpret_cast<const uint64_t*>(p);
  for (size_t i = 0; i + 8 <= n / 8; i += 8)
    for (int k = 0; k < 8; ++k) a[k] += q[i + k];
  return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

inline uint64_t stream_sum(const uint8_t* p, size_t n) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2")) return stream_sum_avx2(p, n);
#endif
  return stream_sum_generic(p, n);
}

}  // namespace bench
}  // namespace tern
