// kernels/avxvnni/kernel_table_avxvnni.cc as "avxvnni-emulated" (tests only;
// see kernels/avxvnni/kernels_avxvnni.h).
#define TERN_AVXVNNI_EMULATE 1
#include "kernels/avxvnni/kernel_table_avxvnni.cc"
