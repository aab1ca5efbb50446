// kernels/amx/kernel_table_amx.cc as "amx-emulated" (tests only; see
// kernels/amx/amx_tiles.h).
#define TERN_AMX_EMULATE 1
#define TERN_AVX512_EMULATE 1
#include "kernels/amx/kernel_table_amx.cc"
