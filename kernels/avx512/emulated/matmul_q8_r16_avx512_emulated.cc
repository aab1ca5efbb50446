// kernels/avx512/matmul_q8_r16_avx512.cc with every 512-bit operation done
// on pairs of ymm in AVX2, for tests on CPUs without AVX-512 (simd_avx512.h).
#define TERN_AVX512_EMULATE 1
#include "kernels/avx512/matmul_q8_r16_avx512.cc"
