// Peak of the NEON (ARMv8.0) prefill's integer step (kernels/neon/
// matmul_q8_neon.cc): vmull_s8 + vmlal_s8 (smull, smlal2: 16 int8 x int8
// products into 8 int16 lanes) widened into int32 by vpadalq_s16 (sadalp),
// the kernel's sequence per 16 weights and activation plane. AArch64 only
// (the asm); the build's own flags (bench/CMakeLists.txt); see bench/peak.h.
#include "bench/peak.h"

namespace tern {
namespace bench {

#if defined(__aarch64__)
// smull + smlal2 into temp t, sadalp t into accumulator a. 12 accumulators
// (v2-v13), 12 temps (v16-v27), inputs v0, v1.
#define TERN_MS(a, t) \
  "smull v" #t ".8h, v0.8b, v1.8b\n\tsmlal2 v" #t ".8h, v0.16b, v1.16b\n\tsadalp v" #a ".4s, v" #t ".8h\n\t"
#define TERN_MS12 \
  TERN_MS(2, 16) TERN_MS(3, 17) TERN_MS(4, 18) TERN_MS(5, 19) TERN_MS(6, 20) TERN_MS(7, 21) TERN_MS(8, 22) \
  TERN_MS(9, 23) TERN_MS(10, 24) TERN_MS(11, 25) TERN_MS(12, 26) TERN_MS(13, 27)

uint64_t peak_smull_smlal_sadalp(uint64_t iters) {
  if (!iters) return 0;
  uint64_t n = iters;
  __asm__ volatile(
      "movi v0.16b, #3\n\tmovi v1.16b, #5\n\t"
      "movi v2.16b, #0\n\tmovi v3.16b, #0\n\tmovi v4.16b, #0\n\tmovi v5.16b, #0\n\tmovi v6.16b, #0\n\t"
      "movi v7.16b, #0\n\tmovi v8.16b, #0\n\tmovi v9.16b, #0\n\tmovi v10.16b, #0\n\tmovi v11.16b, #0\n\t"
      "movi v12.16b, #0\n\tmovi v13.16b, #0\n\t"
      "1:\n\t" TERN_MS12 TERN_MS12 "subs %[n], %[n], #1\n\tb.ne 1b\n\t"
      : [n] "+r"(n)
      :
      : "cc", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v16", "v17",
        "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27");
  return iters * 24;
}
#endif

}  // namespace bench
}  // namespace tern
