// Monotonic time from SysTick, the 24-bit down-counter every Cortex-M has
// (QEMU models it; it does not model the DWT cycle counter, which reads 0).
// SysTick counts core clock cycles from 0xFFFFFF down and interrupts on each
// wrap; the handler counts wraps, so now_ns() = cycles since start / clock.
// The clock rate is the board's (TERN_BAREMETAL_CPU_HZ, 25 MHz on MPS2 and in
// QEMU's model of it). Under QEMU the figures follow the emulator's virtual
// clock, not a real core: use them to see that timing works, not as speeds.
#include "port/baremetal/cortex_m.h"
#include "port/clock.h"

#ifndef TERN_BAREMETAL_CPU_HZ
#define TERN_BAREMETAL_CPU_HZ 25000000u
#endif

namespace {
constexpr uint32_t kReload = 0x00FFFFFFu;
volatile uint32_t g_wraps = 0;
bool g_started = false;

void start_systick() {
  using namespace tern::cortex_m;
  reg(kSysTickLoad) = kReload;
  reg(kSysTickValue) = 0;
  reg(kSysTickCtrl) = 0x7;  // ENABLE | TICKINT | CLKSOURCE = core clock
  // The counter reads 0 until its first reload; a 0 here would count as a
  // whole period already elapsed, and the next reading would go backwards.
  while (reg(kSysTickValue) == 0) {
  }
  g_started = true;
}
}  // namespace

// The vector table (startup_cortex_m.cc) points SysTick here.
extern "C" void tern_systick_handler() { g_wraps = g_wraps + 1; }

namespace tern {

uint64_t now_ns() {
  if (!g_started) start_systick();
  uint32_t wraps, value;
  do {  // a wrap between the two reads would pair a new count with an old value
    wraps = g_wraps;
    value = cortex_m::reg(cortex_m::kSysTickValue);
  } while (wraps != g_wraps);
  const uint64_t cycles = uint64_t(wraps) * (uint64_t(kReload) + 1) + (kReload - value);
  return cycles * 1000000000ull / TERN_BAREMETAL_CPU_HZ;
}

}  // namespace tern
