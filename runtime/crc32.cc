// blob::crc32 (declared in runtime/blob_format.h), in a file of its own so
// that fuzz builds can compile it without coverage instrumentation: the loop
// has no branches worth guiding on, and a coverage callback per 8 bytes made
// checksumming a large share of each fuzz exec (runtime/CMakeLists.txt).
#include <cstddef>
#include <cstdint>

#include "runtime/blob_format.h"

namespace tern::blob {

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
