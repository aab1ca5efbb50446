// GGUF parsing with every size, count and offset checked before it is used.
// Layout (v2/v3, little-endian):
//   u32 magic "GGUF", u32 version, u64 tensor_count, u64 kv_count,
//   kv_count x { string key, u32 type, value },
//   tensor_count x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset },
//   padding to general.alignment, tensor data (offsets relative to its start).
// string = u64 length + bytes; array = u32 elem_type + u64 count + elements.
#include "tools/pack/gguf_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "kernels/blocks.h"
#include "kernels/gguf_blocks.h"
#include "port/blob_map.h"
#include "runtime/blob_format.h"

namespace tern::pack {
namespace {

constexpr uint32_t kMaxArrayDepth = 8;        // nested arrays deeper than this are rejected
constexpr uint32_t kMaxAlignment = 1u << 20;  // general.alignment bound (1 MiB)
constexpr uint64_t kMaxKeyBytes = 65535;      // spec: keys are at most 2^16-1 bytes
constexpr uint64_t kMaxTensorName = 64;       // spec: GGML_MAX_NAME
constexpr uint32_t kMaxDims = 4;

// Every message names what was wrong; numbers are printed as unsigned long long.
#define BAD(...) Status::error(StatusCode::kBadGguf, __VA_ARGS__)
using ull = unsigned long long;

// Bounds-checked little-endian cursor over the file image.
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return n_ - pos_; }

  bool u8(uint8_t* v) { return fixed(v, 1); }
  bool u16(uint16_t* v) { uint8_t b[2]; if (!fixed(b, 2)) return false; *v = uint16_t(b[0] | (b[1] << 8)); return true; }
  bool u32(uint32_t* v) { uint8_t b[4]; if (!fixed(b, 4)) return false; *v = blob::load_u32(b); return true; }
  bool u64(uint64_t* v) { uint8_t b[8]; if (!fixed(b, 8)) return false; *v = blob::load_u64(b); return true; }
  bool str(std::string* s, uint64_t max_len = UINT64_MAX) {
    uint64_t off, len;
    if (!span(&off, &len, max_len)) return false;
    s->assign(reinterpret_cast<const char*>(p_ + off), size_t(len));
    return true;
  }
  // A string's bytes as (offset, length) in the image, skipped over.
  bool span(uint64_t* off, uint64_t* len, uint64_t max_len = UINT64_MAX) {
    if (!u64(len) || *len > remaining() || *len > max_len) return false;
    *off = pos_;
    pos_ += size_t(*len);
    return true;
  }
  bool skip(uint64_t k) {
    if (k > remaining()) return false;
    pos_ += size_t(k);
    return true;
  }

 private:
  bool fixed(void* v, size_t k) {
    if (remaining() < k) return false;
    std::memcpy(v, p_ + pos_, k);
    pos_ += k;
    return true;
  }
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

// Size in the file of one scalar of type t; 0 for string/array/unknown.
uint32_t scalar_bytes(uint32_t t) {
  switch (GgufType(t)) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kBool: return 1;
    case GgufType::kU16: case GgufType::kI16: return 2;
    case GgufType::kU32: case GgufType::kI32: case GgufType::kF32: return 4;
    case GgufType::kU64: case GgufType::kI64: case GgufType::kF64: return 8;
    default: return 0;
  }
}

// Validate one value of type `type` (already checked to be a known type) and
// record it in *v: scalars decoded, strings and arrays as spans of the image.
// Nested arrays are walked (depth-bounded) to validate them but nothing is
// allocated for their elements.
Status read_value(Cursor& c, uint32_t type, uint32_t depth, const char* k, GgufValue* v) {
  v->type = GgufType(type);
  switch (GgufType(type)) {
    case GgufType::kU8: { uint8_t x; if (!c.u8(&x)) break; v->u = x; return Status::ok(); }
    case GgufType::kI8: { uint8_t x; if (!c.u8(&x)) break; v->i = int8_t(x); return Status::ok(); }
    case GgufType::kBool: {
      uint8_t x;
      if (!c.u8(&x)) break;
      if (x > 1) return BAD("key %.80s: bool value %llu is not 0 or 1", k, ull(x));
      v->u = x;
      return Status::ok();
    }
    case GgufType::kU16: { uint16_t x; if (!c.u16(&x)) break; v->u = x; return Status::ok(); }
    case GgufType::kI16: { uint16_t x; if (!c.u16(&x)) break; v->i = int16_t(x); return Status::ok(); }
    case GgufType::kU32: { uint32_t x; if (!c.u32(&x)) break; v->u = x; return Status::ok(); }
    case GgufType::kI32: { uint32_t x; if (!c.u32(&x)) break; v->i = int32_t(x); return Status::ok(); }
    case GgufType::kF32: {
      uint32_t x;
      if (!c.u32(&x)) break;
      float f;
      std::memcpy(&f, &x, 4);
      v->f = f;
      return Status::ok();
    }
    case GgufType::kU64: { uint64_t x; if (!c.u64(&x)) break; v->u = x; return Status::ok(); }
    case GgufType::kI64: { uint64_t x; if (!c.u64(&x)) break; v->i = int64_t(x); return Status::ok(); }
    case GgufType::kF64: {
      uint64_t x;
      if (!c.u64(&x)) break;
      double f;
      std::memcpy(&f, &x, 8);
      v->f = f;
      return Status::ok();
    }
    case GgufType::kString:
      if (!c.span(&v->offset, &v->count)) return BAD("key %.80s: string length exceeds the file", k);
      return Status::ok();
    case GgufType::kArray: {
      if (depth >= kMaxArrayDepth) return BAD("key %.80s: arrays nested deeper than %llu", k, ull(kMaxArrayDepth));
      uint32_t elem;
      uint64_t count;
      if (!c.u32(&elem) || !c.u64(&count)) break;
      if (elem > uint32_t(GgufType::kF64)) return BAD("key %.80s: unknown array element type %llu", k, ull(elem));
      // Every element takes at least this many bytes, so the count is bounded by
      // the bytes left.
      const uint64_t fixed = scalar_bytes(elem);
      uint64_t min_elem = fixed;
      if (GgufType(elem) == GgufType::kString) min_elem = 8;
      if (GgufType(elem) == GgufType::kArray) min_elem = 12;
      if (count > c.remaining() / min_elem)
        return BAD("key %.80s: array count %llu exceeds the file (%llu bytes left)", k, ull(count), ull(c.remaining()));
      v->elem_type = GgufType(elem);
      v->count = count;
      v->offset = c.pos();
      if (fixed != 0) {  // scalars: one skip (bool elements are checked when decoded)
        if (GgufType(elem) == GgufType::kBool) {
          for (uint64_t j = 0; j < count; ++j) {
            uint8_t x;
            if (!c.u8(&x)) break;
            if (x > 1) return BAD("key %.80s: bool element %llu is not 0 or 1", k, ull(j));
          }
          return Status::ok();
        }
        c.skip(count * fixed);  // count * fixed <= remaining, checked above
        return Status::ok();
      }
      GgufValue inner;
      for (uint64_t j = 0; j < count; ++j) TERN_RETURN_IF_ERROR(read_value(c, elem, depth + 1, k, &inner));
      return Status::ok();
    }
  }
  return BAD("key %.80s: value truncated", k);
}

int compare_bytes(const uint8_t* a, size_t na, const uint8_t* b, size_t nb) {
  const int r = std::memcmp(a, b, na < nb ? na : nb);
  if (r != 0) return r;
  return na < nb ? -1 : na > nb ? 1 : 0;
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::kU8: return "u8";
    case GgufType::kI8: return "i8";
    case GgufType::kU16: return "u16";
    case GgufType::kI16: return "i16";
    case GgufType::kU32: return "u32";
    case GgufType::kI32: return "i32";
    case GgufType::kF32: return "f32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kU64: return "u64";
    case GgufType::kI64: return "i64";
    case GgufType::kF64: return "f64";
  }
  return "?";
}

bool ggml_type_layout(uint32_t type, uint32_t* block_elems, uint32_t* block_bytes) {
  uint32_t be = 0, bb = 0;
  switch (GgmlType(type)) {
    case GgmlType::kF32: be = 1; bb = 4; break;
    case GgmlType::kF16: be = 1; bb = 2; break;
    case GgmlType::kBF16: be = 1; bb = 2; break;
    case GgmlType::kQ4_0: be = 32; bb = 18; break;
    case GgmlType::kQ4_1: be = 32; bb = 20; break;
    case GgmlType::kQ5_0: be = 32; bb = 22; break;
    case GgmlType::kQ5_1: be = 32; bb = 24; break;
    case GgmlType::kQ8_0: be = 32; bb = 34; break;
    case GgmlType::kQ8_1: be = 32; bb = 36; break;
    case GgmlType::kQ2_K: be = 256; bb = 84; break;
    case GgmlType::kQ3_K: be = 256; bb = 110; break;
    case GgmlType::kQ4_K: be = 256; bb = 144; break;
    case GgmlType::kQ5_K: be = 256; bb = 176; break;
    case GgmlType::kQ6_K: be = 256; bb = 210; break;
    case GgmlType::kQ8_K: be = 256; bb = 292; break;
    case GgmlType::kI8: be = 1; bb = 1; break;
    case GgmlType::kI16: be = 1; bb = 2; break;
    case GgmlType::kI32: be = 1; bb = 4; break;
    case GgmlType::kI64: be = 1; bb = 8; break;
    case GgmlType::kF64: be = 1; bb = 8; break;
    default: return false;
  }
  *block_elems = be;
  *block_bytes = bb;
  return true;
}

const char* ggml_type_name(uint32_t type) {
  switch (GgmlType(type)) {
    case GgmlType::kF32: return "F32";
    case GgmlType::kF16: return "F16";
    case GgmlType::kBF16: return "BF16";
    case GgmlType::kQ4_0: return "Q4_0";
    case GgmlType::kQ4_1: return "Q4_1";
    case GgmlType::kQ5_0: return "Q5_0";
    case GgmlType::kQ5_1: return "Q5_1";
    case GgmlType::kQ8_0: return "Q8_0";
    case GgmlType::kQ8_1: return "Q8_1";
    case GgmlType::kQ2_K: return "Q2_K";
    case GgmlType::kQ3_K: return "Q3_K";
    case GgmlType::kQ4_K: return "Q4_K";
    case GgmlType::kQ5_K: return "Q5_K";
    case GgmlType::kQ6_K: return "Q6_K";
    case GgmlType::kQ8_K: return "Q8_K";
    case GgmlType::kI8: return "I8";
    case GgmlType::kI16: return "I16";
    case GgmlType::kI32: return "I32";
    case GgmlType::kI64: return "I64";
    case GgmlType::kF64: return "F64";
  }
  return "unknown";
}

struct GgufFile::Mapping {
  BlobMap map;
};

GgufFile::GgufFile() = default;
GgufFile::~GgufFile() {
  if (map_) {
    blob_unmap(&map_->map);
    delete map_;
  }
}
GgufFile::GgufFile(GgufFile&& o) noexcept { *this = std::move(o); }
GgufFile& GgufFile::operator=(GgufFile&& o) noexcept {
  if (this == &o) return *this;
  if (map_) {
    blob_unmap(&map_->map);
    delete map_;
  }
  bytes_ = std::move(o.bytes_);  // the heap block moves with it: data_ stays valid
  map_ = o.map_;
  o.map_ = nullptr;
  data_ = o.data_;
  size_ = o.size_;
  o.data_ = nullptr;
  o.size_ = 0;
  version_ = o.version_;
  alignment_ = o.alignment_;
  data_offset_ = o.data_offset_;
  kv_ = std::move(o.kv_);
  kv_sorted_ = std::move(o.kv_sorted_);
  tensors_ = std::move(o.tensors_);
  tensor_sorted_ = std::move(o.tensor_sorted_);
  arrays_ = std::move(o.arrays_);
  return *this;
}

Status GgufFile::open(const std::string& path, GgufFile* out) {
  GgufFile g;
  g.map_ = new Mapping;
  const int err = blob_map_file(path.c_str(), &g.map_->map);
  if (err == ENODATA) return BAD("file too short for a GGUF header (0 bytes)");
  if (err == EINVAL) return Status::error(StatusCode::kIoError, "cannot read %.120s: not a regular file", path.c_str());
  if (err != 0) return Status::error(StatusCode::kIoError, "cannot open %.120s: %s", path.c_str(), std::strerror(err));
  g.data_ = g.map_->map.data;
  g.size_ = g.map_->map.size;
  TERN_RETURN_IF_ERROR(parse_image(&g));
  *out = std::move(g);
  return Status::ok();
}

Status GgufFile::parse(std::vector<uint8_t> bytes, GgufFile* out) {
  GgufFile g;
  g.bytes_ = std::move(bytes);
  g.data_ = g.bytes_.data();
  g.size_ = g.bytes_.size();
  TERN_RETURN_IF_ERROR(parse_image(&g));
  *out = std::move(g);
  return Status::ok();
}

std::string_view GgufFile::key(size_t j) const {
  return std::string_view(reinterpret_cast<const char*>(data_ + kv_[j].key_offset), kv_[j].key_len);
}

size_t GgufFile::parsed_bytes() const {
  size_t n = kv_.capacity() * sizeof(Kv) + kv_sorted_.capacity() * 4 + tensors_.capacity() * sizeof(GgufTensor) +
             tensor_sorted_.capacity() * 4;
  for (const GgufTensor& t : tensors_) n += t.name.capacity() > 15 ? t.name.capacity() + 1 : 0;
  for (const auto& a : arrays_) n += sizeof(GgufArray) + a.second->str_offsets_.capacity() * 8;
  return n;
}

Status GgufFile::parse_image(GgufFile* gp) {
  GgufFile& g = *gp;
  const size_t file_size = g.size_;
  Cursor c(g.data_, file_size);

  uint8_t magic[4];
  for (auto& m : magic)
    if (!c.u8(&m)) return BAD("file too short for a GGUF header (%llu bytes)", ull(file_size));
  if (std::memcmp(magic, "GGUF", 4) != 0) return BAD("bad magic: not a GGUF file");
  uint32_t version;
  uint64_t n_tensors, n_kv;
  if (!c.u32(&version)) return BAD("file too short for a GGUF header (%llu bytes)", ull(file_size));
  if (version == 0 || (version & 0xffffu) == 0)
    return BAD("unsupported GGUF version 0x%llx (big-endian GGUF is not supported)", ull(version));
  if (version != 2 && version != 3)
    return BAD("unsupported GGUF version %llu (reads 2 and 3)", ull(version));
  if (!c.u64(&n_tensors) || !c.u64(&n_kv)) return BAD("file too short for a GGUF header (%llu bytes)", ull(file_size));
  g.version_ = version;

  // Each kv takes >= 14 bytes (key length, a 1-byte key, type, 1-byte value);
  // each tensor info >= 33 bytes (name length, 1-byte name, n_dims, one dim,
  // type, offset). Both counts are bounded before anything is reserved.
  if (n_kv > c.remaining() / 14 || n_kv > UINT32_MAX) return BAD("kv_count %llu too large for the file", ull(n_kv));
  if (n_tensors > c.remaining() / 33 || n_tensors > UINT32_MAX)
    return BAD("tensor_count %llu too large for the file", ull(n_tensors));

  g.kv_.reserve(size_t(n_kv));
  for (uint64_t j = 0; j < n_kv; ++j) {
    Kv kv;
    uint64_t key_len;
    if (!c.span(&kv.key_offset, &key_len, kMaxKeyBytes))
      return BAD("metadata key %llu: truncated or longer than 65535 bytes", ull(j));
    if (key_len == 0) return BAD("metadata key %llu is empty", ull(j));
    kv.key_len = uint32_t(key_len);
    // The key for messages: NUL-terminated, at most 80 bytes.
    char k[81];
    const size_t kn = key_len < 80 ? size_t(key_len) : 80;
    std::memcpy(k, g.data_ + kv.key_offset, kn);
    k[kn] = '\0';
    uint32_t type;
    if (!c.u32(&type)) return BAD("key %.80s: type truncated", k);
    if (type > uint32_t(GgufType::kF64)) return BAD("key %.80s: unknown value type %llu", k, ull(type));
    TERN_RETURN_IF_ERROR(read_value(c, type, 0, k, &kv.value));
    g.kv_.push_back(kv);
  }
  // Sorted key index: duplicates are neighbours, lookups are binary searches.
  g.kv_sorted_.resize(g.kv_.size());
  for (uint32_t j = 0; j < g.kv_sorted_.size(); ++j) g.kv_sorted_[j] = j;
  const auto key_less = [&g](uint32_t a, uint32_t b) {
    const Kv& x = g.kv_[a];
    const Kv& y = g.kv_[b];
    return compare_bytes(g.data_ + x.key_offset, x.key_len, g.data_ + y.key_offset, y.key_len) < 0;
  };
  std::sort(g.kv_sorted_.begin(), g.kv_sorted_.end(), key_less);
  for (size_t j = 1; j < g.kv_sorted_.size(); ++j)
    if (!key_less(g.kv_sorted_[j - 1], g.kv_sorted_[j])) {
      const std::string_view k = g.key(g.kv_sorted_[j]);
      return BAD("duplicate metadata key %.*s", int(k.size() < 80 ? k.size() : 80), k.data());
    }

  if (const GgufValue* a = g.find("general.alignment")) {
    if (a->type != GgufType::kU32)
      return BAD("general.alignment has type %.10s, expected u32", gguf_type_name(a->type));
    if (a->u == 0 || (a->u & (a->u - 1)) != 0 || a->u > kMaxAlignment)
      return BAD("general.alignment %llu is not a power of two in [1, 2^20]", ull(a->u));
    g.alignment_ = uint32_t(a->u);
  }

  g.tensors_.resize(size_t(n_tensors));
  for (uint64_t j = 0; j < n_tensors; ++j) {
    GgufTensor& t = g.tensors_[j];
    if (!c.str(&t.name, kMaxTensorName)) return BAD("tensor %llu: name truncated or longer than 64 bytes", ull(j));
    if (t.name.empty()) return BAD("tensor %llu has an empty name", ull(j));
    const char* nm = t.name.c_str();
    if (!c.u32(&t.n_dims)) return BAD("tensor %.64s: info truncated", nm);
    if (t.n_dims < 1 || t.n_dims > kMaxDims) return BAD("tensor %.64s: n_dims %llu not in 1..4", nm, ull(t.n_dims));
    uint64_t elems = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      if (!c.u64(&t.ne[d])) return BAD("tensor %.64s: info truncated", nm);
      if (t.ne[d] == 0) return BAD("tensor %.64s: dimension %llu is 0", nm, ull(d));
      if (t.ne[d] > uint64_t(INT64_MAX) / elems) return BAD("tensor %.64s: element count overflows", nm);
      elems *= t.ne[d];
    }
    uint64_t offset;
    if (!c.u32(&t.type) || !c.u64(&offset)) return BAD("tensor %.64s: info truncated", nm);
    t.offset = offset;
    uint32_t be, bb;
    if (!ggml_type_layout(t.type, &be, &bb)) return BAD("tensor %.64s: unknown tensor type %llu", nm, ull(t.type));
    if (t.ne[0] % be != 0)
      return BAD("tensor %.64s: row of %llu elements is not a multiple of the block size %llu", nm, ull(t.ne[0]), ull(be));
    if (!blob::checked_mul(elems / be, bb, &t.bytes)) return BAD("tensor %.64s: byte size overflows", nm);
    if (t.offset % g.alignment_ != 0)
      return BAD("tensor %.64s: offset %llu is not a multiple of the alignment %llu", nm, ull(t.offset), ull(g.alignment_));
  }
  g.tensor_sorted_.resize(g.tensors_.size());
  for (uint32_t j = 0; j < g.tensor_sorted_.size(); ++j) g.tensor_sorted_[j] = j;
  std::sort(g.tensor_sorted_.begin(), g.tensor_sorted_.end(),
            [&g](uint32_t a, uint32_t b) { return g.tensors_[a].name < g.tensors_[b].name; });
  for (size_t j = 1; j < g.tensor_sorted_.size(); ++j)
    if (g.tensors_[g.tensor_sorted_[j - 1]].name == g.tensors_[g.tensor_sorted_[j]].name)
      return BAD("duplicate tensor name %.64s", g.tensors_[g.tensor_sorted_[j]].name.c_str());

  // The data section starts at the next alignment boundary after the infos.
  const uint64_t infos_end = c.pos();
  const uint64_t data_start = (infos_end + g.alignment_ - 1) / g.alignment_ * g.alignment_;
  g.data_offset_ = data_start;
  if (n_tensors > 0 && data_start > file_size)
    return BAD("data section starts at %llu, past the end of the file (%llu bytes)", ull(data_start), ull(file_size));
  const uint64_t data_bytes = n_tensors > 0 ? file_size - data_start : 0;
  for (GgufTensor& t : g.tensors_) {
    if (t.offset > data_bytes || t.bytes > data_bytes - t.offset)
      return BAD("tensor %.64s: data [%llu, +%llu) lies outside the file", t.name.c_str(), ull(t.offset), ull(t.bytes));
    t.data = g.data_ + data_start + t.offset;
  }
  // No two tensors may share bytes (the sorted index is reused, re-sorted by offset).
  std::vector<uint32_t>& by_offset = g.tensor_sorted_;
  std::vector<uint32_t> by_name = by_offset;
  std::sort(by_offset.begin(), by_offset.end(),
            [&g](uint32_t a, uint32_t b) { return g.tensors_[a].offset < g.tensors_[b].offset; });
  for (size_t j = 1; j < by_offset.size(); ++j) {
    const GgufTensor* a = &g.tensors_[by_offset[j - 1]];
    const GgufTensor* b = &g.tensors_[by_offset[j]];
    if (a->offset + a->bytes > b->offset)
      return Status::error(StatusCode::kBadGguf, "tensors %.64s and %.64s overlap", a->name.c_str(), b->name.c_str());
  }
  g.tensor_sorted_ = std::move(by_name);
  return Status::ok();
}

size_t GgufFile::find_index(std::string_view key) const {
  const auto it = std::lower_bound(kv_sorted_.begin(), kv_sorted_.end(), key, [this](uint32_t j, std::string_view k) {
    return compare_bytes(data_ + kv_[j].key_offset, kv_[j].key_len, reinterpret_cast<const uint8_t*>(k.data()),
                         k.size()) < 0;
  });
  if (it == kv_sorted_.end() || this->key(*it) != key) return SIZE_MAX;
  return *it;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  const size_t j = find_index(key);
  return j == SIZE_MAX ? nullptr : &kv_[j].value;
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  const auto it = std::lower_bound(tensor_sorted_.begin(), tensor_sorted_.end(), name,
                                   [this](uint32_t j, std::string_view n) { return tensors_[j].name < n; });
  if (it == tensor_sorted_.end() || tensors_[*it].name != name) return nullptr;
  return &tensors_[*it];
}

Status GgufFile::check_type(const std::string& key, GgufType want, const GgufValue** v) const {
  *v = find(key);
  if (!*v) return BAD("missing metadata key %.100s", key.c_str());
  if ((*v)->type != want)
    return Status::error(StatusCode::kBadGguf, "key %.100s has type %s, expected %s", key.c_str(),
                         gguf_type_name((*v)->type), gguf_type_name(want));
  return Status::ok();
}

Status GgufFile::get_u32(const std::string& key, uint32_t* out) const {
  const GgufValue* v;
  TERN_RETURN_IF_ERROR(check_type(key, GgufType::kU32, &v));
  *out = uint32_t(v->u);
  return Status::ok();
}

Status GgufFile::get_f32(const std::string& key, float* out) const {
  const GgufValue* v;
  TERN_RETURN_IF_ERROR(check_type(key, GgufType::kF32, &v));
  *out = float(v->f);
  return Status::ok();
}

Status GgufFile::get_bool(const std::string& key, bool* out) const {
  const GgufValue* v;
  TERN_RETURN_IF_ERROR(check_type(key, GgufType::kBool, &v));
  *out = v->u != 0;
  return Status::ok();
}

Status GgufFile::get_string(const std::string& key, std::string* out) const {
  const GgufValue* v;
  TERN_RETURN_IF_ERROR(check_type(key, GgufType::kString, &v));
  out->assign(reinterpret_cast<const char*>(data_ + v->offset), size_t(v->count));
  return Status::ok();
}

Status GgufFile::get_array_count(const std::string& key, GgufType elem, uint64_t* count) const {
  const GgufValue* v;
  TERN_RETURN_IF_ERROR(check_type(key, GgufType::kArray, &v));
  if (v->elem_type != elem)
    return Status::error(StatusCode::kBadGguf, "key %.100s is an array of %s, expected %s", key.c_str(),
                         gguf_type_name(v->elem_type), gguf_type_name(elem));
  *count = v->count;
  return Status::ok();
}

Status GgufFile::get_array(const std::string& key, GgufType elem, const GgufArray** out) const {
  uint64_t count = 0;
  TERN_RETURN_IF_ERROR(get_array_count(key, elem, &count));
  const size_t index = find_index(key);
  const GgufValue* v = &kv_[index].value;
  for (const auto& a : arrays_)
    if (a.first == index) { *out = a.second.get(); return Status::ok(); }
  std::unique_ptr<GgufArray> arr(new GgufArray);
  arr->file_ = data_;
  arr->elem_ = elem;
  arr->count_ = count;
  arr->offset_ = v->offset;
  if (elem == GgufType::kString) {
    // One u64 per element: where its length field is (validated at parse).
    arr->str_offsets_.resize(size_t(count));
    uint64_t pos = v->offset;
    for (uint64_t j = 0; j < count; ++j) {
      arr->str_offsets_[j] = pos;
      pos += 8 + blob::load_u64(data_ + pos);
    }
  }
  *out = arr.get();
  arrays_.emplace_back(index, std::move(arr));
  return Status::ok();
}

std::string_view GgufArray::str(size_t j) const {
  if (elem_ != GgufType::kString || j >= str_offsets_.size()) return {};
  const uint64_t at = str_offsets_[j];
  return std::string_view(reinterpret_cast<const char*>(file_ + at + 8), size_t(blob::load_u64(file_ + at)));
}

GgufElement GgufArray::operator[](size_t j) const {
  GgufElement e;
  if (j >= count_) return e;
  const uint8_t* p = file_ + offset_ + uint64_t(j) * scalar_bytes(uint32_t(elem_));
  switch (elem_) {
    case GgufType::kU8: case GgufType::kBool: e.u = p[0]; break;
    case GgufType::kI8: e.i = int8_t(p[0]); break;
    case GgufType::kU16: e.u = uint16_t(p[0] | (p[1] << 8)); break;
    case GgufType::kI16: e.i = int16_t(uint16_t(p[0] | (p[1] << 8))); break;
    case GgufType::kU32: e.u = blob::load_u32(p); break;
    case GgufType::kI32: e.i = int32_t(blob::load_u32(p)); break;
    case GgufType::kF32: e.f = blob::load_f32(p); break;
    case GgufType::kU64: e.u = blob::load_u64(p); break;
    case GgufType::kI64: e.i = int64_t(blob::load_u64(p)); break;
    case GgufType::kF64: { const uint64_t x = blob::load_u64(p); std::memcpy(&e.f, &x, 8); break; }
    case GgufType::kString: e.str = std::string(str(j)); break;
    case GgufType::kArray: break;  // nested arrays are validated, not decoded
  }
  return e;
}

Status GgufFile::get_u32_opt(const std::string& key, uint32_t* out) const {
  return find(key) ? get_u32(key, out) : Status::ok();
}
Status GgufFile::get_f32_opt(const std::string& key, float* out) const {
  return find(key) ? get_f32(key, out) : Status::ok();
}
Status GgufFile::get_bool_opt(const std::string& key, bool* out) const {
  return find(key) ? get_bool(key, out) : Status::ok();
}

Status dequantize_rows(const GgufTensor& t, uint64_t row0, uint64_t n_rows, float* out) {
  const uint64_t cols = t.cols();
  if (row0 > t.rows() || n_rows > t.rows() - row0)
    return Status::error(StatusCode::kInvalidArgument, "tensor %.64s: rows [%llu, +%llu) out of range",
                         t.name.c_str(), (unsigned long long)row0, (unsigned long long)n_rows);
  uint32_t be, bb;
  if (!ggml_type_layout(t.type, &be, &bb)) return Status::error(StatusCode::kUnsupported, "unknown type");
  const uint64_t row_bytes = cols / be * bb;
  const uint8_t* src = t.data + row0 * row_bytes;
  const uint64_t n = n_rows * cols;  // elements; every block of the rows is consecutive
  // The kernels' scalar GGUF dequantizers: the same float32 bits as the gguf
  // package's dequantization (tests/model/gguf_dequant_test.cc).
  if (!gguf::dequantize_gguf(t.type, src, n, out))
    return Status::error(StatusCode::kUnsupported, "tensor %.64s: type %s cannot be dequantized by tern-pack (it reads "
                         "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)",
                         t.name.c_str(), ggml_type_name(t.type));
  return Status::ok();
}

}  // namespace tern::pack
