# Bare-metal Cortex-M4F (ARMv7E-M, single-precision FPU, hard-float ABI) with
# Debian's gcc-arm-none-eabi + libnewlib-arm-none-eabi: the port in
# port/baremetal/, the firmware in tools/firmware/, for the Arm MPS2 AN386
# board (QEMU: -machine mps2-an386). No OS, no threads; only the scalar
# kernels (Cortex-M has no NEON; MVE on M55 is not used).
#   cmake -S . -B build/baremetal -DCMAKE_TOOLCHAIN_FILE=toolchains/arm-none-eabi.cmake \
#         -DTERN_FIRMWARE_BLOB=/path/to/tiny.tern
#   cmake --build build/baremetal --target tern-firmware
# scripts/baremetal_test.sh does this and runs it under qemu-system-arm.
set(CMAKE_SYSTEM_NAME Generic)
# Not "arm*": the top CMakeLists would take that for ARMv7-A and build NEON.
set(CMAKE_SYSTEM_PROCESSOR cortex-m4)

set(TERN_CROSS_TRIPLE arm-none-eabi)
set(CMAKE_C_COMPILER ${TERN_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${TERN_CROSS_TRIPLE}-g++)
set(CMAKE_ASM_COMPILER ${TERN_CROSS_TRIPLE}-gcc)
# Compiler checks cannot link a program before the startup code exists.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(TERN_MCU_FLAGS "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16")
# -ffunction-sections/-fdata-sections with --gc-sections: only what the
# firmware reaches is linked. -Wno-psabi: ABI-change notes, one compiler here.
# -Wno-format: arm-none-eabi's uint32_t is `unsigned long` (int32_t `long`),
# so every "%u" of a uint32_t in the runtime's messages warns here although
# both types are 32 bits and print the same; the host builds, where uint32_t
# is `unsigned int`, keep checking those format strings.
set(CMAKE_C_FLAGS_INIT "${TERN_MCU_FLAGS} -ffunction-sections -fdata-sections -Wno-format")
set(CMAKE_CXX_FLAGS_INIT "${TERN_MCU_FLAGS} -ffunction-sections -fdata-sections -Wno-psabi -Wno-format")
set(CMAKE_ASM_FLAGS_INIT "${TERN_MCU_FLAGS}")
# nosys.specs: newlib's system calls as failing stubs (there is no OS); the
# startup code is ours (port/baremetal/startup_cortex_m.cc).
set(CMAKE_EXE_LINKER_FLAGS_INIT "${TERN_MCU_FLAGS} --specs=nano.specs --specs=nosys.specs -nostartfiles -Wl,--gc-sections")

set(TERN_PORT baremetal CACHE STRING "" FORCE)

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
