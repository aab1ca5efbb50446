# Cross build for 32-bit Arm Linux: ARMv7-A with NEON, hard-float ABI
# (Cortex-A7/A9/A15 class boards). The *_neon.cc kernels compile here too
# (AArch64-only intrinsics sit behind helpers in kernels/neon/neon_util.h).
#   cmake -S . -B build/armv7 -DCMAKE_TOOLCHAIN_FILE=toolchains/arm-linux-gnueabihf.cmake \
#         -DTERN_GTEST_FROM_SOURCE=ON
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7-a)

set(TERN_CROSS_TRIPLE arm-linux-gnueabihf)
set(CMAKE_C_COMPILER ${TERN_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${TERN_CROSS_TRIPLE}-g++)

# NEON is part of the target here, not detected at run time: a v7 core
# without NEON cannot run this build.
set(TERN_ARM32_FLAGS "-march=armv7-a -mfpu=neon -mfloat-abi=hard")
set(CMAKE_C_FLAGS_INIT "${TERN_ARM32_FLAGS}")
# -Wno-psabi: GCC notes that passing std::initializer_list and similar changed
# ABI in GCC 7.1; the whole build uses one compiler, so the note is noise.
set(CMAKE_CXX_FLAGS_INIT "${TERN_ARM32_FLAGS} -Wno-psabi")

set(CMAKE_FIND_ROOT_PATH /usr/${TERN_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(TERN_QEMU_ARM qemu-arm)
if(TERN_QEMU_ARM AND NOT CMAKE_CROSSCOMPILING_EMULATOR)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${TERN_QEMU_ARM} -L /usr/${TERN_CROSS_TRIPLE})
endif()
