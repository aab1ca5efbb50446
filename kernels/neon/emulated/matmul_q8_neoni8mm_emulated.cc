// kernels/neon/matmul_q8_neoni8mm.cc on the plain C++ NEON intrinsics of
// neon_emulation.h, for tests on hosts without i8mm (any architecture).
#define TERN_NEON_I8MM_EMULATE 1
#include "kernels/neon/matmul_q8_neoni8mm.cc"
