// Out-of-line parts of the blob format: payload sizes and the CRC-32 the
// header, section table and every section are checked with.
#include "runtime/blob_format.h"

namespace tern::blob {

uint64_t tensor_bytes(DType dtype, uint64_t rows, uint64_t cols) {
  // Rows and cols are u32 in the tensor directory; larger shapes are invalid,
  // and bounding both by 2^32 keeps every product below 2^64 (cols * 2 too).
  if (rows == 0 || cols == 0 || rows > UINT32_MAX || cols > UINT32_MAX) return 0;
  const uint64_t elems = rows * cols;
  switch (dtype) {
    case DType::kF32:
      if (elems > UINT64_MAX / 4) return 0;
      return elems * 4;
    case DType::kInt8G32:  // i8 q[rows][cols] + f16 d[rows][cols/32]
      if (cols % 32 != 0) return 0;
      return elems + rows * (cols / 32) * 2;
    case DType::kInt4G32:  // u8 q[rows][cols/2] + f16 {d,m}[rows][cols/32]
      if (cols % 32 != 0) return 0;
      return elems / 2 + rows * (cols / 32) * 4;
  }
  return 0;
}

namespace {

// Slice-by-8 tables for the reflected polynomial 0xEDB88320: table[0] is the
// classic byte table; table[k][b] is the CRC of byte b followed by k zero
// bytes, so eight input bytes are folded with eight lookups per step.
struct Crc32Tables {
  uint32_t t[8][256];
  constexpr Crc32Tables() : t() {
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t c = b;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : (c >> 1);
      t[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; ++b) {
      for (int k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xffu];
    }
  }
};

constexpr Crc32Tables kCrcTables{};

}  // namespace

uint32_t crc32(const void* data, size_t bytes, uint32_t crc) {
  const auto& t = kCrcTables.t;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  while (bytes >= 8) {
    // Little-endian assembly of the two words keeps this endian-independent.
    const uint32_t lo = (uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) |
                         (uint32_t(p[3]) << 24)) ^ c;
    const uint32_t hi = uint32_t(p[4]) | (uint32_t(p[5]) << 8) | (uint32_t(p[6]) << 16) |
                        (uint32_t(p[7]) << 24);
    c = t[7][lo & 0xffu] ^ t[6][(lo >> 8) & 0xffu] ^ t[5][(lo >> 16) & 0xffu] ^ t[4][lo >> 24] ^
        t[3][hi & 0xffu] ^ t[2][(hi >> 8) & 0xffu] ^ t[1][(hi >> 16) & 0xffu] ^ t[0][hi >> 24];
    p += 8;
    bytes -= 8;
  }
  while (bytes--) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xffu];
  return ~c;
}

}  // namespace tern::blob
