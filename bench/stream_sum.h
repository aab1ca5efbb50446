// The read-bandwidth probe of kernel-bench and tern-bench: the loads a
// bandwidth-bound kernel does, and nothing else.
//
// A roofline's denominator must bound what any kernel streams, so the probe
// reports the best of several trials (as STREAM does) and of several access
// patterns, over a buffer well beyond the last-level cache, taken in the same
// time window as the measurement it judges (the machine may be shared: one
// figure from another hour is no bound). The patterns:
//   1 stream        one sequential stream, the hardware prefetcher alone;
//   4 streams + pf  4 interleaved streams, a software prefetch 1 KiB ahead
//                   (how the decode kernels read 4 weight rows at once);
//   8 streams + pf  8 interleaved streams, a software prefetch 2 KiB ahead.
// One core's read bandwidth is bound by the cache misses it keeps in flight:
// on an Intel Xeon (Sapphire Rapids class, KVM) 4 or 8 streams with a
// prefetch read 16.5 GB/s against 12.6-14.3 for one stream, and the kernels
// out-read a one-stream probe; which pattern wins differs by CPU, so every
// trial runs all of them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tern {
namespace bench {

struct ReadPattern {
  const char* name;
  int streams;            // 1, 4 or 8
  size_t prefetch_ahead;  // bytes; 0: no software prefetch
};
constexpr ReadPattern kReadPatterns[] = {
    {"1 stream", 1, 0},
    {"4 streams + prefetch 1 KiB", 4, 1024},
    {"8 streams + prefetch 2 KiB", 8, 2048},
};
constexpr int kReadPatternCount = 3;
// Sizes passed to stream_sum are multiples of this (whole lines per stream).
constexpr size_t kStreamUnit = 8 * 64;

#if defined(__x86_64__)
template <int S>
__attribute__((target("avx2"))) inline uint64_t stream_sum_avx2(const uint8_t* p, size_t n, size_t ahead) {
  const size_t part = n / S / 64 * 64;  // each stream's share, whole cache lines
  __m256i a[S];
  for (int k = 0; k < S; ++k) a[k] = _mm256_setzero_si256();
  for (size_t i = 0; i < part; i += 64) {
    for (int k = 0; k < S; ++k) {
      const uint8_t* q = p + k * part + i;
      if (ahead) _mm_prefetch(reinterpret_cast<const char*>(q + ahead), _MM_HINT_T0);
      const __m256i lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(q));
      const __m256i hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 32));
      a[k] = _mm256_add_epi64(a[k], _mm256_add_epi64(lo, hi));
    }
  }
  __m256i s = a[0];
  for (int k = 1; k < S; ++k) s = _mm256_add_epi64(s, a[k]);
  alignas(32) uint64_t out[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(out), s);
  return out[0] + out[1] + out[2] + out[3];
}
#endif

template <int S>
inline uint64_t stream_sum_generic(const uint8_t* p, size_t n, size_t ahead) {
  const size_t part = n / S / 64 * 64;
  uint64_t a[S][2] = {};
  for (size_t i = 0; i < part; i += 64) {
    for (int k = 0; k < S; ++k) {
      const uint8_t* q = p + k * part + i;
      if (ahead) __builtin_prefetch(q + ahead);
      uint64_t v[8];
      std::memcpy(v, q, 64);
      a[k][0] += v[0] + v[2] + v[4] + v[6];
      a[k][1] += v[1] + v[3] + v[5] + v[7];
    }
  }
  uint64_t s = 0;
  for (int k = 0; k < S; ++k) s += a[k][0] + a[k][1];
  return s;
}

template <int S>
inline uint64_t stream_sum_streams(const uint8_t* p, size_t n, size_t ahead) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2")) return stream_sum_avx2<S>(p, n, ahead);
#endif
  return stream_sum_generic<S>(p, n, ahead);
}

// Sums n bytes (a multiple of kStreamUnit, 64-byte aligned) in pattern `pat`.
inline uint64_t stream_sum(const uint8_t* p, size_t n, const ReadPattern& pat) {
  switch (pat.streams) {
    case 1: return stream_sum_streams<1>(p, n, pat.prefetch_ahead);
    case 4: return stream_sum_streams<4>(p, n, pat.prefetch_ahead);
    default: return stream_sum_streams<8>(p, n, pat.prefetch_ahead);
  }
}

// Bytes of the last-level cache (the highest cache level cpu0 reports in
// sysfs; its size as "491520K", "32M" or bytes), 0 when unknown (no sysfs).
inline size_t llc_bytes() {
  size_t best = 0;
  int best_level = 0;
  for (int i = 0; i < 16; ++i) {
    char path[96];
    std::snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
    FILE* f = std::fopen(path, "r");
    if (!f) continue;
    int level = 0;
    const bool ok = std::fscanf(f, "%d", &level) == 1;
    std::fclose(f);
    std::snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
    f = std::fopen(path, "r");
    if (!f) continue;
    unsigned long long v = 0;
    char unit = 0;
    const int got = std::fscanf(f, "%llu%c", &v, &unit);
    std::fclose(f);
    if (!ok || got < 1) continue;
    const size_t bytes = unit == 'K' ? size_t(v) << 10 : unit == 'M' ? size_t(v) << 20 : unit == 'G' ? size_t(v) << 30 : size_t(v);
    if (level > best_level || (level == best_level && bytes > best)) best = bytes, best_level = level;
  }
  return best;
}

// The probe buffer (and kernel-bench's DRAM-resident matrices): 4x the
// last-level cache, at least `floor` and at most `cap` bytes (an unknown LLC
// counts as 0), a multiple of kStreamUnit * 8 (whole lines per stream of up
// to 8 threads).
inline size_t probe_bytes(size_t llc, size_t floor, size_t cap) {
  size_t b = 4 * llc;
  if (b < floor) b = floor;
  if (b > cap) b = cap;
  return b / (kStreamUnit * 8) * (kStreamUnit * 8);
}
constexpr size_t kProbeFloor = size_t(256) << 20;
constexpr size_t kProbeCap = size_t(1) << 30;

}  // namespace bench
}  // namespace tern
