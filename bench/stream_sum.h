// The streaming sum both benchmarks measure read bandwidth with: the loads a
// bandwidth-bound kernel does, and nothing else (n: a multiple of 256 bytes). AVX2 when the CPU has it
// (checked at run time, so the binary still runs on a CPU without it).
#pragma once
#include <cstddef>
#include <cstdint>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tern {
namespace bench {

// Why 4 interleaved streams with a software prefetch, not one sequential
// stream: one core's read bandwidth is bound by the cache misses it keeps in
// flight, and a lone stream leaves the hardware prefetcher to find them. The
// matrix kernels read 4 weight rows at once and prefetch ahead, so on some
// CPUs they out-read a one-stream probe: tern showed 121% of it on an
// Intel Xeon (Sapphire Rapids class, KVM), where the same probe with 4
// streams and a prefetch 1 KiB ahead reads ~30% more. The probe must measure
// the most the memory system gives, or "% of read bandwidth" means nothing.
constexpr int kStreams = 4;
constexpr size_t kPrefetchAhead = 1024;

#if defined(__x86_64__)
__attribute__((target("avx2"))) inline uint64_t stream_sum_avx2(const uint8_t* p, size_t n) {
  const size_t part = n / kStreams / 64 * 64;  // each stream's share, whole cache lines
  __m256i a[kStreams];
  for (int k = 0; k < kStreams; ++k) a[k] = _mm256_setzero_si256();
  for (size_t i = 0; i < part; i += 64) {
    for (int k = 0; k < kStreams; ++k) {
      const uint8_t* q = p + k * part + i;
      _mm_prefetch(reinterpret_cast<const char*>(q + kPrefetchAhead), _MM_HINT_T0);
      const __m256i lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(q));
      const __m256i hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 32));
      a[k] = _mm256_add_epi64(a[k], _mm256_add_epi64(lo, hi));
    }
  }
  __m256i s = a[0];
  for (int k = 1; k < kStreams; ++k) s = _mm256_add_epi64(s, a[k]);
  alignas(32) uint64_t out[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(out), s);
  return out[0] + out[1] + out[2] + out[3];
}
#endif

inline uint64_t stream_sum_generic(const uint8_t* p, size_t n) {
  const size_t part = n / kStreams / 64 * 64;
  uint64_t a[kStreams][2] = {};
  for (size_t i = 0; i < part; i += 64) {
    for (int k = 0; k < kStreams; ++k) {
      const uint8_t* q = p + k * part + i;
      __builtin_prefetch(q + kPrefetchAhead);
      uint64_t v[8];
      __builtin_memcpy(v, q, 64);
      a[k][0] += v[0] + v[2] + v[4] + v[6];
      a[k][1] += v[1] + v[3] + v[5] + v[7];
    }
  }
  uint64_t s = 0;
  for (int k = 0; k < kStreams; ++k) s += a[k][0] + a[k][1];
  return s;
}

// The bytes summed: n rounded down to whole lines per stream (the callers
// pass sizes that are multiples of kStreams * 64, so all of n).
inline uint64_t stream_sum(const uint8_t* p, size_t n) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2")) return stream_sum_avx2(p, n);
#endif
  return stream_sum_generic(p, n);
}

}  // namespace bench
}  // namespace tern
