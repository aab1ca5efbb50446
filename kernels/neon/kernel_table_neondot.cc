// The ARMv8.2 dot-product table: the sdot matmul, everything else shared with
// the ARMv8.0 NEON table (those functions live in the *_neon.cc files, built
// for the baseline, so nothing here but the matmul needs armv8.2).
#include "kernels/r16_adapter.h"
#include "kernels/neon/kernels_neon.h"
#include "kernels/ref/kernels_ref.h"

namespace tern {

const KernelTable& neondot_kernels() {
  static const KernelTable table = {
      "neon-dotprod",
      neon::quantize_rows_q8,
      {neon::matmul_f32_f32, neondot::matmul_i8g32_q8r, neondot::matmul_u4g32_q8r,
       neondot::matmul_u5g32_q8r, matmul_r16_via<neondot::matmul_i8g32_q8r>, matmul_u4r16_via<neondot::matmul_u4g32_q8r>},
      neon::rmsnorm,
      neon::rope,
      neon::softmax,
      neon::silu_mul,
      neon::attention,
      neon::kv_store,
      neon::gelu_mul,
      neondot::attention_i8kv,
      ref::kv_store_i8,
  };
  return table;
}

}  // namespace tern
