// A dependent chain of register-register adds, one cycle each: kernel-bench
// turns the peak instruction rates into per-cycle figures with it. Not adds
// of an immediate: Intel's Golden Cove (Sapphire Rapids) renamer folds
// those, and such a chain measured 21 "GHz". Compiled with the build's
// default flags (bench/peak.h).
#include "bench/peak.h"

namespace tern {
namespace bench {

#define TERN_ADD16(insn) insn insn insn insn insn insn insn insn insn insn insn insn insn insn insn insn

uint64_t peak_add_chain(uint64_t iters) {
  if (!iters) return 0;
  uint64_t x = 0, one = 1, n = iters;
#if defined(__x86_64__)
  __asm__ volatile("1:\n\t" TERN_ADD16("add %[one], %[x]\n\t") "dec %[n]\n\tjnz 1b\n\t"
                   : [x] "+r"(x), [n] "+r"(n)
                   : [one] "r"(one)
                   : "cc");
  return iters * 16;
#elif defined(__aarch64__)
  __asm__ volatile("1:\n\t" TERN_ADD16("add %[x], %[x], %[one]\n\t") "subs %[n], %[n], #1\n\tb.ne 1b\n\t"
                   : [x] "+r"(x), [n] "+r"(n)
                   : [one] "r"(one)
                   : "cc");
  return iters * 16;
#else
  (void)x;
  (void)one;
  (void)n;
  return 0;
#endif
}

}  // namespace bench
}  // namespace tern
