#!/usr/bin/env bash
# Install what building and testing tern needs, from Debian's packages, when
# it is missing.
#   scripts/install_deps.sh --chat    only what building tern and fetching the
#                                     model need: a C++ compiler, CMake, Python
#                                     with pip (scripts/chat.sh uses this)
#   scripts/install_deps.sh [--cross] [--baremetal]
#                                     the test tooling too: GoogleTest, clang
#                                     and its sanitizer/libFuzzer runtimes; with
#                                     --cross the Arm cross compilers and
#                                     qemu-user, with --baremetal the Cortex-M
#                                     toolchain and qemu-system-arm
set -euo pipefail
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v python3 >/dev/null || need+=(python3 python3-pip)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
if [ "${1:-}" != "--chat" ]; then
  [ -d /usr/src/googletest ] || need+=(googletest)
  [ -f /usr/include/gtest/gtest.h ] || need+=(libgtest-dev)
  command -v unzip >/dev/null || need+=(unzip)
  # python3 -m venv for scripts/conformance_models.sh (gguf + numpy, pinned).
  python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need+=(python3-venv)
  # clang + its runtimes (libFuzzer, ASan, UBSan, TSan) for scripts/fuzz.sh.
  command -v clang++ >/dev/null || need+=(clang)
  ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1 || need+=(libclang-rt-dev)
fi
if [ "${1:-}" = "--cross" ]; then
  command -v aarch64-linux-gnu-g++ >/dev/null || need+=(g++-aarch64-linux-gnu)
  command -v arm-linux-gnueabihf-g++ >/dev/null || need+=(g++-arm-linux-gnueabihf)
  command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
fi
# --baremetal (any position): the Cortex-M toolchain, newlib and qemu-system-arm
# for scripts/baremetal_test.sh.
case " $* " in *" --baremetal "*)
  command -v arm-none-eabi-g++ >/dev/null || need+=(gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib)
  command -v qemu-system-arm >/dev/null || need+=(qemu-system-arm)
esac
if [ ${#need[@]} -gt 0 ]; then
  echo "install_deps: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
