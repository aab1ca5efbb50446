// GGUF parsing with every size, count and offset checked before it is used.
// Layout (v2/v3, little-endian):
//   u32 magic "GGUF", u32 version, u64 tensor_count, u64 kv_count,
//   kv_count x { string key, u32 type, value },
//   tensor_count x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset },
//   padding to general.alignment, tensor data (offsets relative to its start).
// string = u64 length + bytes; array = u32 elem_type + u64 count + elements.
#include "tools/pack/gguf_reader.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include "kernels/blocks.h"
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
    uint64_t len;
    if (!u64(&len) || len > remaining() || len > max_len) return false;
    s->assign(reinterpret_cast<const char*>(p_ + pos_), size_t(len));
    pos_ += size_t(len);
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

// Read one value of type `type` (already validated as a known type).
Status read_value(Cursor& c, uint32_t type, uint32_t depth, const std::string& key, GgufValue* v) {
  v->type = GgufType(type);
  const char* k = key.c_str();
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
      if (!c.str(&v->str)) return BAD("key %.80s: string length exceeds the file", k);
      return Status::ok();
    case GgufType::kArray: {
      if (depth >= kMaxArrayDepth) return BAD("key %.80s: arrays nested deeper than %llu", k, ull(kMaxArrayDepth));
      uint32_t elem;
      uint64_t count;
      if (!c.u32(&elem) || !c.u64(&count)) break;
      if (elem > uint32_t(GgufType::kF64)) return BAD("key %.80s: unknown array element type %llu", k, ull(elem));
      // Every element takes at least this many bytes, so the count is bounded by
      // the bytes left before anything is allocated.
      uint64_t min_elem = scalar_bytes(elem);
      if (GgufType(elem) == GgufType::kString) min_elem = 8;
      if (GgufType(elem) == GgufType::kArray) min_elem = 12;
      if (count > c.remaining() / min_elem)
        return BAD("key %.80s: array count %llu exceeds the file (%llu bytes left)", k, ull(count), ull(c.remaining()));
      v->elem_type = GgufType(elem);
      v->items.resize(size_t(count));
      for (uint64_t j = 0; j < count; ++j) TERN_RETURN_IF_ERROR(read_value(c, elem, depth + 1, key, &v->items[j]));
      return Status::ok();
    }
  }
  return BAD("key %.80s: value truncated", k);
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

Status GgufFile::open(const std::string& path, GgufFile* out) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return Status::error(StatusCode::kIoError, "cannot open %.120s", path.c_str());
  const std::streamoff size = f.tellg();
  if (size < 0) return Status::error(StatusCode::kIoError, "cannot size %.120s", path.c_str());
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  f.seekg(0);
  if (size > 0 && !f.read(reinterpret_cast<char*>(bytes.data()), size))
    return Status::error(StatusCode::kIoError, "cannot read %.120s", path.c_str());
  return parse(std::move(bytes), out);
}

Status GgufFile::parse(std::vector<uint8_t> bytes, GgufFile* out) {
  GgufFile g;
  g.bytes_ = std::move(bytes);
  const size_t file_size = g.bytes_.size();
  Cursor c(g.bytes_.data(), file_size);

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

  // Each kv takes >= 13 bytes (key length, type, 1-byte value); each tensor
  // info >= 32 bytes (name length, n_dims, one dim, type, offset).
  if (n_kv > c.remaining() / 13) return BAD("kv_count %llu too large for the file", ull(n_kv));
  if (n_tensors > c.remaining() / 32) return BAD("tensor_count %llu too large for the file", ull(n_tensors));

  g.kv_.reserve(size_t(n_kv));
  for (uint64_t j = 0; j < n_kv; ++j) {
    std::string key;
    if (!c.str(&key, kMaxKeyBytes)) return BAD("metadata key %llu: truncated or longer than 65535 bytes", ull(j));
    if (key.empty()) return BAD("metadata key %llu is empty", ull(j));
    uint32_t type;
    if (!c.u32(&type)) return BAD("key %.80s: type truncated", key.c_str());
    if (type > uint32_t(GgufType::kF64)) return BAD("key %.80s: unknown value type %llu", key.c_str(), ull(type));
    if (g.kv_index_.count(key)) return BAD("duplicate metadata key %.80s", key.c_str());
    GgufValue v;
    TERN_RETURN_IF_ERROR(read_value(c, type, 0, key, &v));
    g.kv_index_.emplace(key, g.kv_.size());
    g.kv_.emplace_back(std::move(key), std::move(v));
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
    if (g.tensor_index_.count(t.name)) return BAD("duplicate tensor name %.64s", nm);
    g.tensor_index_.emplace(t.name, size_t(j));
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
    const uint64_t blocks = elems / be;
    if (blocks > UINT64_MAX / bb) return BAD("tensor %.64s: byte size overflows", nm);
    t.bytes = blocks * bb;
    if (t.offset % g.alignment_ != 0)
      return BAD("tensor %.64s: offset %llu is not a multiple of the alignment %llu", nm, ull(t.offset), ull(g.alignment_));
  }

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
    t.data = g.bytes_.data() + data_start + t.offset;
  }
  // No two tensors may share bytes.
  std::vector<const GgufTensor*> by_offset;
  for (const GgufTensor& t : g.tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (size_t j = 1; j < by_offset.size(); ++j) {
    const GgufTensor* a = by_offset[j - 1];
    const GgufTensor* b = by_offset[j];
    if (a->offset + a->bytes > b->offset)
      return Status::error(StatusCode::kBadGguf, "tensors %.64s and %.64s overlap", a->name.c_str(), b->name.c_str());
  }
  *out = std::move(g);
  return Status::ok();
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensor* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
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
  *out = v->str;
  return Status::ok();
}

Status GgufFile::get_array(const std::string& key, GgufType elem, const std::vector<GgufValue>** out) const {
  const GgufValue* v;
  TERN_RETURN_IF_ERROR(check_type(key, GgufType::kArray, &v));
  if (v->elem_type != elem)
    return Status::error(StatusCode::kBadGguf, "key %.100s is an array of %s, expected %s", key.c_str(),
                         gguf_type_name(v->elem_type), gguf_type_name(elem));
  *out = &v->items;
  return Status::ok();
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
  switch (GgmlType(t.type)) {
    case GgmlType::kF32:
      for (uint64_t j = 0; j < n; ++j) out[j] = blob::load_f32(src + 4 * j);
      return Status::ok();
    case GgmlType::kF16:
      for (uint64_t j = 0; j < n; ++j) out[j] = f16_to_f32(uint16_t(src[2 * j] | (src[2 * j + 1] << 8)));
      return Status::ok();
    case GgmlType::kBF16:
      for (uint64_t j = 0; j < n; ++j) {
        const uint32_t bits = uint32_t(src[2 * j] | (src[2 * j + 1] << 8)) << 16;
        std::memcpy(&out[j], &bits, 4);
      }
      return Status::ok();
    case GgmlType::kQ8_0:  // {f16 d; i8 qs[32]}: w = d * q
      for (uint64_t b = 0; b < n / 32; ++b) {
        const uint8_t* blk = src + b * 34;
        const float d = f16_to_f32(uint16_t(blk[0] | (blk[1] << 8)));
        for (int j = 0; j < 32; ++j) out[b * 32 + j] = d * float(int8_t(blk[2 + j]));
      }
      return Status::ok();
    case GgmlType::kQ4_0:  // {f16 d; u8 qs[16]}: w = d * (q - 8); low nibbles 0..15, high 16..31
      for (uint64_t b = 0; b < n / 32; ++b) {
        const uint8_t* blk = src + b * 18;
        const float d = f16_to_f32(uint16_t(blk[0] | (blk[1] << 8)));
        for (int j = 0; j < 16; ++j) {
          out[b * 32 + j] = d * float(int(blk[2 + j] & 0x0f) - 8);
          out[b * 32 + j + 16] = d * float(int(blk[2 + j] >> 4) - 8);
        }
      }
      return Status::ok();
    case GgmlType::kQ4_1:  // {f16 d; f16 m; u8 qs[16]}: w = d * q + m
      for (uint64_t b = 0; b < n / 32; ++b) {
        const uint8_t* blk = src + b * 20;
        const float d = f16_to_f32(uint16_t(blk[0] | (blk[1] << 8)));
        const float m = f16_to_f32(uint16_t(blk[2] | (blk[3] << 8)));
        for (int j = 0; j < 16; ++j) {
          out[b * 32 + j] = d * float(blk[4 + j] & 0x0f) + m;
          out[b * 32 + j + 16] = d * float(blk[4 + j] >> 4) + m;
        }
      }
      return Status::ok();
    default:
      return Status::error(StatusCode::kUnsupported, "tensor %.64s: type %s cannot be dequantized by tern-pack",
                           t.name.c_str(), ggml_type_name(t.type));
  }
}

}  // namespace tern::pack
