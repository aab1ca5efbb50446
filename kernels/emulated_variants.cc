// Test-only stand-ins for kernel variants the CPU may lack (kernels/dispatch.h).
// Its own file so that only the test binaries that call it link these tables.
#include "kernels/dispatch.h"

namespace tern {

#if TERN_HAVE_AVXVNNI_EMULATED
const KernelTable& avxvnni_emulated_kernels();  // kernels/avxvnni/emulated/
#endif

const KernelVariant* emulated_kernel_variants(size_t* count) {
#if TERN_HAVE_AVXVNNI_EMULATED
  static const KernelVariant list[] = {
      {avxvnni_emulated_kernels().name, &avxvnni_emulated_kernels(), kIsaAvx2},
  };
  *count = sizeof(list) / sizeof(list[0]);
  return list;
#else
  *count = 0;
  return nullptr;
#endif
}

}  // namespace tern
