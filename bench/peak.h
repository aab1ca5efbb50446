// Peak microbenchmarks of the integer dot-product instruction sequences the
// prefill kernels are built on, for kernel-bench (how close each variant's
// prefill comes to its integer limit on the CPU at hand).
//
// Each peak_* function runs `iters` iterations of an unrolled inline-asm loop
// over independent accumulator registers (enough chains to cover the
// instruction's latency at full throughput; the asm keeps the compiler from
// removing or hoisting anything) and returns the number of dot-product
// instructions it executed. The caller times it (thread CPU time). Each is
// defined in its own file compiled with that ISA's flags (bench/peak_*.cc,
// bench/CMakeLists.txt) and may only be called when the CPU has the ISA;
// TERN_BENCH_PEAK_<ISA> says which were compiled. The files define nothing
// but these functions: no inline functions of shared headers, which the
// linker could merge into code run on CPUs without the ISA.
#pragma once
#include <cstdint>

namespace tern {
namespace bench {

// A dependent chain of scalar adds (1 cycle each): cycles, to give the
// clock. Portable (x86-64 and AArch64 asm; 0 elsewhere: no clock figure).
uint64_t peak_add_chain(uint64_t iters);

// x86-64, AVX2: vpmaddwd ymm (16 int16 x int16 products) each followed by a
// vpaddd into its int32 accumulator; returns vpmaddwd count.
uint64_t peak_vpmaddwd_vpaddd_ymm(uint64_t iters);
// AVX-VNNI: {vex} vpdpbusd ymm (32 u8 x s8 products, accumulating).
uint64_t peak_vpdpbusd_ymm(uint64_t iters);
// AVX-512 VNNI: vpdpwssd zmm (32 int16 x int16 products, accumulating).
uint64_t peak_vpdpwssd_zmm(uint64_t iters);
// AMX-INT8: tdpbssd on 16x64-byte tiles (16 x 16 x 64 = 16384 s8 x s8
// products), 4 independent C tiles; configures and releases the tiles itself.
uint64_t peak_tdpbssd(uint64_t iters);
// The same at half depth, K = 32 bytes (A 16 x 32, B 8 rows: 8192 products),
// as kernels/amx runs it (one 32-column group per tile product).
uint64_t peak_tdpbssd_k32(uint64_t iters);

// AArch64 NEON: smull + smlal2 (16 int8 x int8 products into int16) + sadalp
// into int32, the vmull_s8 / vmlal_s8 / vpadalq_s16 sequence of
// kernels/neon/matmul_q8_neon.cc; returns sequences.
uint64_t peak_smull_smlal_sadalp(uint64_t iters);
// ARMv8.2 dot product: sdot v.4s (16 int8 x int8 products, accumulating).
uint64_t peak_sdot(uint64_t iters);
// ARMv8.6 i8mm: smmla v.4s (2x8 by 8x2 int8: 32 products, accumulating).
uint64_t peak_smmla(uint64_t iters);

}  // namespace bench
}  // namespace tern
