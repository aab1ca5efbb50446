// Tokenizer unit tests on a small synthetic vocabulary (no model needed):
// section validation, BPE merge order, special tokens, capacity, invalid
// UTF-8, very long pieces, and the pre-tokenizer's split rules.
// The real vocabulary against HF goldens: tests/model/tokenizer_golden_test.cc.
#include "runtime/tokenizer.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "runtime/blob_format.h"
#include "tests/support/tiny_model.h"

namespace tern {
namespace {

// GPT-2 byte -> alphabet character, as UTF-8.
std::string byte_char(uint8_t b) {
  static int extra_of[256];
  static bool built = false;
  if (!built) {
    int extra = 0;
    for (int i = 0; i < 256; ++i) {
      const bool printable = (i >= 33 && i <= 126) || (i >= 161 && i <= 172) || i >= 174;
      extra_of[i] = printable ? -1 : extra++;
    }
    built = true;
  }
  const uint32_t cp = extra_of[b] < 0 ? b : 256 + extra_of[b];
  uint8_t u[4];
  const size_t n = utf8_encode(cp, u);
  return std::string(reinterpret_cast<char*>(u), n);
}
std::string alpha(const std::string& raw) {
  std::string s;
  for (unsigned char c : raw) s += byte_char(c);
  return s;
}

// A synthetic vocabulary: specials, the 256 byte tokens, then merged tokens.
struct Vocab {
  std::vector<std::string> texts;  // alphabet form
  std::vector<uint8_t> types;
  std::vector<std::pair<std::string, std::string>> merges;  // raw texts, rank order
  bool with_bytes = true;

  int add(const std::string& text, uint8_t type) {
    texts.push_back(text);
    types.push_back(type);
    return int(texts.size()) - 1;
  }
  int id_of(const std::string& alpha_text) const {
    for (size_t i = 0; i < texts.size(); ++i) if (texts[i] == alpha_text) return int(i);
    return -1;
  }
  std::vector<uint8_t> section() {
    std::vector<std::array<uint32_t, 3>> m;
    for (auto& p : merges) {
      const std::string a = alpha(p.first), b = alpha(p.second);
      int ia = id_of(a), ib = id_of(b), ic = id_of(a + b);
      if (ic < 0) ic = add(a + b, 1);
      m.push_back({uint32_t(ia), uint32_t(ib), uint32_t(ic)});
    }
    std::string pool;
    std::vector<uint32_t> offs{0};
    for (auto& t : texts) { pool += t; offs.push_back(uint32_t(pool.size())); }
    const uint32_t n = uint32_t(texts.size());
    std::vector<uint8_t> s(24 + 4 * (n + 1) + ((n + 3) & ~3u) + 12 * m.size() + pool.size(), 0);
    uint8_t* p = s.data();
    blob::store_u32(p, 1); blob::store_u32(p + 4, 1); blob::store_u32(p + 8, n);
    blob::store_u32(p + 12, uint32_t(m.size())); blob::store_u32(p + 16, uint32_t(pool.size()));
    p += 24;
    for (uint32_t o : offs) { blob::store_u32(p, o); p += 4; }
    std::memcpy(p, types.data(), n);
    p += (n + 3) & ~3u;
    for (auto& e : m) for (uint32_t v : e) { blob::store_u32(p, v); p += 4; }
    std::memcpy(p, pool.data(), pool.size());
    return s;
  }
};

Vocab base_vocab() {
  Vocab v;
  v.add("<|s|>", 3);      // 0 control
  v.add("<|s|>x", 4);     // 1 user-defined, longer: leftmost-longest wins
  v.add("<u>", 4);        // 2 user-defined
  for (int b = 0; b < 256; ++b) v.add(byte_char(uint8_t(b)), 1);
  v.merges = {{"b", "c"}, {"a", "b"}, {"a", "a"}, {" ", "t"}, {" t", "h"}, {"h", "e"}, {" th", "e"}};
  return v;
}

struct Fixture {
  std::vector<uint8_t> section;
  std::vector<uint8_t> memory;
  Arena arena;
  Tokenizer tok;
  Status status;
  explicit Fixture(Vocab v) : section(v.section()) {
    memory.resize(Tokenizer::arena_bytes(uint32_t(v.texts.size()), uint32_t(v.merges.size())));
    arena.init(memory.data(), memory.size());
    status = tok.init(section.data(), section.size(), &arena);
  }
  std::vector<int32_t> encode(const std::string& s, bool special = true) {
    std::vector<int32_t> ids(s.size() + 8);
    size_t n = 0;
    Status st = tok.encode(s.data(), s.size(), special, ids.data(), ids.size(), &n);
    EXPECT_TRUE(st.is_ok()) << st.message();
    ids.resize(n);
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) {
      const char* b; size_t n;
      EXPECT_TRUE(tok.token_bytes(id, &b, &n)) << id;
      s.append(b, n);
    }
    return s;
  }
  int32_t id(const std::string& raw) { return tok.find(alpha(raw).data(), alpha(raw).size()); }
};

TEST(Tokenizer, InitAndLookups) {
  Fixture f(base_vocab());
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  EXPECT_EQ(f.tok.n_tokens(), 3u + 256u + 7u);  // specials, bytes, one token per merge
  EXPECT_LE(f.arena.used(), Tokenizer::arena_bytes(f.tok.n_tokens(), 7));
  EXPECT_EQ(f.tok.find("a", 1), 3 + 'a');
  const std::string g = alpha(" the");  // "Ġthe"
  EXPECT_EQ(g, "\xC4\xA0the");
  const int32_t the = f.tok.find(g.data(), g.size());
  ASSERT_GE(the, 0);
  const char* b; size_t n;
  ASSERT_TRUE(f.tok.token_bytes(the, &b, &n));
  EXPECT_EQ(std::string(b, n), " the");
  ASSERT_TRUE(f.tok.token_bytes(0, &b, &n));
  EXPECT_EQ(std::string(b, n), "<|s|>");
  EXPECT_FALSE(f.tok.token_bytes(-1, &b, &n));
  EXPECT_FALSE(f.tok.token_bytes(int32_t(f.tok.n_tokens()), &b, &n));
  EXPECT_EQ(f.tok.find("zzz", 3), -1);
  EXPECT_EQ(f.tok.find("", 0), -1);
  EXPECT_TRUE(f.tok.is_special(0));
  EXPECT_TRUE(f.tok.is_special(2));
  EXPECT_FALSE(f.tok.is_special(3));
  EXPECT_FALSE(f.tok.is_special(-5));
  // Every byte decodes to itself.
  for (int c = 0; c < 256; ++c) {
    ASSERT_TRUE(f.tok.token_bytes(3 + c, &b, &n));
    ASSERT_EQ(n, 1u);
    EXPECT_EQ(uint8_t(b[0]), c);
  }
}

TEST(Tokenizer, MergesApplyByRankThenLeftmost) {
  Fixture f(base_vocab());
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  // "bc" (rank 0) beats "ab" (rank 1).
  EXPECT_EQ(f.encode("abc"), (std::vector<int32_t>{f.id("a"), f.id("bc")}));
  EXPECT_EQ(f.encode("ab"), (std::vector<int32_t>{f.id("ab")}));
  // "aaa": the leftmost pair merges first.
  EXPECT_EQ(f.encode("aaa"), (std::vector<int32_t>{f.id("aa"), f.id("a")}));
  EXPECT_EQ(f.encode("aaaa"), (std::vector<int32_t>{f.id("aa"), f.id("aa")}));
  // Chained merges " t" -> " th" -> " the"; "he" (rank 5) loses to " th" (rank 4).
  EXPECT_EQ(f.encode(" the"), (std::vector<int32_t>{f.id(" the")}));
  EXPECT_EQ(f.encode("the"), (std::vector<int32_t>{f.id("t"), f.id("he")}));
  // Pieces are split first: "b c" has no "bc".
  EXPECT_EQ(f.encode("b c"), (std::vector<int32_t>{f.id("b"), f.id(" "), f.id("c")}));
  EXPECT_TRUE(f.encode("").empty());
}

TEST(Tokenizer, SpecialTokensLeftmostLongest) {
  Fixture f(base_vocab());
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  EXPECT_EQ(f.encode("a<|s|>b"), (std::vector<int32_t>{f.id("a"), 0, f.id("b")}));
  EXPECT_EQ(f.encode("<|s|>x"), (std::vector<int32_t>{1}));
  EXPECT_EQ(f.encode("<|s|><u><|s|>"), (std::vector<int32_t>{0, 2, 0}));
  EXPECT_EQ(f.encode("<|s|"), f.encode("<|s|", false));  // partial: plain text
  // Plain-text mode: the same bytes, no special ids.
  const std::vector<int32_t> plain = f.encode("a<|s|>b", false);
  for (int32_t id : plain) EXPECT_FALSE(f.tok.is_special(id));
  EXPECT_EQ(f.decode(plain), "a<|s|>b");
  // Segments around a special are pre-tokenized on their own, as in HF.
  EXPECT_EQ(f.encode("a  <u>"), (std::vector<int32_t>{f.id("a"), f.id(" "), f.id(" "), 2}));
}

TEST(Tokenizer, CapacityReportsPromptTooLong) {
  Fixture f(base_vocab());
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  int32_t out[3] = {-1, -1, -1};
  size_t n = 99;
  Status st = f.tok.encode("xyzw", 4, true, out, 2, &n);
  EXPECT_EQ(st.code(), StatusCode::kPromptTooLong);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(out[0], f.id("x"));
  EXPECT_EQ(out[1], f.id("y"));
  EXPECT_EQ(out[2], -1);  // never written past cap
  st = f.tok.encode("xy<u>", 5, true, out, 2, &n);
  EXPECT_EQ(st.code(), StatusCode::kPromptTooLong);
  st = f.tok.encode("xy<u>", 5, true, out, 3, &n);
  EXPECT_TRUE(st.is_ok());
  EXPECT_EQ(n, 3u);
}

TEST(Tokenizer, InvalidUtf8IsEncodedByteWise) {
  Fixture f(base_vocab());
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  const char kIn[] = "\xFF\xFE a\xC3 b\xE6\x97\0\xED\xA0\x80 \xF0\x9F";
  const std::string in(kIn, sizeof(kIn) - 1);  // keeps the NUL
  EXPECT_EQ(f.decode(f.encode(in)), in);
}

TEST(Tokenizer, VeryLongPiecesAreChunkedAndRoundTrip) {
  Fixture f(base_vocab());
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  const std::string spaces(100000, ' ');
  const std::vector<int32_t> ids = f.encode(spaces);
  EXPECT_EQ(ids.size(), spaces.size());
  EXPECT_EQ(f.decode(ids), spaces);
  std::string letters;
  for (int i = 0; i < 300000; ++i) letters += "ab\xC3\xA9"[i % 4];
  letters += "\xE6\x97\xA5";
  EXPECT_EQ(f.decode(f.encode(letters)), letters);
  // Below the chunk size nothing is cut: "aa" pairs all the way.
  const std::string as(Tokenizer::kMaxPieceBytes, 'a');
  const std::vector<int32_t> a_ids = f.encode(as);
  EXPECT_EQ(a_ids.size(), as.size() / 2);
}

// Random bytes (fixed seed): never crash, and the ids give back the input.
TEST(Tokenizer, RandomBytesRoundTrip) {
  Fixture f(base_vocab());
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  uint32_t state = 12345;
  auto next = [&state]() { state = state * 1664525u + 1013904223u; return state >> 24; };
  const char alphabet[] = {' ', ' ', '\n', 'a', 'b', '1', '\'', 's', '<', '|', '>', char(0xC3), char(0xA9),
                           char(0xE6), char(0x97), char(0xF0), char(0x9F), char(0xFF), char(0x80), 0};
  for (int iter = 0; iter < 2000; ++iter) {
    std::string s;
    const size_t len = next() % 40;
    for (size_t i = 0; i < len; ++i) {
      s.push_back(next() % 2 ? char(next()) : alphabet[next() % sizeof(alphabet)]);
    }
    ASSERT_EQ(f.decode(f.encode(s, iter % 2 == 0)), s) << "iteration " << iter;
  }
}

// ---- Section validation ------------------------------------------------------

Status init_section(const std::vector<uint8_t>& s, size_t n_tokens = 266, size_t n_merges = 7) {
  std::vector<uint8_t> memory(Tokenizer::arena_bytes(uint32_t(n_tokens), uint32_t(n_merges)));
  Arena arena;
  arena.init(memory.data(), memory.size());
  Tokenizer tok;
  return tok.init(s.data(), s.size(), &arena);
}

TEST(Tokenizer, RejectsCorruptSections) {
  const std::vector<uint8_t> good = base_vocab().section();
  ASSERT_TRUE(init_section(good).is_ok());
  const uint32_t n = blob::load_u32(&good[8]);
  ASSERT_EQ(n, 266u);
  const size_t off_types = 24 + 4 * (n + 1), off_merges = off_types + ((n + 3) & ~3u);
  struct Corruption {
    const char* name;
    size_t offset;
    uint32_t value;  // stored as u32 unless byte
    bool byte;
  };
  const Corruption cs[] = {
      {"model", 0, 2, false},
      {"pre", 4, 7, false},
      {"n_tokens", 8, n + 1, false},
      {"n_merges", 12, 8, false},
      {"pool_bytes", 16, 1, false},
      {"reserved", 20, 1, false},
      {"first offset", 24, 1, false},
      {"offset decreases", 24 + 4 * 10, 0, false},
      {"last offset", 24 + 4 * n, 0, false},
      {"type 0", off_types + 5, 0, true},
      {"type 7", off_types + 5, 7, true},
      {"padding", off_types + n, 1, true},
      {"merge left id", off_merges, n, false},
      {"merge merged id", off_merges + 8, 0xFFFFFFFFu, false},
      {"merge text mismatch", off_merges + 8, 3 + 'a', false},
  };
  for (const Corruption& c : cs) {
    std::vector<uint8_t> s = good;
    if (c.byte) s[c.offset] = uint8_t(c.value); else blob::store_u32(&s[c.offset], c.value);
    const Status st = init_section(s);
    EXPECT_EQ(st.code(), StatusCode::kBadTokenizer) << c.name << ": " << st.message();
  }
  // Every truncation is rejected without reading past the end.
  for (size_t len = 0; len < good.size(); len += (len < 64 ? 1 : 97)) {
    std::vector<uint8_t> s(good.begin(), good.begin() + len);
    EXPECT_FALSE(init_section(s).is_ok()) << "truncated to " << len;
  }
  EXPECT_FALSE(init_section(std::vector<uint8_t>(good.begin(), good.end() - 1)).is_ok());
  // Random byte flips (fixed seed): init either succeeds or reports an error, never crashes.
  uint32_t state = 777;
  for (int iter = 0; iter < 300; ++iter) {
    std::vector<uint8_t> s = good;
    for (int k = 0; k < 3; ++k) {
      state = state * 1664525u + 1013904223u;
      s[(state >> 8) % s.size()] ^= uint8_t(1u << (state & 7));
    }
    (void)init_section(s).is_ok();
  }
  // A normal token outside the byte-level alphabet.
  Vocab v = base_vocab();
  v.add("\xE6\x97\xA5", 1);
  EXPECT_EQ(init_section(v.section(), 267).code(), StatusCode::kBadTokenizer);
}

TEST(Tokenizer, ArenaTooSmall) {
  const std::vector<uint8_t> s = base_vocab().section();
  std::vector<uint8_t> memory(Tokenizer::arena_bytes(266, 7) / 2);
  Arena arena;
  arena.init(memory.data(), memory.size());
  Tokenizer tok;
  EXPECT_EQ(tok.init(s.data(), s.size(), &arena).code(), StatusCode::kArenaTooSmall);
  int32_t out[4];
  size_t n;
  EXPECT_FALSE(tok.encode("a", 1, true, out, 4, &n).is_ok());
}

// ---- Duplicates (issue 19 item 6) -------------------------------------------------

// Two tokens with the text "a". llama.cpp refuses such a vocabulary
// (llama-vocab.cpp: "duplicate token in vocabulary"; before that check it hit
// GGML_ASSERT(id_to_token.size() == token_to_id.size())), so there is no id
// to agree on: the runtime refuses it too and names both ids. Before, the
// runtime resolved "a" to the last id while the merges named the first, and
// "abab" came out as 4 tokens instead of 2.
TEST(Tokenizer, DuplicateTokenTextIsRefused) {
  Vocab v = base_vocab();
  const int first_a = v.id_of(alpha("a"));
  const int second_a = v.add(alpha("a"), 1);
  Fixture f(v);
  ASSERT_EQ(f.status.code(), StatusCode::kBadTokenizer) << "abab -> " << f.encode("abab").size() << " tokens";
  const std::string msg = f.status.message();
  EXPECT_NE(msg.find(std::to_string(first_a) + " and " + std::to_string(second_a) + " have the same text"),
            std::string::npos) << msg;
  // A refused tokenizer encodes nothing.
  int32_t out[8];
  size_t n = 0;
  EXPECT_FALSE(f.tok.encode("abab", 4, true, out, 8, &n).is_ok());
  // A duplicate special token is refused the same way.
  Vocab w = base_vocab();
  w.add("<u>", 3);
  EXPECT_EQ(Fixture(w).status.code(), StatusCode::kBadTokenizer);
}

// Empty texts are never looked up (llama.cpp renames them "[EMPTY_<id>]"):
// they may repeat.
TEST(Tokenizer, RepeatedEmptyTextsAreAllowed) {
  Vocab v = base_vocab();
  v.add("", 5);
  v.add("", 5);
  Fixture f(v);
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  EXPECT_EQ(f.tok.find("", 0), -1);
  EXPECT_EQ(f.encode("abab"), (std::vector<int32_t>{f.id("ab"), f.id("ab")}));
}

// tern-pack applies the same rule to the GGUF (one helper: sort_token_texts).
TEST(Tokenizer, PackerRefusesDuplicateTokenText) {
  testing::TinyGguf g = testing::tiny_llama_gguf();
  std::vector<std::string> tokens;
  for (uint32_t b = 0; b < 256; ++b) tokens.push_back(testing::gpt2_byte_text(uint8_t(b)));
  const std::string G = testing::gpt2_byte_text(' ');
  for (const std::string& t : {G + "t", std::string("a"), G + "the", std::string("<|endoftext|>"),
                               std::string("<|im_start|>"), std::string("<|im_end|>")}) {
    tokens.push_back(t);  // id 257 is a second "a" (was "he")
  }
  g.set_strs("tokenizer.ggml.tokens", tokens);
  g.set_strs("tokenizer.ggml.merges", {G + " t"});
  std::vector<uint8_t> blob_bytes;
  const Status st = testing::pack_tiny(g.bytes(), &blob_bytes);
  ASSERT_EQ(st.code(), StatusCode::kBadTokenizer) << st.message();
  EXPECT_NE(std::string(st.message()).find("tokens 97 and 257 have the same text"), std::string::npos) << st.message();
  // The unmodified tiny model still packs.
  EXPECT_TRUE(testing::tiny_blob(&blob_bytes).is_ok());
}

// The same pair listed twice: the lowest rank wins, as in llama.cpp
// (bpe_ranks.emplace keeps the first; HF's merge map would keep the last).
// base_vocab ranks "b c" 0 and "a b" 1; a copy of "b c" at rank 7 must not
// demote it below "a b".
TEST(Tokenizer, DuplicateMergeLowestRankWins) {
  Vocab v = base_vocab();
  v.merges.push_back({"b", "c"});
  Fixture f(v);
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  EXPECT_EQ(f.encode("abc"), (std::vector<int32_t>{f.id("a"), f.id("bc")}));
  EXPECT_EQ(f.encode("ab"), (std::vector<int32_t>{f.id("ab")}));
  // A copy that names another merged token (same length, other text) is an error.
  std::vector<uint8_t> s = v.section();
  const uint32_t n = blob::load_u32(&s[8]);
  const size_t off_merges = 24 + 4 * (n + 1) + ((n + 3) & ~3u);
  blob::store_u32(&s[off_merges + 12 * 7 + 8], uint32_t(f.id("ab")));
  const Status st = init_section(s, n, 8);
  EXPECT_EQ(st.code(), StatusCode::kBadTokenizer);
  EXPECT_NE(std::string(st.message()).find("same pair into different tokens"), std::string::npos) << st.message();
}

// Special texts are at most kMaxSpecialBytes long (matching costs that many
// steps per text position).
TEST(Tokenizer, LongSpecialTokenIsRefused) {
  Vocab v = base_vocab();
  v.add("<" + std::string(Tokenizer::kMaxSpecialBytes - 2, 'x') + ">", 3);
  Fixture ok(v);
  EXPECT_TRUE(ok.status.is_ok()) << ok.status.message();
  v.add("<" + std::string(Tokenizer::kMaxSpecialBytes - 1, 'y') + ">", 4);
  Fixture bad(v);
  EXPECT_EQ(bad.status.code(), StatusCode::kBadTokenizer);
  EXPECT_NE(std::string(bad.status.message()).find("bytes long"), std::string::npos) << bad.status.message();
}

// Special tokens sharing prefixes: leftmost, then longest, at every split.
TEST(Tokenizer, SpecialTokensSharingPrefixes) {
  Vocab v = base_vocab();
  const int s1 = v.add("<|", 4), s2 = v.add("<|s", 4), s3 = v.add("<|t|>", 3);
  Fixture f(v);
  ASSERT_TRUE(f.status.is_ok()) << f.status.message();
  const int32_t c0 = 0, c1 = 1;  // "<|s|>", "<|s|>x"
  EXPECT_EQ(f.encode("<|s|>x<|s|><|s<|t|><|t<|"),
            (std::vector<int32_t>{c1, c0, s2, s3, s1, f.id("t"), s1}));
  EXPECT_EQ(f.encode("<<|"), (std::vector<int32_t>{f.id("<"), s1}));
}

// ---- Pre-tokenizer -------------------------------------------------------------

std::vector<std::string> pieces(const std::string& s, PreSplit mode) {
  std::vector<std::string> out;
  const uint8_t* t = reinterpret_cast<const uint8_t*>(s.data());
  for (size_t pos = 0; pos < s.size();) {
    const size_t n = next_piece(t, s.size(), pos, mode);
    out.push_back(s.substr(pos, n));
    pos += n;
  }
  return out;
}

using P = std::vector<std::string>;

TEST(Pretokenizer, Gpt2Rules) {
  const PreSplit g = PreSplit::kGpt2;
  EXPECT_EQ(pieces("Hello world", g), (P{"Hello", " world"}));
  EXPECT_EQ(pieces("I'm it's we'll they've you're I'd don't", g),
            (P{"I", "'m", " it", "'s", " we", "'ll", " they", "'ve", " you", "'re", " I", "'d", " don", "'t"}));
  EXPECT_EQ(pieces("I'M", g), (P{"I", "'", "M"}));  // case-sensitive contractions
  EXPECT_EQ(pieces("a  1", g), (P{"a", " ", " 1"}));
  EXPECT_EQ(pieces("12 345", g), (P{"12", " 345"}));
  EXPECT_EQ(pieces("a\n\nb", g), (P{"a", "\n", "\n", "b"}));
  EXPECT_EQ(pieces("x   ", g), (P{"x", "   "}));
  EXPECT_EQ(pieces("!!  ?'s", g), (P{"!!", " ", " ?'", "s"}));
  EXPECT_EQ(pieces(" \t x", g), (P{" \t", " x"}));
  EXPECT_EQ(pieces("\xC2\xA0x", g), (P{"\xC2\xA0", "x"}));                       // NBSP is \s
  EXPECT_EQ(pieces("\xE6\x97\xA5\xE6\x9C\xAC \xE8\xAA\x9E", g), (P{"\xE6\x97\xA5\xE6\x9C\xAC", " \xE8\xAA\x9E"}));
  EXPECT_EQ(pieces("x\xC2\xB2y", g), (P{"x", "\xC2\xB2", "y"}));                 // superscript two is \p{N}
  EXPECT_EQ(pieces("\xFF\xFEz", g), (P{"\xFF\xFE", "z"}));                       // invalid bytes: "other"
}

TEST(Pretokenizer, SmollmIsolatesNumbers) {
  const PreSplit s = PreSplit::kSmollm;
  EXPECT_EQ(pieces("a  1", s), (P{"a", "  ", "1"}));
  EXPECT_EQ(pieces("12 345", s), (P{"1", "2", " ", "3", "4", "5"}));
  EXPECT_EQ(pieces("x\xC2\xB2y", s), (P{"x", "\xC2\xB2", "y"}));
  EXPECT_EQ(pieces("v2.0!", s), (P{"v", "2", ".", "0", "!"}));
  EXPECT_EQ(pieces("Hello world", s), (P{"Hello", " world"}));
  EXPECT_EQ(pieces("\xD9\xA3 x", s), (P{"\xD9\xA3", " x"}));  // Arabic-Indic three
}

TEST(Pretokenizer, CharClasses) {
  EXPECT_EQ(char_class('A'), CharClass::kLetter);
  EXPECT_EQ(char_class('7'), CharClass::kNumber);
  EXPECT_EQ(char_class('!'), CharClass::kOther);
  EXPECT_EQ(char_class(0x1C), CharClass::kOther);  // Python isspace() but not White_Space
  EXPECT_EQ(char_class(0x85), CharClass::kSpace);
  EXPECT_EQ(char_class(0x3000), CharClass::kSpace);
  EXPECT_EQ(char_class(0x200B), CharClass::kOther);  // zero-width space is not \s
  EXPECT_EQ(char_class(0x4E00), CharClass::kLetter);
  EXPECT_EQ(char_class(0x0663), CharClass::kNumber);
  EXPECT_EQ(char_class(0x2167), CharClass::kNumber);  // roman numeral eight (Nl)
  EXPECT_EQ(char_class(0x1F917), CharClass::kOther);  // emoji
  EXPECT_EQ(char_class(0x10FFFF), CharClass::kOther);
  EXPECT_EQ(char_class(kUtf8Invalid), CharClass::kOther);
}

}  // namespace
}  // namespace tern
