// Grouped-query attention: the query heads [h0, h1) of a call, in runs of
// up to 4 consecutive heads that read the same KV head, so an attention
// kernel loads each K / V row once for the whole run. `run` is called as
// run(std::integral_constant<int, G>, kv_head, first_head) with G = 1 .. 4,
// the run's length as a compile-time constant (each kernel keeps G
// accumulators in registers). One copy of the loop for every variant.
//
// Internal linkage (an unnamed namespace), as every function an ISA-flagged
// object defines must have: no weak copy for the linker to merge into code
// for another CPU.
#pragma once
#include <cstdint>
#include <type_traits>

namespace tern {
namespace {

template <class Run>
inline void for_kv_head_runs(uint32_t heads, uint32_t kv_heads, uint32_t h0, uint32_t h1, Run&& run) {
  const uint32_t group = heads / kv_heads;
  for (uint32_t h = h0; h < h1;) {
    const uint32_t kvh = h / group;
    const uint32_t group_end = (kvh + 1) * group < h1 ? (kvh + 1) * group : h1;
    const uint32_t g = group_end - h < 4 ? group_end - h : 4;
    switch (g) {
      case 1: run(std::integral_constant<int, 1>{}, kvh, h); break;
      case 2: run(std::integral_constant<int, 2>{}, kvh, h); break;
      case 3: run(std::integral_constant<int, 3>{}, kvh, h); break;
      default: run(std::integral_constant<int, 4>{}, kvh, h); break;
    }
    h += g;
  }
}

}  // namespace
}  // namespace tern
