// Out-of-line parts of the blob format: payload sizes. The CRC-32 the
// header, section table and every section are checked with is in crc32.cc.
#include "runtime/blob_format.h"

namespace tern::blob {

uint64_t tensor_bytes(DType dtype, uint64_t rows, uint64_t cols) {
  // Rows and cols are u32 in the tensor directory; larger shapes are invalid.
  // Within those bounds rows * cols fits, but the int8/int4 sums (q plane plus
  // scales) need not: rows 4,194,611,740 x cols 4,139,034,208 int8 would wrap
  // to 424 bytes. Every step is checked; a size that does not fit is invalid.
  if (rows == 0 || cols == 0 || rows > UINT32_MAX || cols > UINT32_MAX) return 0;
  uint64_t out = 0;
  switch (dtype) {
    case DType::kF32:
      return checked_mul(rows, cols * 4, &out) ? out : 0;  // cols * 4 < 2^34
    case DType::kInt8G32:  // i8 q[rows][cols] + f16 d[rows][cols/32]
      if (cols % 32 != 0) return 0;
      return checked_mul_add(rows, cols, rows, (cols / 32) * 2, &out) ? out : 0;
    case DType::kInt8G32R16:  // kInt8G32's bytes, rows interleaved by 16
      if (cols % 32 != 0 || rows % 16 != 0) return 0;
      return checked_mul_add(rows, cols, rows, (cols / 32) * 2, &out) ? out : 0;
    case DType::kInt4G32R16:  // kInt4G32's bytes, rows interleaved by 16
      if (cols % 32 != 0 || rows % 16 != 0) return 0;
      return checked_mul_add(rows, cols / 2, rows, (cols / 32) * 4, &out) ? out : 0;
    case DType::kInt4G32:  // u8 q[rows][cols/2] + f16 {d,m}[rows][cols/32]
      if (cols % 32 != 0) return 0;
      return checked_mul_add(rows, cols / 2, rows, (cols / 32) * 4, &out) ? out : 0;
    case DType::kInt5G32:  // u8 q[rows][cols/2] + u8 h[rows][cols/8] + f16 {d,m}[rows][cols/32]
      if (cols % 32 != 0) return 0;
      return checked_mul_add(rows, cols / 2 + cols / 8, rows, (cols / 32) * 4, &out) ? out : 0;
  }
  return 0;
}

}  // namespace tern::blob
