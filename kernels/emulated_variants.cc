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

const KernelVariant* emulated_kernel_variants(size_t* count) {
#if TERN_HAVE_AVXVNNI_EMULATED
  static const KernelVariant list[] = {
      {avxvnni_emulated_kernels().name, &avxvnni_emulated_kernels(), kIsaAvx2},
#if TERN_HAVE_AVX512VNNI_EMULATED
      {avx512vnni_emulated_kernels().name, &avx512vnni_emulated_kernels(), kIsaAvx2},
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
