// Blob writer: a synthetic model round trip through serialize + inspect, CRC
// coverage, writer input validation, atomic write, and the real model packed
// int4 (Q4_1 reproduced bit for bit) and int8 (within half a step per group).
#include "tools/pack/blob_writer.h"

#include <gtest/gtest.h>

#include "runtime/model_file.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include "kernels/blocks.h"
#include "kernels/weight_quant.h"
#include "tools/pack/blob_inspect.h"
#include "tools/pack/gguf_reader.h"
#include "tools/pack/packer.h"

namespace tern::pack {
namespace {

using blob::DType;
using blob::SectionKind;
using blob::TensorRole;

TEST(BlobCrc32, MatchesZlib) {
  // zlib.crc32(b"123456789") == 0xCBF43926; zlib.crc32(b"") == 0.
  EXPECT_EQ(blob::crc32("123456789", 9), 0xCBF43926u);
  EXPECT_EQ(blob::crc32("", 0), 0u);
  // zlib.crc32(b"The quick brown fox jumps over the lazy dog") == 0x414FA339
  const char* fox = "The quick brown fox jumps over the lazy dog";
  EXPECT_EQ(blob::crc32(fox, std::strlen(fox)), 0x414FA339u);
  // Chaining over any split equals the one-shot CRC (slice-by-8 and tail paths).
  std::vector<uint8_t> buf(1000);
  std::mt19937 rng(5);
  for (auto& b : buf) b = uint8_t(rng());
  const uint32_t whole = blob::crc32(buf.data(), buf.size());
  for (size_t split : {0, 1, 7, 8, 9, 500, 999, 1000}) {
    const uint32_t a = blob::crc32(buf.data(), split);
    EXPECT_EQ(blob::crc32(buf.data() + split, buf.size() - split, a), whole) << "split " << split;
  }
  // Byte-at-a-time reference for odd lengths.
  for (size_t n = 0; n < 40; ++n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; ++i) {
      c ^= buf[i];
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    EXPECT_EQ(blob::crc32(buf.data(), n), ~c) << "length " << n;
  }
}

TEST(BlobFormat, TensorBytes) {
  EXPECT_EQ(blob::tensor_bytes(DType::kF32, 1, 576), 2304u);
  EXPECT_EQ(blob::tensor_bytes(DType::kInt8G32, 2, 64), 128u + 2 * 2 * 2);
  EXPECT_EQ(blob::tensor_bytes(DType::kInt4G32, 3, 64), 96u + 3 * 2 * 4);
  EXPECT_EQ(blob::tensor_bytes(DType::kInt8G32, 2, 48), 0u);  // cols not a multiple of 32
  EXPECT_EQ(blob::tensor_bytes(DType::kF32, 0, 4), 0u);
  EXPECT_EQ(blob::tensor_bytes(DType::kF32, 1ull << 33, 4), 0u);
  EXPECT_EQ(blob::tensor_bytes(DType(7), 1, 32), 0u);
}

BlobTensor make_tensor(const std::string& name, TensorRole role, uint32_t layer, DType dt, uint32_t rows,
                       uint32_t cols, uint8_t seed) {
  BlobTensor t;
  t.name = name;
  t.role = role;
  t.layer = layer;
  t.dtype = dt;
  t.rows = rows;
  t.cols = cols;
  t.payload.resize(blob::tensor_bytes(dt, rows, cols));
  for (size_t i = 0; i < t.payload.size(); ++i) t.payload[i] = uint8_t(seed + i * 7);
  return t;
}

BlobContents tiny_model() {
  BlobContents c;
  BlobHparams& h = c.hparams;
  h.layers = 1; h.dim = 32; h.heads = 2; h.kv_heads = 1; h.head_dim = 16; h.ffn = 64; h.vocab = 5;
  h.train_context = 128; h.rope_dim = 16; h.rope_base = 10000.0f; h.norm_eps = 1e-6f;
  h.tied_embed = true; h.bos = 1; h.eos = 2; h.pad = -1; h.unk = 0; h.im_start = 3; h.im_end = 4; h.add_bos = true;
  h.weight_kind = blob::WeightKind::kInt8;
  h.attn_scale = 0.25f;
  h.layer_configs = {BlobLayerConfig{true, 64, 10000.0f, false}};
  c.plan.limits.max_context = 256;
  c.plan.limits.max_sequences = 2;
  c.plan.limits.prefill_chunk = 8;
  c.plan.limits.kv_block_tokens = 16;
  c.plan.arena_bytes = 123456789;
  c.tokenizer.tokens = {"a", "b", "ab", "<|im_start|>", "<|im_end|>"};
  c.tokenizer.types = {1, 1, 1, 3, 3};
  c.tokenizer.merges = {{0, 1, 2}};
  c.chat_template = "{{ messages }}";
  c.tensors.push_back(make_tensor("token_embd.weight", TensorRole::kTokenEmbd, 0, DType::kInt8G32, 5, 32, 1));
  c.tensors.push_back(make_tensor("output_norm.weight", TensorRole::kOutputNorm, 0, DType::kF32, 1, 32, 2));
  c.tensors.push_back(make_tensor("blk.0.attn_q.weight", TensorRole::kAttnQ, 0, DType::kInt4G32, 32, 32, 3));
  return c;
}

// The runtime keeps two RoPE tables (local and global): a blob whose layers
// ask for a third (base, scaled) pair is refused when opened, before anything
// reads the tensors.
TEST(BlobWriter, AThirdRopeConfigurationIsRefused) {
  BlobContents c = tiny_model();
  c.hparams.layers = 3;
  c.hparams.layer_configs = {BlobLayerConfig{false, 0, 10000.0f, true}, BlobLayerConfig{true, 8, 20000.0f, false},
                             BlobLayerConfig{false, 0, 10000.0f, false}};
  std::vector<uint8_t> b;
  ASSERT_TRUE(serialize_blob(c, &b).is_ok());
  ModelFile f;
  Status st = open_model_file(b.data(), b.size(), &f);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kUnsupported) << st.message();
  EXPECT_NE(std::string(st.message()).find("layer 2: a third distinct RoPE configuration"), std::string::npos) << st.message();
  c.hparams.layer_configs[2].rope_scaled = true;  // = layer 0's: two configurations, accepted this far
  ASSERT_TRUE(serialize_blob(c, &b).is_ok());
  st = open_model_file(b.data(), b.size(), &f);
  EXPECT_EQ(std::string(st.message()).find("RoPE"), std::string::npos) << st.message();
}

TEST(BlobWriter, SyntheticRoundTrip) {
  const BlobContents c = tiny_model();
  std::vector<uint8_t> b;
  Status st = serialize_blob(c, &b);
  ASSERT_TRUE(st.is_ok()) << st.message();
  BlobView v;
  st = inspect_blob(b.data(), b.size(), true, &v);
  ASSERT_TRUE(st.is_ok()) << st.message();

  // Header.
  EXPECT_EQ(std::memcmp(b.data(), "TERNBLOB", 8), 0);
  EXPECT_EQ(blob::load_u32(&b[blob::hdr::kVersion]), blob::kFormatVersion);
  EXPECT_EQ(b[12], 0x04);  // endian marker stored little-endian
  EXPECT_EQ(blob::load_u64(&b[blob::hdr::kFileBytes]), b.size());
  EXPECT_EQ(blob::load_u32(&b[blob::hdr::kSectionCount]), 7u);
  EXPECT_EQ(blob::load_u64(&b[blob::hdr::kSectionTable]), 128u);
  EXPECT_EQ(blob::load_u32(&b[blob::hdr::kHeaderCrc]), blob::crc32(b.data(), 124));

  // Sections: all present, 8-aligned, data on a page boundary, ending the file.
  ASSERT_EQ(v.sections.size(), 7u);
  for (const BlobSectionView& s : v.sections) EXPECT_EQ(s.offset % 8, 0u) << "kind " << uint32_t(s.kind);
  const BlobSectionView* data = v.section(SectionKind::kTensorData);
  EXPECT_EQ(data->offset % kDataSectionAlignment, 0u);
  EXPECT_EQ(data->offset + data->bytes, b.size());

  // Hparams and plan fields.
  const uint8_t* hp = v.section(SectionKind::kHparams)->data;
  EXPECT_EQ(blob::load_u32(hp + blob::hp::kArch), 1u);
  EXPECT_EQ(blob::load_u32(hp + blob::hp::kFfnDim), 64u);
  EXPECT_EQ(blob::load_f32(hp + blob::hp::kNormEps), 1e-6f);
  EXPECT_EQ(blob::load_i32(hp + blob::hp::kPad), -1);
  EXPECT_EQ(blob::load_i32(hp + blob::hp::kImEnd), 4);
  EXPECT_EQ(blob::load_u32(hp + blob::hp::kTiedEmbed), 1u);
  EXPECT_EQ(blob::load_u32(hp + blob::hp::kAddBos), 1u);
  EXPECT_EQ(blob::load_u32(hp + blob::hp::kWeightKind), uint32_t(blob::WeightKind::kInt8));
  EXPECT_EQ(blob::load_u32(hp + blob::hp::kActivation), 0u);
  EXPECT_EQ(blob::load_f32(hp + blob::hp::kEmbedScale), 1.0f);
  EXPECT_EQ(blob::load_f32(hp + blob::hp::kRopeScaleFactor), 1.0f);
  for (size_t i = 124; i < blob::hp::kBytes; ++i) EXPECT_EQ(hp[i], 0) << "reserved hparams byte " << i;
  // The layers section: one 16-byte entry per layer.
  const BlobSectionView* layers = v.section(SectionKind::kLayers);
  ASSERT_EQ(layers->bytes, 16u);
  EXPECT_EQ(blob::load_u32(layers->data + blob::layer::kAttention), 1u);
  EXPECT_EQ(blob::load_u32(layers->data + blob::layer::kWindow), 64u);
  EXPECT_EQ(blob::load_f32(layers->data + blob::layer::kRopeBase), 10000.0f);
  EXPECT_EQ(blob::load_u32(layers->data + blob::layer::kRopeScaled), 0u);
  const uint8_t* pl = v.section(SectionKind::kMemoryPlan)->data;
  EXPECT_EQ(blob::load_u32(pl + blob::plan::kMaxContext), 256u);
  EXPECT_EQ(blob::load_u32(pl + blob::plan::kMaxSequences), 2u);
  EXPECT_EQ(blob::load_u32(pl + blob::plan::kPrefillChunk), 8u);
  EXPECT_EQ(blob::load_u32(pl + blob::plan::kKvBlockTokens), 16u);
  EXPECT_EQ(blob::load_u32(pl + blob::plan::kLogitRows), 1u);
  EXPECT_EQ(blob::load_u64(pl + blob::plan::kArenaBytes), 123456789u);

  // Tokenizer layout.
  const BlobSectionView* tk = v.section(SectionKind::kTokenizer);
  const uint8_t* t = tk->data;
  EXPECT_EQ(blob::load_u32(t + 0), 1u);
  EXPECT_EQ(blob::load_u32(t + 4), 1u);
  ASSERT_EQ(blob::load_u32(t + 8), 5u);
  ASSERT_EQ(blob::load_u32(t + 12), 1u);
  const uint32_t pool_bytes = blob::load_u32(t + 16);
  EXPECT_EQ(pool_bytes, 1u + 1 + 2 + 12 + 10);
  const uint8_t* offs = t + 24;
  const uint8_t* types = offs + 4 * 6;
  const uint8_t* merges = types + 8;  // 5 types padded to 8
  const uint8_t* pool = merges + 12;
  EXPECT_EQ(tk->bytes, uint64_t(pool - t) + pool_bytes);
  EXPECT_EQ(types[3], 3);
  EXPECT_EQ(types[5], 0);  // padding
  EXPECT_EQ(blob::load_u32(merges + 8), 2u);
  for (uint32_t i = 0; i < 5; ++i) {
    const uint32_t a = blob::load_u32(offs + 4 * i), e = blob::load_u32(offs + 4 * i + 4);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(pool + a), e - a), c.tokenizer.tokens[i]);
  }
  const BlobSectionView* ct = v.section(SectionKind::kChatTemplate);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(ct->data), ct->bytes), c.chat_template);

  // Tensors: same order, 64-aligned, payload intact.
  ASSERT_EQ(v.tensors.size(), c.tensors.size());
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    const BlobTensorView& tv = v.tensors[i];
    const BlobTensor& src = c.tensors[i];
    EXPECT_EQ(tv.name, src.name);
    EXPECT_EQ(tv.role, src.role);
    EXPECT_EQ(tv.dtype, src.dtype);
    EXPECT_EQ(tv.rows, src.rows);
    EXPECT_EQ(tv.cols, src.cols);
    EXPECT_EQ(tv.offset % blob::kTensorAlignment, 0u);
    EXPECT_EQ((data->offset + tv.offset) % 64, 0u);
    ASSERT_EQ(tv.bytes, src.payload.size());
    EXPECT_EQ(std::memcmp(tv.data, src.payload.data(), tv.bytes), 0) << src.name;
  }
}

TEST(BlobWriter, EveryCrcCoversItsBytes) {
  std::vector<uint8_t> b;
  ASSERT_TRUE(serialize_blob(tiny_model(), &b).is_ok());
  BlobView v;
  ASSERT_TRUE(inspect_blob(b.data(), b.size(), true, &v).is_ok());
  std::vector<std::pair<size_t, const char*>> spots = {{20, "header"}, {130, "section table"}};
  for (const BlobSectionView& s : v.sections) spots.push_back({size_t(s.offset + s.bytes / 2), "section"});
  for (const auto& [pos, what] : spots) {
    std::vector<uint8_t> bad = b;
    bad[pos] ^= 0x10;
    BlobView w;
    Status st = inspect_blob(bad.data(), bad.size(), true, &w);
    EXPECT_FALSE(st.is_ok()) << what << " byte " << pos;
  }
  // The data CRC is checked only on demand.
  std::vector<uint8_t> bad = b;
  bad[b.size() - 1] ^= 1;
  BlobView w;
  EXPECT_TRUE(inspect_blob(bad.data(), bad.size(), false, &w).is_ok());
  EXPECT_EQ(inspect_blob(bad.data(), bad.size(), true, &w).code(), StatusCode::kBadChecksum);
  // Truncation.
  EXPECT_EQ(inspect_blob(b.data(), b.size() - 1, false, &w).code(), StatusCode::kTruncated);
}

// layout_blob + filling the payloads in place + seal_blob (what the packer
// does, without a second copy of the weights) gives serialize_blob's bytes.
TEST(BlobWriter, LayoutThenFillThenSealIsSerialize) {
  const BlobContents full = tiny_model();
  std::vector<uint8_t> want;
  ASSERT_TRUE(serialize_blob(full, &want).is_ok());
  BlobContents empty = full;
  for (BlobTensor& t : empty.tensors) t.payload.clear();
  std::vector<uint8_t> b;
  std::vector<uint64_t> at;
  ASSERT_TRUE(layout_blob(empty, &b, &at).is_ok());
  ASSERT_EQ(at.size(), full.tensors.size());
  ASSERT_EQ(b.size(), want.size());
  for (size_t i = 0; i < at.size(); ++i) {
    EXPECT_EQ(at[i] % blob::kTensorAlignment, 0u);
    std::memcpy(b.data() + at[i], full.tensors[i].payload.data(), full.tensors[i].payload.size());
  }
  seal_blob(&b);
  EXPECT_EQ(b, want);
  // serialize_blob itself still requires every payload.
  EXPECT_FALSE(serialize_blob(empty, &b).is_ok());
}

TEST(BlobWriter, RejectsWhatTheFormatCannotHold) {
  std::vector<uint8_t> b;
  BlobContents c = tiny_model();
  c.tensors[0].name = std::string(48, 'x');
  EXPECT_FALSE(serialize_blob(c, &b).is_ok());
  c = tiny_model();
  c.tensors[1].payload.pop_back();
  EXPECT_FALSE(serialize_blob(c, &b).is_ok());
  c = tiny_model();
  c.tensors[2].cols = 48;
  EXPECT_FALSE(serialize_blob(c, &b).is_ok());
  c = tiny_model();
  c.tokenizer.types[0] = 0;
  EXPECT_FALSE(serialize_blob(c, &b).is_ok());
  c = tiny_model();
  c.tokenizer.merges[0][2] = 5;
  EXPECT_FALSE(serialize_blob(c, &b).is_ok());
}

TEST(BlobWriter, AtomicWrite) {
  const std::string path = std::string(::testing::TempDir()) + "tern_blob_writer_test.tern";
  std::vector<uint8_t> b;
  ASSERT_TRUE(serialize_blob(tiny_model(), &b).is_ok());
  ASSERT_TRUE(write_file_atomic(path, b).is_ok());
  std::ifstream f(path, std::ios::binary);
  std::vector<uint8_t> back((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(back, b);
  std::remove(path.c_str());
  EXPECT_FALSE(write_file_atomic("/nonexistent-dir/x.tern", b).is_ok());
}

// ---- The real model ------------------------------------------------------------

const std::string kGguf = std::string(TERN_MODEL_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";

class RealModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::ifstream probe(kGguf);
    if (!probe) return;
    gguf_ = new GgufFile();
    Status st = GgufFile::open(kGguf, gguf_);
    ASSERT_TRUE(st.is_ok()) << st.message();
  }
  static void TearDownTestSuite() { delete gguf_; gguf_ = nullptr; }
  void SetUp() override {
    if (!gguf_) GTEST_SKIP() << "model not found: " << kGguf;
  }
  static void pack(blob::WeightKind kind, std::vector<uint8_t>* b, PackSummary* sum, BlobView* v) {
    PackOptions opt;
    opt.weights = kind;
    const auto t0 = std::chrono::steady_clock::now();
    Status st = pack_gguf(*gguf_, opt, b, sum);
    ASSERT_TRUE(st.is_ok()) << st.message();
    std::printf("packed %s in %.2f s\n", kind == blob::WeightKind::kInt4 ? "int4" : "int8",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    st = inspect_blob(b->data(), b->size(), true, v);
    ASSERT_TRUE(st.is_ok()) << st.message();
  }
  static WeightMatrix matrix(const BlobTensorView& t) {
    const uint64_t qbytes = t.dtype == DType::kInt4G32 ? uint64_t(t.rows) * t.cols / 2
                            : t.dtype == DType::kInt8G32 ? uint64_t(t.rows) * t.cols : 0;
    return {WeightType(uint32_t(t.dtype)), t.rows, t.cols, t.data,
            t.dtype == DType::kF32 ? nullptr : reinterpret_cast<const uint16_t*>(t.data + qbytes)};
  }
  static GgufFile* gguf_;
};
GgufFile* RealModel::gguf_ = nullptr;

TEST_F(RealModel, Int4ReproducesQ4_1Exactly) {
  std::vector<uint8_t> b;
  PackSummary sum;
  BlobView v;
  pack(blob::WeightKind::kInt4, &b, &sum, &v);
  std::printf("%s", format_summary(sum).c_str());
  EXPECT_EQ(sum.copied_q4_1, 210u);
  EXPECT_EQ(sum.copied_q8_0, 1u);
  EXPECT_EQ(sum.requantized, 0u);
  EXPECT_EQ(v.tensors.size(), 272u);
  EXPECT_EQ(sum.hparams.layers, 30u);
  EXPECT_EQ(sum.hparams.head_dim, 64u);
  EXPECT_EQ(sum.hparams.vocab, 49152u);
  EXPECT_TRUE(sum.hparams.tied_embed);
  EXPECT_EQ(sum.n_merges, 48900u);
  EXPECT_EQ(sum.hparams.bos, 1);
  EXPECT_EQ(sum.hparams.eos, 2);
  EXPECT_GE(sum.hparams.im_start, 0);
  EXPECT_GE(sum.hparams.im_end, 0);
  // Every Q4_1 matrix, every row.
  for (const GgufTensor& q41 : gguf_->tensors()) {
    if (GgmlType(q41.type) != GgmlType::kQ4_1) continue;
    const char* name = q41.name.c_str();
    const GgufTensor* src = &q41;
    const BlobTensorView* t = v.tensor(name);
    ASSERT_TRUE(t) << name;
    ASSERT_EQ(t->dtype, DType::kInt4G32) << name;
    ASSERT_EQ(uint64_t(t->rows), src->rows());
    ASSERT_EQ(uint64_t(t->cols), src->cols());
    const WeightMatrix w = matrix(*t);
    std::vector<float> want(t->cols), got(t->cols);
    for (uint32_t r = 0; r < t->rows; ++r) {
      ASSERT_TRUE(dequantize_rows(*src, r, 1, want.data()).is_ok());
      dequantize_row(w, r, got.data());
      ASSERT_EQ(std::memcmp(want.data(), got.data(), 4 * t->cols), 0) << name << " row " << r << " [" << t->rows << " x " << t->cols << "]";
    }
  }
  // The Q8_0 embedding is int8, copied exactly (groups with -128 re-quantized, within half a step).
  const GgufTensor* src = gguf_->find_tensor("token_embd.weight");
  const BlobTensorView* t = v.tensor("token_embd.weight");
  ASSERT_TRUE(src && t);
  ASSERT_EQ(t->dtype, DType::kInt8G32);
  const WeightMatrix w = matrix(*t);
  std::vector<float> want(t->cols), got(t->cols);
  uint64_t differing_groups = 0;
  for (uint32_t r = 0; r < t->rows; r += 97) {
    ASSERT_TRUE(dequantize_rows(*src, r, 1, want.data()).is_ok());
    dequantize_row(w, r, got.data());
    for (uint32_t g = 0; g < t->cols / 32; ++g) {
      if (std::memcmp(&want[g * 32], &got[g * 32], 128) == 0) continue;
      ++differing_groups;
      const float d = f16_to_f32(w.scales[uint64_t(r) * (t->cols / 32) + g]);
      for (uint32_t i = 0; i < 32; ++i) EXPECT_LE(std::fabs(want[g * 32 + i] - got[g * 32 + i]), d * 0.5f + 1e-6f);
    }
  }
  EXPECT_LE(differing_groups, sum.q8_minus128_groups);
}

TEST_F(RealModel, Int8WithinHalfStepPerGroup) {
  std::vector<uint8_t> b;
  PackSummary sum;
  BlobView v;
  pack(blob::WeightKind::kInt8, &b, &sum, &v);
  std::printf("%s", format_summary(sum).c_str());
  EXPECT_EQ(sum.copied_q8_0, 1u);
  EXPECT_EQ(sum.requantized, 210u);
  EXPECT_EQ(sum.tensors_by_dtype[uint32_t(DType::kInt4G32)], 0u);
  // Every matrix, every row: within half a step of its group.
  for (const BlobTensorView& tv : v.tensors) {
    if (tv.rows == 1) continue;  // norms
    const char* name = tv.name.c_str();
    const GgufTensor* src = gguf_->find_tensor(tv.name);
    const BlobTensorView* t = &tv;
    ASSERT_TRUE(src) << name;
    ASSERT_EQ(t->dtype, DType::kInt8G32) << name;
    const WeightMatrix w = matrix(*t);
    std::vector<float> want(t->cols), got(t->cols);
    for (uint32_t r = 0; r < t->rows; ++r) {
      ASSERT_TRUE(dequantize_rows(*src, r, 1, want.data()).is_ok());
      dequantize_row(w, r, got.data());
      for (uint32_t g = 0; g < t->cols / 32; ++g) {
        const float d = f16_to_f32(w.scales[uint64_t(r) * (t->cols / 32) + g]);
        for (uint32_t i = 0; i < 32; ++i) {
          const uint32_t c = g * 32 + i;
          ASSERT_LE(std::fabs(want[c] - got[c]), d * 0.5f * (1.0f + 1e-5f))
              << name << " row " << r << " col " << c << " d " << d;
        }
      }
    }
  }
  // Norms are f32 and equal to the source.
  const GgufTensor* src = gguf_->find_tensor("blk.3.ffn_norm.weight");
  const BlobTensorView* t = v.tensor("blk.3.ffn_norm.weight");
  ASSERT_TRUE(src && t);
  EXPECT_EQ(t->dtype, DType::kF32);
  EXPECT_EQ(t->rows, 1u);
  EXPECT_EQ(std::memcmp(t->data, src->data, src->bytes), 0);
}

}  // namespace
}  // namespace tern::pack
