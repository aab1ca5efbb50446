// kernels/neon/kernel_table_neoni8mm.cc as "neon-i8mm-emulated" (tests only;
// see kernels/neon/emulated/neon_emulation.h).
#define TERN_NEON_I8MM_EMULATE 1
#include "kernels/neon/kernel_table_neoni8mm.cc"
