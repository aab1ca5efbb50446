// Reset and exception entry for an ARMv7-M / ARMv8-M mainline core, with the
// linker script beside it (mps2_an386.ld): the vector table, .data copied
// from its load address, .bss zeroed, the FPU enabled, C++ constructors run,
// then the application's main(); its return value ends the program through
// semihosting. A fault prints its name and ends the program with a failure,
// so a test never hangs on a crashed core.
//
// No heap: _sbrk refuses every request, so any malloc (ours or a C library
// path we did not expect) fails instead of quietly taking memory. The
// runtime's working memory is the application's static arena.
#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "port/baremetal/cortex_m.h"
#include "port/baremetal/semihosting.h"

extern "C" {
// From the linker script.
extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[], __stack_top[];
extern void (*__preinit_array_start[])(), (*__preinit_array_end[])();
extern void (*__init_array_start[])(), (*__init_array_end[])();

int main();
void tern_systick_handler();
[[noreturn]] void tern_reset_handler();

void* _sbrk(ptrdiff_t) {
  errno = ENOMEM;
  return reinterpret_cast<void*>(-1);
}
}

namespace {

[[noreturn]] void fault(const char* what) {
  tern::semihost_puts("\ntern firmware: ");
  tern::semihost_puts(what);
  tern::semihost_puts("\n");
  tern::semihost_exit(false);
}

void nmi_handler() { fault("NMI"); }
void hard_fault_handler() { fault("HardFault"); }
void mem_manage_handler() { fault("MemManage fault"); }
void bus_fault_handler() { fault("BusFault"); }
void usage_fault_handler() { fault("UsageFault (undefined instruction, unaligned or divide by zero)"); }
void unexpected_handler() { fault("unexpected exception"); }

using Handler = void (*)();

}  // namespace

// Initial stack pointer, then the handlers (ARMv7-M ARM B1.5.3). QEMU loads
// the image and takes SP and PC from here.
__attribute__((section(".vectors"), used)) extern const Handler tern_vectors[16] = {
    reinterpret_cast<Handler>(__stack_top),
    tern_reset_handler,
    nmi_handler,
    hard_fault_handler,
    mem_manage_handler,
    bus_fault_handler,
    usage_fault_handler,
    nullptr, nullptr, nullptr, nullptr,  // reserved
    unexpected_handler,                  // SVCall
    unexpected_handler,                  // DebugMonitor
    nullptr,                             // reserved
    unexpected_handler,                  // PendSV
    tern_systick_handler,                // SysTick (port/baremetal/clock_baremetal.cc)
};

extern "C" void tern_reset_handler() {
  for (uint32_t *src = __data_load, *dst = __data_start; dst < __data_end;) *dst++ = *src++;
  for (uint32_t* dst = __bss_start; dst < __bss_end;) *dst++ = 0;
#if defined(__ARM_FP)
  // CP10 and CP11 full access, before any floating-point instruction runs.
  tern::cortex_m::reg(tern::cortex_m::kCpacr) |= 0xFu << 20;
  __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
  for (auto* f = __preinit_array_start; f < __preinit_array_end; ++f) (*f)();
  for (auto* f = __init_array_start; f < __init_array_end; ++f) (*f)();
  const int rc = main();
  tern::semihost_exit(rc == 0);
}
