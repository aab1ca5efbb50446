// Peak of the ARMv8.2 dot product (kernels/neon/matmul_q8_neondot.cc):
// sdot v.4s, 16 int8 x int8 products summed into 4 int32 lanes,
// accumulating. Compiled with -march=armv8.2-a+dotprod (bench/CMakeLists.txt);
// see bench/peak.h.
#include "bench/peak.h"

namespace tern {
namespace bench {

#if defined(__aarch64__)
// 16 accumulators (v2-v17), inputs v0, v1.
#define TERN_SD(a) "sdot v" #a ".4s, v0.16b, v1.16b\n\t"
#define TERN_SD16 \
  TERN_SD(2) TERN_SD(3) TERN_SD(4) TERN_SD(5) TERN_SD(6) TERN_SD(7) TERN_SD(8) TERN_SD(9) TERN_SD(10) TERN_SD(11) \
  TERN_SD(12) TERN_SD(13) TERN_SD(14) TERN_SD(15) TERN_SD(16) TERN_SD(17)
#define TERN_Z(a) "movi v" #a ".16b, #0\n\t"

uint64_t peak_sdot(uint64_t iters) {
  if (!iters) return 0;
  uint64_t n = iters;
  __asm__ volatile(
      "movi v0.16b, #3\n\tmovi v1.16b, #5\n\t"
      TERN_Z(2) TERN_Z(3) TERN_Z(4) TERN_Z(5) TERN_Z(6) TERN_Z(7) TERN_Z(8) TERN_Z(9) TERN_Z(10) TERN_Z(11)
      TERN_Z(12) TERN_Z(13) TERN_Z(14) TERN_Z(15) TERN_Z(16) TERN_Z(17)
      "1:\n\t" TERN_SD16 TERN_SD16 "subs %[n], %[n], #1\n\tb.ne 1b\n\t"
      : [n] "+r"(n)
      :
      : "cc", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15",
        "v16", "v17");
  return iters * 32;
}
#endif

}  // namespace bench
}  // namespace tern
