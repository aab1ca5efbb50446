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

// Harness-only code (an independent model, invariant checks, checksum
// fixing) is not what the fuzzer explores. Compiled with coverage
// instrumentation, every loop compare in it is a libFuzzer callback (trace-cmp):
// that was most of an exec in fuzz_kv_pages and fuzz_blob_loader, and it fed
// libFuzzer "new coverage" that was only the harness's own loops. Functions
// marked FUZZ_NO_COVERAGE keep ASan and UBSan; only the code under test
// (runtime, tools, the harness's operation dispatch) guides the fuzzer.
#if defined(__clang__) && __clang_major__ >= 13
#define FUZZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define FUZZ_NO_COVERAGE
#endif

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
