// Store one token's k and v [kv_heads * head_dim] as f16 (round to nearest
// even) at position `pos`, in the block kv.block_table[pos / block_tokens].
#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace ref {

void kv_store(const PagedKv& kv, uint16_t* k_pool, uint16_t* v_pool, uint32_t pos, const float* k,
              const float* v) {
  const size_t off = kv_offset(kv, pos, 0);  // kv heads of one token are contiguous
  const uint32_t n = kv.kv_heads * kv.head_dim;
  for (uint32_t i = 0; i < n; ++i) {
    k_pool[off + i] = f32_to_f16(k[i]);
    v_pool[off + i] = f32_to_f16(v[i]);
  }
}

}  // namespace ref
}  // namespace tern
