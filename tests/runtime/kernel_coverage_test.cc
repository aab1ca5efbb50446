// A kernel variant that lacks a weight type the blob uses is refused at init,
// naming the variant, the type and the tensor, never run through another
// type's kernel (issue 14: "an error, never a silent misread"). The blob is
// the tiny llama with 5-bit (Q5_0) attention matrices, which tern-pack
// --weights int4 stores as kInt5G32.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "arena/arena.h"
#include "kernels/dispatch.h"
#include "runtime/model.h"
#include "runtime/model_file.h"
#include "tests/support/tiny_model.h"

namespace tern {
namespace {

// Random GGML Q5_0 blocks {f16 d; u8 qh[4]; u8 qs[16]} for n weights.
std::vector<uint8_t> random_q5_0(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> b;
  for (size_t g = 0; g < n / 32; ++g) {
    testing::TinyGguf::u16(b, f32_to_f16(0.01f + 0.001f * float(rng() % 16)));
    for (int i = 0; i < 20; ++i) b.push_back(uint8_t(rng()));
  }
  return b;
}

struct LoadedTiny {
  std::vector<uint8_t> blob;
  std::vector<uint8_t> arena_bytes = std::vector<uint8_t>(1 << 20);
  Arena arena;
  ModelFile file;
};

void load_int5_tiny(LoadedTiny* t) {
  testing::TinyGguf g = testing::tiny_llama_gguf(3);
  for (testing::TinyGguf::Tensor& x : g.tensors) {
    if (x.name == "blk.0.attn_q.weight" || x.name == "blk.0.attn_k.weight") {
      x.type = pack::GgmlType::kQ5_0;
      x.data = random_q5_0(size_t(x.ne[0]) * x.ne[1], 7);
    }
  }
  const Status packed = testing::pack_tiny(g.bytes(), &t->blob);
  ASSERT_TRUE(packed.is_ok()) << packed.message();
  ASSERT_TRUE(open_model_file(t->blob.data(), t->blob.size(), &t->file).is_ok());
  t->arena.init(t->arena_bytes.data(), t->arena_bytes.size());
  ASSERT_TRUE(bind_weights(&t->file, &t->arena).is_ok());
  ASSERT_EQ(t->file.layers[0].wq.type, WeightType::kInt5G32);
  ASSERT_EQ(t->file.layers[0].wv.type, WeightType::kInt4G32);
}

TEST(KernelCoverage, EveryCompiledVariantCoversThePackedTypes) {
  LoadedTiny t;
  ASSERT_NO_FATAL_FAILURE(load_int5_tiny(&t));
  size_t n = 0;
  const KernelVariant* v = kernel_variants(&n);
  for (size_t i = 0; i < n; ++i) {
    const Status st = check_kernels_cover(t.file, *v[i].table);
    EXPECT_TRUE(st.is_ok()) << v[i].name << ": " << st.message();
  }
}

TEST(KernelCoverage, AVariantLackingATypeIsRefusedByName) {
  LoadedTiny t;
  ASSERT_NO_FATAL_FAILURE(load_int5_tiny(&t));
  KernelTable lacking = scalar_kernels();
  lacking.name = "test-without-int5";
  lacking.matmul[uint32_t(WeightType::kInt5G32)] = nullptr;
  const Status st = check_kernels_cover(t.file, lacking);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kUnsupportedIsa);
  const std::string msg = st.message();
  for (const char* want : {"test-without-int5", "u5g32", "attn_q", "layer 0"})
    EXPECT_NE(msg.find(want), std::string::npos) << want << " not in: " << msg;

  // The other types are checked too: without int4 the refusal names attn_v.
  KernelTable no_int4 = scalar_kernels();
  no_int4.matmul[uint32_t(WeightType::kInt4G32)] = nullptr;
  const Status st4 = check_kernels_cover(t.file, no_int4);
  ASSERT_FALSE(st4.is_ok());
  EXPECT_NE(std::string(st4.message()).find("u4g32"), std::string::npos) << st4.message();
  // And the output head's type (int8, from Q8_0).
  KernelTable no_int8 = scalar_kernels();
  no_int8.matmul[uint32_t(WeightType::kInt8G32)] = nullptr;
  const Status st8 = check_kernels_cover(t.file, no_int8);
  ASSERT_FALSE(st8.is_ok());
  EXPECT_NE(std::string(st8.message()).find("output"), std::string::npos) << st8.message();
}

}  // namespace
}  // namespace tern
