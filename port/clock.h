// Monotonic time for timings (TTFT, tokens/s). Not used for anything else.
#pragma once
#include <cstdint>

namespace tern {
uint64_t now_ns();
inline double ns_to_ms(uint64_t ns) { return double(ns) * 1e-6; }
}  // namespace tern
