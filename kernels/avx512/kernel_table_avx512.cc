// The AVX-512 VNNI table: zmm integer matrix products and attention
// (kernels_avx512.h), AVX2 for everything else (the float ops are a small share of a step).
// Batch-invariant: decode, short and long prefill of every integer type give
// each token's outputs in one float order (matmul_q8_small_avx512.cc); the
// f32 product (avx2::matmul_f32_f32) computes each output alone.
// Compiled a second time as "avx512vnni-emulated" for tests (simd_avx512.h).
#include "kernels/avx512/kernels_avx512.h"
#include "kernels/ref/kernels_ref.h"

namespace tern {

#if TERN_AVX512_EMULATE
const KernelTable& avx512vnni_emulated_kernels() {
  static const KernelTable table = {
      "avx512vnni-emulated",
#else
const KernelTable& avx512vnni_kernels() {
  static const KernelTable table = {
      "avx512vnni",
#endif
      avx2::quantize_rows_q8,
      {avx2::matmul_f32_f32, TERN_AVX512_NS::matmul_i8g32_q8r, TERN_AVX512_NS::matmul_u4g32_q8r,
       TERN_AVX512_NS::matmul_u5g32_q8r, TERN_AVX512_NS::matmul_i8g32r16_q8r,
       TERN_AVX512_NS::matmul_u4g32r16_q8r},
      avx2::rmsnorm,
      avx2::rope,
      avx2::softmax,
      avx2::silu_mul,
      TERN_AVX512_NS::attention,
      avx2::kv_store,
      avx2::gelu_mul,
      TERN_AVX512_ATTENTION_I8KV,
      ref::kv_store_i8,  // once per token and layer: SIMD does not pay
  };
  return table;
}

}  // namespace tern
