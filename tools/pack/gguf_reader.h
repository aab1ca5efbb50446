// GGUF (v2, v3, little-endian) reader for the packer: metadata of every value
// type, tensor infos, and dequantization of the tensor types the packer reads.
// Everything in the file is validated at parse time (sizes, counts, offsets,
// alignment, overlap, duplicates); afterwards tensor data can be read without
// further bounds checks. Errors are tern::Status with StatusCode::kBadGguf
// (kIoError for the file itself, kUnsupported for valid-but-unhandled input).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/status.h"

namespace tern::pack {

// GGUF metadata value types (gguf_type).
enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
const char* gguf_type_name(GgufType t);

// GGML tensor types (ggml_type) with known block layouts.
enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15,
  kI8 = 24, kI16 = 25, kI32 = 26, kI64 = 27, kF64 = 28, kBF16 = 30,
};
// Elements per block and bytes per block; false for a type we do not know.
bool ggml_type_layout(uint32_t type, uint32_t* block_elems, uint32_t* block_bytes);
const char* ggml_type_name(uint32_t type);

// One metadata value. Scalars live in the numeric fields (u: unsigned and bool,
// i: signed, f: floats); strings in `str`; arrays in `items` (all of `elem_type`).
struct GgufValue {
  GgufType type = GgufType::kU8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
  std::string str;
  GgufType elem_type = GgufType::kU8;  // arrays only
  std::vector<GgufValue> items;        // arrays only
};

struct GgufTensor {
  std::string name;
  uint32_t n_dims = 0;
  uint64_t ne[4] = {1, 1, 1, 1};  // fastest-first: ne[0] = columns of a matrix
  uint32_t type = 0;              // GgmlType value
  uint64_t offset = 0;            // relative to the data section
  uint64_t bytes = 0;             // payload size from type and shape
  const uint8_t* data = nullptr;  // points into the file buffer

  uint64_t cols() const { return ne[0]; }
  uint64_t rows() const { return ne[1] * ne[2] * ne[3]; }
  uint64_t elems() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class GgufFile {
 public:
  // Parse a whole GGUF image. The file takes ownership of the bytes.
  static Status parse(std::vector<uint8_t> bytes, GgufFile* out);
  // Read `path` into memory and parse it.
  static Status open(const std::string& path, GgufFile* out);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  size_t file_bytes() const { return bytes_.size(); }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }

  // nullptr if absent.
  const GgufValue* find(const std::string& key) const;
  const GgufTensor* find_tensor(const std::string& name) const;

  // Typed metadata reads. A missing key is kBadGguf "missing key"; a present key
  // of another type is kBadGguf "key K has type T, expected U".
  Status get_u32(const std::string& key, uint32_t* out) const;
  Status get_f32(const std::string& key, float* out) const;
  Status get_bool(const std::string& key, bool* out) const;
  Status get_string(const std::string& key, std::string* out) const;
  // Array whose elements have type `elem`.
  Status get_array(const std::string& key, GgufType elem, const std::vector<GgufValue>** out) const;
  // The same, but a missing key leaves *out untouched and returns ok.
  Status get_u32_opt(const std::string& key, uint32_t* out) const;
  Status get_f32_opt(const std::string& key, float* out) const;
  Status get_bool_opt(const std::string& key, bool* out) const;

 private:
  Status check_type(const std::string& key, GgufType want, const GgufValue** v) const;

  std::vector<uint8_t> bytes_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<GgufTensor> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

// Dequantize rows [row0, row0 + n_rows) of `t` (row = ne[0] elements) to floats:
// out[n_rows * cols]. Types: F32, F16, BF16, Q8_0, Q4_0, Q4_1 (else kUnsupported).
Status dequantize_rows(const GgufTensor& t, uint64_t row0, uint64_t n_rows, float* out);

}  // namespace tern::pack
