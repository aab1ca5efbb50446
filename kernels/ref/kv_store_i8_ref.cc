// Store one token's k and v [kv_heads * head_dim] as int8 KV (layout in
// kernels/kernels.h) at position `pos`: per kv head, rotated into the
// cache's basis (kv_rotate), then symmetric int8 with one f32 scale
// (quantize_i8_row), the values at +128 in the tile layout and the
// scale in the block's scale plane. SIMD tables use this function too: it
// runs once per token and layer, far from the cost of attention.
#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace ref {

void kv_store_i8(const PagedKv& kv, uint8_t* k_pool, uint8_t* v_pool, uint32_t pos, const float* k,
                 const float* v) {
  const uint32_t hd = kv.head_dim;
  const size_t block = size_t(kv.block_table[pos / kv.block_tokens]) * kv.block_stride;
  const uint32_t r = pos % kv.block_tokens;
  int8_t q[1024];  // head_dim <= blob::limits::kMaxHeadDim (checked at load) <= 1024
  float rot[1024];
  const uint32_t rb = kv_rotation_block(hd);
  for (uint32_t kvh = 0; kvh < kv.kv_heads; ++kvh) {
    for (int which = 0; which < 2; ++which) {
      uint8_t* base = (which == 0 ? k_pool : v_pool) + block;
      const float* x = (which == 0 ? k : v) + size_t(kvh) * hd;
      for (uint32_t i = 0; i < hd; ++i) rot[i] = x[i];
      kv_rotate(rot, hd, rb);
      const float d = quantize_i8_row(rot, hd, q);
      for (uint32_t i = 0; i < hd; ++i) {
        const size_t off = which == 0 ? kv_i8_k_offset(kv, r, kvh, i) : kv_i8_v_offset(kv, r, kvh, i);
        base[off] = uint8_t(int32_t(q[i]) + 128);
      }
      __builtin_memcpy(base + kv_i8_scale_offset(kv, r, kvh), &d, sizeof(float));
    }
  }
}

}  // namespace ref
}  // namespace tern
