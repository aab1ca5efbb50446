// Issue 14, item 1: for every GGUF weight type the packer reads, the blob
// either reproduces the source weights exactly (the blob's dequantized value
// equals kernels/gguf_blocks.h's dequantization of the source, which is
// bit-identical to the gguf package's: tests/model/gguf_dequant_test.cc), or
// the summary says per tensor how it converted and the largest error it made,
// and that figure is the measured one. A tiny llama (dim 256 so k-quant rows
// are whole 256-weight blocks) carries one matrix per type, with random
// blocks (random 4/5/6-bit values, scales and mins).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kernels/gguf_blocks.h"
#include "kernels/weight_quant.h"
#include "tests/support/tiny_model.h"
#include "tools/pack/blob_inspect.h"

namespace tern::pack {
namespace {

using testing::TinyGguf;

// Random but valid blocks of `type` for rows x cols weights: every quantized
// field random, scales small and finite.
std::vector<uint8_t> random_blocks(GgmlType type, uint64_t rows, uint64_t cols, uint32_t seed) {
  uint32_t be = 0, bb = 0;
  EXPECT_TRUE(ggml_type_layout(uint32_t(type), &be, &bb));
  std::mt19937 rng(seed);
  std::vector<uint8_t> b(rows * cols / be * bb);
  for (uint8_t& x : b) x = uint8_t(rng());
  std::uniform_real_distribution<float> scale(0.0005f, 0.004f);
  for (uint64_t i = 0; i < rows * cols / be; ++i) {
    uint8_t* blk = b.data() + i * bb;
    auto put = [&](size_t at, float v) { const uint16_t h = f32_to_f16(v); blk[at] = uint8_t(h); blk[at + 1] = uint8_t(h >> 8); };
    switch (type) {
      case GgmlType::kQ4_0: case GgmlType::kQ5_0: case GgmlType::kQ8_0: put(0, scale(rng)); break;
      case GgmlType::kQ4_1: case GgmlType::kQ5_1: put(0, scale(rng)); put(2, -scale(rng) * 8); break;
      case GgmlType::kQ4_K: case GgmlType::kQ5_K: put(0, scale(rng) / 8); put(2, scale(rng) / 8); break;
      case GgmlType::kQ6_K: put(bb - 2, scale(rng) / 32); break;
      default: break;
    }
    if (type == GgmlType::kQ8_0) {
      for (size_t j = 2; j < 34; ++j) if (blk[j] == 0x80) blk[j] = 0x81;  // no -128: an exact copy is expected
    }
  }
  return b;
}

TinyGguf tiny_llama_every_type() {
  TinyGguf g;
  g.set_str("general.architecture", "llama");
  g.set_u32("llama.block_count", 1);
  g.set_u32("llama.context_length", 256);
  g.set_u32("llama.embedding_length", 256);
  g.set_u32("llama.feed_forward_length", 256);
  g.set_u32("llama.attention.head_count", 2);
  g.set_u32("llama.attention.head_count_kv", 2);
  g.set_f32("llama.rope.freq_base", 10000.0f);
  g.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  g.set_str("tokenizer.ggml.model", "gpt2");
  g.set_str("tokenizer.ggml.pre", "smollm");
  g.set_strs("tokenizer.ggml.tokens", {"a", "b", "ab", "<|im_start|>", "<|im_end|>"});
  g.set_i32s("tokenizer.ggml.token_type", {1, 1, 1, 3, 3});
  g.set_strs("tokenizer.ggml.merges", {"a b"});
  g.set_u32("tokenizer.ggml.bos_token_id", 3);
  g.set_u32("tokenizer.ggml.eos_token_id", 4);
  std::vector<float> ones(256, 1.0f);
  std::vector<uint8_t> norm;
  for (float v : ones) TinyGguf::f32(norm, v);
  auto mat = [&](const char* name, GgmlType t, uint32_t seed) {
    return TinyGguf::Tensor{name, {256, 256}, t, random_blocks(t, 256, 256, seed)};
  };
  g.tensors = {
      {"token_embd.weight", {256, 5}, GgmlType::kQ8_0, random_blocks(GgmlType::kQ8_0, 5, 256, 1)},
      {"output_norm.weight", {256}, GgmlType::kF32, norm},
      {"blk.0.attn_norm.weight", {256}, GgmlType::kF32, norm},
      mat("blk.0.attn_q.weight", GgmlType::kQ4_0, 2),
      mat("blk.0.attn_k.weight", GgmlType::kQ5_0, 3),
      mat("blk.0.attn_v.weight", GgmlType::kQ5_1, 4),
      mat("blk.0.attn_output.weight", GgmlType::kQ4_K, 5),
      {"blk.0.ffn_norm.weight", {256}, GgmlType::kF32, norm},
      mat("blk.0.ffn_gate.weight", GgmlType::kQ5_K, 6),
      mat("blk.0.ffn_up.weight", GgmlType::kQ6_K, 7),
      mat("blk.0.ffn_down.weight", GgmlType::kQ4_1, 8),
  };
  return g;
}

TEST(PackerConversion, EveryTypeExactOrReportedWithItsMeasuredError) {
  for (blob::WeightKind kind : {blob::WeightKind::kInt4, blob::WeightKind::kInt8}) {
    GgufFile g;
    ASSERT_TRUE(GgufFile::parse(tiny_llama_every_type().bytes(), &g).is_ok());
    PackOptions opt;
    opt.weights = kind;
    opt.limits.max_context = 64;
    opt.limits.prefill_chunk = 8;
    std::vector<uint8_t> blob;
    PackSummary sum;
    Status st = pack_gguf(g, opt, &blob, &sum);
    ASSERT_TRUE(st.is_ok()) << st.message();
    BlobView v;
    ASSERT_TRUE(inspect_blob(blob.data(), blob.size(), true, &v).is_ok());
    std::map<std::string, ConversionMethod> method;
    for (const TensorConversion& c : sum.conversions) {
      const GgufTensor* src = g.find_tensor(c.name);
      const BlobTensorView* t = v.tensor(c.name);
      ASSERT_NE(src, nullptr);
      ASSERT_NE(t, nullptr);
      if (t->dtype == blob::DType::kF32 && t->rows == 1) continue;  // vectors
      method[c.name] = c.method;
      // Bytes before the scales: the q plane (int5: and its high-bit plane).
      const uint64_t qbytes = t->dtype == blob::DType::kInt4G32   ? uint64_t(t->rows) * t->cols / 2
                              : t->dtype == blob::DType::kInt5G32 ? uint64_t(t->rows) * (t->cols / 2 + t->cols / 8)
                                                                  : uint64_t(t->rows) * t->cols;
      const WeightMatrix w{WeightType(uint32_t(t->dtype)), t->rows, t->cols, t->data,
                           reinterpret_cast<const uint16_t*>(t->data + qbytes)};
      std::vector<float> want(size_t(t->rows) * t->cols), got(t->cols);
      ASSERT_TRUE(gguf::dequantize_gguf(src->type, src->data, want.size(), want.data()));
      double max_err = 0.0;
      for (uint32_t r = 0; r < t->rows; ++r) {
        dequantize_row(w, r, got.data());
        for (uint32_t c2 = 0; c2 < t->cols; ++c2) {
          max_err = std::max(max_err, std::fabs(double(got[c2]) - double(want[size_t(r) * t->cols + c2])));
        }
      }
      const char* k = kind == blob::WeightKind::kInt4 ? "int4" : "int8";
      if (c.method == ConversionMethod::kExact) {
        EXPECT_EQ(max_err, 0.0) << c.name << " " << k << ": reported exact, differs by " << max_err;
      } else {
        EXPECT_DOUBLE_EQ(c.max_abs_error, max_err) << c.name << " " << k << ": the summary's error is not the measured one";
        EXPECT_GT(max_err, 0.0) << c.name << " " << k;
      }
      std::printf("--weights %s: %-26s %-5s -> %-4s max |error| %.3g\n", k, c.name.c_str(), ggml_type_name(src->type),
                  t->dtype == blob::DType::kInt4G32 ? "int4" : t->dtype == blob::DType::kInt5G32 ? "int5" : "int8", max_err);
    }
    // The exact conversions the packer promises (docs/blob_format.md section 9).
    EXPECT_EQ(method["token_embd.weight"], ConversionMethod::kExact);        // Q8_0 -> int8
    EXPECT_EQ(method["blk.0.attn_k.weight"], ConversionMethod::kExact);      // Q5_0 -> int8 or int5 (m = -16 d)
    EXPECT_EQ(method["blk.0.attn_q.weight"], ConversionMethod::kExact);      // Q4_0 -> int4 (m = -8 d) or int8 (q - 8)
    if (kind == blob::WeightKind::kInt4) {
      EXPECT_EQ(method["blk.0.attn_q.weight"], ConversionMethod::kExact);    // Q4_0 -> int4
      EXPECT_EQ(method["blk.0.ffn_down.weight"], ConversionMethod::kExact);  // Q4_1 -> int4
      EXPECT_EQ(method["blk.0.attn_output.weight"], ConversionMethod::kScalesRounded);  // Q4_K -> int4
      EXPECT_EQ(method["blk.0.ffn_up.weight"], ConversionMethod::kRequantized);         // Q6_K -> int8
      EXPECT_EQ(method["blk.0.attn_v.weight"], ConversionMethod::kExact);               // Q5_1 -> int5
      EXPECT_EQ(method["blk.0.ffn_gate.weight"], ConversionMethod::kScalesRounded);     // Q5_K -> int5
      // 5-bit sources keep 5 bits (+ {d, m} per 32: 6 bits per weight), not 8.
      for (const char* name : {"blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.0.ffn_gate.weight"})
        EXPECT_EQ(v.tensor(name)->dtype, blob::DType::kInt5G32) << name;
    }
    // Each (source, blob type, method) is a line of the summary with bits per weight.
    const std::string text = format_summary(sum, true);
    for (const char* type : {"Q4_0", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K", "Q4_1", "Q8_0"}) {
      EXPECT_NE(text.find(std::string("  ") + type), std::string::npos) << type << "\n" << text;
    }
    EXPECT_NE(text.find("bpw"), std::string::npos);
  }
}

}  // namespace
}  // namespace tern::pack
