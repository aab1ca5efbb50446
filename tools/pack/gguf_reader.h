// GGUF (v2, v3, little-endian) reader for the packer: metadata of every value
// type, tensor infos, and dequantization of the tensor types the packer reads.
// Everything in the file is validated at parse time (sizes, counts, offsets,
// alignment, overlap, duplicates); afterwards tensor data can be read without
// further bounds checks. Errors are tern::Status with StatusCode::kBadGguf
// (kIoError for the file itself, kUnsupported for valid-but-unhandled input).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
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

// One metadata value, as small as it can be: the file stays mapped, so a
// string or an array is kept as a span of the file (offset and count) and
// decoded only when the packer asks for it. A file full of keys the packer
// never reads costs one GgufValue per key, never one object per element.
// Scalars live in the numeric fields (u: unsigned and bool, i: signed,
// f: floats).
struct GgufValue {
  GgufType type = GgufType::kU8;
  GgufType elem_type = GgufType::kU8;  // arrays only
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
  uint64_t count = 0;   // strings: bytes; arrays: elements
  uint64_t offset = 0;  // strings: file offset of the bytes; arrays: of the first element
};

// One element of an array, decoded on access: `str` for strings, `u`/`i`/`f`
// for scalars as in GgufValue. Nested arrays are validated but not decoded.
struct GgufElement {
  std::string str;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
};

// A typed array of the file, expanded compactly on first use: numeric
// elements are decoded from the file on access (no copy), a string array
// keeps one u64 file offset per element (at most the 8 bytes its length field
// takes in the file).
class GgufArray {
 public:
  GgufType elem_type() const { return elem_; }
  size_t size() const { return size_t(count_); }
  GgufElement operator[](size_t j) const;
  // String element j as a view into the file (string arrays only).
  std::string_view str(size_t j) const;

 private:
  friend class GgufFile;
  const uint8_t* file_ = nullptr;
  GgufType elem_ = GgufType::kU8;
  uint64_t count_ = 0;
  uint64_t offset_ = 0;                // file offset of element 0
  std::vector<uint64_t> str_offsets_;  // string arrays: file offset of each element's length field
};

struct GgufTensor {
  std::string name;
  uint32_t n_dims = 0;
  uint64_t ne[4] = {1, 1, 1, 1};  // fastest-first: ne[0] = columns of a matrix
  uint32_t type = 0;              // GgmlType value
  uint64_t offset = 0;            // relative to the data section
  uint64_t bytes = 0;             // payload size from type and shape
  const uint8_t* data = nullptr;  // points into the file image

  uint64_t cols() const { return ne[0]; }
  uint64_t rows() const { return ne[1] * ne[2] * ne[3]; }
  uint64_t elems() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

// Memory: the file image is mapped (open) or owned (parse), and parsing adds
// at most one 64-byte entry per metadata key, 4 bytes of sorted index per key
// and per tensor, and one GgufTensor (~100 bytes) per tensor info; every key
// takes >= 14 bytes of the file and every tensor info >= 33, so the parsed
// structures stay below 8x the file's size whatever it holds. Lookups are
// binary searches over sorted indexes (no hash an input could aim).
class GgufFile {
 public:
  GgufFile();
  ~GgufFile();
  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  // Parse a whole GGUF image. The file takes ownership of the bytes.
  static Status parse(std::vector<uint8_t> bytes, GgufFile* out);
  // Map `path` read-only (no copy on the heap) and parse it.
  static Status open(const std::string& path, GgufFile* out);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  size_t file_bytes() const { return size_; }
  const uint8_t* file_data() const { return data_; }

  // Metadata in file order.
  size_t kv_count() const { return kv_.size(); }
  std::string_view key(size_t j) const;
  const GgufValue& value(size_t j) const { return kv_[j].value; }

  const std::vector<GgufTensor>& tensors() const { return tensors_; }

  // nullptr if absent.
  const GgufValue* find(std::string_view key) const;
  const GgufTensor* find_tensor(std::string_view name) const;

  // Typed metadata reads. A missing key is kBadGguf "missing key"; a present key
  // of another type is kBadGguf "key K has type T, expected U".
  Status get_u32(const std::string& key, uint32_t* out) const;
  Status get_f32(const std::string& key, float* out) const;
  Status get_bool(const std::string& key, bool* out) const;
  Status get_string(const std::string& key, std::string* out) const;
  // Array whose elements have type `elem`, expanded on first use (see GgufArray).
  Status get_array(const std::string& key, GgufType elem, const GgufArray** out) const;
  // Element count of an array key without expanding it.
  Status get_array_count(const std::string& key, GgufType elem, uint64_t* count) const;
  // The same, but a missing key leaves *out untouched and returns ok.
  Status get_u32_opt(const std::string& key, uint32_t* out) const;
  Status get_f32_opt(const std::string& key, float* out) const;
  Status get_bool_opt(const std::string& key, bool* out) const;

  // Heap bytes this object holds beyond the file image (for tests and reports).
  size_t parsed_bytes() const;

 private:
  struct Kv {
    uint64_t key_offset = 0;
    uint32_t key_len = 0;
    GgufValue value;
  };
  struct Mapping;

  Status check_type(const std::string& key, GgufType want, const GgufValue** v) const;
  size_t find_index(std::string_view key) const;  // kv_ index, or SIZE_MAX
  static Status parse_image(GgufFile* g);

  std::vector<uint8_t> bytes_;  // parse(): the owned image
  Mapping* map_ = nullptr;      // open(): the mapped image
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<Kv> kv_;
  std::vector<uint32_t> kv_sorted_;      // kv_ indexes sorted by key
  std::vector<GgufTensor> tensors_;
  std::vector<uint32_t> tensor_sorted_;  // tensors_ indexes sorted by name
  // Arrays expanded by get_array: (kv index, array); only keys the packer reads.
  mutable std::vector<std::pair<size_t, std::unique_ptr<GgufArray>>> arrays_;
};

// Dequantize rows [row0, row0 + n_rows) of `t` (row = ne[0] elements) to floats:
// out[n_rows * cols]. Types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K,
// Q6_K (kernels/gguf_blocks.h); else kUnsupported.
Status dequantize_rows(const GgufTensor& t, uint64_t row0, uint64_t n_rows, float* out);

}  // namespace tern::pack
