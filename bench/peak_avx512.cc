// Peak of the AVX-512 prefill's integer step (kernels/avx512/
// matmul_q8_avx512.cc): vpdpwssd zmm, 16 lanes x 2 int16 x int16 products
// summed into int32, accumulating (the kernel's second operand is a broadcast
// pair of x16 = 254 q + r from memory; here registers, the instruction's own
// limit). Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni
// (bench/CMakeLists.txt); see bench/peak.h.
#include "bench/peak.h"

namespace tern {
namespace bench {

// 16 accumulators (zmm0-15), inputs zmm30, zmm31.
#define TERN_DP(a) "vpdpwssd %%zmm31, %%zmm30, %%zmm" #a "\n\t"
#define TERN_DP16 \
  TERN_DP(0) TERN_DP(1) TERN_DP(2) TERN_DP(3) TERN_DP(4) TERN_DP(5) TERN_DP(6) TERN_DP(7) TERN_DP(8) TERN_DP(9) \
  TERN_DP(10) TERN_DP(11) TERN_DP(12) TERN_DP(13) TERN_DP(14) TERN_DP(15)
#define TERN_Z(a) "vpxord %%zmm" #a ", %%zmm" #a ", %%zmm" #a "\n\t"

uint64_t peak_vpdpwssd_zmm(uint64_t iters) {
  if (!iters) return 0;
  uint64_t n = iters;
  __asm__ volatile(
      "vpternlogd $0xff, %%zmm30, %%zmm30, %%zmm30\n\t"
      "vpabsw %%zmm30, %%zmm31\n\t"
      TERN_Z(0) TERN_Z(1) TERN_Z(2) TERN_Z(3) TERN_Z(4) TERN_Z(5) TERN_Z(6) TERN_Z(7) TERN_Z(8) TERN_Z(9)
      TERN_Z(10) TERN_Z(11) TERN_Z(12) TERN_Z(13) TERN_Z(14) TERN_Z(15)
      "1:\n\t" TERN_DP16 TERN_DP16 "dec %[n]\n\tjnz 1b\n\t"
      "vzeroupper\n\t"
      : [n] "+r"(n)
      :
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm12", "xmm13", "xmm14", "xmm15", "xmm30", "xmm31");
  return iters * 32;
}

}  // namespace bench
}  // namespace tern
