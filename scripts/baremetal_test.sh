#!/usr/bin/env bash
# The bare-metal port, end to end: a tiny random llama model (make-tiny-gguf,
# ~525k parameters), packed int8 and int4 by tern-pack, generated greedily
#   1. by tern-run on the host (--isa scalar),
#   2. by tern-freestanding-probe on the host (the core linked without the
#      allocating C++ runtime, static arena: tests/freestanding/),
#   3. by tern-firmware on a Cortex-M4F under qemu-system-arm -machine
#      mps2-an386 (blob linked in, static arena, semihosting output),
# and the three token lists must be equal.
#
#   scripts/baremetal_test.sh [--host-only] [--bin-dir DIR] [--work-dir DIR]
#
# --bin-dir: host binaries (default: build them in $TERN_HOST_DIR,
#            default build/release). --host-only: steps 1 and 2 (the CTest
#            test freestanding.probe runs that). Bare-metal build dir:
#            $TERN_BAREMETAL_DIR (default build/baremetal). Needs
#            gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm
#            (scripts/install_deps.sh --baremetal). Prints PASS/FAIL per
#            blob; exits nonzero on any mismatch or failure.
set -euo pipefail
export LC_ALL=C  # token texts in tern-run --json may be partial UTF-8 sequences

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=${JOBS:-$(nproc)}
HOST_DIR=${TERN_HOST_DIR:-$ROOT/build/release}
BM_DIR=${TERN_BAREMETAL_DIR:-$ROOT/build/baremetal}
host_only=0
bin_dir=""
work=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --host-only) host_only=1 ;;
    --bin-dir) bin_dir=$2; shift ;;
    --work-dir) work=$2; shift ;;
    *) echo "usage: $0 [--host-only] [--bin-dir DIR] [--work-dir DIR]" >&2; exit 2 ;;
  esac
  shift
done
work=${work:-$BM_DIR/work}
mkdir -p "$work"

PROMPT=1,72,101,108,108,111  # <|im_start|> then five byte tokens
TOKENS=24
# The blobs' default context: at default limits the engine checks the blob's
# stored memory plan (made by the 64-bit packer) against its own, so this
# also proves a 32-bit target plans the same arena byte for byte.
CONTEXT=128
SEED=7
QEMU_TIMEOUT=${TERN_QEMU_TIMEOUT:-300}

if [[ -z $bin_dir ]]; then
  [[ -f $HOST_DIR/CMakeCache.txt ]] || cmake -S "$ROOT" -B "$HOST_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$HOST_DIR" -j"$JOBS" --target make-tiny-gguf tern-pack tern-run tern-freestanding-probe >/dev/null
  bin_dir=$HOST_DIR/bin
fi
for t in make-tiny-gguf tern-pack tern-run tern-freestanding-probe; do
  [[ -x $bin_dir/$t ]] || { echo "baremetal_test.sh: $bin_dir/$t missing" >&2; exit 2; }
done

"$bin_dir/make-tiny-gguf" "$work/tiny.gguf" --seed "$SEED"
for w in int8 int4; do
  "$bin_dir/tern-pack" "$work/tiny.gguf" -o "$work/tiny-$w.tern" --weights "$w" --max-context 128 >/dev/null
done

if [[ $host_only == 0 ]]; then
  for tool in arm-none-eabi-g++ qemu-system-arm; do
    command -v "$tool" >/dev/null || { echo "baremetal_test.sh: $tool not found (scripts/install_deps.sh --baremetal)" >&2; exit 2; }
  done
fi

status=0
for w in int8 int4; do
  blob=$work/tiny-$w.tern
  host=$("$bin_dir/tern-run" --model "$blob" --prompt-ids "$PROMPT" -n "$TOKENS" --isa scalar --ignore-eos \
         --max-context "$CONTEXT" --json | sed -n 's/^{"id":\([0-9]*\),.*/\1/p' | tr '\n' ' ' | sed 's/ $//')
  if [[ $(wc -w <<<"$host") != "$TOKENS" ]]; then
    echo "FAIL $w: tern-run gave '$host', not $TOKENS tokens"; status=1; continue
  fi
  probe_out=$("$bin_dir/tern-freestanding-probe" "$blob" "$TOKENS" "$PROMPT" "$CONTEXT" 2>&1) || true
  probe=$(sed -n 's/^tokens: //p' <<<"$probe_out")
  if [[ $probe == "$host" ]]; then
    echo "PASS $w host: tern-run and tern-freestanding-probe agree: $host"
  else
    echo "FAIL $w host: tern-run: $host"
    echo "              probe:    ${probe:-$probe_out}"
    status=1
  fi
  [[ $host_only == 1 ]] && continue

  cmake -S "$ROOT" -B "$BM_DIR" -DCMAKE_TOOLCHAIN_FILE="$ROOT/toolchains/arm-none-eabi.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DTERN_FIRMWARE_BLOB="$blob" -DTERN_FIRMWARE_PROMPT_IDS="$PROMPT" \
    -DTERN_FIRMWARE_TOKENS="$TOKENS" -DTERN_FIRMWARE_MAX_CONTEXT="$CONTEXT" >/dev/null
  cmake --build "$BM_DIR" -j"$JOBS" --target tern-firmware >/dev/null
  elf=$BM_DIR/bin/tern-firmware.elf
  rc=0
  fw_out=$(timeout "$QEMU_TIMEOUT" qemu-system-arm -machine mps2-an386 -nographic -monitor none -serial none \
             -semihosting-config enable=on,target=native -kernel "$elf" 2>&1) || rc=$?
  fw=$(sed -n 's/^tokens: //p' <<<"$fw_out" | tr -d '\r')
  if [[ $rc == 0 && $fw == "$host" ]]; then
    echo "PASS $w mps2-an386: firmware agrees with the host"
    grep -E '^(blob|time)' <<<"$fw_out" | sed 's/^/     /'
  else
    echo "FAIL $w mps2-an386 (qemu exit $rc): host:     $host"
    echo "                                   firmware: ${fw:-<none>}"
    sed 's/^/     | /' <<<"$fw_out" | head -20
    status=1
  fi
done
[[ $status == 0 ]] && echo "baremetal_test.sh: PASS" || echo "baremetal_test.sh: FAIL"
exit "$status"
