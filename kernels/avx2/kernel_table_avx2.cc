// The AVX2 (+FMA +F16C) table. Every slot has an AVX2 implementation.
#include "kernels/r16_adapter.h"
#include "kernels/avx2/kernels_avx2.h"
#include "kernels/ref/kernels_ref.h"

namespace tern {

const KernelTable& avx2_kernels() {
  static const KernelTable table = {
      "avx2",
      avx2::quantize_rows_q8,
      {avx2::matmul_f32_f32, avx2::matmul_i8g32_q8r, avx2::matmul_u4g32_q8r, avx2::matmul_u5g32_q8r,
       matmul_r16_via<avx2::matmul_i8g32_q8r>, matmul_u4r16_via<avx2::matmul_u4g32_q8r>},
      avx2::rmsnorm,
      avx2::rope,
      avx2::softmax,
      avx2::silu_mul,
      avx2::attention,
      avx2::kv_store,
      avx2::gelu_mul,
      avx2::attention_i8kv,
      ref::kv_store_i8,  // once per token and layer: SIMD does not pay
  };

  return table;
}

}  // namespace tern
