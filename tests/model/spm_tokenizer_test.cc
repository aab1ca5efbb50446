// The SentencePiece-style tokenizer on Gemma 3 270M's real vocabulary (read
// straight from the GGUF: tokens, scores, token types) against
// tests/goldens/gemma3_tokenizer_cases.tsv, made by llama.cpp from the same
// file (format and llama.cpp's behaviour: gemma3_tokenizer_cases.md):
//   - every case: the ids equal llama.cpp's exactly (BOS included; special
//     cases with parse_special), no exception;
//   - every case: the token bytes of the ids (without the BOS; control
//     tokens as text only in the special cases) equal llama.cpp's
//     detokenization byte for byte;
//   - the vocabulary has all 256 byte tokens; the cost of encoding 64 KB stays
//     within its bound.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "arena/arena.h"
#include "runtime/blob_format.h"
#include "runtime/spm_tokenizer.h"
#include "tools/pack/gguf_reader.h"

namespace tern {
namespace {

constexpr size_t kMaxText = 64 * 1024;

std::string unhex(const std::string& h) {
  std::string s;
  if (h == "-") return s;
  for (size_t i = 0; i + 1 < h.size(); i += 2) s.push_back(char(std::stoi(h.substr(i, 2), nullptr, 16)));
  return s;
}

std::vector<int32_t> parse_ids(const std::string& f) {
  std::vector<int32_t> ids;
  if (f == "-") return ids;
  std::istringstream in(f);
  int32_t v;
  while (in >> v) ids.push_back(v);
  return ids;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string h;
  for (unsigned char c : s) {
    h.push_back(d[c >> 4]);
    h.push_back(d[c & 15]);
  }
  return h.empty() ? "-" : h;
}

// The Gemma vocabulary as the arrays SpmVocab views, and the tokenizer.
struct Gemma {
  std::vector<uint8_t> offsets, pool, scores, types;
  std::vector<uint8_t> arena_mem;
  Arena arena;
  SpmTokenizer tok;
  Status status;
  uint32_t bos = 0, eos = 0, unk = 0;
  bool add_space_prefix = true;
  std::vector<int32_t> overridden;  // ids llama_cpp_token_type retyped
};

void load_gemma(Gemma* g) {
  pack::GgufFile f;
  const std::string path = std::string(TERN_MODEL_DIR) + "/gemma-3-270m-q4_k_m.gguf";
  Status st = pack::GgufFile::open(path, &f);
  ASSERT_TRUE(st.is_ok()) << path << ": " << st.message() << " (scripts/fetch_model.sh gemma3)";
  std::string model;
  ASSERT_TRUE(f.get_string("tokenizer.ggml.model", &model).is_ok());
  ASSERT_EQ(model, "llama");
  const pack::GgufArray *tokens = nullptr, *scores = nullptr, *types = nullptr;
  ASSERT_TRUE(f.get_array("tokenizer.ggml.tokens", pack::GgufType::kString, &tokens).is_ok());
  ASSERT_TRUE(f.get_array("tokenizer.ggml.scores", pack::GgufType::kF32, &scores).is_ok());
  ASSERT_TRUE(f.get_array("tokenizer.ggml.token_type", pack::GgufType::kI32, &types).is_ok());
  ASSERT_TRUE(f.get_u32("tokenizer.ggml.bos_token_id", &g->bos).is_ok());
  ASSERT_TRUE(f.get_u32("tokenizer.ggml.eos_token_id", &g->eos).is_ok());
  ASSERT_TRUE(f.get_u32("tokenizer.ggml.unknown_token_id", &g->unk).is_ok());
  ASSERT_TRUE(f.get_bool("tokenizer.ggml.add_space_prefix", &g->add_space_prefix).is_ok());
  const size_t n = tokens->size();
  ASSERT_EQ(n, 262144u);
  ASSERT_EQ(scores->size(), n);
  ASSERT_EQ(types->size(), n);
  g->offsets.resize(4 * (n + 1));
  g->scores.resize(4 * n);
  g->types.resize(n);
  uint32_t off = 0;
  for (size_t i = 0; i < n; ++i) {
    blob::store_u32(&g->offsets[4 * i], off);
    const std::string_view t = tokens->str(i);
    g->pool.insert(g->pool.end(), t.begin(), t.end());
    off += uint32_t(t.size());
    const float s = float((*scores)[i].f);
    uint32_t u;
    std::memcpy(&u, &s, 4);
    blob::store_u32(&g->scores[4 * i], u);
    const int64_t ty = (*types)[i].i;
    ASSERT_TRUE(ty >= 1 && ty <= 6) << "token " << i << " type " << ty;
    // llama.cpp's loader rule (Gemma 3: "</s>" USER_DEFINED -> CONTROL).
    g->types[i] = llama_cpp_token_type(reinterpret_cast<const uint8_t*>(t.data()), t.size(), uint8_t(ty));
    if (g->types[i] != ty) g->overridden.push_back(int32_t(i));
  }
  blob::store_u32(&g->offsets[4 * n], off);

  SpmVocab v;
  v.texts = TokenTexts{g->offsets.data(), g->pool.data(), uint32_t(n)};
  v.scores = g->scores.data();
  v.types = g->types.data();
  v.bos = int32_t(g->bos);
  v.eos = int32_t(g->eos);
  v.unk = int32_t(g->unk);
  v.add_space_prefix = g->add_space_prefix;
  const size_t need = SpmTokenizer::arena_bytes(uint32_t(n), off, kMaxText);
  g->arena_mem.resize(need);
  g->arena.init(g->arena_mem.data(), need);
  g->status = g->tok.init(v, kMaxText, &g->arena);
  ASSERT_TRUE(g->status.is_ok()) << g->status.message();
  std::printf("gemma vocabulary: %zu tokens, %u text bytes; tokenizer arena %zu bytes (high water %zu), init work %llu\n",
              n, off, need, g->arena.high_water(), (unsigned long long)g->tok.work());
}

Gemma* gemma() {
  static Gemma* g = [] {
    Gemma* x = new Gemma;
    load_gemma(x);
    return x;
  }();
  return g;
}

TEST(SpmTokenizerGemma, VocabularyLoads) {
  Gemma* g = gemma();
  ASSERT_TRUE(g->status.is_ok()) << g->status.message();
  EXPECT_EQ(g->bos, 2u);
  EXPECT_EQ(g->eos, 1u);
  EXPECT_EQ(g->unk, 3u);
  EXPECT_FALSE(g->add_space_prefix);
  EXPECT_EQ(g->tok.missing_byte_tokens(nullptr, 0), 0u);
  EXPECT_EQ(g->tok.find("<0x00>", 6), 238);
  EXPECT_EQ(g->tok.find("<0xFF>", 6), 493);
  EXPECT_EQ(g->tok.find("<start_of_turn>", 15), 105);
  // The one llama.cpp loader override in this vocabulary: "</s>" (212) is
  // USER_DEFINED in the file, CONTROL for llama.cpp (and so for the goldens).
  EXPECT_EQ(g->overridden, std::vector<int32_t>{212});
  EXPECT_TRUE(g->tok.is_control(212));
  EXPECT_EQ(g->tok.token_type(203), 4);  // "<s>" stays USER_DEFINED
}

// Checks every case of a llama.cpp case file (the goldens' format); returns
// the number of cases and of those with special = 1.
void check_cases(Gemma* g, const std::string& path, size_t* cases_out, size_t* special_out) {
  std::ifstream tsv(path);
  ASSERT_TRUE(tsv.good()) << path;
  std::string line;
  size_t cases = 0, ids_ok = 0, detok_ok = 0, special_cases = 0;
  std::vector<int32_t> out(kMaxText + 2);
  while (std::getline(tsv, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream row(line);
    std::string name, text_hex, special, n_ids, ids_f, detok_hex, roundtrip;
    std::getline(row, name, '\t');
    std::getline(row, text_hex, '\t');
    std::getline(row, special, '\t');
    std::getline(row, n_ids, '\t');
    std::getline(row, ids_f, '\t');
    std::getline(row, detok_hex, '\t');
    std::getline(row, roundtrip, '\t');
    ++cases;
    const bool sp = special == "1";
    special_cases += sp;
    const std::string text = unhex(text_hex);
    const std::vector<int32_t> want = parse_ids(ids_f);
    ASSERT_EQ(want.size(), std::stoul(n_ids)) << name;
    size_t n = 0;
    const Status st = g->tok.encode(text.data(), text.size(), true, sp, out.data(), out.size(), &n);
    ASSERT_TRUE(st.is_ok()) << name << ": " << st.message();
    const std::vector<int32_t> got(out.begin(), out.begin() + long(n));
    if (got == want) {
      ++ids_ok;
    } else {
      ADD_FAILURE() << name << " (special " << sp << ", " << text.size() << " bytes)\n  want " << show(want)
                    << "\n  got  " << show(got);
    }
    std::string detok;
    for (size_t i = 1; i < got.size(); ++i) {
      const char* b;
      size_t len;
      ASSERT_TRUE(g->tok.token_bytes(got[i], &b, &len, sp)) << name << " id " << got[i];
      detok.append(b, len);
    }
    if (hex(detok) == detok_hex) {
      ++detok_ok;
    } else {
      ADD_FAILURE() << name << ": detokenized\n  want " << detok_hex << "\n  got  " << hex(detok);
    }
    EXPECT_EQ(roundtrip == "1", detok == text) << name;
  }
  std::printf("%s: ids %zu/%zu agree with llama.cpp, detokenization %zu/%zu (%zu with special tokens)\n",
              path.c_str(), ids_ok, cases, detok_ok, cases, special_cases);
  EXPECT_EQ(ids_ok, cases);
  EXPECT_EQ(detok_ok, cases);
  *cases_out = cases;
  *special_out = special_cases;
}

TEST(SpmTokenizerGemma, EveryGoldenCaseMatchesLlamaCpp) {
  Gemma* g = gemma();
  ASSERT_TRUE(g->status.is_ok()) << g->status.message();
  size_t cases = 0, special_cases = 0;
  check_cases(g, std::string(TERN_SOURCE_DIR) + "/tests/goldens/gemma3_tokenizer_cases.tsv", &cases, &special_cases);
  EXPECT_EQ(cases, 490u);
  EXPECT_EQ(special_cases, 22u);
}

// TERN_GEMMA_TOKENIZER_EXTRA_CASES=PATH: one more case file in the same
// format (e.g. random texts put through llama.cpp the way
// tests/goldens/make_gemma_tokenizer_goldens.py does); skipped without it.
TEST(SpmTokenizerGemma, ExtraCaseFileMatchesLlamaCpp) {
  const char* path = std::getenv("TERN_GEMMA_TOKENIZER_EXTRA_CASES");
  if (path == nullptr || *path == 0) GTEST_SKIP() << "TERN_GEMMA_TOKENIZER_EXTRA_CASES not set";
  Gemma* g = gemma();
  ASSERT_TRUE(g->status.is_ok()) << g->status.message();
  size_t cases = 0, special_cases = 0;
  check_cases(g, path, &cases, &special_cases);
  EXPECT_GT(cases, 0u);
}

// A 64 KB mixed text (the longest the tokenizer was sized for): the work
// counter stays within its bound (special walks + heap + lookups, each
// O(log V)), and it is fast.
TEST(SpmTokenizerGemma, LongInputCostIsBounded) {
  Gemma* g = gemma();
  ASSERT_TRUE(g->status.is_ok()) << g->status.message();
  const std::string unit = "Hello,  world!\n\n<b>bold</b>\tcode: x = f(42);  \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80 ";
  std::string text;
  while (text.size() + unit.size() <= kMaxText) text += unit;
  std::vector<int32_t> out(text.size() + 2);
  for (bool sp : {false, true}) {
    size_t n = 0;
    const uint64_t w0 = g->tok.work();
    const auto t0 = std::chrono::steady_clock::now();
    const Status st = g->tok.encode(text.data(), text.size(), true, sp, out.data(), out.size(), &n);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(st.is_ok()) << st.message();
    const uint64_t work = g->tok.work() - w0;
    std::printf("%zu bytes -> %zu ids in %.2f ms, work %llu (%.1f per byte)\n", text.size(), n, ms,
                (unsigned long long)work, double(work) / double(text.size()));
    // Per byte: <= 64 claim passes, <= 2 pieces x (3 lookups x 2 x 19 comparisons + heap steps 2 x 2 x 17).
    EXPECT_LT(work, uint64_t(text.size()) * 400);
  }
  // One byte over the bound: refused, nothing written.
  text.resize(kMaxText + 1, 'a');
  size_t n = 7;
  const Status st = g->tok.encode(text.data(), text.size(), true, false, out.data(), out.size(), &n);
  EXPECT_EQ(st.code(), StatusCode::kPromptTooLong);
  EXPECT_EQ(n, 0u);
}

}  // namespace
}  // namespace tern
