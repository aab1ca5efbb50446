// int4-ceiling: how fast can the AVX2 int4 decode kernel's inner step run at
// all on this core? The step of kernels/avx2/matmul_q4q8_avx2.cc per row and
// pair of groups (32 weight bytes, 64 weights) is: load, 3 shifts and 3 ands
// to unpack the nibbles as i16, 4 madd_epi16 against the 16-bit two-plane
// activations, 3 adds, convert, permute of the scales, FMA. Here that step
// runs alone, 4 rows at a time like the kernel, over L1-resident data with no
// scale loading, chunk handling or prefetch, so the figure is an upper bound
// for the kernel. It is converted to GB/s of int4 weight bytes (q plane plus
// the 4 bytes of f16 {d, m} per 32 weights, as kernel-bench counts them).
//
// If this bound sits near the single-core read bandwidth, int4 decode cannot
// reach the bandwidth on this CPU with this activation format, whatever the
// memory side does.
//
//   int4-ceiling            (x86-64 only; prints the median of 7 runs)
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "port/clock.h"

#ifndef TERN_VERSION_STRING
#define TERN_VERSION_STRING "unknown"
#endif

namespace {
// --help, --version, and one line for anything else. -1: go on.
int parse_args(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "-h") || !std::strcmp(argv[i], "--help")) {
      std::printf("usage: int4-ceiling\n"
                  "The AVX2 int4 decode inner step alone (4 rows from L1, no scales, chunks or prefetch):\n"
                  "the compute bound of int4 decode on this core, in ns per 64 weights and GB/s. x86-64 only.\n"
                  "  --version   the version\n");
      return 0;
    }
    if (!std::strcmp(argv[i], "--version")) {
      std::printf("int4-ceiling (tern %s)\n", TERN_VERSION_STRING);
      return 0;
    }
    std::fprintf(stderr, "int4-ceiling: unknown argument '%s' (int4-ceiling --help lists the options)\n", argv[i]);
    return 2;
  }
  return -1;
}
}  // namespace

#if defined(__x86_64__)
#include <immintrin.h>

namespace {

constexpr int kRows = 4;
constexpr size_t kRowBytes = 4096;  // per row, L1-resident with the other rows
constexpr long kSteps = 4000000;    // pairs of groups per row per run

__attribute__((target("avx2,fma"))) float run_steps(const uint8_t* w, const int16_t* x) {
  __m256 acc[kRows];
  for (int i = 0; i < kRows; ++i) acc[i] = _mm256_setzero_ps();
  const __m256 c = _mm256_set1_ps(1e-9f);
  const __m256i m4 = _mm256_set1_epi16(0x000f);
  size_t off = 0;
  for (long s = 0; s < kSteps; ++s) {
    const __m256i* xv = reinterpret_cast<const __m256i*>(x) + (s & 3) * 4;
    const __m256i x0 = _mm256_load_si256(xv), x1 = _mm256_load_si256(xv + 1);
    const __m256i x2 = _mm256_load_si256(xv + 2), x3 = _mm256_load_si256(xv + 3);
    const __m256i idx = _mm256_set1_epi32(int(s & 7));
    for (int i = 0; i < kRows; ++i) {
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i * kRowBytes + off));
      const __m256i n0 = _mm256_and_si256(b, m4);
      const __m256i n1 = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
      const __m256i n2 = _mm256_and_si256(_mm256_srli_epi16(b, 8), m4);
      const __m256i n3 = _mm256_srli_epi16(b, 12);
      const __m256i sum = _mm256_add_epi32(_mm256_add_epi32(_mm256_madd_epi16(n0, x0), _mm256_madd_epi16(n1, x1)),
                                           _mm256_add_epi32(_mm256_madd_epi16(n2, x2), _mm256_madd_epi16(n3, x3)));
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_permutevar8x32_ps(c, idx), acc[i]);
    }
    off = off + 32 == kRowBytes ? 0 : off + 32;
  }
  float out = 0;
  for (int i = 0; i < kRows; ++i) {
    alignas(32) float t[8];
    _mm256_store_ps(t, acc[i]);
    for (float v : t) out += v;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (const int rc = parse_args(argc, argv); rc >= 0) return rc;
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::printf("int4-ceiling: this CPU lacks AVX2/FMA\n");
    return 0;
  }
  std::vector<uint8_t> w(kRows * kRowBytes);
  for (size_t i = 0; i < w.size(); ++i) w[i] = uint8_t(i * 131u + 7u);
  alignas(32) static int16_t x[4 * 4 * 16];
  for (int i = 0; i < 4 * 4 * 16; ++i) x[i] = int16_t((i * 977) % 32385 - 16000);
  std::vector<double> ns_per_step;
  volatile float sink = 0;
  for (int r = 0; r < 8; ++r) {
    const uint64_t t0 = tern::now_ns();
    sink = sink + run_steps(w.data(), x);
    const uint64_t t1 = tern::now_ns();
    if (r > 0) ns_per_step.push_back(double(t1 - t0) / double(kSteps * kRows));  // run 0 warms up
  }
  std::sort(ns_per_step.begin(), ns_per_step.end());
  const double ns = ns_per_step[ns_per_step.size() / 2];
  // 32 q bytes + 8 scale bytes per row and pair of groups.
  std::printf("int4 decode inner step alone (AVX2, 4 rows, L1): %.3f ns per 64 weights per row = %.2f GB/s of int4 weights "
              "(q plane + scales)\n",
              ns, 40.0 / ns);
  return 0;
}
#else
int main(int argc, char** argv) {
  if (const int rc = parse_args(argc, argv); rc >= 0) return rc;
  std::printf("int4-ceiling: x86-64 only\n");
  return 0;
}
#endif
