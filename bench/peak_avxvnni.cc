// Peak of AVX-VNNI's vpdpbusd ymm (VEX encoding): 32 u8 x s8 products summed
// into 8 int32 lanes, accumulating. The avxvnni variant's fused int4 / int5
// tiles (kernels/avxvnni/matmul_q4q8_avxvnni.cc: decode and prefill below 5
// tokens) use it; from 5 tokens its prefill is the AVX2 code. Compiled with
// -mavx2 -mavxvnni (bench/CMakeLists.txt); see bench/peak.h.
#include "bench/peak.h"

namespace tern {
namespace bench {

// 12 accumulators (ymm0-11), inputs ymm14, ymm15.
#define TERN_DP(a) "%{vex%} vpdpbusd %%ymm15, %%ymm14, %%ymm" #a "\n\t"
#define TERN_DP12 \
  TERN_DP(0) TERN_DP(1) TERN_DP(2) TERN_DP(3) TERN_DP(4) TERN_DP(5) TERN_DP(6) TERN_DP(7) TERN_DP(8) TERN_DP(9) \
  TERN_DP(10) TERN_DP(11)

uint64_t peak_vpdpbusd_ymm(uint64_t iters) {
  if (!iters) return 0;
  uint64_t n = iters;
  __asm__ volatile(
      "vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n\t"
      "vpabsb %%ymm14, %%ymm15\n\t"
      "vpxor %%ymm0, %%ymm0, %%ymm0\n\tvpxor %%ymm1, %%ymm1, %%ymm1\n\tvpxor %%ymm2, %%ymm2, %%ymm2\n\t"
      "vpxor %%ymm3, %%ymm3, %%ymm3\n\tvpxor %%ymm4, %%ymm4, %%ymm4\n\tvpxor %%ymm5, %%ymm5, %%ymm5\n\t"
      "vpxor %%ymm6, %%ymm6, %%ymm6\n\tvpxor %%ymm7, %%ymm7, %%ymm7\n\tvpxor %%ymm8, %%ymm8, %%ymm8\n\t"
      "vpxor %%ymm9, %%ymm9, %%ymm9\n\tvpxor %%ymm10, %%ymm10, %%ymm10\n\tvpxor %%ymm11, %%ymm11, %%ymm11\n\t"
      "1:\n\t" TERN_DP12 TERN_DP12 "dec %[n]\n\tjnz 1b\n\t"
      "vzeroupper\n\t"
      : [n] "+r"(n)
      :
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm14", "xmm15");
  return iters * 24;
}

}  // namespace bench
}  // namespace tern
