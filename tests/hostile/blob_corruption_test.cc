// The blob corruption matrix: a tiny valid blob (tests/support/tiny_model.h,
// packed by the real packer) corrupted one named way at a time. Each case must
// fail with its own status code and a message naming the field, through the
// whole load path (Engine::open on the bytes in memory), never crash (the
// test runs under ASan in the asan preset) and never depend on assert()
// (Release builds have NDEBUG). Exhaustive sweeps: truncation at every byte,
// truncation at every section boundary with the header claiming the short
// size, and a single-bit flip of every header, section-table, hparams,
// memory-plan and tensor-directory byte, both plain (the CRCs must catch it)
// and "forged" (CRCs recomputed, so the semantic checks must catch it).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/blob_format.h"
#include "runtime/engine.h"
#include "runtime/model_file.h"
#include "tests/support/tiny_model.h"
#include "tools/pack/blob_inspect.h"

namespace tern {
namespace {

using blob::load_u32;
using blob::load_u64;
using blob::store_u32;
using blob::store_u64;

// Section table access on a blob image.
struct Sec {
  size_t entry;     // offset of the table entry
  uint64_t offset;  // of the section
  uint64_t bytes;
};

Sec section(const std::vector<uint8_t>& b, uint32_t kind) {
  const uint64_t table = load_u64(b.data() + blob::hdr::kSectionTable);
  const uint32_t count = load_u32(b.data() + blob::hdr::kSectionCount);
  for (uint32_t i = 0; i < count; ++i) {
    const size_t e = size_t(table + i * blob::kSectionEntryBytes);
    if (load_u32(b.data() + e) == kind) return {e, load_u64(b.data() + e + 8), load_u64(b.data() + e + 16)};
  }
  ADD_FAILURE() << "no section of kind " << kind;
  return {0, 0, 0};
}

constexpr uint32_t kHp = 1, kPlan = 2, kTok = 3, kChat = 4, kDir = 5, kData = 6, kLayers = 7;

// The image as an older format version writes it: before version 5 the
// memory plan section ends before its KV type (64 bytes, f16 KV; the tiny
// blob's KV type is f16, so the 8 bytes left behind are zero padding).
void as_version(std::vector<uint8_t>& b, uint32_t version) {
  store_u32(&b[8], version);
  if (version < 5) store_u64(&b[section(b, kPlan).entry + 16], blob::plan::kBytesV3);
}

// Recompute every section CRC, the table CRC and the header CRC, so a
// corruption reaches the semantic checks instead of the checksum ones.
void reseal(std::vector<uint8_t>* img) {
  std::vector<uint8_t>& b = *img;
  const uint64_t table = load_u64(b.data() + blob::hdr::kSectionTable);
  const uint64_t count = load_u32(b.data() + blob::hdr::kSectionCount);
  // A corrupted header may point the table anywhere: reseal only what exists.
  if (table <= b.size() && count <= (b.size() - table) / blob::kSectionEntryBytes) {
    for (uint32_t i = 0; i < count; ++i) {
      uint8_t* e = b.data() + table + i * blob::kSectionEntryBytes;
      const uint64_t off = load_u64(e + 8), bytes = load_u64(e + 16);
      if (off <= b.size() && bytes <= b.size() - off) store_u32(e + 24, blob::crc32(b.data() + off, bytes));
    }
    store_u32(b.data() + blob::hdr::kSectionTableCrc, blob::crc32(b.data() + table, count * blob::kSectionEntryBytes));
  }
  store_u32(b.data() + blob::hdr::kHeaderCrc, blob::crc32(b.data(), blob::hdr::kHeaderCrc));
}

// The runtime's whole load path on an in-memory image.
Status load(const std::vector<uint8_t>& b, bool verify = false) {
  Engine e;
  EngineOptions o;
  o.blob_data = b.data();
  o.blob_size = b.size();
  o.verify_weights = verify;
  o.isa = "scalar";
  return e.open(o);
}

const std::vector<uint8_t>& valid_blob() {
  static std::vector<uint8_t> b = [] {
    std::vector<uint8_t> v;
    Status st = testing::tiny_blob(&v);
    if (!st.is_ok()) std::fprintf(stderr, "tiny blob: %s\n", st.message());
    return v;
  }();
  return b;
}

size_t dir_entry(const std::vector<uint8_t>& b, uint32_t i) {
  return size_t(section(b, kDir).offset) + blob::tdir::kHeaderBytes + size_t(i) * blob::tdir::kEntryBytes;
}
// Entry field offsets (after the 48-byte name).
constexpr size_t kRole = 48, kLayer = 52, kDtype = 56, kRows = 60, kCols = 64, kOff = 72, kBytes = 80;

// Index of the tensor directory entry with this name.
uint32_t tensor_index(const std::vector<uint8_t>& b, const char* name) {
  const uint32_t n = load_u32(b.data() + section(b, kDir).offset);
  for (uint32_t i = 0; i < n; ++i)
    if (std::strcmp(reinterpret_cast<const char*>(b.data() + dir_entry(b, i)), name) == 0) return i;
  ADD_FAILURE() << "no tensor " << name;
  return 0;
}

struct Case {
  const char* name;
  bool reseal;  // recompute CRCs after the mutation
  StatusCode code;
  const char* needle;  // substring of the message
  std::function<void(std::vector<uint8_t>&)> mutate;
};

void run_case(const Case& c, const std::vector<uint8_t>& base = valid_blob()) {
  std::vector<uint8_t> b = base;
  c.mutate(b);
  if (c.reseal) reseal(&b);
  const Status st = load(b);
  EXPECT_FALSE(st.is_ok()) << c.name;
  EXPECT_EQ(status_code_name(st.code()), std::string(status_code_name(c.code))) << c.name << ": " << st.message();
  EXPECT_NE(std::string(st.message()).find(c.needle), std::string::npos)
      << c.name << ": message '" << st.message() << "' lacks '" << c.needle << "'";
}

TEST(BlobCorruption, ValidBlobLoads) {
  const std::vector<uint8_t>& b = valid_blob();
  ASSERT_GT(b.size(), 4096u);
  ASSERT_LT(b.size(), 65536u);
  Status st = load(b, true);
  ASSERT_TRUE(st.is_ok()) << st.message();
  std::vector<uint8_t> r = b;
  reseal(&r);
  EXPECT_EQ(r, b) << "reseal must be the identity on a valid blob";
}

// Version 3 only added the int5 storage type: a version-2 blob (no int5) still loads.
TEST(BlobCorruption, Version2BlobWithoutInt5StillLoads) {
  std::vector<uint8_t> b = valid_blob();
  as_version(b, 2);
  reseal(&b);
  const Status st = load(b);
  EXPECT_TRUE(st.is_ok()) << st.message();
}

TEST(BlobCorruption, HeaderCases) {
  const std::vector<Case> cases = {
      {"bad magic", false, StatusCode::kBadMagic, "magic", [](auto& b) { b[0] = 'X'; }},
      {"magic of a GGUF", false, StatusCode::kBadMagic, "TERNBLOB", [](auto& b) { std::memcpy(b.data(), "GGUF\3\0\0\0", 8); }},
      {"version 1 (older)", true, StatusCode::kBadVersion, "version 1, this runtime reads versions 2 to 5: repack",
       [](auto& b) { store_u32(&b[8], 1); }},
      {"version 6 (newer)", true, StatusCode::kBadVersion, "version 6", [](auto& b) { store_u32(&b[8], 6); }},
      // The plan section's size follows the version: 72 bytes (with the KV type) from version 5.
      {"version 5 with a 64-byte plan", true, StatusCode::kBadLayout, "memory plan section is 64 bytes, expected 72",
       [](auto& b) { store_u64(&b[section(b, kPlan).entry + 16], 64); }},
      {"version 3 with a 72-byte plan", true, StatusCode::kBadLayout, "memory plan section is 72 bytes, expected 64",
       [](auto& b) { store_u32(&b[8], 3); }},
      // A plan stored for f16 KV that says int8: the stored byte counts no longer match what the
      // runtime plans for int8, and it says so rather than running with a plan it did not make.
      {"KV type int8 over an f16 plan", true, StatusCode::kBadLayout, "stored memory plan",
       [](auto& b) { store_u32(&b[section(b, kPlan).offset + blob::plan::kKvType], 1); }},
      {"unknown KV type", true, StatusCode::kBadLayout, "unknown KV cache type 2",
       [](auto& b) { store_u32(&b[section(b, kPlan).offset + blob::plan::kKvType], 2); }},
      {"version 0", true, StatusCode::kBadVersion, "version 0", [](auto& b) { store_u32(&b[8], 0); }},
      {"version -1", true, StatusCode::kBadVersion, "version 4294967295", [](auto& b) { store_u32(&b[8], 0xffffffffu); }},
      {"big-endian marker", true, StatusCode::kBadEndian, "0x04030201", [](auto& b) { store_u32(&b[12], 0x04030201u); }},
      {"header crc", false, StatusCode::kBadChecksum, "header checksum", [](auto& b) { b[blob::hdr::kHeaderCrc] ^= 1; }},
      {"header reserved byte (crc catches)", false, StatusCode::kBadChecksum, "header checksum", [](auto& b) { b[60] = 1; }},
      {"file_bytes larger", true, StatusCode::kTruncated, "truncated", [](auto& b) { store_u64(&b[16], b.size() + 1); }},
      {"file_bytes smaller", true, StatusCode::kBadLayout, "appended", [](auto& b) { store_u64(&b[16], b.size() - 1); }},
      {"file_bytes -1", true, StatusCode::kTruncated, "18446744073709551615", [](auto& b) { store_u64(&b[16], ~0ull); }},
      {"header_bytes 64", true, StatusCode::kBadLayout, "header size", [](auto& b) { store_u32(&b[24], 64); }},
      {"section_count 0", true, StatusCode::kBadLayout, "section count 0", [](auto& b) { store_u32(&b[28], 0); }},
      {"section_count 17", true, StatusCode::kBadLayout, "section count 17", [](auto& b) { store_u32(&b[28], 17); }},
      {"section_count -1", true, StatusCode::kBadLayout, "section count 4294967295", [](auto& b) { store_u32(&b[28], 0xffffffffu); }},
      {"section_count 6 (a kind missing)", true, StatusCode::kBadLayout, "no tensor_data section", [](auto& b) { store_u32(&b[28], 6); }},
      {"section table inside the header", true, StatusCode::kBadLayout, "section table", [](auto& b) { store_u64(&b[32], 64); }},
      {"section table past the end", true, StatusCode::kBadLayout, "section table", [](auto& b) { store_u64(&b[32], b.size()); }},
      {"section table offset 2^63", true, StatusCode::kBadLayout, "section table", [](auto& b) { store_u64(&b[32], 1ull << 63); }},
      {"section table offset -1", true, StatusCode::kBadLayout, "section table", [](auto& b) { store_u64(&b[32], ~0ull); }},
      {"section table unaligned", true, StatusCode::kBadLayout, "section table", [](auto& b) { store_u64(&b[32], 132); }},
      {"section table crc", false, StatusCode::kBadChecksum, "section table checksum",
       [](auto& b) { b[128 + 24] ^= 1; store_u32(&b[124], blob::crc32(b.data(), 124)); }},
  };
  for (const Case& c : cases) run_case(c);
}

TEST(BlobCorruption, SectionTableCases) {
  const std::vector<Case> cases = {
      {"unknown kind 0", true, StatusCode::kBadLayout, "unknown kind 0", [](auto& b) { store_u32(&b[section(b, kChat).entry], 0); }},
      {"unknown kind 8", true, StatusCode::kBadLayout, "unknown kind 8", [](auto& b) { store_u32(&b[section(b, kChat).entry], 8); }},
      {"layers section missing (kind 7 made a duplicate chat template)", true, StatusCode::kBadLayout, "duplicate chat_template section",
       [](auto& b) { store_u32(&b[section(b, kLayers).entry], kChat); }},
      {"unknown kind -1", true, StatusCode::kBadLayout, "unknown kind 4294967295", [](auto& b) { store_u32(&b[section(b, kChat).entry], 0xffffffffu); }},
      {"duplicate kind", true, StatusCode::kBadLayout, "duplicate hparams section", [](auto& b) { store_u32(&b[section(b, kChat).entry], kHp); }},
      {"entry reserved field", true, StatusCode::kBadLayout, "reserved", [](auto& b) { store_u32(&b[section(b, kTok).entry + 4], 1); }},
      {"entry reserved tail", true, StatusCode::kBadLayout, "reserved", [](auto& b) { store_u32(&b[section(b, kTok).entry + 28], 1); }},
      {"section offset past the end", true, StatusCode::kBadLayout, "tokenizer section", [](auto& b) { store_u64(&b[section(b, kTok).entry + 8], b.size() + 8); }},
      {"section offset -8 (negative)", true, StatusCode::kBadLayout, "outside the file", [](auto& b) { store_u64(&b[section(b, kTok).entry + 8], ~0ull - 7); }},
      {"section offset+bytes overflows", true, StatusCode::kBadLayout, "outside the file", [](auto& b) { store_u64(&b[section(b, kTok).entry + 16], ~0ull - 100); }},
      {"section bytes past the end", true, StatusCode::kBadLayout, "outside the file", [](auto& b) { store_u64(&b[section(b, kData).entry + 16], section(b, kData).bytes + 1); }},
      {"section inside the header", true, StatusCode::kBadLayout, "outside the file", [](auto& b) { store_u64(&b[section(b, kChat).entry + 8], 64); }},
      {"section unaligned", true, StatusCode::kBadLayout, "not 8-byte aligned", [](auto& b) { store_u64(&b[section(b, kChat).entry + 8], section(b, kChat).offset + 4); }},
      {"section overlaps the table", true, StatusCode::kBadLayout, "overlaps the section table", [](auto& b) { store_u64(&b[section(b, kChat).entry + 8], 128); }},
      {"sections overlap", true, StatusCode::kBadLayout, "overlap", [](auto& b) { store_u64(&b[section(b, kChat).entry + 8], section(b, kTok).offset); }},
      {"hparams crc", false, StatusCode::kBadChecksum, "hparams section checksum", [](auto& b) { b[section(b, kHp).offset + 8] ^= 1; }},
      {"memory plan crc", false, StatusCode::kBadChecksum, "memory_plan section checksum", [](auto& b) { b[section(b, kPlan).offset] ^= 1; }},
      {"tokenizer crc", false, StatusCode::kBadChecksum, "tokenizer section checksum", [](auto& b) { b[section(b, kTok).offset + 100] ^= 1; }},
      {"chat template crc", false, StatusCode::kBadChecksum, "chat_template section checksum", [](auto& b) { b[section(b, kChat).offset] ^= 1; }},
      {"tensor dir crc", false, StatusCode::kBadChecksum, "tensor_dir section checksum", [](auto& b) { b[section(b, kDir).offset + 20] ^= 1; }},
      {"hparams 120 bytes", true, StatusCode::kBadLayout, "hparams section is 120 bytes", [](auto& b) { store_u64(&b[section(b, kHp).entry + 16], 120); }},
      {"hparams 264 bytes (runs into the plan)", true, StatusCode::kBadLayout, "hparams and memory_plan sections overlap", [](auto& b) { store_u64(&b[section(b, kHp).entry + 16], 264); }},
      {"hparams 128 bytes (format 1's size)", true, StatusCode::kBadLayout, "hparams section is 128 bytes, expected 256", [](auto& b) { store_u64(&b[section(b, kHp).entry + 16], 128); }},
      {"memory plan 56 bytes", true, StatusCode::kBadLayout, "memory plan section is 56 bytes", [](auto& b) { store_u64(&b[section(b, kPlan).entry + 16], 56); }},
      {"tensor data unaligned", true, StatusCode::kBadLayout, "tensor data section", [](auto& b) {
         const Sec d = section(b, kData); store_u64(&b[d.entry + 8], d.offset + 8); store_u64(&b[d.entry + 16], d.bytes - 8); }},
  };
  for (const Case& c : cases) run_case(c);
}

void hp_u32(std::vector<uint8_t>& b, size_t field, uint32_t v) { store_u32(&b[section(b, kHp).offset + field], v); }
void hp_f32(std::vector<uint8_t>& b, size_t field, float v) { blob::store_f32(&b[section(b, kHp).offset + field], v); }

TEST(BlobCorruption, HparamsCases) {
  namespace hp = blob::hp;
  const std::vector<Case> cases = {
      {"arch 5", true, StatusCode::kBadHparams, "unknown architecture 5", [](auto& b) { hp_u32(b, hp::kArch, 5); }},
      {"arch 0", true, StatusCode::kBadHparams, "unknown architecture 0", [](auto& b) { hp_u32(b, hp::kArch, 0); }},
      {"activation 2", true, StatusCode::kBadHparams, "unknown activation 2", [](auto& b) { hp_u32(b, hp::kActivation, 2); }},
      {"unknown flag", true, StatusCode::kBadHparams, "unknown architecture flags 0x10", [](auto& b) { hp_u32(b, hp::kFlags, 0x10); }},
      {"QK-norm flag without its tensors", true, StatusCode::kMissingTensor, "attn_q_norm", [](auto& b) { hp_u32(b, hp::kFlags, blob::kFlagQkNorm); }},
      {"post-norm flag without its tensors", true, StatusCode::kMissingTensor, "post_attention_norm", [](auto& b) { hp_u32(b, hp::kFlags, blob::kFlagPostNorms); }},
      {"bias flag without its tensors", true, StatusCode::kMissingTensor, "attn_q.bias", [](auto& b) { hp_u32(b, hp::kFlags, blob::kFlagQkvBias); }},
      {"llama3 rope flag without rope_freqs", true, StatusCode::kMissingTensor, "rope_freqs", [](auto& b) { hp_u32(b, hp::kFlags, blob::kFlagRopeFreqs); }},
      {"embed scale 0", true, StatusCode::kBadHparams, "embedding scale", [](auto& b) { hp_f32(b, hp::kEmbedScale, 0.0f); }},
      {"embed scale NaN", true, StatusCode::kBadHparams, "embedding scale", [](auto& b) { hp_f32(b, hp::kEmbedScale, NAN); }},
      {"attention scale -1", true, StatusCode::kBadHparams, "attention scale", [](auto& b) { hp_f32(b, hp::kAttnScale, -1.0f); }},
      {"attention scale inf", true, StatusCode::kBadHparams, "attention scale", [](auto& b) { hp_f32(b, hp::kAttnScale, INFINITY); }},
      {"soft-cap NaN", true, StatusCode::kBadHparams, "soft-cap", [](auto& b) { hp_f32(b, hp::kFinalSoftcap, NAN); }},
      {"soft-cap -1", true, StatusCode::kBadHparams, "soft-cap", [](auto& b) { hp_f32(b, hp::kFinalSoftcap, -1.0f); }},
      {"rope scaling 2", true, StatusCode::kBadHparams, "unknown rope scaling 2", [](auto& b) { hp_u32(b, hp::kRopeScaling, 2); }},
      {"linear rope factor 0.5", true, StatusCode::kBadHparams, "rope scale factor 0.5", [](auto& b) { hp_u32(b, hp::kRopeScaling, 1); hp_f32(b, hp::kRopeScaleFactor, 0.5f); }},
      {"rope factor without scaling", true, StatusCode::kBadHparams, "rope scale factor 4", [](auto& b) { hp_f32(b, hp::kRopeScaleFactor, 4.0f); }},
      {"layer kind 2", true, StatusCode::kBadHparams, "layer 0: unknown attention kind 2", [](auto& b) { store_u32(&b[section(b, kLayers).offset + blob::layer::kAttention], 2); }},
      {"sliding layer without a window", true, StatusCode::kBadHparams, "layer 0: window 0", [](auto& b) { store_u32(&b[section(b, kLayers).offset + blob::layer::kAttention], 1); }},
      {"global layer with a window", true, StatusCode::kBadHparams, "layer 0: window 8", [](auto& b) { store_u32(&b[section(b, kLayers).offset + blob::layer::kWindow], 8); }},
      {"layer rope base NaN", true, StatusCode::kBadHparams, "layer 0: rope base", [](auto& b) { blob::store_f32(&b[section(b, kLayers).offset + blob::layer::kRopeBase], NAN); }},
      {"layer rope base 0", true, StatusCode::kBadHparams, "layer 0: rope base", [](auto& b) { blob::store_f32(&b[section(b, kLayers).offset + blob::layer::kRopeBase], 0.0f); }},
      {"layer rope_scaled 2", true, StatusCode::kBadHparams, "layer 0: rope_scaled = 2", [](auto& b) { store_u32(&b[section(b, kLayers).offset + blob::layer::kRopeScaled], 2); }},
      {"layers section short", true, StatusCode::kBadLayout, "layers section is 8 bytes, 1 layers need 16", [](auto& b) { store_u64(&b[section(b, kLayers).entry + 16], 8); }},
      {"layers 0", true, StatusCode::kBadHparams, "layers = 0", [](auto& b) { hp_u32(b, hp::kLayers, 0); }},
      {"layers -1", true, StatusCode::kBadHparams, "layers = 4294967295", [](auto& b) { hp_u32(b, hp::kLayers, ~0u); }},
      {"layers 2 (the layers section disagrees)", true, StatusCode::kBadLayout, "2 layers need 32", [](auto& b) { hp_u32(b, hp::kLayers, 2); }},
      {"dim 0", true, StatusCode::kBadHparams, "dim = 0", [](auto& b) { hp_u32(b, hp::kDim, 0); }},
      {"dim 33", true, StatusCode::kBadHparams, "dim = 33", [](auto& b) { hp_u32(b, hp::kDim, 33); }},
      {"dim -1", true, StatusCode::kBadHparams, "dim = 4294967295", [](auto& b) { hp_u32(b, hp::kDim, ~0u); }},
      {"dim 64 (shapes disagree)", true, StatusCode::kBadTensor, "expected [262, 64]", [](auto& b) { hp_u32(b, hp::kDim, 64); }},
      {"heads 0", true, StatusCode::kBadHparams, "heads = 0", [](auto& b) { hp_u32(b, hp::kHeads, 0); }},
      {"kv_heads 0", true, StatusCode::kBadHparams, "kv_heads = 0", [](auto& b) { hp_u32(b, hp::kKvHeads, 0); }},
      {"heads not a multiple of kv_heads", true, StatusCode::kBadHparams, "multiple of kv_heads", [](auto& b) { hp_u32(b, hp::kKvHeads, 3); }},
      {"head_dim 0", true, StatusCode::kBadHparams, "head_dim = 0", [](auto& b) { hp_u32(b, hp::kHeadDim, 0); }},
      {"head_dim huge", true, StatusCode::kBadHparams, "head_dim = 2147483648", [](auto& b) { hp_u32(b, hp::kHeadDim, 1u << 31); }},
      {"rope_dim odd", true, StatusCode::kBadHparams, "rope_dim = 15", [](auto& b) { hp_u32(b, hp::kRopeDim, 15); }},
      {"rope_dim > head_dim", true, StatusCode::kBadHparams, "rope_dim = 18", [](auto& b) { hp_u32(b, hp::kRopeDim, 18); }},
      {"ffn 0", true, StatusCode::kBadHparams, "ffn = 0", [](auto& b) { hp_u32(b, hp::kFfnDim, 0); }},
      {"ffn -1", true, StatusCode::kBadHparams, "ffn = 4294967295", [](auto& b) { hp_u32(b, hp::kFfnDim, ~0u); }},
      {"vocab 0", true, StatusCode::kBadHparams, "vocab = 0", [](auto& b) { hp_u32(b, hp::kVocab, 0); }},
      {"vocab -1", true, StatusCode::kBadHparams, "vocab = 4294967295", [](auto& b) { hp_u32(b, hp::kVocab, ~0u); }},
      {"vocab 300 (tokenizer disagrees)", true, StatusCode::kBadTokenizer, "300", [](auto& b) { hp_u32(b, hp::kVocab, 300); }},
      {"rope base NaN", true, StatusCode::kBadHparams, "rope base", [](auto& b) { hp_f32(b, hp::kRopeBase, NAN); }},
      {"rope base -1", true, StatusCode::kBadHparams, "rope base", [](auto& b) { hp_f32(b, hp::kRopeBase, -1.0f); }},
      {"rope base inf", true, StatusCode::kBadHparams, "rope base", [](auto& b) { hp_f32(b, hp::kRopeBase, INFINITY); }},
      {"norm eps 0", true, StatusCode::kBadHparams, "norm epsilon", [](auto& b) { hp_f32(b, hp::kNormEps, 0.0f); }},
      {"norm eps NaN", true, StatusCode::kBadHparams, "norm epsilon", [](auto& b) { hp_f32(b, hp::kNormEps, NAN); }},
      {"rope pairing 2", true, StatusCode::kBadHparams, "rope pairing 2", [](auto& b) { hp_u32(b, hp::kRopePairing, 2); }},
      {"eos -1", true, StatusCode::kBadHparams, "end-of-sequence", [](auto& b) { hp_u32(b, hp::kEos, ~0u); }},
      {"bos = vocab", true, StatusCode::kBadHparams, "special token id 262", [](auto& b) { hp_u32(b, hp::kBos, 262); }},
      {"im_start -2", true, StatusCode::kBadHparams, "special token id -2", [](auto& b) { hp_u32(b, hp::kImStart, uint32_t(-2)); }},
      {"tied but output present", true, StatusCode::kBadTensor, "tied", [](auto& b) { hp_u32(b, hp::kTiedEmbed, 1); }},
  };
  for (const Case& c : cases) run_case(c);
}

void plan_u32(std::vector<uint8_t>& b, size_t field, uint32_t v) { store_u32(&b[section(b, kPlan).offset + field], v); }

TEST(BlobCorruption, MemoryPlanCases) {
  namespace plan = blob::plan;
  const std::vector<Case> cases = {
      {"kv block 3", true, StatusCode::kInvalidArgument, "run limits rejected", [](auto& b) { plan_u32(b, plan::kKvBlockTokens, 3); }},
      {"max context 0", true, StatusCode::kInvalidArgument, "run limits rejected", [](auto& b) { plan_u32(b, plan::kMaxContext, 0); }},
      {"max context -1", true, StatusCode::kInvalidArgument, "run limits rejected", [](auto& b) { plan_u32(b, plan::kMaxContext, ~0u); }},
      {"max sequences -1", true, StatusCode::kInvalidArgument, "sequences", [](auto& b) { plan_u32(b, plan::kMaxSequences, ~0u); }},
      {"prefill chunk 0", true, StatusCode::kInvalidArgument, "run limits rejected", [](auto& b) { plan_u32(b, plan::kPrefillChunk, 0); }},
  };
  for (const Case& c : cases) run_case(c);
}

void tok_u32(std::vector<uint8_t>& b, size_t field, uint32_t v) { store_u32(&b[section(b, kTok).offset + field], v); }

TEST(BlobCorruption, TokenizerCases) {
  const std::vector<Case> cases = {
      {"model 3", true, StatusCode::kBadTokenizer, "model 3", [](auto& b) { tok_u32(b, 0, 3); }},
      {"model 2 (sizes then disagree: no scores)", true, StatusCode::kBadTokenizer, "counts say", [](auto& b) { tok_u32(b, 0, 2); }},
      {"flags 1 on byte-level BPE", true, StatusCode::kBadTokenizer, "reserved", [](auto& b) { tok_u32(b, 20, 1); }},
      {"pre 9", true, StatusCode::kBadTokenizer, "pre", [](auto& b) { tok_u32(b, 4, 9); }},
      {"n_tokens -1", true, StatusCode::kBadTokenizer, "4294967295", [](auto& b) { tok_u32(b, 8, ~0u); }},
      {"n_merges -1", true, StatusCode::kBadTokenizer, "4294967295", [](auto& b) { tok_u32(b, 12, ~0u); }},
      {"n_merges 4 (size disagrees)", true, StatusCode::kBadTokenizer, "", [](auto& b) { tok_u32(b, 12, 4); }},
      {"pool_bytes -1", true, StatusCode::kBadTokenizer, "", [](auto& b) { tok_u32(b, 16, ~0u); }},
      {"first offset nonzero", true, StatusCode::kBadTokenizer, "", [](auto& b) { tok_u32(b, 24, 1); }},
      {"offsets decreasing", true, StatusCode::kBadTokenizer, "", [](auto& b) { tok_u32(b, 24 + 4 * 10, 0); }},
      {"token type 9", true, StatusCode::kBadTokenizer, "type", [](auto& b) { b[section(b, kTok).offset + 24 + 4 * 263 + 5] = 9; }},
      {"token type 0", true, StatusCode::kBadTokenizer, "type", [](auto& b) { b[section(b, kTok).offset + 24 + 4 * 263 + 5] = 0; }},
      {"merge id out of range", true, StatusCode::kBadTokenizer, "merge", [](auto& b) { tok_u32(b, 24 + 4 * 263 + 264, 262); }},
      {"merge id -1", true, StatusCode::kBadTokenizer, "merge", [](auto& b) { tok_u32(b, 24 + 4 * 263 + 264 + 8, ~0u); }},
  };
  for (const Case& c : cases) run_case(c);
}

// The SentencePiece section (model 2) of the tiny Gemma-style model: header,
// sizes, scores, types, texts (tests/support/tiny_model.h: 352 tokens, byte
// tokens at 6..261).
const std::vector<uint8_t>& valid_spm_blob() {
  static std::vector<uint8_t> b = [] {
    std::vector<uint8_t> v;
    Status st = testing::tiny_spm_blob(&v);
    if (!st.is_ok()) std::fprintf(stderr, "tiny spm blob: %s\n", st.message());
    return v;
  }();
  return b;
}

blob::tok::Layout spm_layout(const std::vector<uint8_t>& b) {
  const uint8_t* t = b.data() + section(b, kTok).offset;
  return blob::tok::layout(load_u32(t), load_u32(t + 8), load_u32(t + 12), load_u32(t + 16));
}
// Offset in the file of tokenizer-section array `at` + `i` bytes.
size_t tok_at(const std::vector<uint8_t>& b, uint64_t at, size_t i) { return size_t(section(b, kTok).offset + at + i); }

TEST(BlobCorruption, SentencePieceTokenizerCases) {
  ASSERT_TRUE(load(valid_spm_blob()).is_ok());
  ASSERT_EQ(load_u32(valid_spm_blob().data() + section(valid_spm_blob(), kTok).offset), 2u);
  const float nan = std::nanf(""), inf = INFINITY;
  const std::vector<Case> cases = {
      {"model 3", true, StatusCode::kBadTokenizer, "counts say", [](auto& b) { tok_u32(b, 0, 3); }},
      {"model 1 (sizes then disagree: scores)", true, StatusCode::kBadTokenizer, "counts say", [](auto& b) { tok_u32(b, 0, 1); }},
      {"pre 1", true, StatusCode::kBadTokenizer, "pre-tokenizer 1", [](auto& b) { tok_u32(b, 4, 1); }},
      {"n_merges 1 (size disagrees)", true, StatusCode::kBadTokenizer, "counts say", [](auto& b) { tok_u32(b, 12, 1); }},
      {"pool_bytes + 4 (size disagrees)", true, StatusCode::kBadTokenizer, "counts say",
       [](auto& b) { tok_u32(b, 16, load_u32(&b[section(b, kTok).offset + 16]) + 4); }},
      {"flags 2 (unknown bit)", true, StatusCode::kBadTokenizer, "flags 0x2", [](auto& b) { tok_u32(b, 20, 2); }},
      {"flags high bit", true, StatusCode::kBadTokenizer, "flags 0x80000001", [](auto& b) { tok_u32(b, 20, 0x80000001u); }},
      {"section 4 bytes short (scores cut)", true, StatusCode::kBadTokenizer, "counts say",
       [](auto& b) { store_u64(&b[section(b, kTok).entry + 16], section(b, kTok).bytes - 4); }},
      {"score NaN", true, StatusCode::kBadTokenizer, "not finite",
       [nan](auto& b) { blob::store_f32(&b[tok_at(b, spm_layout(b).scores, 4 * 300)], nan); }},
      {"score -inf", true, StatusCode::kBadTokenizer, "not finite",
       [inf](auto& b) { blob::store_f32(&b[tok_at(b, spm_layout(b).scores, 4 * 270)], -inf); }},
      {"token_offset[n] != pool_bytes", true, StatusCode::kBadTokenizer, "pool_bytes",
       [](auto& b) { const uint64_t n = testing::kTinySpmVocab; store_u32(&b[tok_at(b, spm_layout(b).offsets, 4 * n)], load_u32(&b[tok_at(b, spm_layout(b).offsets, 4 * n)]) - 1); }},
      {"offsets decreasing", true, StatusCode::kBadTokenizer, "decreases", [](auto& b) { tok_u32(b, 24 + 4 * 10, 0); }},
      {"token type 9", true, StatusCode::kBadTokenizer, "type 9", [](auto& b) { b[tok_at(b, spm_layout(b).types, 300)] = 9; }},
      {"normal token typed byte", true, StatusCode::kBadTokenizer, "<0xNN>", [](auto& b) { b[tok_at(b, spm_layout(b).types, 300)] = 6; }},
      {"byte token misspelled", true, StatusCode::kBadTokenizer, "<0xNN>",
       [](auto& b) { b[tok_at(b, spm_layout(b).pool, load_u32(&b[tok_at(b, spm_layout(b).offsets, 4 * 6)]) + 2)] = 'y'; }},
      {"a byte without fallback", true, StatusCode::kBadTokenizer, "",
       [](auto& b) {  // <0x41> becomes <0x00>'s twin: a duplicate, or 'A' unreachable
         b[tok_at(b, spm_layout(b).pool, load_u32(&b[tok_at(b, spm_layout(b).offsets, 4 * (6 + 0x41))]) + 3)] = '0';
         b[tok_at(b, spm_layout(b).pool, load_u32(&b[tok_at(b, spm_layout(b).offsets, 4 * (6 + 0x41))]) + 4)] = '0';
       }},
  };
  for (const Case& c : cases) run_case(c, valid_spm_blob());
}

// Flag bit 0 is a valid change (add_space_prefix): the blob loads and a
// text fragment gets its "▁"; every forged bit flip of the section header
// either loads or fails with a tokenizer or layout error.
TEST(BlobCorruption, SentencePieceHeaderBits) {
  std::vector<uint8_t> b = valid_spm_blob();
  tok_u32(b, 20, blob::tok::kFlagAddSpacePrefix);
  reseal(&b);
  {
    Engine e;
    EngineOptions o;
    o.blob_data = b.data();
    o.blob_size = b.size();
    ASSERT_TRUE(e.open(o).is_ok());
    int32_t ids[8];
    size_t n = 0;
    ASSERT_TRUE(e.tokenizer().encode("hello", 5, false, ids, 8, &n).is_ok());
    ASSERT_EQ(n, 1u);
    EXPECT_EQ(ids[0], e.tokenizer().find("\xE2\x96\x81hello", 8));
  }
  const std::vector<uint8_t>& full = valid_spm_blob();
  const size_t at = size_t(section(full, kTok).offset);
  for (size_t i = at; i < at + blob::tok::kHeaderBytes; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> c = full;
      c[i] ^= uint8_t(1u << bit);
      reseal(&c);
      const Status st = load(c);
      if (st.is_ok()) continue;
      EXPECT_TRUE(st.code() == StatusCode::kBadTokenizer || st.code() == StatusCode::kInvalidArgument ||
                  st.code() == StatusCode::kBadLayout)
          << "byte " << i - at << " bit " << bit << ": " << status_code_name(st.code()) << " " << st.message();
    }
  }
}

TEST(BlobCorruption, TensorDirectoryCases) {
  auto at = [](std::vector<uint8_t>& b, const char* t, size_t f) { return &b[dir_entry(b, tensor_index(b, t)) + f]; };
  const char* q = "blk.0.attn_q.weight";
  const std::vector<Case> cases = {
      {"n_tensors -1", true, StatusCode::kBadLayout, "claims 4294967295 entries", [](auto& b) { store_u32(&b[section(b, kDir).offset], ~0u); }},
      {"n_tensors 11", true, StatusCode::kBadLayout, "claims 11 entries", [](auto& b) { store_u32(&b[section(b, kDir).offset], 11); }},
      {"n_tensors 0", true, StatusCode::kBadLayout, "claims 0 entries", [](auto& b) { store_u32(&b[section(b, kDir).offset], 0); }},
      {"directory 7 bytes", true, StatusCode::kBadLayout, "shorter than its header", [](auto& b) { store_u64(&b[section(b, kDir).entry + 16], 7); }},
      {"name not NUL-terminated", true, StatusCode::kBadTensor, "not NUL-terminated", [&](auto& b) { std::memset(at(b, q, 0), 'x', 48); }},
      {"empty name", true, StatusCode::kBadTensor, "empty name", [&](auto& b) { std::memset(at(b, q, 0), 0, 48); }},
      {"duplicate name", true, StatusCode::kBadTensor, "name 'blk.0.attn_q.weight' is not its role's name 'blk.0.attn_k.weight'",
       [&](auto& b) { std::memcpy(at(b, "blk.0.attn_k.weight", 0), "blk.0.attn_q.weight\0", 20); }},
      {"unknown role 9", true, StatusCode::kBadTensor, "unknown role 9", [&](auto& b) { store_u32(at(b, q, kRole), 9); }},
      {"unknown role 26", true, StatusCode::kBadTensor, "unknown role 26", [&](auto& b) { store_u32(at(b, q, kRole), 26); }},
      {"a role this architecture does not use (QK-norm in a llama blob)", true, StatusCode::kBadTensor, "role 19 is not used by this architecture",
       [&](auto& b) { store_u32(at(b, q, kRole), 19); }},
      {"unknown role -1", true, StatusCode::kBadTensor, "unknown role 4294967295", [&](auto& b) { store_u32(at(b, q, kRole), ~0u); }},
      {"duplicate role", true, StatusCode::kBadTensor, "duplicate role", [&](auto& b) { store_u32(at(b, "blk.0.attn_v.weight", kRole), 12); }},
      {"layer 1 of 1", true, StatusCode::kBadTensor, "layer 1 out of range", [&](auto& b) { store_u32(at(b, q, kLayer), 1); }},
      {"layer -1", true, StatusCode::kBadTensor, "layer 4294967295 out of range", [&](auto& b) { store_u32(at(b, q, kLayer), ~0u); }},
      {"global tensor with a layer", true, StatusCode::kBadTensor, "layer 3", [&](auto& b) { store_u32(at(b, "output_norm.weight", kLayer), 3); }},
      {"rows 0", true, StatusCode::kBadTensor, "shape [0, 32]", [&](auto& b) { store_u32(at(b, q, kRows), 0); }},
      {"cols 0", true, StatusCode::kBadTensor, "shape [32, 0]", [&](auto& b) { store_u32(at(b, q, kCols), 0); }},
      {"rows -1", true, StatusCode::kBadTensor, "shape [4294967295, 32]", [&](auto& b) { store_u32(at(b, q, kRows), ~0u); }},
      {"rows and cols 2^31 (product overflows 32 bits)", true, StatusCode::kBadTensor, "shape [2147483648, 2147483648]",
       [&](auto& b) { store_u32(at(b, q, kRows), 1u << 31); store_u32(at(b, q, kCols), 1u << 31); }},
      {"dtype 6 (unknown)", true, StatusCode::kBadTensor, "storage type 6", [&](auto& b) { store_u32(at(b, q, kDtype), 6); }},
      {"dtype 5 (int4, rows interleaved) in a version-3 blob", true, StatusCode::kBadTensor, "storage type 5 not allowed",
       [&](auto& b) { as_version(b, 3); store_u32(at(b, q, kDtype), 5); }},
      {"dtype 4 (int8, rows interleaved) with the bytes of int4", true, StatusCode::kBadTensor, "shape and type need",
       [&](auto& b) { store_u32(at(b, q, kDtype), 4); }},
      {"dtype 3 (int5) with the bytes of int4", true, StatusCode::kBadTensor, "shape and type need",
       [&](auto& b) { store_u32(at(b, q, kDtype), 3); }},
      {"dtype 3 (int5) in a version-2 blob", true, StatusCode::kBadTensor, "storage type 3 not allowed",
       [&](auto& b) { as_version(b, 2); store_u32(at(b, q, kDtype), 3); }},
      {"dtype -1", true, StatusCode::kBadTensor, "storage type 4294967295", [&](auto& b) { store_u32(at(b, q, kDtype), ~0u); }},
      {"norm stored int8", true, StatusCode::kBadTensor, "storage type 1 not allowed", [&](auto& b) { store_u32(at(b, "output_norm.weight", kDtype), 1); }},
      {"bytes one more than the shape needs", true, StatusCode::kBadTensor, "shape and type need",
       [&](auto& b) { store_u64(at(b, q, kBytes), load_u64(at(b, q, kBytes)) + 1); }},
      {"bytes 0", true, StatusCode::kBadTensor, "0 bytes, shape and type need", [&](auto& b) { store_u64(at(b, q, kBytes), 0); }},
      {"bytes INT64_MAX", true, StatusCode::kBadTensor, "9223372036854775807 bytes", [&](auto& b) { store_u64(at(b, q, kBytes), uint64_t(INT64_MAX)); }},
      {"bytes of the int8 type while int4", true, StatusCode::kBadTensor, "shape and type need", [&](auto& b) { store_u32(at(b, q, kDtype), 1); }},
      {"offset unaligned", true, StatusCode::kBadLayout, "unaligned", [&](auto& b) { store_u64(at(b, q, kOff), load_u64(at(b, q, kOff)) + 8); }},
      {"offset past the end", true, StatusCode::kBadLayout, "past the data section", [&](auto& b) { store_u64(at(b, q, kOff), section(b, kData).bytes); }},
      {"offset negative (2^63)", true, StatusCode::kBadLayout, "offset 9223372036854775808", [&](auto& b) { store_u64(at(b, q, kOff), 1ull << 63); }},
      {"offset + bytes overflows", true, StatusCode::kBadLayout, "past the data section", [&](auto& b) { store_u64(at(b, q, kOff), ~0ull - 63); }},
      {"offset overlapping another tensor", true, StatusCode::kBadLayout, "overlap",
       [&](auto& b) { store_u64(at(b, q, kOff), load_u64(at(b, "blk.0.attn_k.weight", kOff))); }},
      {"two token embeddings", true, StatusCode::kBadTensor, "duplicate role",
       [&](auto& b) { store_u32(at(b, "output.weight", kRole), 1); }},
  };
  for (const Case& c : cases) run_case(c);
}

// The weights are checked on demand: a flipped weight byte loads (the check
// costs a pass over every weight) unless verify is asked for.
TEST(BlobCorruption, WeightsVerifiedOnDemand) {
  std::vector<uint8_t> b = valid_blob();
  b[section(b, kData).offset + 100] ^= 0x10;
  EXPECT_TRUE(load(b, false).is_ok());
  const Status st = load(b, true);
  EXPECT_EQ(st.code(), StatusCode::kBadChecksum);
  EXPECT_NE(std::string(st.message()).find("tensor data checksum"), std::string::npos) << st.message();
  // Padding between sections is not covered by any CRC; a reader ignores it.
  std::vector<uint8_t> p = valid_blob();
  const Sec dir = section(p, kDir);
  const size_t gap = size_t(dir.offset + dir.bytes);
  ASSERT_LT(gap, section(p, kData).offset);
  p[gap] = 0xAA;
  EXPECT_TRUE(load(p, true).is_ok());
  // The strict reader (tern-pack's self-check, blob inspection) accounts for
  // every byte: nonzero padding is an error there.
  pack::BlobView view;
  EXPECT_TRUE(pack::inspect_blob(b.data(), b.size(), false, &view).is_ok());
  Status st2 = pack::inspect_blob(p.data(), p.size(), true, &view);
  EXPECT_EQ(st2.code(), StatusCode::kBadLayout);
  EXPECT_NE(std::string(st2.message()).find("padding byte at offset"), std::string::npos) << st2.message();
  ASSERT_TRUE(pack::inspect_blob(valid_blob().data(), valid_blob().size(), true, &view).is_ok());
}

// Every prefix of the blob (all of it: the tiny blob is under 64 KiB) fails
// with kTruncated, and so does every prefix even when the header is patched
// to claim the short size (CRCs resealed): then the section bounds must catch it.
TEST(BlobCorruption, TruncationAtEveryByte) {
  const std::vector<uint8_t>& full = valid_blob();
  const size_t n = std::min<size_t>(full.size(), 65536);
  for (size_t len = 0; len < n; ++len) {
    std::vector<uint8_t> b(full.begin(), full.begin() + long(len) + 1);  // +1: data() non-null at len 0
    Engine e;
    EngineOptions o;
    o.blob_data = b.data();
    o.blob_size = len;
    const Status st = e.open(o);
    ASSERT_FALSE(st.is_ok()) << "prefix " << len;
    ASSERT_EQ(st.code(), StatusCode::kTruncated) << "prefix " << len << ": " << st.message();
  }
}

TEST(BlobCorruption, TruncationAtEverySectionBoundaryWithForgedSize) {
  const std::vector<uint8_t>& full = valid_blob();
  std::vector<uint64_t> cuts = {128};
  for (uint32_t k = 1; k <= 6; ++k) {
    const Sec s = section(full, k);
    cuts.push_back(s.offset);
    cuts.push_back(s.offset + s.bytes / 2);
    if (s.offset + s.bytes < full.size()) cuts.push_back(s.offset + s.bytes);
    cuts.push_back(s.offset + s.bytes - 1);
  }
  for (uint64_t len : cuts) {
    std::vector<uint8_t> b(full.begin(), full.begin() + long(len));
    store_u64(&b[blob::hdr::kFileBytes], len);
    const uint64_t table = load_u64(b.data() + blob::hdr::kSectionTable);
    if (table + 6 * blob::kSectionEntryBytes <= len) reseal(&b);
    else store_u32(&b[blob::hdr::kHeaderCrc], blob::crc32(b.data(), blob::hdr::kHeaderCrc));
    const Status st = load(b);
    ASSERT_FALSE(st.is_ok()) << "cut at " << len;
    EXPECT_EQ(st.code(), StatusCode::kBadLayout) << "cut at " << len << ": " << st.message();
    EXPECT_NE(std::string(st.message()).find("outside the file"), std::string::npos) << st.message();
  }
}

// Codes a corrupt blob may produce; anything else (kInternal, kOk with
// garbage, a crash) is a bug.
bool is_blob_error(StatusCode c) {
  switch (c) {
    case StatusCode::kBadMagic: case StatusCode::kBadVersion: case StatusCode::kBadEndian:
    case StatusCode::kTruncated: case StatusCode::kBadChecksum: case StatusCode::kBadLayout:
    case StatusCode::kBadHparams: case StatusCode::kMissingTensor: case StatusCode::kBadTensor:
    case StatusCode::kBadTokenizer: case StatusCode::kInvalidArgument:
      return true;
    default:
      return false;
  }
}

// A single-bit flip of every header, section-table and tensor-directory byte
// (plus hparams, memory plan and the tokenizer's fixed header). Plain: the
// CRC chain must reject every one. Forged (CRCs recomputed): each either
// fails with a blob error and a message, or still loads (a flipped name
// character, a different rope base: valid blobs) and then runs a token.
TEST(BlobCorruption, EveryBitOfHeaderAndDirectory) {
  const std::vector<uint8_t>& full = valid_blob();
  std::vector<std::pair<size_t, size_t>> ranges = {{0, 128}, {128, 128 + 6 * 32}};
  for (uint32_t k : {kHp, kPlan, kDir}) ranges.push_back({section(full, k).offset, section(full, k).offset + section(full, k).bytes});
  ranges.push_back({section(full, kTok).offset, section(full, kTok).offset + 24});
  size_t plain = 0, forged_ok = 0, forged_err = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto [lo, hi] : ranges) {
    for (size_t i = lo; i < hi; ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        std::vector<uint8_t> b = full;
        b[i] ^= uint8_t(1u << bit);
        Status st = load(b);
        ASSERT_FALSE(st.is_ok()) << "byte " << i << " bit " << bit << " not detected";
        ASSERT_TRUE(is_blob_error(st.code())) << "byte " << i << ": " << status_code_name(st.code());
        ++plain;
        reseal(&b);
        Engine e;
        EngineOptions o;
        o.blob_data = b.data();
        o.blob_size = b.size();
        o.isa = "scalar";
        st = e.open(o);
        if (st.is_ok()) {
          ++forged_ok;
          const int32_t ids[3] = {'h', 'e', 'y'};
          st = e.prefill(e.sequence(0), ids, 3);
          ASSERT_TRUE(st.is_ok()) << "byte " << i << " bit " << bit << ": " << st.message();
        } else {
          ++forged_err;
          ASSERT_TRUE(is_blob_error(st.code())) << "byte " << i << " bit " << bit << ": "
                                                << status_code_name(st.code()) << " " << st.message();
          ASSERT_GT(std::strlen(st.message()), 10u);
        }
      }
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("bit flips: %zu plain (all rejected), forged: %zu rejected, %zu still valid; %.2f s\n", plain,
              forged_err, forged_ok, s);
}

}  // namespace
}  // namespace tern
