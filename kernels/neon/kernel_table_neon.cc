// The ARMv8.0 NEON table (also ARMv7 NEON): NEON kernels where they pay, the
// scalar reference elsewhere (softmax and silu_mul are dominated by expf, which
// has no exact vector twin; on ARMv7 also attention and kv_store, which need
// f16 conversions that ARMv7 NEON lacks).
#include "kernels/neon/kernels_neon.h"
#include "kernels/ref/kernels_ref.h"

namespace tern {

const KernelTable& neon_kernels() {
  static const KernelTable table = {
      "neon",
      neon::quantize_rows_q8,
      neon::matmul_q8,
      neon::matmul_f32,
      neon::rmsnorm,
      neon::rope,
      ref::softmax,
      ref::silu_mul,
#if defined(__aarch64__)
      neon::attention,
      neon::kv_store,
#else
      ref::attention,
      ref::kv_store,
#endif
  };
  return table;
}

}  // namespace tern
