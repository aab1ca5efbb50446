#include "port/baremetal/semihosting.h"

#include <cstdint>
#include <cstring>

namespace tern {
namespace {

constexpr uint32_t kSysWrite0 = 0x04;
constexpr uint32_t kSysExit = 0x18;
constexpr uint32_t kApplicationExit = 0x20026;  // ADP_Stopped_ApplicationExit: QEMU exits 0
constexpr uint32_t kRunTimeError = 0x20023;     // ADP_Stopped_RunTimeErrorUnknown: QEMU exits 1

uint32_t semihost_call(uint32_t op, const void* arg) {
  register uint32_t r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

}  // namespace

void semihost_write(const char* s, size_t n) {
  char chunk[128];
  while (n > 0) {
    const size_t k = n < sizeof(chunk) - 1 ? n : sizeof(chunk) - 1;
    std::memcpy(chunk, s, k);
    chunk[k] = '\0';  // SYS_WRITE0 stops at the first NUL; blob text has none worth keeping
    semihost_call(kSysWrite0, chunk);
    s += k;
    n -= k;
  }
}

void semihost_puts(const char* s) { semihost_write(s, std::strlen(s)); }

void semihost_exit(bool ok) {
  // On 32-bit Arm SYS_EXIT takes the reason code itself in r1.
  semihost_call(kSysExit, reinterpret_cast<const void*>(uintptr_t(ok ? kApplicationExit : kRunTimeError)));
  for (;;) {
  }
}

}  // namespace tern
