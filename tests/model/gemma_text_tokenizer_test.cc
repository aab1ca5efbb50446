// Gemma 3's tokenizer the way tern runs it: the packer reads the real GGUF
// (.cache/models/gemma-3-270m-q4_k_m.gguf; scripts/fetch_model.sh gemma3),
// the blob writer makes the tokenizer section, the runtime's TextTokenizer
// reads it back; every case of tests/goldens/gemma3_tokenizer_cases.tsv
// (llama.cpp on the same file) must come out id for id, the BOS from the
// prompt rule. Then the same through a whole packed blob and Engine::open,
// with Gemma's chat format, when the packer takes the architecture.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/chat_format.h"
#include "runtime/engine.h"
#include "runtime/text_tokenizer.h"
#include "tests/support/goldens.h"
#include "tools/pack/blob_writer.h"
#include "tools/pack/pack_tokenizer.h"
#include "tools/pack/packer.h"

namespace tern {
namespace {

const std::string kGguf = std::string(TERN_MODEL_DIR) + "/gemma-3-270m-q4_k_m.gguf";

struct Case {
  std::string name, text, detok;
  bool special;
  std::vector<int32_t> ids;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  std::ifstream tsv(testing::golden_path("gemma3_tokenizer_cases.tsv"));
  std::string line;
  while (std::getline(tsv, line)) {
    if (line.empty() || line[0] == '#') continue;
    const std::vector<std::string> f = testing::split(line, '\t');
    if (f.size() < 7) continue;
    Case c;
    c.name = f[0];
    c.text = f[1] == "-" ? "" : testing::unhex(f[1]);
    c.special = f[2] == "1";
    c.ids = testing::numbers<int32_t>(f[4]);
    c.detok = f[5] == "-" ? "" : testing::unhex(f[5]);
    out.push_back(c);
  }
  return out;
}

// Every case through `tok`: ids (BOS by the prompt rule) and decoded bytes.
void check_all(TextTokenizer& tok, const char* what) {
  const std::vector<Case> all = cases();
  ASSERT_EQ(all.size(), 490u);
  size_t ok = 0;
  for (const Case& c : all) {
    std::vector<int32_t> ids(c.text.size() + 2);
    size_t n = 0;
    const Status st = tok.encode_prompt(c.text.data(), c.text.size(), c.special, true, ids.data(), ids.size(), &n);
    ASSERT_TRUE(st.is_ok()) << c.name << ": " << st.message();
    ids.resize(n);
    std::string detok;
    for (size_t i = 1; i < ids.size(); ++i) {
      const char* b = nullptr;
      size_t len = 0;
      ASSERT_TRUE(tok.token_bytes(ids[i], &b, &len));
      detok.append(b, len);
    }
    EXPECT_EQ(ids, c.ids) << what << ": " << c.name;
    EXPECT_EQ(detok, c.detok) << what << ": " << c.name;
    ok += ids == c.ids && detok == c.detok;
  }
  std::printf("%s: %zu/%zu golden cases equal to llama.cpp\n", what, ok, all.size());
}

TEST(GemmaTextTokenizer, PackedSectionMatchesLlamaCpp) {
  pack::GgufFile g;
  Status st = pack::GgufFile::open(kGguf, &g);
  ASSERT_TRUE(st.is_ok()) << kGguf << ": " << st.message() << " (scripts/fetch_model.sh gemma3)";
  pack::BlobHparams h;
  pack::BlobTokenizer t;
  ASSERT_TRUE(pack::check_tokenizer_counts(g).is_ok());
  st = pack::read_tokenizer(g, &h, &t);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(t.model, 2u);
  EXPECT_EQ(t.flags, 0u);  // add_space_prefix false
  EXPECT_EQ(h.bos, 2);
  EXPECT_EQ(h.eos, 1);
  EXPECT_EQ(h.unk, 3);
  EXPECT_EQ(h.pad, 0);
  EXPECT_TRUE(h.add_bos);
  EXPECT_EQ(t.types[212], 3) << "</s> retyped control, as llama.cpp loads it";
  std::vector<uint8_t> section;
  ASSERT_TRUE(pack::serialize_tokenizer_section(t, &section).is_ok());

  TextTokenizer::Specials sp{h.bos, h.eos, h.unk, h.add_bos};
  ModelShape shape;
  shape.tokenizer_model = 2;
  shape.n_tokens = uint32_t(t.tokens.size());
  shape.token_text_bytes = blob::load_u32(section.data() + blob::tok::kPoolBytes);
  const size_t max_text = TextTokenizer::text_bytes_for_context(2048);
  std::vector<uint8_t> mem(TextTokenizer::arena_bytes(shape, max_text));
  Arena arena;
  arena.init(mem.data(), mem.size());
  static TextTokenizer tok;
  st = tok.init(section.data(), section.size(), sp, max_text, &arena);
  ASSERT_TRUE(st.is_ok()) << st.message();
  std::printf("Gemma tokenizer section %zu bytes; arena %zu bytes at max context 2048 (high water %zu)\n",
              section.size(), mem.size(), arena.high_water());
  EXPECT_EQ(tok.prompt_bos(), 2);
  EXPECT_EQ(tok.find("<start_of_turn>", 15), 105);
  EXPECT_EQ(tok.find("<end_of_turn>", 13), 106);
  check_all(tok, "packed section");
}

TEST(GemmaTextTokenizer, WholeBlobThroughTheEngine) {
  pack::GgufFile g;
  Status st = pack::GgufFile::open(kGguf, &g);
  ASSERT_TRUE(st.is_ok()) << kGguf << ": " << st.message() << " (scripts/fetch_model.sh gemma3)";
  pack::PackOptions opt;
  opt.weights = blob::WeightKind::kInt4;
  opt.check_opens = false;  // opened below
  pack::PackSummary sum;
  std::vector<uint8_t> blob;
  st = pack::pack_gguf(g, opt, &blob, &sum);
  if (st.code() == StatusCode::kUnsupported) GTEST_SKIP() << "the packer does not take this model yet: " << st.message();
  ASSERT_TRUE(st.is_ok()) << st.message();
  std::unique_ptr<Engine> e(new Engine);
  EngineOptions o;
  o.blob_data = blob.data();
  o.blob_size = blob.size();
  st = e->open(o);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(e->tokenizer().kind(), TextTokenizer::Kind::kSentencePiece);
  check_all(e->tokenizer(), "engine");

  // Gemma's chat format, from the vocabulary (this GGUF has no template).
  ASSERT_TRUE(e->has_chat());
  EXPECT_EQ(e->chat().kind, ChatKind::kGemma);
  EXPECT_EQ(e->chat().end_of_turn(), 106);
  std::vector<int32_t> ids(64);
  size_t n = 0;
  ASSERT_TRUE(chat_encode_user_turn(&e->tokenizer(), e->chat(), true, false, "Hi", 2, ids.data(), ids.size(), &n).is_ok());
  ids.resize(n);
  // <bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n, as HF's template renders it.
  EXPECT_EQ(ids, (std::vector<int32_t>{2, 105, 2364, 107, 10979, 106, 107, 105, 4368, 107}));
}

}  // namespace
}  // namespace tern
