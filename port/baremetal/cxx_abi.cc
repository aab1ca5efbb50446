// The C++ ABI hooks the runtime core needs, for one core with no OS and no
// threads, so the firmware links none of libsupc++ (whose guard pulls in the
// exception machinery and whose emergency exception pool mallocs at startup).
//   __cxa_guard_*: function-local statics (kernels/dispatch.cc); with one
//     thread and no interrupt handler touching them, the guard's first byte
//     ("initialized", Itanium C++ ABI 3.3.3) is all there is to keep.
//   __cxa_pure_virtual: a call through an abstract vtable slot is a bug.
//   __aeabi_atexit / __dso_handle: static destructors are never run; the
//     program ends through semihosting, never by returning to a C++ exit.
#include <cstdint>

#include "port/baremetal/semihosting.h"

extern "C" {

int __cxa_guard_acquire(uint32_t* guard) { return (*reinterpret_cast<uint8_t*>(guard) == 0) ? 1 : 0; }
void __cxa_guard_release(uint32_t* guard) { *reinterpret_cast<uint8_t*>(guard) = 1; }
void __cxa_guard_abort(uint32_t*) {}

void __cxa_pure_virtual() {
  tern::semihost_puts("\ntern firmware: pure virtual call\n");
  tern::semihost_exit(false);
}

void* __dso_handle = nullptr;
int __aeabi_atexit(void*, void (*)(void*), void*) { return 0; }

}  // extern "C"
