// kernels/avx512/attention_f16kv_avx512.cc on pairs of ymm in AVX2, for tests
// on CPUs without AVX-512 (simd_avx512.h).
#define TERN_AVX512_EMULATE 1
#include "kernels/avx512/attention_f16kv_avx512.cc"
