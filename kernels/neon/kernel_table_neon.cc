// The ARMv8.0 NEON table (also ARMv7 NEON): every slot has a NEON kernel on
// AArch64. On ARMv7 softmax, silu_mul, attention and kv_store stay the scalar
// reference: they need f16 conversions, a vector divide or rounding
// instructions that ARMv7 NEON lacks.
#include "kernels/r16_adapter.h"
#include "kernels/neon/kernels_neon.h"
#include "kernels/ref/kernels_ref.h"

namespace tern {

const KernelTable& neon_kernels() {
  static const KernelTable table = {
      "neon",
      neon::quantize_rows_q8,
      {neon::matmul_f32_f32, neon::matmul_i8g32_q8r, neon::matmul_u4g32_q8r,
       neon::matmul_u5g32_q8r, matmul_r16_via<neon::matmul_i8g32_q8r>, matmul_u4r16_via<neon::matmul_u4g32_q8r>},
      neon::rmsnorm,
      neon::rope,
#if defined(__aarch64__)
      neon::softmax,
      neon::silu_mul,
      neon::attention,
      neon::kv_store,
      neon::gelu_mul,
#else
      ref::softmax,
      ref::silu_mul,
      ref::attention,
      ref::kv_store,
      ref::gelu_mul,
#endif
#if defined(__aarch64__)
      neon::attention_i8kv,
#else
      ref::attention_i8kv,
#endif
      ref::kv_store_i8,  // once per token and layer: SIMD does not pay
  };
  return table;
}

}  // namespace tern
