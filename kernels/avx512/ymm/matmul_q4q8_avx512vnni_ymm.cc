// kernels/avxvnni/matmul_q4q8_avxvnni.cc with vpdpbusd in its EVEX encoding
// (AVX512-VNNI + VL, ymm), for the AVX-512 VNNI table's int4 / int5 decode on
// CPUs without AVX-VNNI. Compiled with AVX2 flags (see kernels_avxvnni.h).
#define TERN_AVXVNNI_EVEX 1
#include "kernels/avxvnni/matmul_q4q8_avxvnni.cc"
