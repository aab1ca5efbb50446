// SwiGLU gate: gate = gate / (1 + exp(-gate)) * up.
#include <cmath>

#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace ref {

void silu_mul(float* gate, const float* up, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace ref
}  // namespace tern
