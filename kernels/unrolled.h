// unrolled<N>(f): f(0) .. f(N-1) with compile-time indices (integral
// constants), for the SIMD kernels' register tiles: an array of vectors
// indexed by them stays in registers, where GCC keeps a loop-indexed array
// in memory. ISA-neutral and safe to share between files compiled for
// different ISAs: its instantiations take the kernels' lambdas, which have no
// linkage, so none can be merged across files.
#pragma once
#include <utility>

namespace tern {

// Always inlined: a kernel file instantiates many large tiles, and once GCC's
// per-file inline growth limit was reached it left this call out of line in
// the hottest tile (the AVX-512 prefill ran at two thirds of its speed,
// depending on how many other tiles the file happened to instantiate).
template <class F, int... I>
[[gnu::always_inline]] inline void unrolled_impl(F&& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, class F>
[[gnu::always_inline]] inline void unrolled(F&& f) {
  unrolled_impl(f, std::make_integer_sequence<int, N>{});
}

}  // namespace tern
