// Peak of the AVX2 prefill tiles' integer step (kernels/avx2/
// matmul_q8_tiles_avx2.h, prefill_unpacked_avx2.cc): vpmaddwd ymm of 16-bit
// weights against x16 = 254 q + r, each product vector added into an int32
// accumulator (AVX2 has no accumulating int16 multiply). Compiled with -mavx2
// (bench/CMakeLists.txt); see bench/peak.h.
#include "bench/peak.h"

namespace tern {
namespace bench {

// vpmaddwd into temp t, vpaddd t into accumulator a. 10 accumulators
// (ymm0-9), 4 temps (ymm10-13, renamed), inputs ymm14, ymm15.
#define TERN_MA(a, t) "vpmaddwd %%ymm15, %%ymm14, %%ymm" #t "\n\tvpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n\t"
#define TERN_MA10 \
  TERN_MA(0, 10) TERN_MA(1, 11) TERN_MA(2, 12) TERN_MA(3, 13) TERN_MA(4, 10) \
  TERN_MA(5, 11) TERN_MA(6, 12) TERN_MA(7, 13) TERN_MA(8, 10) TERN_MA(9, 11)

uint64_t peak_vpmaddwd_vpaddd_ymm(uint64_t iters) {
  if (!iters) return 0;
  uint64_t n = iters;
  __asm__ volatile(
      "vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n\t"
      "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n\t"
      "vpxor %%ymm0, %%ymm0, %%ymm0\n\tvpxor %%ymm1, %%ymm1, %%ymm1\n\tvpxor %%ymm2, %%ymm2, %%ymm2\n\t"
      "vpxor %%ymm3, %%ymm3, %%ymm3\n\tvpxor %%ymm4, %%ymm4, %%ymm4\n\tvpxor %%ymm5, %%ymm5, %%ymm5\n\t"
      "vpxor %%ymm6, %%ymm6, %%ymm6\n\tvpxor %%ymm7, %%ymm7, %%ymm7\n\tvpxor %%ymm8, %%ymm8, %%ymm8\n\t"
      "vpxor %%ymm9, %%ymm9, %%ymm9\n\t"
      "1:\n\t" TERN_MA10 TERN_MA10 "dec %[n]\n\tjnz 1b\n\t"
      "vzeroupper\n\t"
      : [n] "+r"(n)
      :
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm12", "xmm13", "xmm14", "xmm15");
  return iters * 20;
}

}  // namespace bench
}  // namespace tern
