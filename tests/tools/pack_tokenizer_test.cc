// The packer's tokenizer reading (tools/pack/pack_tokenizer.h): the
// SentencePiece ("llama") model with llama.cpp's defaults where the GGUF is
// silent, the byte-level BPE one unchanged, refusals naming what was found
// and what tern reads, and the section the blob writer makes of it, read
// back by the runtime's TextTokenizer.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "runtime/blob_format.h"
#include "runtime/text_tokenizer.h"
#include "tests/support/tiny_model.h"
#include "tools/pack/blob_writer.h"
#include "tools/pack/pack_tokenizer.h"

namespace tern::pack {
namespace {

using testing::TinyGguf;

Status read(const TinyGguf& t, BlobHparams* h, BlobTokenizer* tok) {
  static GgufFile g;  // the arrays read_tokenizer copies from stay valid while used
  g = GgufFile();
  TERN_RETURN_IF_ERROR(GgufFile::parse(t.bytes(), &g));
  TERN_RETURN_IF_ERROR(check_tokenizer_counts(g));
  return read_tokenizer(g, h, tok);
}

void set_f32s(TinyGguf* t, const std::string& key, const std::vector<float>& v) {
  t->set(key, [v](auto& b) {
    TinyGguf::u32(b, uint32_t(GgufType::kArray)); TinyGguf::u32(b, uint32_t(GgufType::kF32)); TinyGguf::u64(b, v.size());
    for (float x : v) TinyGguf::f32(b, x);
  });
}

TEST(PackTokenizer, SentencePieceAsTheGgufSaysIt) {
  BlobHparams h;
  BlobTokenizer t;
  const Status st = read(testing::tiny_spm_llama_gguf(), &h, &t);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(t.model, uint32_t(blob::tok::Model::kSentencePiece));
  EXPECT_EQ(t.pre, uint32_t(blob::tok::Pre::kNone));
  EXPECT_EQ(t.flags, 0u);  // add_space_prefix false, as Gemma 3's file says
  EXPECT_TRUE(t.merges.empty());
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<float> scores;
  testing::tiny_spm_vocab(&tokens, &types, &scores);
  ASSERT_EQ(t.tokens, tokens);
  ASSERT_EQ(t.scores, scores);
  for (size_t i = 0; i < types.size(); ++i) {
    // "</s>" (264): user-defined in the file, control as llama.cpp loads it.
    EXPECT_EQ(int32_t(t.types[i]), i == 264 ? 3 : types[i]) << i << " " << tokens[i];
  }
  EXPECT_EQ(h.bos, testing::kTinySpmBos);
  EXPECT_EQ(h.eos, testing::kTinySpmEos);
  EXPECT_EQ(h.unk, testing::kTinySpmUnk);
  EXPECT_EQ(h.pad, 0);
  EXPECT_TRUE(h.add_bos);
  EXPECT_EQ(h.im_start, -1);
  EXPECT_EQ(h.im_end, -1);
}

TEST(PackTokenizer, SentencePieceDefaultsAreLlamaCpps) {
  TinyGguf g = testing::tiny_spm_llama_gguf();
  for (const char* k : {"tokenizer.ggml.add_space_prefix", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.bos_token_id",
                        "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
                        "tokenizer.ggml.scores", "tokenizer.ggml.pre"}) {
    g.erase(k);
  }
  BlobHparams h;
  BlobTokenizer t;
  const Status st = read(g, &h, &t);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(t.flags, blob::tok::kFlagAddSpacePrefix);  // on when absent
  EXPECT_TRUE(h.add_bos);
  EXPECT_EQ(h.bos, 1);
  EXPECT_EQ(h.eos, 2);
  EXPECT_EQ(h.unk, 0);
  EXPECT_EQ(h.pad, -1);
  for (float s : t.scores) ASSERT_EQ(s, 0.0f);
  ASSERT_EQ(t.scores.size(), t.tokens.size());
}

TEST(PackTokenizer, ByteLevelBpeUnchanged) {
  BlobHparams h;
  BlobTokenizer t;
  const Status st = read(testing::tiny_llama_gguf(), &h, &t);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(t.model, 1u);
  EXPECT_EQ(t.pre, 1u);
  EXPECT_EQ(t.flags, 0u);
  EXPECT_TRUE(t.scores.empty());
  EXPECT_EQ(t.merges.size(), 3u);
  EXPECT_EQ(h.bos, testing::kTinyEndOfText);
  EXPECT_EQ(h.eos, testing::kTinyImEnd);
  EXPECT_EQ(h.unk, -1);
  EXPECT_EQ(h.pad, -1);
  EXPECT_FALSE(h.add_bos);
  EXPECT_EQ(h.im_start, testing::kTinyImStart);
  EXPECT_EQ(h.im_end, testing::kTinyImEnd);
}

void expect_refused(const TinyGguf& g, StatusCode code, std::vector<const char*> needles) {
  BlobHparams h;
  BlobTokenizer t;
  const Status st = read(g, &h, &t);
  ASSERT_FALSE(st.is_ok()) << needles[0];
  EXPECT_EQ(st.code(), code) << st.message();
  for (const char* n : needles) EXPECT_NE(std::string(st.message()).find(n), std::string::npos) << st.message();
}

TEST(PackTokenizer, RefusesNamingWhatItFoundAndWhatItReads) {
  TinyGguf g = testing::tiny_spm_llama_gguf();
  g.set_str("tokenizer.ggml.model", "bert");
  expect_refused(g, StatusCode::kUnsupported, {"\"bert\"", "\"gpt2\"", "\"llama\"", "smollm"});
  g = testing::tiny_spm_llama_gguf();
  g.set_str("tokenizer.ggml.pre", "qwen2");
  expect_refused(g, StatusCode::kUnsupported, {"qwen2", "llama model", "\"default\""});
  g = testing::tiny_llama_gguf();
  g.set_str("tokenizer.ggml.pre", "llama-bpe");
  expect_refused(g, StatusCode::kUnsupported, {"unsupported pre-tokenizer llama-bpe", "smollm"});
  g = testing::tiny_spm_llama_gguf();
  set_f32s(&g, "tokenizer.ggml.scores", {1.0f, 2.0f});
  expect_refused(g, StatusCode::kBadTokenizer, {"2 token scores", "352 tokens"});
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<float> scores;
  testing::tiny_spm_vocab(&tokens, &types, &scores);
  scores[300] = NAN;
  g = testing::tiny_spm_llama_gguf();
  set_f32s(&g, "tokenizer.ggml.scores", scores);
  expect_refused(g, StatusCode::kBadTokenizer, {"token 300", "not finite"});
  g = testing::tiny_spm_llama_gguf();
  g.set_u32("tokenizer.ggml.unknown_token_id", 352);
  expect_refused(g, StatusCode::kBadTokenizer, {"unknown_token_id = 352"});
  tokens[300] = tokens[299];
  g = testing::tiny_spm_llama_gguf();
  g.set_strs("tokenizer.ggml.tokens", tokens);
  expect_refused(g, StatusCode::kBadTokenizer, {"same text"});
}

TEST(PackTokenizer, SectionReadsBackInTheRuntime) {
  for (bool prefix : {false, true}) {
    BlobHparams h;
    BlobTokenizer t;
    ASSERT_TRUE(read(testing::tiny_spm_llama_gguf(1, prefix), &h, &t).is_ok());
    std::vector<uint8_t> section;
    ASSERT_TRUE(serialize_tokenizer_section(t, &section).is_ok());
    uint64_t pool = 0;
    for (const std::string& s : t.tokens) pool += s.size();
    const uint32_t n = uint32_t(t.tokens.size());
    EXPECT_EQ(section.size(), blob::tok::layout(2, n, 0, uint32_t(pool)).total);
    EXPECT_EQ(section.size(), 24 + 4 * (n + 1) + (n + 3) / 4 * 4 + 4 * n + pool);
    EXPECT_EQ(blob::load_u32(section.data() + blob::tok::kFlags), prefix ? 1u : 0u);

    TextTokenizer::Specials sp;
    sp.bos = h.bos;
    sp.eos = h.eos;
    sp.unk = h.unk;
    sp.add_bos = h.add_bos;
    ModelShape shape;
    shape.tokenizer_model = 2;
    shape.n_tokens = n;
    shape.token_text_bytes = uint32_t(pool);
    std::vector<uint8_t> mem(TextTokenizer::arena_bytes(shape, 4096));
    Arena arena;
    arena.init(mem.data(), mem.size());
    TextTokenizer tok;
    const Status st = tok.init(section.data(), section.size(), sp, 4096, &arena);
    ASSERT_TRUE(st.is_ok()) << st.message();
    int32_t ids[16];
    size_t got = 0;
    ASSERT_TRUE(tok.encode_prompt("hello world", 11, false, true, ids, 16, &got).is_ok());
    ASSERT_EQ(got, 3u);
    EXPECT_EQ(ids[0], testing::kTinySpmBos);
    EXPECT_EQ(ids[1], tok.find(prefix ? "\xE2\x96\x81hello" : "hello", prefix ? 8 : 5));
    EXPECT_EQ(ids[2], tok.find("\xE2\x96\x81world", 8));
  }
  // The writer refuses what the format cannot hold.
  BlobTokenizer bad;
  bad.model = 2;
  bad.pre = 0;
  bad.tokens = {"a", "b"};
  bad.types = {1, 1};
  bad.scores = {0.0f};
  std::vector<uint8_t> out;
  EXPECT_FALSE(serialize_tokenizer_section(bad, &out).is_ok());
  bad.scores = {0.0f, INFINITY};
  EXPECT_FALSE(serialize_tokenizer_section(bad, &out).is_ok());
  bad.scores = {0.0f, 1.0f};
  bad.flags = 2;
  EXPECT_FALSE(serialize_tokenizer_section(bad, &out).is_ok());
  bad.flags = 1;
  EXPECT_TRUE(serialize_tokenizer_section(bad, &out).is_ok());
  bad.merges = {{0, 1, 1}};
  EXPECT_FALSE(serialize_tokenizer_section(bad, &out).is_ok());
}

}  // namespace
}  // namespace tern::pack
