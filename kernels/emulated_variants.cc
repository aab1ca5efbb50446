// Test-only stand-ins for kernel variants the CPU may lack (kernels/dispatch.h).
// Its own file so that only the test binaries that call it link these tables.
#include "kernels/dispatch.h"

namespace tern {

#if TERN_HAVE_AVXVNNI_EMULATED
const KernelTable& avxvnni_emulated_kernels();  // kernels/avxvnni/emulated/
#endif
#if TERN_HAVE_AVX512VNNI_EMULATED
const KernelTable& avx512vnni_emulated_kernels();  // kernels/avx512/emulated/
#endif
#if TERN_HAVE_AMX_EMULATED
const KernelTable& amx_emulated_kernels();  // kernels/amx/emulated/
#endif
#if TERN_HAVE_NEON_I8MM_EMULATED
const KernelTable& neoni8mm_emulated_kernels();  // kernels/neon/emulated/
#endif

const KernelVariant* emulated_kernel_variants(size_t* count) {
#if TERN_HAVE_AVXVNNI_EMULATED || TERN_HAVE_NEON_I8MM_EMULATED
  static const KernelVariant list[] = {
#if TERN_HAVE_AVXVNNI_EMULATED
      {avxvnni_emulated_kernels().name, &avxvnni_emulated_kernels(), kIsaAvx2},
#endif
#if TERN_HAVE_AVX512VNNI_EMULATED
      {avx512vnni_emulated_kernels().name, &avx512vnni_emulated_kernels(), kIsaAvx2},
#endif
#if TERN_HAVE_AMX_EMULATED
      {amx_emulated_kernels().name, &amx_emulated_kernels(), kIsaAvx2},
#endif
#if TERN_HAVE_NEON_I8MM_EMULATED
      // Plain C++ everywhere; on AArch64 its decode is neon-dotprod's.
#if defined(__aarch64__)
      {neoni8mm_emulated_kernels().name, &neoni8mm_emulated_kernels(), kIsaNeon | kIsaNeonDotprod},
#else
      {neoni8mm_emulated_kernels().name, &neoni8mm_emulated_kernels(), 0},
#endif
#endif
  };
  *count = sizeof(list) / sizeof(list[0]);
  return list;
#else
  *count = 0;
  return nullptr;
#endif
}

}  // namespace tern
