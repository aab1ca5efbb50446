// kernels/amx/matmul_q8_amx.cc with the tile registers and tdpbssd computed
// in C++ and every 512-bit operation on pairs of ymm in AVX2, for tests on
// CPUs without AMX (amx_tiles.h, kernels/avx512/simd_avx512.h).
#define TERN_AMX_EMULATE 1
#define TERN_AVX512_EMULATE 1
#include "kernels/amx/matmul_q8_amx.cc"
