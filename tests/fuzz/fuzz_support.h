// Shared bits of the fuzz harnesses: a byte reader over the fuzz input and a
// check macro that aborts (a libFuzzer finding) with a readable reason.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, ...)                                              \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "fuzz check failed at %s:%d: %s\n  ", __FILE__, \
                   __LINE__, #cond);                                       \
      std::fprintf(stderr, __VA_ARGS__);                                   \
      std::fprintf(stderr, "\n");                                          \
      std::abort();                                                        \
    }                                                                      \
  } while (0)

namespace tern::fuzz {

// Consumes the input front to back; past the end every read is 0.
struct ByteReader {
  const uint8_t* p;
  size_t n;
  bool empty() const { return n == 0; }
  uint8_t u8() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  uint32_t u16() { return uint32_t(u8()) | (uint32_t(u8()) << 8); }
};

}  // namespace tern::fuzz
