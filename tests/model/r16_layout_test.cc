// tern-pack --layout r16 stores the int8 and int4 matrices with rows
// interleaved by 16 (kInt8G32R16, kInt4G32R16) for the AVX-512 / AMX
// kernels. It must change speed only: on SmolLM2 (int8 and int4 blobs) the
// interleaved blob gives the row-layout blob's logits bit for bit on every
// SIMD variant this CPU runs (native kernels on avx512vnni and amx; the
// de-interleaving adapter on avx2 / avxvnni / NEON), through a prefill long
// enough for the AMX tiles, decode steps and a batched step of several
// sequences. (Scalar only where it is the one variant; its r16 product is
// checked against the row layout in tests/kernels.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "runtime/batch.h"
#include "runtime/engine.h"
#include "tests/support/goldens.h"

namespace tern {
namespace {

std::unique_ptr<Engine> open_engine(const char* blob, const char* isa) {
  auto e = std::make_unique<Engine>();
  EngineOptions o;
  const std::string path = testing::model_path(blob);
  o.model_path = path.c_str();
  o.isa = isa;
  o.threads = 1;
  o.limits.max_context = 128;
  o.limits.max_sequences = 3;
  o.limits.prefill_chunk = 64;
  o.limits.logit_rows = 8;
  const Status st = e->open(o);
  EXPECT_TRUE(st.is_ok()) << blob << " on " << isa << ": " << st.message();
  return st.is_ok() ? std::move(e) : nullptr;
}

// Logits after a 40-token prompt, after 3 greedy decode steps, and of a
// batched step that decodes it beside two new one-token sequences.
std::vector<float> trace(Engine* e) {
  const char* text =
      "The interleaved layout keeps sixteen rows of a weight matrix side by side, so that one load "
      "feeds every lane of the vector unit without a horizontal sum, and the packer writes it once so that "
      "no call has to repack the weights again.";
  std::vector<int32_t> ids(128);
  size_t n = 0;
  EXPECT_TRUE(e->tokenizer().encode(text, std::strlen(text), true, ids.data(), ids.size(), &n).is_ok());
  EXPECT_GE(n, 33u) << "the prompt must reach the AMX tiles (32 tokens)";
  const uint32_t vocab = e->hparams().vocab;
  std::vector<float> out;
  KvSequence* seq = e->sequence(0);
  e->reset(seq);
  EXPECT_TRUE(e->prefill(seq, ids.data(), n).is_ok());
  for (int step = 0; step < 3; ++step) {
    out.insert(out.end(), e->logits(), e->logits() + vocab);
    const int32_t next = int32_t(std::max_element(e->logits(), e->logits() + vocab) - e->logits());
    EXPECT_TRUE(e->decode(seq, next).is_ok());
  }
  out.insert(out.end(), e->logits(), e->logits() + vocab);
  KvSequence* a = e->sequence(1);
  KvSequence* b = e->sequence(2);
  e->reset(a);
  e->reset(b);
  const int32_t tok[3] = {ids[5], ids[1], ids[2]};
  const uint32_t pos[3] = {seq->n_past, 0, 0};
  KvSequence* const rows[3] = {seq, a, b};
  const uint8_t want[3] = {1, 1, 1};
  EXPECT_TRUE(e->model().forward_batch(Batch{tok, pos, rows, want, 3}).is_ok());
  out.insert(out.end(), e->logits(), e->logits() + 3 * vocab);
  return out;
}

TEST(R16Layout, LogitsBitIdenticalToRowLayoutOnEveryVariant) {
  size_t nv = 0;
  const KernelVariant* v = kernel_variants(&nv);
  const uint32_t host = host_isa_bits();
  int variants = 0;
  for (size_t i = 0; i < nv; ++i) {
    if ((v[i].required_isa & host) != v[i].required_isa) continue;
    // The scalar product is the slowest by far (150 s of this test under ASan)
    // and its r16 reference is checked bit for bit against the row layout by
    // tests/kernels (MatmulR16EqualsRowLayoutBitExact); here it runs only when
    // it is the one variant this CPU has.
    if (std::strcmp(v[i].name, "scalar") == 0 && variants > 0) continue;
    for (const char* kind : {"int8", "int4"}) {
      const std::string base = std::string("smollm2-135m-") + kind;
      auto rows = open_engine((base + ".tern").c_str(), v[i].name);
      auto r16 = open_engine((base + "-r16.tern").c_str(), v[i].name);
      ASSERT_TRUE(rows && r16);
      const std::vector<float> want = trace(rows.get()), got = trace(r16.get());
      ASSERT_EQ(want.size(), got.size());
      size_t differ = 0;
      for (size_t j = 0; j < want.size(); ++j) differ += std::memcmp(&want[j], &got[j], 4) != 0;
      EXPECT_EQ(differ, 0u) << kind << " on " << v[i].name << ": " << differ << " of " << want.size()
                            << " logits differ";
    }
    ++variants;
  }
  EXPECT_GE(variants, 1);
}

}  // namespace
}  // namespace tern
