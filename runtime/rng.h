// Seeded random numbers for sampling: PCG32 (O'Neill, pcg-random.org, the
// "pcg32_random_r" XSH-RR 64/32 generator). Integer-only state transitions,
// so one seed gives the same stream on every platform and compiler.
// Header-only, no globals, no heap; 16 bytes of state.
#pragma once
#include <cstdint>

namespace tern {

class Pcg32 {
 public:
  // PCG's default stream selector (PCG32_INITIALIZER's increment seed). The
  // sampler always uses this stream; only the seed varies.
  static constexpr uint64_t kDefaultStream = 0xda3e39cb94b95bdbULL;

  Pcg32() { seed(0); }
  explicit Pcg32(uint64_t seed_value, uint64_t stream = kDefaultStream) { seed(seed_value, stream); }

  // Same procedure as the reference pcg32_srandom_r(initstate, initseq).
  void seed(uint64_t seed_value, uint64_t stream = kDefaultStream) {
    state_ = 0;
    inc_ = (stream << 1) | 1u;
    next_u32();
    state_ += seed_value;
    next_u32();
  }

  uint32_t next_u32() {
    const uint64_t old = state_;
    state_ = old * 6364136223846793005ULL + inc_;
    const uint32_t xorshifted = static_cast<uint32_t>(((old >> 18) ^ old) >> 27);
    const uint32_t rot = static_cast<uint32_t>(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((32u - rot) & 31u));
  }

  // Uniform in [0, 1) with 24 random bits: every value is exactly representable
  // as a float, so the result is the same on every platform.
  float next_float() { return static_cast<float>(next_u32() >> 8) * (1.0f / 16777216.0f); }

  // Uniform in [0, 1) with 53 random bits (two draws).
  double next_double() {
    const uint64_t hi = next_u32() >> 5;  // 27 bits
    const uint64_t lo = next_u32() >> 6;  // 26 bits
    return static_cast<double>((hi << 26) | lo) * (1.0 / 9007199254740992.0);
  }

 private:
  uint64_t state_ = 0;
  uint64_t inc_ = 1;
};

}  // namespace tern
