#include "port/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif
#endif

namespace tern {

#if defined(__x86_64__) || defined(__i386__)
static uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}
#endif

#if defined(__x86_64__)
// Linux keeps AMX tile data (8 KB per thread) out of a process's signal frames
// and context switches until the process asks for it; the request is
// process-wide and idempotent (Linux 5.16+). Elsewhere: not granted.
static bool os_grants_amx_tiles() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr int kArchReqXcompPerm = 0x1023;
  constexpr int kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}
#endif

CpuFeatures detect_cpu_features() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1;
  const bool avx = (c >> 28) & 1;
  f.fma = (c >> 12) & 1;
  f.f16c = (c >> 29) & 1;
  // The OS must save YMM (and for AVX-512, ZMM/opmask) state, or the
  // instructions fault even though cpuid lists them.
  const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
  const bool ymm_ok = (xcr0 & 0x6) == 0x6;
  const bool zmm_ok = (xcr0 & 0xe6) == 0xe6;
  unsigned max_leaf7_sub = 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    max_leaf7_sub = a;
    f.avx2 = avx && ymm_ok && ((b >> 5) & 1);
    f.avx512bw = zmm_ok && ((b >> 16) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);  // F, BW, VL
    f.avx512_vnni = f.avx512bw && ((c >> 11) & 1);
#if defined(__x86_64__)
    const bool tiles_saved = (xcr0 & 0x60000) == 0x60000;  // XTILECFG, XTILEDATA
    f.amx_int8 = tiles_saved && ((d >> 24) & 1) && ((d >> 25) & 1) && os_grants_amx_tiles();
#endif
  }
  // AVX-VNNI (VEX vpdpbusd): leaf 7 subleaf 1, EAX bit 4; the subleaf exists
  // only when leaf 7 subleaf 0 reports it (EAX = highest subleaf).
  if (max_leaf7_sub >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
    f.avx_vnni = avx && ymm_ok && ((a >> 4) & 1);
  if (!ymm_ok) f.fma = f.f16c = false;
#elif defined(__aarch64__)
  f.neon = true;  // Advanced SIMD is mandatory in ARMv8-A
#if defined(__linux__)
  const unsigned long hw = getauxval(AT_HWCAP);
  const unsigned long hw2 = getauxval(AT_HWCAP2);
  f.dotprod = (hw & HWCAP_ASIMDDP) != 0;
  f.i8mm = (hw2 & HWCAP2_I8MM) != 0;
#endif
#elif defined(__ARM_NEON)
  f.neon = true;  // built for NEON (ARMv7 -mfpu=neon): the build guarantees it
#endif
  return f;
}

}  // namespace tern
