// GeGLU gate (Gemma): gate = gelu_tanh(gate) * up, with
// gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))), the form
// Gemma was trained with (HF "gelu_pytorch_tanh", llama.cpp ggml_gelu).
#include <cmath>

#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace ref {

void gelu_mul(float* gate, const float* up, uint32_t n) {
  const float c = 0.7978845608028654f;  // sqrt(2 / pi)
  for (uint32_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = 0.5f * g * (1.0f + std::tanh(c * (g + 0.044715f * g * g * g))) * up[i];
  }
}

}  // namespace ref
}  // namespace tern
