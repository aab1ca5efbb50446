// The list of kernel tables compiled into this binary, best first, and the
// choice among them. Each SIMD table lives in files compiled with its own ISA
// flags; this file is compiled for the baseline and only names the tables.
#include "kernels/dispatch.h"

#include <cstring>

namespace tern {

#if TERN_HAVE_AMX
const KernelTable& amx_kernels();  // kernels/amx/kernel_table_amx.cc
#endif
#if TERN_HAVE_AVX512VNNI
const KernelTable& avx512vnni_kernels();  // kernels/avx512/kernel_table_avx512.cc
#endif
#if TERN_HAVE_AVXVNNI
const KernelTable& avxvnni_kernels();  // kernels/avxvnni/kernel_table_avxvnni.cc
#endif
#if TERN_HAVE_AVX2
const KernelTable& avx2_kernels();  // kernels/avx2/kernel_table_avx2.cc
#endif
// ---- NEON tables (kernels/neon/, written separately) ----------------------
#if TERN_HAVE_NEON_I8MM
const KernelTable& neoni8mm_kernels();  // kernels/neon/*_neoni8mm.cc
#endif
#if TERN_HAVE_NEON_DOTPROD
const KernelTable& neondot_kernels();  // kernels/neon/*_neondot.cc
#endif
#if TERN_HAVE_NEON
const KernelTable& neon_kernels();  // kernels/neon/*_neon.cc
#endif

namespace {

struct VariantList {
  KernelVariant items[8];
  size_t count;
};

// Built once on first use; order is preference order, scalar last.
VariantList build_variants() {
  VariantList v{};
  size_t n = 0;
#if TERN_HAVE_AMX
  // AMX tile prefill from 16 tokens; everything else is the AVX-512 VNNI variant's.
  v.items[n++] = {amx_kernels().name, &amx_kernels(), kIsaAvx2 | kIsaAvx512Vnni | kIsaAmxInt8};
#endif
#if TERN_HAVE_AVX512VNNI
  // zmm prefill, decode and short prefill of every weight type, in one float order (batch-invariant).
  v.items[n++] = {avx512vnni_kernels().name, &avx512vnni_kernels(), kIsaAvx2 | kIsaAvx512Vnni};
#endif
#if TERN_HAVE_AVXVNNI
  // AVX2 kernels with vpdpbusd for int4 decode; needs AVX2 + FMA + F16C too.
  v.items[n++] = {avxvnni_kernels().name, &avxvnni_kernels(), kIsaAvx2 | kIsaAvxVnni};
#endif
#if TERN_HAVE_AVX2
  v.items[n++] = {avx2_kernels().name, &avx2_kernels(), kIsaAvx2};
#endif
#if TERN_HAVE_NEON_I8MM
  // smmla prefill; decode and every other op are neon-dotprod's.
  v.items[n++] = {neoni8mm_kernels().name, &neoni8mm_kernels(), kIsaNeon | kIsaNeonDotprod | kIsaNeonI8mm};
#endif
#if TERN_HAVE_NEON_DOTPROD
  v.items[n++] = {neondot_kernels().name, &neondot_kernels(), kIsaNeon | kIsaNeonDotprod};
#endif
#if TERN_HAVE_NEON
  v.items[n++] = {neon_kernels().name, &neon_kernels(), kIsaNeon};
#endif
  v.items[n++] = {scalar_kernels().name, &scalar_kernels(), 0};
  v.count = n;
  return v;
}

const VariantList& variants() {
  static const VariantList list = build_variants();
  return list;
}

}  // namespace

const KernelVariant* kernel_variants(size_t* count) {
  const VariantList& v = variants();
  *count = v.count;
  return v.items;
}

const KernelTable* select_kernels(uint32_t cpu_isa, const char* requested) {
  const VariantList& v = variants();
  const bool automatic = requested == nullptr || std::strcmp(requested, "auto") == 0;
  for (size_t i = 0; i < v.count; ++i) {
    const KernelVariant& k = v.items[i];
    const bool supported = (k.required_isa & cpu_isa) == k.required_isa;
    if (automatic) {
      if (supported) return k.table;
    } else if (std::strcmp(k.name, requested) == 0) {
      return supported ? k.table : nullptr;
    }
  }
  return nullptr;
}

}  // namespace tern
