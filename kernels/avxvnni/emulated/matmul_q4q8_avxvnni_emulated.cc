// kernels/avxvnni/matmul_q4q8_avxvnni.cc with vpdpbusd emulated in AVX2, for
// tests on CPUs without AVX-VNNI (see kernels/avxvnni/kernels_avxvnni.h).
#define TERN_AVXVNNI_EMULATE 1
#include "kernels/avxvnni/matmul_q4q8_avxvnni.cc"
