// The AMX table: tile prefill of the integer weight types (kernels_amx.h),
// the AVX-512 VNNI table's kernels for everything else. Batch-invariant as
// that table is: the tiles (16 tokens and more) and the AVX-512 kernels below
// them give each token's outputs bit for bit the same.
// Compiled a second time as "amx-emulated" for tests (amx_tiles.h).
#include "kernels/amx/kernels_amx.h"
#include "kernels/ref/kernels_ref.h"

namespace tern {

#if TERN_AMX_EMULATE
const KernelTable& amx_emulated_kernels() {
  static const KernelTable table = {
      "amx-emulated",
#else
const KernelTable& amx_kernels() {
  static const KernelTable table = {
      "amx",
#endif
      avx2::quantize_rows_q8,
      {avx2::matmul_f32_f32, TERN_AMX_NS::matmul_i8g32_q8r, TERN_AMX_NS::matmul_u4g32_q8r,
       TERN_AMX_NS::matmul_u5g32_q8r, TERN_AMX_NS::matmul_i8g32r16_q8r,
       TERN_AMX_NS::matmul_u4g32r16_q8r},
      avx2::rmsnorm,
      avx2::rope,
      avx2::softmax,
      avx2::silu_mul,
      TERN_AVX512_NS::attention,
      avx2::kv_store,
      avx2::gelu_mul,
      TERN_AVX512_ATTENTION_I8KV,
      ref::kv_store_i8,
  };
  return table;
}

}  // namespace tern
