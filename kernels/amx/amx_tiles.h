// The AMX tile operations the AMX kernels use, in two builds:
//   native   (kernels/amx/*.cc, -mamx-tile -mamx-int8): the tile registers
//            and instructions themselves (ldtilecfg, tileloadd, tdpbssd, ...);
//   emulated (kernels/amx/emulated/, AVX2 flags, TERN_AMX_EMULATE): the eight
//            tile registers are a stack struct and every operation is plain
//            C++ with the instruction's architectural result, bit for bit.
// The emulated build is the "amx-emulated" table (tests only, never
// selectable), so CPUs without AMX check the kernel's logic, as
// avx512vnni-emulated does for AVX-512.
//
// A tile is up to 16 rows of up to 64 bytes. tdpbssd C += A B, int8 x int8
// into int32, with B in the "VNNI" layout (4 consecutive k of one column are
// one dword):
//   C[m][n] += sum over k < A.colsb of A[m][k] * B[k / 4][4 n + k % 4]
// Tile numbers are template arguments: the instructions name them as
// registers, so the native build writes them in inline asm (the compiler's
// _tile_* macros paste their argument's spelling, not its value), with a
// memory clobber on loads and stores, which move memory the compiler cannot
// see.
//
// Internal linkage throughout (see kernels/avx512/simd_avx512.h for why).
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tern {
namespace {

constexpr int kTileCount = 8;
constexpr int kTileMaxRows = 16;
constexpr int kTileMaxBytes = 64;  // per row

struct TileShape {
  uint8_t rows;
  uint16_t colsb;  // bytes per row
};

#if TERN_AMX_EMULATE
struct TileRegs {
  alignas(64) uint8_t t[kTileCount][kTileMaxRows][kTileMaxBytes];
  TileShape shape[kTileCount];
};
#else
struct TileRegs {};  // the registers are the CPU's
#endif

// Palette 1 with these shapes (unused tiles: {0, 0}). Per thread: every call
// that uses tiles configures them first and releases them after.
inline void tile_config(TileRegs& regs, const TileShape (&shape)[kTileCount]) {
#if TERN_AMX_EMULATE
  std::memset(regs.t, 0, sizeof(regs.t));
  for (int i = 0; i < kTileCount; ++i) regs.shape[i] = shape[i];
#else
  (void)regs;
  // The 64-byte ldtilecfg operand: palette, start row, 14 reserved bytes,
  // then bytes per row of tiles 0..15 (16-bit each) and rows (8-bit each).
  alignas(64) uint8_t cfg[64] = {};
  cfg[0] = 1;
  for (int i = 0; i < kTileCount; ++i) {
    cfg[16 + 2 * i] = uint8_t(shape[i].colsb & 0xff);
    cfg[17 + 2 * i] = uint8_t(shape[i].colsb >> 8);
    cfg[48 + i] = shape[i].rows;
  }
  _tile_loadconfig(cfg);
#endif
}

inline void tile_release(TileRegs& regs) {
  (void)regs;
#if !TERN_AMX_EMULATE
  _tile_release();
#endif
}

template <int T>
inline void tile_zero(TileRegs& regs) {
#if TERN_AMX_EMULATE
  std::memset(regs.t[T], 0, sizeof(regs.t[T]));
#else
  (void)regs;
  __asm__ volatile("tilezero %%tmm%c0" ::"i"(T));
#endif
}

// Rows of the tile's shape from p, `stride` bytes apart.
template <int T>
inline void tile_load(TileRegs& regs, const void* p, size_t stride) {
#if TERN_AMX_EMULATE
  const TileShape s = regs.shape[T];
  for (int m = 0; m < s.rows; ++m) std::memcpy(regs.t[T][m], static_cast<const uint8_t*>(p) + m * stride, s.colsb);
#else
  (void)regs;
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm%c2" ::"r"(p), "r"(static_cast<long>(stride)), "i"(T) : "memory");
#endif
}

template <int T>
inline void tile_store(TileRegs& regs, void* p, size_t stride) {
#if TERN_AMX_EMULATE
  const TileShape s = regs.shape[T];
  for (int m = 0; m < s.rows; ++m) std::memcpy(static_cast<uint8_t*>(p) + m * stride, regs.t[T][m], s.colsb);
#else
  (void)regs;
  __asm__ volatile("tilestored %%tmm%c2, (%0,%1,1)" ::"r"(p), "r"(static_cast<long>(stride)), "i"(T) : "memory");
#endif
}

// C += A B (signed int8 x signed int8 -> int32), the layout at the top.
template <int C, int A, int B>
inline void tile_dpbssd(TileRegs& regs) {
#if TERN_AMX_EMULATE
  const TileShape sc = regs.shape[C], sa = regs.shape[A];
  for (int m = 0; m < sc.rows; ++m) {
    for (int n = 0; n < sc.colsb / 4; ++n) {
      int32_t acc;
      std::memcpy(&acc, &regs.t[C][m][4 * n], 4);
      for (int k = 0; k < sa.colsb; ++k)
        acc += int32_t(int8_t(regs.t[A][m][k])) * int32_t(int8_t(regs.t[B][k / 4][4 * n + k % 4]));
      std::memcpy(&regs.t[C][m][4 * n], &acc, 4);
    }
  }
#else
  (void)regs;
  __asm__ volatile("tdpbssd %%tmm%c0, %%tmm%c1, %%tmm%c2" ::"i"(B), "i"(A), "i"(C));
#endif
}

}  // namespace
}  // namespace tern
