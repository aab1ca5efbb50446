// The scalar reference table: always compiled, always last in the variants.
#include "kernels/dispatch.h"
#include "kernels/ref/kernels_ref.h"

namespace tern {

const KernelTable& scalar_kernels() {
  static const KernelTable table = {
      "scalar",
      ref::quantize_rows_q8,
      {ref::matmul_f32_f32, ref::matmul_i8g32_q8r, ref::matmul_u4g32_q8r, ref::matmul_u5g32_q8r,
       ref::matmul_i8g32r16_q8r, ref::matmul_u4g32r16_q8r},
      ref::rmsnorm,
      ref::rope,
      ref::softmax,
      ref::silu_mul,
      ref::attention,
      ref::kv_store,
      ref::gelu_mul,
      ref::attention_i8kv,
      ref::kv_store_i8,
  };

  return table;
}

}  // namespace tern
