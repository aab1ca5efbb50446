// Kernel variants compiled into this binary and the choice among them.
// kernels/ knows nothing of the OS: the caller (runtime/) detects CPU features
// through port/ and passes them in as IsaBits.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace tern {

enum IsaBits : uint32_t {
  kIsaAvx2 = 1u << 0,         // AVX2 + FMA + F16C
  kIsaAvxVnni = 1u << 1,      // AVX-VNNI (256-bit vpdpbusd)
  kIsaAvx512Vnni = 1u << 2,   // AVX-512 F/BW/VL + VNNI
  kIsaAmxInt8 = 1u << 3,      // AMX-TILE + AMX-INT8, tile state granted by the OS
  kIsaNeon = 1u << 8,         // ARMv8.0 Advanced SIMD (or ARMv7 NEON)
  kIsaNeonDotprod = 1u << 9,  // ARMv8.2 sdot/udot
  kIsaNeonI8mm = 1u << 10,    // ARMv8.6 smmla
};

struct KernelVariant {
  const char* name;
  const KernelTable* table;
  uint32_t required_isa;  // all these bits must be present
};

// Every variant compiled in, best first; the scalar reference is always last.
const KernelVariant* kernel_variants(size_t* count);

// Tables that stand in for a variant the CPU may lack, for tests only (never
// selectable, not in kernel_variants()): on x86, "avxvnni-emulated" is the
// AVX-VNNI kernels with vpdpbusd computed in AVX2 (required_isa kIsaAvx2), so
// their logic is checked on CPUs without AVX-VNNI; "avx512vnni-emulated" is
// the AVX-512 kernels with each 512-bit operation done on two ymm halves;
// "amx-emulated" is the AMX prefill with the tile registers and tdpbssd in
// C++ over avx512vnni-emulated. On x86 and AArch64, "neon-i8mm-emulated" is the neon-i8mm prefill source
// compiled on plain C++ NEON intrinsics (kernels/neon/emulated/; required_isa
// 0 on x86, kIsaNeon | kIsaNeonDotprod on AArch64, where its decode is
// neon-dotprod's). Each equals its real variant bit for bit (tested where
// the CPU has both). Empty list elsewhere.
// Defined in kernels/emulated_variants.cc (linked only where it is used).
const KernelVariant* emulated_kernel_variants(size_t* count);

// The scalar reference table (always available).
const KernelTable& scalar_kernels();

// Pick a table. requested == nullptr or "auto": the best variant `cpu_isa`
// supports. Otherwise the variant of that name; nullptr if it is unknown or
// the CPU lacks it (the caller reports which).
const KernelTable* select_kernels(uint32_t cpu_isa, const char* requested);

}  // namespace tern
