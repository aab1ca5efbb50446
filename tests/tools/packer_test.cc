// pack_gguf on a tiny synthetic llama GGUF: every source type (F32, F16, BF16,
// Q8_0 with a -128, Q4_0, Q4_1), untied output, and the errors the packer
// must report (tokenizer model / pre-tokenizer, merges, shapes, types).
#include "tools/pack/packer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>

#include "kernels/blocks.h"
#include "kernels/weight_quant.h"
#include "tools/pack/blob_inspect.h"

namespace tern::pack {
namespace {

using blob::DType;

// Tiny llama: 1 layer, dim 32, 2 heads of 16, 1 kv head, ffn 64, 5 tokens.
struct TinyGguf {
  struct Kv { std::string key; std::function<void(std::vector<uint8_t>&)> write; };
  struct Tensor { std::string name; std::vector<uint64_t> ne; GgmlType type; std::vector<uint8_t> data; };
  std::vector<Kv> kv;
  std::vector<Tensor> tensors;

  static void u8(std::vector<uint8_t>& b, uint8_t v) { b.push_back(v); }
  static void u16(std::vector<uint8_t>& b, uint16_t v) { u8(b, uint8_t(v)); u8(b, uint8_t(v >> 8)); }
  static void u32(std::vector<uint8_t>& b, uint32_t v) { for (int i = 0; i < 4; ++i) u8(b, uint8_t(v >> (8 * i))); }
  static void u64(std::vector<uint8_t>& b, uint64_t v) { for (int i = 0; i < 8; ++i) u8(b, uint8_t(v >> (8 * i))); }
  static void f32(std::vector<uint8_t>& b, float f) { uint32_t u; std::memcpy(&u, &f, 4); u32(b, u); }
  static void str(std::vector<uint8_t>& b, const std::string& s) { u64(b, s.size()); b.insert(b.end(), s.begin(), s.end()); }

  void set(const std::string& key, std::function<void(std::vector<uint8_t>&)> w) {
    for (Kv& k : kv) if (k.key == key) { k.write = std::move(w); return; }
    kv.push_back({key, std::move(w)});
  }
  void set_u32(const std::string& key, uint32_t v) { set(key, [v](auto& b) { u32(b, uint32_t(GgufType::kU32)); u32(b, v); }); }
  void set_f32(const std::string& key, float v) { set(key, [v](auto& b) { u32(b, uint32_t(GgufType::kF32)); f32(b, v); }); }
  void set_str(const std::string& key, const std::string& v) { set(key, [v](auto& b) { u32(b, uint32_t(GgufType::kString)); str(b, v); }); }
  void set_strs(const std::string& key, const std::vector<std::string>& v) {
    set(key, [v](auto& b) {
      u32(b, uint32_t(GgufType::kArray)); u32(b, uint32_t(GgufType::kString)); u64(b, v.size());
      for (const auto& s : v) str(b, s);
    });
  }
  void set_i32s(const std::string& key, const std::vector<int32_t>& v) {
    set(key, [v](auto& b) {
      u32(b, uint32_t(GgufType::kArray)); u32(b, uint32_t(GgufType::kI32)); u64(b, v.size());
      for (int32_t x : v) u32(b, uint32_t(x));
    });
  }
  Tensor* tensor(const std::string& name) {
    for (Tensor& t : tensors) if (t.name == name) return &t;
    return nullptr;
  }

  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> b = {'G', 'G', 'U', 'F'};
    u32(b, 3);
    u64(b, tensors.size());
    u64(b, kv.size());
    for (const Kv& k : kv) { str(b, k.key); k.write(b); }
    uint64_t off = 0;
    for (const Tensor& t : tensors) {
      str(b, t.name);
      u32(b, uint32_t(t.ne.size()));
      for (uint64_t d : t.ne) u64(b, d);
      u32(b, uint32_t(t.type));
      u64(b, off);
      off += (t.data.size() + 31) / 32 * 32;
    }
    while (b.size() % 32) b.push_back(0);
    for (const Tensor& t : tensors) {
      b.insert(b.end(), t.data.begin(), t.data.end());
      while (b.size() % 32) b.push_back(0);
    }
    return b;
  }
};

std::vector<float> randoms(size_t n, uint32_t seed, float scale = 0.1f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

// Encoders for source tensors: values [rows * cols] row-major.
std::vector<uint8_t> enc_f32(const std::vector<float>& x) {
  std::vector<uint8_t> b;
  for (float v : x) TinyGguf::f32(b, v);
  return b;
}
std::vector<uint8_t> enc_f16(const std::vector<float>& x) {
  std::vector<uint8_t> b;
  for (float v : x) TinyGguf::u16(b, f32_to_f16(v));
  return b;
}
std::vector<uint8_t> enc_bf16(const std::vector<float>& x) {
  std::vector<uint8_t> b;
  for (float v : x) { uint32_t u; std::memcpy(&u, &v, 4); TinyGguf::u16(b, uint16_t(u >> 16)); }
  return b;
}
std::vector<uint8_t> enc_q8_0(const std::vector<float>& x, bool with_minus128) {
  std::vector<uint8_t> b;
  for (size_t g = 0; g < x.size() / 32; ++g) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[g * 32 + i]));
    const float d = amax / 127.0f;
    TinyGguf::u16(b, f32_to_f16(d));
    for (int i = 0; i < 32; ++i) {
      int q = int(std::lround(x[g * 32 + i] / d));
      if (with_minus128 && g == 1 && i == 5) q = -128;  // block 1: row 1 of a 32-column matrix
      b.push_back(uint8_t(int8_t(q)));
    }
  }
  return b;
}
std::vector<uint8_t> enc_q4_0(const std::vector<float>& x) {
  std::vector<uint8_t> b;
  for (size_t g = 0; g < x.size() / 32; ++g) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[g * 32 + i]));
    const float d = amax / 8.0f;
    TinyGguf::u16(b, f32_to_f16(d));
    auto q = [&](int i) { return uint8_t(std::min(15L, std::max(0L, std::lround(x[g * 32 + i] / d) + 8))); };
    for (int j = 0; j < 16; ++j) b.push_back(uint8_t(q(j) | (q(j + 16) << 4)));
  }
  return b;
}
std::vector<uint8_t> enc_q4_1(const std::vector<float>& x) {
  std::vector<uint8_t> b;
  std::vector<uint8_t> q(x.size() / 2);
  std::vector<uint16_t> dm(x.size() / 16);
  quantize_row_int4_g32(x.data(), uint32_t(x.size()), q.data(), dm.data());
  for (size_t g = 0; g < x.size() / 32; ++g) {
    TinyGguf::u16(b, dm[2 * g]);
    TinyGguf::u16(b, dm[2 * g + 1]);
    b.insert(b.end(), q.begin() + long(g * 16), q.begin() + long(g * 16 + 16));
  }
  return b;
}

TinyGguf tiny_llama() {
  TinyGguf g;
  g.set_str("general.architecture", "llama");
  g.set_u32("llama.block_count", 1);
  g.set_u32("llama.context_length", 256);
  g.set_u32("llama.embedding_length", 32);
  g.set_u32("llama.feed_forward_length", 64);
  g.set_u32("llama.attention.head_count", 2);
  g.set_u32("llama.attention.head_count_kv", 1);
  g.set_f32("llama.rope.freq_base", 10000.0f);
  g.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  g.set_u32("llama.rope.dimension_count", 16);
  g.set_str("tokenizer.ggml.model", "gpt2");
  g.set_str("tokenizer.ggml.pre", "smollm");
  g.set_strs("tokenizer.ggml.tokens", {"a", "b", "ab", "<|im_start|>", "<|im_end|>"});
  g.set_i32s("tokenizer.ggml.token_type", {1, 1, 1, 3, 3});
  g.set_strs("tokenizer.ggml.merges", {"a b"});
  g.set_u32("tokenizer.ggml.bos_token_id", 3);
  g.set_u32("tokenizer.ggml.eos_token_id", 4);
  g.set_str("tokenizer.chat_template", "chatml");
  g.tensors = {
      {"token_embd.weight", {32, 5}, GgmlType::kF16, enc_f16(randoms(160, 1))},
      {"output_norm.weight", {32}, GgmlType::kF32, enc_f32(randoms(32, 2))},
      {"output.weight", {32, 5}, GgmlType::kQ4_0, enc_q4_0(randoms(160, 3))},
      {"blk.0.attn_norm.weight", {32}, GgmlType::kF32, enc_f32(randoms(32, 4))},
      {"blk.0.attn_q.weight", {32, 32}, GgmlType::kBF16, enc_bf16(randoms(1024, 5))},
      {"blk.0.attn_k.weight", {32, 16}, GgmlType::kF32, enc_f32(randoms(512, 6))},
      {"blk.0.attn_v.weight", {32, 16}, GgmlType::kQ8_0, enc_q8_0(randoms(512, 7), true)},
      {"blk.0.attn_output.weight", {32, 32}, GgmlType::kQ4_1, enc_q4_1(randoms(1024, 8))},
      {"blk.0.ffn_norm.weight", {32}, GgmlType::kF16, enc_f16(randoms(32, 9))},
      {"blk.0.ffn_gate.weight", {32, 64}, GgmlType::kF32, enc_f32(randoms(2048, 10))},
      {"blk.0.ffn_up.weight", {32, 64}, GgmlType::kF32, enc_f32(randoms(2048, 11))},
      {"blk.0.ffn_down.weight", {64, 32}, GgmlType::kF32, enc_f32(randoms(2048, 12))},
  };
  return g;
}

Status pack(const TinyGguf& t, blob::WeightKind kind, std::vector<uint8_t>* b, PackSummary* sum, GgufFile* g) {
  TERN_RETURN_IF_ERROR(GgufFile::parse(t.bytes(), g));
  PackOptions opt;
  opt.weights = kind;
  opt.limits.max_context = 64;
  opt.limits.prefill_chunk = 8;
  return pack_gguf(*g, opt, b, sum);
}

WeightMatrix matrix(const BlobTensorView& t) {
  const uint64_t qbytes = t.dtype == DType::kInt4G32 ? uint64_t(t.rows) * t.cols / 2 : uint64_t(t.rows) * t.cols;
  return {WeightType(uint32_t(t.dtype)), t.rows, t.cols, t.data, reinterpret_cast<const uint16_t*>(t.data + qbytes)};
}

TEST(Packer, TinyModelEverySourceType) {
  for (blob::WeightKind kind : {blob::WeightKind::kInt4, blob::WeightKind::kInt8}) {
    const bool int4 = kind == blob::WeightKind::kInt4;
    std::vector<uint8_t> b;
    PackSummary sum;
    GgufFile g;
    Status st = pack(tiny_llama(), kind, &b, &sum, &g);
    ASSERT_TRUE(st.is_ok()) << st.message();
    BlobView v;
    st = inspect_blob(b.data(), b.size(), true, &v);
    ASSERT_TRUE(st.is_ok()) << st.message();
    EXPECT_EQ(v.tensors.size(), 12u);
    EXPECT_EQ(sum.hparams.head_dim, 16u);
    EXPECT_FALSE(sum.hparams.tied_embed);
    EXPECT_EQ(sum.hparams.im_start, 3);
    EXPECT_EQ(sum.hparams.im_end, 4);
    EXPECT_EQ(sum.hparams.pad, -1);
    EXPECT_EQ(sum.copied_q8_0, 1u);
    EXPECT_EQ(sum.q8_minus128_groups, 1u);
    EXPECT_EQ(sum.copied_q4_1, int4 ? 1u : 0u);
    EXPECT_GT(sum.plan.total, 0u);
    EXPECT_EQ(v.tensor("blk.0.attn_v.weight")->dtype, DType::kInt8G32);
    EXPECT_EQ(v.tensor("blk.0.ffn_norm.weight")->dtype, DType::kF32);

    // Every matrix against its source, group by group.
    for (const BlobTensorView& t : v.tensors) {
      const GgufTensor* src = g.find_tensor(t.name);
      ASSERT_TRUE(src);
      std::vector<float> want(t.cols), got(t.cols);
      if (t.rows == 1) {
        ASSERT_TRUE(dequantize_rows(*src, 0, 1, want.data()).is_ok());
        EXPECT_EQ(std::memcmp(want.data(), t.data, 4 * t.cols), 0) << t.name;
        continue;
      }
      const bool is_v = t.name == "blk.0.attn_v.weight";
      EXPECT_EQ(t.dtype, (int4 && !is_v) ? DType::kInt4G32 : DType::kInt8G32) << t.name;
      const WeightMatrix w = matrix(t);
      for (uint32_t r = 0; r < t.rows; ++r) {
        ASSERT_TRUE(dequantize_rows(*src, r, 1, want.data()).is_ok());
        dequantize_row(w, r, got.data());
        for (uint32_t gi = 0; gi < t.cols / 32; ++gi) {
          const bool exact = (is_v && r * (t.cols / 32) + gi != 1) || (int4 && t.name == "blk.0.attn_output.weight");
          float mn = want[gi * 32], mx = mn, amax = 0;
          for (int i = 0; i < 32; ++i) {
            mn = std::fmin(mn, want[gi * 32 + i]);
            mx = std::fmax(mx, want[gi * 32 + i]);
            amax = std::fmax(amax, std::fabs(want[gi * 32 + i]));
          }
          float bound;
          if (exact) bound = 0.0f;
          else if (t.dtype == DType::kInt8G32) bound = f16_to_f32(w.scales[r * (t.cols / 32) + gi]) * 0.5f + amax * 1e-6f;
          else bound = f16_to_f32(w.scales[(r * (t.cols / 32) + gi) * 2]) * 0.5f +
                       std::fabs(f16_to_f32(w.scales[(r * (t.cols / 32) + gi) * 2 + 1]) - mn) + (mx - mn) * 1e-3f;
          for (int i = 0; i < 32; ++i)
            ASSERT_LE(std::fabs(want[gi * 32 + i] - got[gi * 32 + i]), bound)
                << t.name << " row " << r << " group " << gi << (int4 ? " int4" : " int8");
        }
      }
    }
  }
}

void expect_error(const TinyGguf& t, StatusCode code, const char* needle) {
  std::vector<uint8_t> b;
  PackSummary sum;
  GgufFile g;
  Status st = pack(t, blob::WeightKind::kInt4, &b, &sum, &g);
  ASSERT_FALSE(st.is_ok()) << needle;
  EXPECT_EQ(st.code(), code) << st.message();
  EXPECT_NE(std::string(st.message()).find(needle), std::string::npos) << "message: " << st.message();
}

TEST(Packer, ReportsBadInput) {
  TinyGguf t = tiny_llama();
  t.set_str("tokenizer.ggml.model", "llama");
  expect_error(t, StatusCode::kUnsupported, "llama");
  t = tiny_llama();
  t.set_str("tokenizer.ggml.pre", "qwen2");
  expect_error(t, StatusCode::kUnsupported, "unsupported pre-tokenizer qwen2");
  t = tiny_llama();
  t.set_strs("tokenizer.ggml.merges", {"a b", "b a"});
  expect_error(t, StatusCode::kBadTokenizer, "b a");
  t = tiny_llama();
  t.set_strs("tokenizer.ggml.merges", {"ab"});
  expect_error(t, StatusCode::kBadTokenizer, "ab");
  t = tiny_llama();
  t.set_i32s("tokenizer.ggml.token_type", {1, 1, 1, 3, 9});
  expect_error(t, StatusCode::kBadTokenizer, "type 9");
  t = tiny_llama();
  t.set_u32("tokenizer.ggml.eos_token_id", 5);
  expect_error(t, StatusCode::kBadTokenizer, "eos");
  t = tiny_llama();
  t.set_str("llama.block_count", "one");
  expect_error(t, StatusCode::kBadGguf, "llama.block_count");
  t = tiny_llama();
  t.set_str("general.architecture", "mamba");
  expect_error(t, StatusCode::kUnsupported, "unsupported architecture \"mamba\" (tern reads llama, qwen2, qwen3, gemma3)");
  t = tiny_llama();
  t.tensor("blk.0.attn_k.weight")->ne = {16, 32};
  expect_error(t, StatusCode::kBadTensor, "blk.0.attn_k.weight");
  t = tiny_llama();
  t.tensors.erase(t.tensors.begin() + 9);  // ffn_gate
  expect_error(t, StatusCode::kMissingTensor, "blk.0.ffn_gate.weight");
  t = tiny_llama();
  t.tensors.push_back({"blk.0.attn_gate.weight", {8}, GgmlType::kF32, enc_f32(randoms(8, 13))});
  expect_error(t, StatusCode::kUnsupported, "blk.0.attn_gate.weight");
  t = tiny_llama();
  t.tensor("blk.0.ffn_up.weight")->type = GgmlType::kQ8_1;  // a type the packer does not read
  t.tensor("blk.0.ffn_up.weight")->data.resize(2048 / 32 * 36);
  expect_error(t, StatusCode::kUnsupported, "has type Q8_1; tern reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K");
  t = tiny_llama();
  t.tensor("blk.0.ffn_up.weight")->data = enc_f32(std::vector<float>(2048, NAN));
  expect_error(t, StatusCode::kBadTensor, "non-finite");
  t = tiny_llama();
  t.tensors.erase(t.tensors.begin() + 2);  // output.weight: tied instead, must still pack
  {
    std::vector<uint8_t> b;
    PackSummary sum;
    GgufFile g;
    Status st = pack(t, blob::WeightKind::kInt4, &b, &sum, &g);
    ASSERT_TRUE(st.is_ok()) << st.message();
    EXPECT_TRUE(sum.hparams.tied_embed);
    EXPECT_EQ(sum.tensors, 11u);
  }
}

}  // namespace
}  // namespace tern::pack
