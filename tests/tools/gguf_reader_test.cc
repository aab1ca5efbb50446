// GGUF reader on hand-built byte buffers: every value type, tensor infos,
// dequantization, and malformed files that must fail with a status (never crash).
#include "tools/pack/gguf_reader.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/blocks.h"

namespace tern::pack {
namespace {

// Little-endian GGUF image builder.
struct Gguf {
  std::vector<uint8_t> b;
  void u8(uint8_t v) { b.push_back(v); }
  void u16(uint16_t v) { u8(uint8_t(v)); u8(uint8_t(v >> 8)); }
  void u32(uint32_t v) { for (int i = 0; i < 4; ++i) u8(uint8_t(v >> (8 * i))); }
  void u64(uint64_t v) { for (int i = 0; i < 8; ++i) u8(uint8_t(v >> (8 * i))); }
  void f32(float f) { uint32_t u; std::memcpy(&u, &f, 4); u32(u); }
  void f64(double f) { uint64_t u; std::memcpy(&u, &f, 8); u64(u); }
  void str(const std::string& s) { u64(s.size()); b.insert(b.end(), s.begin(), s.end()); }
  void header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    b.insert(b.end(), {'G', 'G', 'U', 'F'});
    u32(version);
    u64(n_tensors);
    u64(n_kv);
  }
  void key(const std::string& k, GgufType t) { str(k); u32(uint32_t(t)); }
  void kv_u32(const std::string& k, uint32_t v) { key(k, GgufType::kU32); u32(v); }
  void tensor_info(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name);
    u32(uint32_t(ne.size()));
    for (uint64_t d : ne) u64(d);
    u32(type);
    u64(offset);
  }
  void pad_to(uint64_t align) { while (b.size() % align) u8(0); }
};

Status parse(const Gguf& g, GgufFile* f) { return GgufFile::parse(g.b, f); }

void expect_bad(const Gguf& g, const char* what) {
  GgufFile f;
  Status st = parse(g, &f);
  EXPECT_FALSE(st.is_ok()) << what;
  EXPECT_EQ(st.code(), StatusCode::kBadGguf) << what << ": " << st.message();
  if (!st.is_ok()) std::printf("  [%s] -> %s\n", what, st.message());
}

// A file with one metadata value of every type and two tensors (F32 and Q8_0).
Gguf every_type_file(uint32_t version = 3) {
  Gguf g;
  g.header(2, 15, version);
  g.key("u8", GgufType::kU8); g.u8(200);
  g.key("i8", GgufType::kI8); g.u8(0xfe);
  g.key("u16", GgufType::kU16); g.u16(60000);
  g.key("i16", GgufType::kI16); g.u16(0xfffd);
  g.key("u32", GgufType::kU32); g.u32(4000000000u);
  g.key("i32", GgufType::kI32); g.u32(uint32_t(-5));
  g.key("f32", GgufType::kF32); g.f32(1.5f);
  g.key("bool", GgufType::kBool); g.u8(1);
  g.key("string", GgufType::kString); g.str("héllo");
  g.key("u64", GgufType::kU64); g.u64(1ull << 40);
  g.key("i64", GgufType::kI64); g.u64(uint64_t(-7ll));
  g.key("f64", GgufType::kF64); g.f64(-2.25);
  g.key("arr_str", GgufType::kArray); g.u32(uint32_t(GgufType::kString)); g.u64(2); g.str("a"); g.str("bc");
  g.key("arr_nested", GgufType::kArray); g.u32(uint32_t(GgufType::kArray)); g.u64(2);
  g.u32(uint32_t(GgufType::kI32)); g.u64(1); g.u32(7);
  g.u32(uint32_t(GgufType::kI32)); g.u64(2); g.u32(8); g.u32(9);
  g.kv_u32("general.alignment", 64);
  g.tensor_info("vec", {4}, uint32_t(GgmlType::kF32), 0);
  g.tensor_info("mat", {32, 2}, uint32_t(GgmlType::kQ8_0), 64);
  g.pad_to(64);
  for (int i = 0; i < 4; ++i) g.f32(float(i) - 1.5f);
  g.pad_to(64);
  for (int r = 0; r < 2; ++r) {  // Q8_0 rows: d = 0.5 (f16 0x3800), q = j - 16 (+r)
    g.u16(0x3800);
    for (int j = 0; j < 32; ++j) g.u8(uint8_t(int8_t(j - 16 + r)));
  }
  return g;
}

TEST(GgufReader, ReadsEveryValueType) {
  for (uint32_t version : {2u, 3u}) {
    GgufFile f;
    Status st = parse(every_type_file(version), &f);
    ASSERT_TRUE(st.is_ok()) << st.message();
    EXPECT_EQ(f.version(), version);
    EXPECT_EQ(f.alignment(), 64u);
    EXPECT_EQ(f.find("u8")->u, 200u);
    EXPECT_EQ(f.find("i8")->i, -2);
    EXPECT_EQ(f.find("u16")->u, 60000u);
    EXPECT_EQ(f.find("i16")->i, -3);
    uint32_t u32v = 0;
    ASSERT_TRUE(f.get_u32("u32", &u32v).is_ok());
    EXPECT_EQ(u32v, 4000000000u);
    EXPECT_EQ(f.find("i32")->i, -5);
    float fv = 0;
    ASSERT_TRUE(f.get_f32("f32", &fv).is_ok());
    EXPECT_EQ(fv, 1.5f);
    bool bv = false;
    ASSERT_TRUE(f.get_bool("bool", &bv).is_ok());
    EXPECT_TRUE(bv);
    std::string s;
    ASSERT_TRUE(f.get_string("string", &s).is_ok());
    EXPECT_EQ(s, "héllo");
    EXPECT_EQ(f.find("u64")->u, 1ull << 40);
    EXPECT_EQ(f.find("i64")->i, -7);
    EXPECT_EQ(f.find("f64")->f, -2.25);
    const GgufArray* arr = nullptr;
    ASSERT_TRUE(f.get_array("arr_str", GgufType::kString, &arr).is_ok());
    ASSERT_EQ(arr->size(), 2u);
    EXPECT_EQ((*arr)[1].str, "bc");
    EXPECT_EQ(arr->str(0), "a");
    ASSERT_TRUE(f.get_array("arr_nested", GgufType::kArray, &arr).is_ok());
    ASSERT_EQ(arr->size(), 2u);  // nested arrays: validated and counted, not decoded
    EXPECT_EQ(f.kv_count(), 15u);
  }
}

TEST(GgufReader, TensorInfosAndDequantization) {
  GgufFile f;
  ASSERT_TRUE(parse(every_type_file(), &f).is_ok());
  ASSERT_EQ(f.tensors().size(), 2u);
  const GgufTensor* vec = f.find_tensor("vec");
  const GgufTensor* mat = f.find_tensor("mat");
  ASSERT_TRUE(vec && mat);
  EXPECT_EQ(vec->bytes, 16u);
  EXPECT_EQ(mat->cols(), 32u);
  EXPECT_EQ(mat->rows(), 2u);
  EXPECT_EQ(mat->bytes, 68u);
  float v[4];
  ASSERT_TRUE(dequantize_rows(*vec, 0, 1, v).is_ok());
  EXPECT_EQ(v[0], -1.5f);
  EXPECT_EQ(v[3], 1.5f);
  float m[32];
  ASSERT_TRUE(dequantize_rows(*mat, 1, 1, m).is_ok());
  for (int j = 0; j < 32; ++j) EXPECT_EQ(m[j], 0.5f * float(j - 15)) << j;
  EXPECT_FALSE(dequantize_rows(*mat, 2, 1, m).is_ok());
}

TEST(GgufReader, DequantizesF16Bf16Q4_0Q4_1) {
  Gguf g;
  g.header(4, 0);
  g.tensor_info("f16", {32}, uint32_t(GgmlType::kF16), 0);
  g.tensor_info("bf16", {32}, uint32_t(GgmlType::kBF16), 64);
  g.tensor_info("q40", {32}, uint32_t(GgmlType::kQ4_0), 128);
  g.tensor_info("q41", {32}, uint32_t(GgmlType::kQ4_1), 160);
  g.pad_to(32);
  const size_t base = g.b.size();
  for (int i = 0; i < 32; ++i) g.u16(f32_to_f16(float(i) * 0.25f));
  for (int i = 0; i < 32; ++i) { float x = float(i) - 3.0f; uint32_t u; std::memcpy(&u, &x, 4); g.u16(uint16_t(u >> 16)); }
  g.u16(0x4000);  // Q4_0: d = 2; byte j = j | (15 - j) << 4
  for (int j = 0; j < 16; ++j) g.u8(uint8_t(j | ((15 - j) << 4)));
  while (g.b.size() < base + 160) g.u8(0);
  g.u16(0x3800); g.u16(0xbc00);  // Q4_1: d = 0.5, m = -1
  for (int j = 0; j < 16; ++j) g.u8(uint8_t(j | ((15 - j) << 4)));
  GgufFile f;
  Status st = parse(g, &f);
  ASSERT_TRUE(st.is_ok()) << st.message();
  float out[32];
  ASSERT_TRUE(dequantize_rows(*f.find_tensor("f16"), 0, 1, out).is_ok());
  for (int i = 0; i < 32; ++i) EXPECT_EQ(out[i], float(i) * 0.25f);
  ASSERT_TRUE(dequantize_rows(*f.find_tensor("bf16"), 0, 1, out).is_ok());
  for (int i = 0; i < 32; ++i) EXPECT_EQ(out[i], float(i) - 3.0f);
  ASSERT_TRUE(dequantize_rows(*f.find_tensor("q40"), 0, 1, out).is_ok());
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 2.0f * float(j - 8));
    EXPECT_EQ(out[j + 16], 2.0f * float(15 - j - 8));
  }
  ASSERT_TRUE(dequantize_rows(*f.find_tensor("q41"), 0, 1, out).is_ok());
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 0.5f * float(j) - 1.0f);
    EXPECT_EQ(out[j + 16], 0.5f * float(15 - j) - 1.0f);
  }
}

TEST(GgufReader, WrongTypeAndMissingKeyAreErrors) {
  GgufFile f;
  ASSERT_TRUE(parse(every_type_file(), &f).is_ok());
  uint32_t u;
  float x;
  bool b;
  std::string s;
  const GgufArray* arr;
  EXPECT_EQ(f.get_u32("string", &u).code(), StatusCode::kBadGguf);
  EXPECT_EQ(f.get_u32("u64", &u).code(), StatusCode::kBadGguf);
  EXPECT_EQ(f.get_f32("f64", &x).code(), StatusCode::kBadGguf);
  EXPECT_EQ(f.get_bool("u8", &b).code(), StatusCode::kBadGguf);
  EXPECT_EQ(f.get_string("arr_str", &s).code(), StatusCode::kBadGguf);
  EXPECT_EQ(f.get_array("arr_str", GgufType::kI32, &arr).code(), StatusCode::kBadGguf);
  EXPECT_EQ(f.get_u32("nope", &u).code(), StatusCode::kBadGguf);
  u = 77;
  EXPECT_TRUE(f.get_u32_opt("nope", &u).is_ok());
  EXPECT_EQ(u, 77u);
  EXPECT_FALSE(f.get_u32_opt("string", &u).is_ok());
  Status st = f.get_u32("string", &u);
  EXPECT_NE(std::string(st.message()).find("string"), std::string::npos) << st.message();
}

TEST(GgufReader, RejectsMalformedHeaders) {
  Gguf g;
  g.b = {'G', 'G', 'U'};
  expect_bad(g, "3-byte file");
  g.b = {};
  expect_bad(g, "empty file");
  g = Gguf();
  g.b.insert(g.b.end(), {'G', 'G', 'M', 'L'});
  g.u32(3); g.u64(0); g.u64(0);
  expect_bad(g, "bad magic");
  for (uint32_t v : {0u, 1u, 4u, 0x03000000u}) {
    g = Gguf();
    g.header(0, 0, v);
    expect_bad(g, "bad version");
  }
  g = Gguf();
  g.header(0, 0);
  g.b.resize(g.b.size() - 3);
  expect_bad(g, "truncated header");
  g = Gguf();
  g.header(0, 1ull << 60);
  expect_bad(g, "huge kv count");
  g = Gguf();
  g.header(1ull << 62, 0);
  expect_bad(g, "huge tensor count");
}

TEST(GgufReader, RejectsMalformedMetadata) {
  Gguf g;
  g.header(0, 1);
  g.u64(1ull << 50);  // key length beyond the file
  g.b.resize(g.b.size() + 64, 0);
  expect_bad(g, "huge key length");

  g = Gguf();
  g.header(0, 1);
  g.key("s", GgufType::kString);
  g.u64(100);
  g.str("short");
  expect_bad(g, "string length beyond the file");

  g = Gguf();
  g.header(0, 1);
  g.key("a", GgufType::kArray);
  g.u32(uint32_t(GgufType::kU64));
  g.u64(1ull << 61);  // count * 8 overflows 64 bits
  expect_bad(g, "array count overflow");

  g = Gguf();
  g.header(0, 1);
  g.key("a", GgufType::kArray);
  g.u32(uint32_t(GgufType::kString));
  g.u64(1000000);
  expect_bad(g, "array of strings beyond the file");

  g = Gguf();
  g.header(0, 1);
  g.key("t", GgufType(13));
  g.u32(0);
  expect_bad(g, "unknown value type");

  g = Gguf();
  g.header(0, 1);
  g.key("a", GgufType::kArray);
  g.u32(99);
  g.u64(0);
  expect_bad(g, "unknown array element type");

  g = Gguf();
  g.header(0, 1);
  g.key("b", GgufType::kBool);
  g.u8(2);
  expect_bad(g, "bool not 0/1");

  g = Gguf();  // arrays nested 20 deep
  g.header(0, 1);
  g.key("deep", GgufType::kArray);
  for (int i = 0; i < 20; ++i) { g.u32(uint32_t(GgufType::kArray)); g.u64(1); }
  g.u32(uint32_t(GgufType::kU8)); g.u64(0);
  expect_bad(g, "arrays nested too deep");

  g = Gguf();
  g.header(0, 2);
  g.kv_u32("dup", 1);
  g.kv_u32("dup", 2);
  expect_bad(g, "duplicate key");

  g = Gguf();
  g.header(0, 1);
  g.key("", GgufType::kU8);
  g.u8(0);
  expect_bad(g, "empty key");

  g = Gguf();
  g.header(0, 1);
  g.kv_u32("u", 1);
  g.b.pop_back();
  expect_bad(g, "truncated value");
}

TEST(GgufReader, RejectsBadAlignment) {
  for (uint32_t a : {0u, 3u, 48u, 1u << 24}) {
    Gguf g;
    g.header(0, 1);
    g.kv_u32("general.alignment", a);
    expect_bad(g, "bad alignment value");
  }
  Gguf g;
  g.header(0, 1);
  g.key("general.alignment", GgufType::kU64);
  g.u64(32);
  expect_bad(g, "alignment of the wrong type");
}

// One tensor with the given info, followed by `data_bytes` of data.
Gguf one_tensor(std::vector<uint64_t> ne, uint32_t type, uint64_t offset, size_t data_bytes) {
  Gguf g;
  g.header(1, 0);
  g.tensor_info("t", ne, type, offset);
  g.pad_to(32);
  g.b.resize(g.b.size() + data_bytes, 0);
  return g;
}

TEST(GgufReader, RejectsMalformedTensorInfos) {
  {
    GgufFile f;
    Status st = parse(one_tensor({32, 2}, uint32_t(GgmlType::kF32), 0, 256), &f);
    ASSERT_TRUE(st.is_ok()) << "control case: " << st.message();
  }
  expect_bad(one_tensor({}, uint32_t(GgmlType::kF32), 0, 256), "n_dims 0");
  expect_bad(one_tensor({1, 1, 1, 1, 1}, uint32_t(GgmlType::kF32), 0, 256), "n_dims 5");
  expect_bad(one_tensor({32, 0}, uint32_t(GgmlType::kF32), 0, 256), "dim 0");
  expect_bad(one_tensor({1ull << 40, 1ull << 40}, uint32_t(GgmlType::kF32), 0, 256), "element count overflow");
  expect_bad(one_tensor({1ull << 62}, uint32_t(GgmlType::kF32), 0, 256), "byte size overflow");
  expect_bad(one_tensor({1ull << 30}, uint32_t(GgmlType::kF32), 0, 256), "data beyond the file");
  expect_bad(one_tensor({32, 2}, 77, 0, 256), "unknown tensor type");
  expect_bad(one_tensor({33}, uint32_t(GgmlType::kQ8_0), 0, 256), "row not a multiple of the block");
  expect_bad(one_tensor({32}, uint32_t(GgmlType::kF32), 16, 256), "offset not aligned");
  expect_bad(one_tensor({32}, uint32_t(GgmlType::kF32), 1ull << 40, 256), "offset out of range");
  expect_bad(one_tensor({32}, uint32_t(GgmlType::kF32), 224, 256), "data runs past the end");
  {
    Gguf g;  // a tensor info whose dims run past the end of the file
    g.header(1, 0);
    g.str("t");
    g.u32(2);
    g.u64(32);
    expect_bad(g, "truncated tensor info");
  }
  {
    Gguf g;  // name longer than 64 bytes
    g.header(1, 0);
    g.tensor_info(std::string(65, 'x'), {32}, 0, 0);
    g.pad_to(32);
    g.b.resize(g.b.size() + 128);
    expect_bad(g, "tensor name too long");
  }
  {
    Gguf g;
    g.header(2, 0);
    g.tensor_info("t", {32}, 0, 0);
    g.tensor_info("t", {32}, 0, 128);
    g.pad_to(32);
    g.b.resize(g.b.size() + 256);
    expect_bad(g, "duplicate tensor name");
  }
  {
    Gguf g;
    g.header(2, 0);
    g.tensor_info("a", {32}, 0, 0);
    g.tensor_info("b", {32}, 0, 96);  // a covers [0, 128)
    g.pad_to(32);
    g.b.resize(g.b.size() + 256);
    expect_bad(g, "overlapping tensors");
  }
}

// Every prefix of a valid file must be rejected cleanly (no crash, no overread
// under ASan), and so must random single-byte corruptions parse or fail cleanly.
TEST(GgufReader, EveryTruncationFailsCleanly) {
  const Gguf full = every_type_file();
  for (size_t n = 0; n < full.b.size(); ++n) {
    Gguf g;
    g.b.assign(full.b.begin(), full.b.begin() + long(n));
    GgufFile f;
    EXPECT_FALSE(parse(g, &f).is_ok()) << "prefix of " << n << " bytes";
  }
  uint32_t seed = 12345;
  for (int trial = 0; trial < 2000; ++trial) {
    Gguf g = full;
    seed = seed * 1664525u + 1013904223u;
    g.b[(seed >> 8) % g.b.size()] ^= uint8_t(1u << ((seed >> 4) & 7));
    GgufFile f;
    Status st = parse(g, &f);
    if (st.is_ok()) {  // a corruption that still parses must give in-bounds tensors
      for (const GgufTensor& t : f.tensors()) EXPECT_LE(f.data_offset() + t.offset + t.bytes, g.b.size());
    }
  }
}

}  // namespace
}  // namespace tern::pack

namespace tern::pack {
namespace {

// open() maps the file instead of reading it onto the heap; the parsed view
// points into the mapping and survives moves of the GgufFile.
TEST(GgufReader, OpenMapsTheFile) {
  char path[] = "/tmp/tern_gguf_open_XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  const Gguf g = every_type_file();
  ASSERT_EQ(::write(fd, g.b.data(), g.b.size()), ssize_t(g.b.size()));
  ::close(fd);
  GgufFile f;
  Status st = GgufFile::open(path, &f);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ::unlink(path);  // the mapping keeps the bytes
  GgufFile moved = std::move(f);
  EXPECT_EQ(moved.file_bytes(), g.b.size());
  std::string s;
  ASSERT_TRUE(moved.get_string("string", &s).is_ok());
  EXPECT_EQ(s, "héllo");
  const GgufArray* arr = nullptr;
  ASSERT_TRUE(moved.get_array("arr_str", GgufType::kString, &arr).is_ok());
  EXPECT_EQ(arr->str(1), "bc");
  float v[4];
  ASSERT_TRUE(dequantize_rows(*moved.find_tensor("vec"), 0, 1, v).is_ok());
  EXPECT_EQ(v[0], -1.5f);
  // The parsed structures are small next to the file (every_type_file is tiny,
  // so this is a smoke check; tests/hostile/resource_bounds_test.cc bounds it).
  EXPECT_LT(moved.parsed_bytes(), 8 * g.b.size());

  EXPECT_EQ(GgufFile::open("/nonexistent/x.gguf", &f).code(), StatusCode::kIoError);
  EXPECT_EQ(GgufFile::open("/tmp", &f).code(), StatusCode::kIoError);
  char empty[] = "/tmp/tern_gguf_empty_XXXXXX";
  const int efd = ::mkstemp(empty);
  ::close(efd);
  EXPECT_EQ(GgufFile::open(empty, &f).code(), StatusCode::kBadGguf);
  ::unlink(empty);
}

// Lookups are binary searches over sorted keys: every key of a file with
// many is found, and near-misses are not.
TEST(GgufReader, ManyKeysAreAllFound) {
  Gguf g;
  const int n = 500;
  g.header(0, n);
  for (int i = 0; i < n; ++i) g.kv_u32("k." + std::to_string((i * 7919) % 1000), uint32_t(i));
  GgufFile f;
  ASSERT_TRUE(parse(g, &f).is_ok());
  for (int i = 0; i < n; ++i) {
    uint32_t v = 0;
    ASSERT_TRUE(f.get_u32("k." + std::to_string((i * 7919) % 1000), &v).is_ok()) << i;
    EXPECT_EQ(v, uint32_t(i));
  }
  EXPECT_EQ(f.find("k."), nullptr);
  EXPECT_EQ(f.find("k.1000"), nullptr);
  EXPECT_EQ(f.find(""), nullptr);
}

}  // namespace
}  // namespace tern::pack
