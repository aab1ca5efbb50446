// Out-of-line parts of the blob format: payload sizes. The CRC-32 the
// header, section table and every section are checked with is in crc32.cc.
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

}  // namespace tern::blob
