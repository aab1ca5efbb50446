// kernels/avx512/kernel_table_avx512.cc as "avx512vnni-emulated" (tests only;
// see kernels/avx512/simd_avx512.h).
#define TERN_AVX512_EMULATE 1
#include "kernels/avx512/kernel_table_avx512.cc"
