// Arm semihosting (the debugger or QEMU services the call when the core
// executes BKPT 0xAB): the bare-metal port's character sink and exit.
// QEMU needs -semihosting (or -semihosting-config enable=on).
#pragma once
#include <cstddef>

namespace tern {

// Write n bytes to the host's console (SYS_WRITE0 on a bounded copy).
void semihost_write(const char* s, size_t n);
void semihost_puts(const char* s);
// End the program: exit status 0 for ok, nonzero (QEMU exits 1) otherwise.
[[noreturn]] void semihost_exit(bool ok);

}  // namespace tern
