// The few Cortex-M (ARMv7-M / ARMv8-M mainline) system registers the port
// touches, by address (ARMv7-M Architecture Reference Manual, B3.2/B3.3), so
// the port needs no vendor CMSIS headers.
#pragma once
#include <cstdint>

namespace tern::cortex_m {

inline volatile uint32_t& reg(uintptr_t addr) { return *reinterpret_cast<volatile uint32_t*>(addr); }

constexpr uintptr_t kSysTickCtrl = 0xE000E010;   // SYST_CSR
constexpr uintptr_t kSysTickLoad = 0xE000E014;   // SYST_RVR
constexpr uintptr_t kSysTickValue = 0xE000E018;  // SYST_CVR
constexpr uintptr_t kCpacr = 0xE000ED88;         // coprocessor access (FPU enable)

}  // namespace tern::cortex_m
