// Peak of AMX-INT8's tdpbssd: C[16x16 int32] += A[16x64 s8] . B[64x16 s8]
// (B in the 4-byte-interleaved layout, 16 rows of 64 bytes), 16384 products
// per instruction. Tile config palette 1, all 8 tiles 16 rows x 64 bytes; 4
// independent C tiles (tmm0-3) from 2 A (tmm4, 5) x 2 B (tmm6, 7), Intel's
// 2x2 blocking. Also at half depth (K = 32 bytes, as kernels/amx runs it):
// measured on a Sapphire-Rapids-class Xeon, the same instruction rate, so
// half the products. Compiled with -mamx-tile -mamx-int8 (bench/CMakeLists.txt,
// only when the compiler takes them); call only when the CPU has AMX-INT8 and
// the OS granted the tile state (port/cpu_features.h amx_int8). See
// bench/peak.h.
#include <immintrin.h>

#include "bench/peak.h"

namespace tern {
namespace bench {

namespace {

struct alignas(64) TileConfig {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

alignas(64) int8_t g_tile_src[2][16 * 64];

// k: the depth in bytes, 64 (full tiles) or 32 (A 16 x 32 bytes, B 8 rows).
uint64_t run_tdpbssd(uint64_t iters, int k) {
  if (!iters) return 0;
  TileConfig cfg = {};
  cfg.palette = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  for (int t = 4; t < 6; ++t) cfg.colsb[t] = uint16_t(k);  // A
  for (int t = 6; t < 8; ++t) cfg.rows[t] = uint8_t(k / 4);  // B
  for (int i = 0; i < 16 * 64; ++i) {
    g_tile_src[0][i] = int8_t(i * 7 - 100);
    g_tile_src[1][i] = int8_t(i * 5 + 3);
  }
  // GCC's _tile_loadconfig and _tile_loadd declare no (or an 8-byte) memory
  // input: without this barrier the stores above may be dropped or sunk.
  __asm__ volatile("" : : "r"(&cfg), "r"(g_tile_src) : "memory");
  _tile_loadconfig(&cfg);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, g_tile_src[0], 64);
  _tile_loadd(5, g_tile_src[1], 64);
  _tile_loadd(6, g_tile_src[1], 64);
  _tile_loadd(7, g_tile_src[0], 64);
  for (uint64_t i = 0; i < iters; ++i) {
    _tile_dpbssd(0, 4, 6);
    _tile_dpbssd(1, 4, 7);
    _tile_dpbssd(2, 5, 6);
    _tile_dpbssd(3, 5, 7);
    _tile_dpbssd(0, 4, 6);
    _tile_dpbssd(1, 4, 7);
    _tile_dpbssd(2, 5, 6);
    _tile_dpbssd(3, 5, 7);
  }
  _tile_release();
  return iters * 8;
}

}  // namespace

uint64_t peak_tdpbssd(uint64_t iters) { return run_tdpbssd(iters, 64); }
uint64_t peak_tdpbssd_k32(uint64_t iters) { return run_tdpbssd(iters, 32); }

}  // namespace bench
}  // namespace tern
