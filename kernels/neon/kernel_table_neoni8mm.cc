// The ARMv8.6 i8mm table: the smmla prefill matrix products
// (matmul_q8_neoni8mm.cc, which hand decode to the sdot kernels), everything
// else shared with the neon-dotprod table (those functions live in the
// *_neon.cc files, built for the baseline, so nothing here needs i8mm).
//
// Compiled a second time with TERN_NEON_I8MM_EMULATE (kernels/neon/emulated/)
// as "neon-i8mm-emulated", tests only: the same matrix products on emulated
// intrinsics and the scalar reference for every other slot, so it builds on
// any host (on AArch64 its decode is still neon-dotprod's, as in neon-i8mm).
#include "kernels/r16_adapter.h"
#include "kernels/neon/kernels_neon.h"
#include "kernels/ref/kernels_ref.h"

namespace tern {

#if TERN_NEON_I8MM_EMULATE
const KernelTable& neoni8mm_emulated_kernels() {
  static const KernelTable table = {
      "neon-i8mm-emulated",
      ref::quantize_rows_q8,
      {ref::matmul_f32_f32, neoni8mm_emulated::matmul_i8g32_q8r, neoni8mm_emulated::matmul_u4g32_q8r,
       neoni8mm_emulated::matmul_u5g32_q8r, matmul_r16_via<neoni8mm_emulated::matmul_i8g32_q8r>, matmul_u4r16_via<neoni8mm_emulated::matmul_u4g32_q8r>},
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
#else
const KernelTable& neoni8mm_kernels() {
  static const KernelTable table = {
      "neon-i8mm",
      neon::quantize_rows_q8,
      {neon::matmul_f32_f32, neoni8mm::matmul_i8g32_q8r, neoni8mm::matmul_u4g32_q8r,
       neoni8mm::matmul_u5g32_q8r, matmul_r16_via<neoni8mm::matmul_i8g32_q8r>, matmul_u4r16_via<neoni8mm::matmul_u4g32_q8r>},
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
#endif

}  // namespace tern
