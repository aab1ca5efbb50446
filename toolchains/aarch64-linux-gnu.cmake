# Cross build for 64-bit Arm Linux (ARMv8.0-A baseline; the dotprod kernels
# are compiled per file with -march=armv8.2-a+dotprod and picked at run time).
#   cmake -S . -B build/aarch64 -DCMAKE_TOOLCHAIN_FILE=toolchains/aarch64-linux-gnu.cmake \
#         -DTERN_GTEST_FROM_SOURCE=ON
# Tests run under qemu-user when it is installed (CMAKE_CROSSCOMPILING_EMULATOR);
# pick the emulated CPU with the environment, e.g. QEMU_CPU=cortex-a53 ctest.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(TERN_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${TERN_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${TERN_CROSS_TRIPLE}-g++)

set(CMAKE_FIND_ROOT_PATH /usr/${TERN_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# -L points qemu at the target's dynamic loader and libraries. No -cpu here:
# qemu reads QEMU_CPU from the environment, so one build tree serves every
# CPU model (scripts/cross_test.sh runs the suite as `max` and `cortex-a53`).
find_program(TERN_QEMU_AARCH64 qemu-aarch64)
if(TERN_QEMU_AARCH64 AND NOT CMAKE_CROSSCOMPILING_EMULATOR)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${TERN_QEMU_AARCH64} -L /usr/${TERN_CROSS_TRIPLE})
endif()
