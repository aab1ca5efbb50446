// What the CPU can run, detected once (cpuid/xgetbv on x86, HWCAP on Linux/aarch64).
#pragma once
#include <cstdint>

namespace tern {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;  // x86
  bool avx_vnni = false, avx512_vnni = false, avx512bw = false;
  // AMX-TILE + AMX-INT8, the OS saving tile state (XCR0) and, on Linux, this
  // process granted the tile data state (arch_prctl ARCH_REQ_XCOMP_PERM,
  // requested here; without it the first tile instruction faults).
  bool amx_int8 = false;
  bool neon = false, dotprod = false, i8mm = false;  // Arm
};

CpuFeatures detect_cpu_features();

}  // namespace tern
