// Numerically stable softmax in place: x = exp(x - max) / sum.
#include <cmath>

#include "kernels/ref/kernels_ref.h"

namespace tern {
namespace ref {

void softmax(float* x, uint32_t n) {
  if (n == 0) return;
  float mx = x[0];
  for (uint32_t i = 1; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  double sum = 0.0;
  for (uint32_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (uint32_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace ref
}  // namespace tern
