// The AVX-VNNI table: the AVX2 table with the int4 and int5 matrix products
// replaced by the variants that use vpdpbusd where it pays
// (kernels/avxvnni/matmul_q4q8_avxvnni.cc).
// Compiled a second time as "avxvnni-emulated" for tests (kernels_avxvnni.h).
#include "kernels/r16_adapter.h"
#include "kernels/avxvnni/kernels_avxvnni.h"
#include "kernels/ref/kernels_ref.h"

namespace tern {

#if TERN_AVXVNNI_EMULATE
const KernelTable& avxvnni_emulated_kernels() {
  static const KernelTable table = {
      "avxvnni-emulated",
#else
const KernelTable& avxvnni_kernels() {
  static const KernelTable table = {
      "avxvnni",
#endif
      avx2::quantize_rows_q8,
      // int8 is bandwidth-bound in decode: vpdpbusd saves one op of five (see
      // matmul_q4q8_avxvnni.cc), so the AVX2 kernel serves it.
      {avx2::matmul_f32_f32, avx2::matmul_i8g32_q8r, TERN_AVXVNNI_NS::matmul_u4g32_q8r,
       TERN_AVXVNNI_NS::matmul_u5g32_q8r, matmul_r16_via<avx2::matmul_i8g32_q8r>, matmul_u4r16_via<TERN_AVXVNNI_NS::matmul_u4g32_q8r>},
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
