// Peak of the ARMv8.6 int8 matrix multiply: smmla v.4s, a 2x8 by 8x2 int8
// product (32 int8 x int8 products) into a 2x2 int32 tile, accumulating.
// Compiled with -march=armv8.2-a+i8mm (bench/CMakeLists.txt, only when the
// compiler takes it); see bench/peak.h.
#include "bench/peak.h"

namespace tern {
namespace bench {

#if defined(__aarch64__)
// 16 accumulators (v2-v17), inputs v0, v1.
#define TERN_MM(a) "smmla v" #a ".4s, v0.16b, v1.16b\n\t"
#define TERN_MM16 \
  TERN_MM(2) TERN_MM(3) TERN_MM(4) TERN_MM(5) TERN_MM(6) TERN_MM(7) TERN_MM(8) TERN_MM(9) TERN_MM(10) TERN_MM(11) \
  TERN_MM(12) TERN_MM(13) TERN_MM(14) TERN_MM(15) TERN_MM(16) TERN_MM(17)
#define TERN_Z(a) "movi v" #a ".16b, #0\n\t"

uint64_t peak_smmla(uint64_t iters) {
  if (!iters) return 0;
  uint64_t n = iters;
  __asm__ volatile(
      "movi v0.16b, #3\n\tmovi v1.16b, #5\n\t"
      TERN_Z(2) TERN_Z(3) TERN_Z(4) TERN_Z(5) TERN_Z(6) TERN_Z(7) TERN_Z(8) TERN_Z(9) TERN_Z(10) TERN_Z(11)
      TERN_Z(12) TERN_Z(13) TERN_Z(14) TERN_Z(15) TERN_Z(16) TERN_Z(17)
      "1:\n\t" TERN_MM16 TERN_MM16 "subs %[n], %[n], #1\n\tb.ne 1b\n\t"
      : [n] "+r"(n)
      :
      : "cc", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15",
        "v16", "v17");
  return iters * 32;
}
#endif

}  // namespace bench
}  // namespace tern
