// SpmTokenizer on tiny hand-made vocabularies: merge order by score, ties
// leftmost, byte fallback, spaces as U+2581, the special split (user-defined
// texts always, longest first over the whole text; control texts only with
// parse_special), decoding, empty input, output and input bounds, vocabulary
// validation, and the work bound on adversarial inputs (counted, not timed).
// The real vocabulary against llama.cpp: tests/model/spm_tokenizer_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <list>
#include <map>
#include <queue>
#include <random>
#include <set>
#include <string_view>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "arena/arena.h"
#include "runtime/blob_format.h"
#include "runtime/spm_tokenizer.h"

namespace tern {
namespace {

constexpr uint8_t kNormal = 1, kUnknown = 2, kControl = 3, kUser = 4, kUnused = 5, kByte = 6;
const std::string kSp = "\xe2\x96\x81";  // ▁

struct Vocab {
  std::vector<std::string> texts;
  std::vector<float> scores;
  std::vector<uint8_t> types;
  int32_t bos = -1, eos = -1, unk = -1;
  bool add_space_prefix = false;
  // The views' storage.
  std::vector<uint8_t> off, pool, sc;

  int32_t add(const std::string& t, float score = -1.0f, uint8_t type = kNormal) {
    texts.push_back(t);
    scores.push_back(score);
    types.push_back(type);
    return int32_t(texts.size() - 1);
  }
  // <0x00>..<0xFF>; returns the id of <0x00>.
  int32_t add_bytes() {
    static const char* hex = "0123456789ABCDEF";
    const int32_t first = int32_t(texts.size());
    for (int b = 0; b < 256; ++b) add(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", 0.0f, kByte);
    return first;
  }
  SpmVocab view() {
    off.assign(4 * (texts.size() + 1), 0);
    pool.clear();
    sc.assign(4 * texts.size(), 0);
    for (size_t i = 0; i < texts.size(); ++i) {
      blob::store_u32(&off[4 * i], uint32_t(pool.size()));
      pool.insert(pool.end(), texts[i].begin(), texts[i].end());
      uint32_t u;
      std::memcpy(&u, &scores[i], 4);
      blob::store_u32(&sc[4 * i], u);
    }
    blob::store_u32(&off[4 * texts.size()], uint32_t(pool.size()));
    if (pool.empty()) pool.push_back(0);  // a valid pointer
    SpmVocab v;
    v.texts = TokenTexts{off.data(), pool.data(), uint32_t(texts.size())};
    v.scores = sc.data();
    v.types = types.data();
    v.bos = bos;
    v.eos = eos;
    v.unk = unk;
    v.add_space_prefix = add_space_prefix;
    return v;
  }
};

struct Tok {
  std::vector<uint8_t> mem;
  Arena arena;
  SpmTokenizer tok;
  Status init(Vocab& v, size_t max_text = 4096) {
    const SpmVocab sv = v.view();
    mem.assign(SpmTokenizer::arena_bytes(sv.texts.n, blob::load_u32(sv.texts.offsets + 4 * size_t(sv.texts.n)), max_text), 0);
    arena.init(mem.data(), mem.size());
    return tok.init(sv, max_text, &arena);
  }
  std::vector<int32_t> enc(const std::string& text, bool bos = false, bool special = false) {
    std::vector<int32_t> out(text.size() * 2 + 8);
    size_t n = 0;
    const Status st = tok.encode(text.data(), text.size(), bos, special, out.data(), out.size(), &n);
    EXPECT_TRUE(st.is_ok()) << st.message();
    out.resize(n);
    return out;
  }
  std::string dec(const std::vector<int32_t>& ids, bool special = false) {
    std::string s;
    for (int32_t id : ids) {
      const char* b;
      size_t len;
      EXPECT_TRUE(tok.token_bytes(id, &b, &len, special)) << id;
      s.append(b, len);
    }
    return s;
  }
};

using Ids = std::vector<int32_t>;

TEST(SpmTokenizer, MergesByScoreNotByPosition) {
  for (bool ab_first : {true, false}) {
    Vocab v;
    const int32_t a = v.add("a"), b = v.add("b"), c = v.add("c");
    const int32_t ab = v.add("ab", ab_first ? -1.0f : -5.0f);
    const int32_t bc = v.add("bc", ab_first ? -5.0f : -1.0f);
    v.add_bytes();
    Tok t;
    ASSERT_TRUE(t.init(v).is_ok());
    EXPECT_EQ(t.enc("abc"), ab_first ? (Ids{ab, c}) : (Ids{a, bc})) << ab_first;
    (void)b;
  }
}

TEST(SpmTokenizer, MergedPiecesKeepMerging) {
  Vocab v;
  v.add("a");
  v.add("b");
  v.add("c");
  v.add("ab", -1.0f);
  v.add("bc", -2.0f);
  const int32_t abc = v.add("abc", -10.0f);  // lower score than both pairs: reached only through "ab"
  v.add_bytes();
  Tok t;
  ASSERT_TRUE(t.init(v).is_ok());
  EXPECT_EQ(t.enc("abc"), (Ids{abc}));
  EXPECT_EQ(t.dec(t.enc("abcabc")), "abcabc");
}

TEST(SpmTokenizer, EqualScoresMergeLeftmostFirst) {
  Vocab v;
  const int32_t a = v.add("a"), b = v.add("b");
  const int32_t ab = v.add("ab", -3.0f), ba = v.add("ba", -3.0f);
  v.add("x", -0.0f);  // -0 and +0 are one score
  v.add("y", 0.0f);
  const int32_t xy = v.add("xy", 0.0f), yx = v.add("yx", -0.0f);
  v.add_bytes();
  Tok t;
  ASSERT_TRUE(t.init(v).is_ok());
  EXPECT_EQ(t.enc("aba"), (Ids{ab, a}));
  EXPECT_EQ(t.enc("bab"), (Ids{ba, b}));
  EXPECT_EQ(t.enc("abab"), (Ids{ab, ab}));
  EXPECT_EQ(t.enc("yxy"), (Ids{yx, t.tok.find("y", 1)}));
  EXPECT_EQ(t.enc("xyx"), (Ids{xy, t.tok.find("x", 1)}));
}

TEST(SpmTokenizer, ByteFallbackForPiecesThatAreNotTokens) {
  Vocab v;
  const int32_t a = v.add("a");
  const int32_t b0 = v.add_bytes();
  Tok t;
  ASSERT_TRUE(t.init(v).is_ok());
  EXPECT_EQ(t.tok.missing_byte_tokens(nullptr, 0), 0u);
  EXPECT_EQ(t.enc("az"), (Ids{a, b0 + 'z'}));
  EXPECT_EQ(t.enc("\xc3\xa9"), (Ids{b0 + 0xC3, b0 + 0xA9}));  // é: one character, not a token
  EXPECT_EQ(t.dec(t.enc("a\xc3\xa9z")), "a\xc3\xa9z");
  EXPECT_EQ(t.enc(std::string("\0a", 2)), (Ids{b0, a}));  // NUL is a character like any other
}

TEST(SpmTokenizer, LeadBytesClaimTheirLengthWithoutChecking) {
  // llama.cpp's unicode_len_utf8: 0xE4 claims 3 bytes, so "ab" go with it
  // (as byte tokens), and a lead byte before a space eats part of its "▁".
  Vocab v;
  const int32_t a = v.add("a");
  v.add("b");
  const int32_t sp = v.add(kSp);
  const int32_t b0 = v.add_bytes();
  Tok t;
  ASSERT_TRUE(t.init(v).is_ok());
  EXPECT_EQ(t.enc("\xe4" "aba"), (Ids{b0 + 0xE4, b0 + 'a', b0 + 'b', a}));
  EXPECT_EQ(t.enc("\xf0\x9f\x98 a"), (Ids{b0 + 0xF0, b0 + 0x9F, b0 + 0x98, b0 + 0xE2, b0 + 0x96, b0 + 0x81, a}));
  EXPECT_EQ(t.enc("\x80 "), (Ids{b0 + 0x80, sp}));
  EXPECT_EQ(t.enc("\xc3"), (Ids{b0 + 0xC3}));  // cut short at the end
  EXPECT_EQ(t.enc("\xff\xfe"), (Ids{b0 + 0xFF, b0 + 0xFE}));
}

TEST(SpmTokenizer, SpacesBecomeU2581AndDecodeBack) {
  Vocab v;
  const int32_t a = v.add("a");
  const int32_t sp = v.add(kSp);
  const int32_t spa = v.add(kSp + "a", -0.5f);
  v.add_bytes();
  Tok t;
  ASSERT_TRUE(t.init(v).is_ok());
  EXPECT_EQ(t.enc("a a"), (Ids{a, spa}));
  EXPECT_EQ(t.enc(" "), (Ids{sp}));
  EXPECT_EQ(t.enc("a  "), (Ids{a, sp, sp}));
  EXPECT_EQ(t.dec(t.enc(" a a ")), " a a ");
  EXPECT_EQ(t.enc(kSp + "a"), (Ids{spa}));  // a typed ▁ is the same piece (and decodes to a space)
  EXPECT_EQ(t.dec({spa}), " a");
}

// Decoded bytes are written on a token's first token_bytes(), into arena
// memory that may hold anything before init (here 0xFF, and a second init on
// the same arena after the first decoded everything): every token decodes the
// same, first call and later ones, and no call writes outside its token.
TEST(SpmTokenizer, DecodedBytesOnFirstUseWhateverTheArenaHeld) {
  Vocab v;
  const int32_t a = v.add("a");
  const int32_t spa = v.add(kSp + "a", -0.5f);
  const int32_t two = v.add(kSp + "b" + kSp + "c", -0.7f);
  const int32_t ctl = v.add("<ctl>", 0.0f, kControl);
  v.add_bytes();
  const SpmVocab sv = v.view();
  const uint32_t n = sv.texts.n;
  Tok t;
  t.mem.assign(SpmTokenizer::arena_bytes(n, blob::load_u32(sv.texts.offsets + 4 * size_t(n)), 4096), 0xFF);
  for (int round = 0; round < 2; ++round) {
    t.arena.init(t.mem.data(), t.mem.size());
    ASSERT_TRUE(t.tok.init(sv, 4096, &t.arena).is_ok());
    for (int pass = 0; pass < 2; ++pass) {
      EXPECT_EQ(t.dec({a}), "a");
      EXPECT_EQ(t.dec({spa}), " a");
      EXPECT_EQ(t.dec({two}), " b c");
      EXPECT_EQ(t.dec({ctl}), "");
      EXPECT_EQ(t.dec({ctl}, true), "<ctl>");
      EXPECT_EQ(t.dec({two, a, spa}), " b ca a");
      for (uint32_t b = 0; b < 256; ++b) {  // byte tokens, in every order of first use
        const int32_t id = t.tok.find(("<0x" + std::string(1, "0123456789ABCDEF"[b >> 4]) +
                                       std::string(1, "0123456789ABCDEF"[b & 15]) + ">").c_str(), 6);
        ASSERT_GE(id, 0);
        EXPECT_EQ(t.dec({id}), std::string(1, char(b))) << b;
      }
    }
  }
}

TEST(SpmTokenizer, AddSpacePrefixAtStartAndAfterSpecialTokens) {
  Vocab v;
  const int32_t a = v.add("a");
  const int32_t spa = v.add(kSp + "a", -0.5f);
  const int32_t ctl = v.add("<c>", -1000.0f, kControl);
  v.add_bytes();
  v.add_space_prefix = true;
  Tok t;
  ASSERT_TRUE(t.init(v).is_ok());
  EXPECT_EQ(t.enc("a"), (Ids{spa}));
  EXPECT_EQ(t.enc("aa<c>a", false, true), (Ids{spa, a, ctl, spa}));
}

TEST(SpmTokenizer, UserDefinedTextsAlwaysMatchLongestFirst) {
  Vocab v;
  const int32_t x = v.add("x"), y = v.add("y"), a = v.add("a");
  v.add("b");
  v.add("c");
  v.add("d");
  const int32_t sp2 = v.add("  ", -1000.0f, kUser), sp3 = v.add("   ", -1000.0f, kUser);
  const int32_t bold = v.add("<b>", -1000.0f, kUser);
  const int32_t ab = v.add("ab", -1000.0f, kUser), bcd = v.add("bcd", -1000.0f, kUser);
  const int32_t b0 = v.add_bytes();
  Tok t;
  ASSERT_TRUE(t.init(v).is_ok());
  EXPECT_EQ(t.enc("x     y"), (Ids{x, sp3, sp2, y}));  // 5 spaces = 3 + 2
  EXPECT_EQ(t.enc("x<b>y"), (Ids{x, bold, y}));
  // Longest over the whole text first, not leftmost-longest: "bcd" wins over the earlier "ab".
  EXPECT_EQ(t.enc("abcd"), (Ids{a, bcd}));
  EXPECT_EQ(t.enc("abab"), (Ids{ab, ab}));
  // User-defined texts decode as they are, and match without parse_special too.
  EXPECT_EQ(t.dec(t.enc("x     <b>abcd")), "x     <b>abcd");
  EXPECT_EQ(t.enc("<b", false, true), (Ids{b0 + '<', t.tok.find("b", 1)}));
}

TEST(SpmTokenizer, ControlTextsOnlyWithParseSpecial) {
  Vocab v;
  const int32_t lt = v.add("<"), c = v.add("c"), gt = v.add(">");
  const int32_t ctl = v.add("<c>", -1000.0f, kControl);
  const int32_t unk = v.add("<unk>", -1000.0f, kUnknown);
  const int32_t unused = v.add("<u>", -1000.0f, kUnused);
  const int32_t bos = v.add("<s>", -1000.0f, kControl);
  v.add("u");
  v.add_bytes();
  v.bos = bos;
  v.unk = unk;
  Tok t;
  ASSERT_TRUE(t.init(v).is_ok());
  EXPECT_EQ(t.enc("<c>"), (Ids{lt, c, gt}));
  EXPECT_EQ(t.enc("<c>", false, true), (Ids{ctl}));
  EXPECT_EQ(t.enc("<c><c>c", true, true), (Ids{bos, ctl, ctl, c}));
  EXPECT_EQ(t.enc("<s>", true, true), (Ids{bos, bos}));  // as llama.cpp: two BOS
  EXPECT_EQ(t.enc("<unk>", false, true), (Ids{unk}));
  // UNUSED texts are not special: "<u>" merges only if the pieces lead there.
  EXPECT_EQ(t.enc("<u>", false, true), (Ids{lt, t.tok.find("u", 1), gt}));
  // Decoding: control and unknown tokens are empty unless asked; unused always.
  EXPECT_EQ(t.dec({bos, ctl, unk, c}), "c");
  EXPECT_EQ(t.dec({bos, ctl, unk, c}, true), "<s><c><unk>c");
  EXPECT_EQ(t.dec({unused}, true), "");
  EXPECT_TRUE(t.tok.is_control(ctl));
  EXPECT_TRUE(t.tok.is_control(unk));
  EXPECT_FALSE(t.tok.is_control(c));
  EXPECT_EQ(t.tok.token_type(unused), kUnused);
  EXPECT_EQ(t.tok.token_type(-1), 0);
  const char* b;
  size_t len;
  EXPECT_FALSE(t.tok.token_bytes(int32_t(v.texts.size()), &b, &len));
}

TEST(SpmTokenizer, EmptyInput) {
  Vocab v;
  v.add("a");
  v.bos = v.add("<bos>", 0.0f, kControl);
  v.add_bytes();
  Tok t;
  ASSERT_TRUE(t.init(v).is_ok());
  EXPECT_EQ(t.enc(""), Ids{});
  EXPECT_EQ(t.enc("", true), (Ids{v.bos}));
  size_t n = 9;
  EXPECT_TRUE(t.tok.encode(nullptr, 0, false, false, nullptr, 0, &n).is_ok());
  EXPECT_EQ(n, 0u);
}

TEST(SpmTokenizer, OutputTooSmallIsAnErrorAndNothingOverflows) {
  Vocab v;
  v.add("a");
  v.bos = v.add("<bos>", 0.0f, kControl);
  const int32_t b0 = v.add_bytes();
  Tok t;
  ASSERT_TRUE(t.init(v).is_ok());
  for (size_t cap = 0; cap < 6; ++cap) {
    std::vector<int32_t> out(cap + 4, -7);
    size_t n = 99;
    const Status st = t.tok.encode("aa\xc3\xa9", 4, true, false, out.data(), cap, &n);  // 5 ids
    if (cap < 5) {
      EXPECT_EQ(st.code(), StatusCode::kPromptTooLong) << cap;
      EXPECT_EQ(n, cap);
    } else {
      EXPECT_TRUE(st.is_ok());
      EXPECT_EQ(n, 5u);
    }
    for (size_t i = cap; i < out.size(); ++i) EXPECT_EQ(out[i], -7) << "cap " << cap << " wrote slot " << i;
    if (cap >= 1) {
      EXPECT_EQ(out[0], v.bos);
    }
    if (cap >= 5) {
      EXPECT_EQ(out[4], b0 + 0xA9);
    }
  }
}

TEST(SpmTokenizer, InputLongerThanSizedIsRefused) {
  Vocab v;
  v.add("a");
  v.add_bytes();
  Tok t;
  ASSERT_TRUE(t.init(v, 16).is_ok());
  EXPECT_EQ(t.tok.max_text_bytes(), 16u);
  std::vector<int32_t> out(64);
  size_t n = 5;
  EXPECT_TRUE(t.tok.encode("aaaaaaaaaaaaaaaa", 16, false, false, out.data(), out.size(), &n).is_ok());
  EXPECT_EQ(n, 16u);
  // 16 spaces (48 bytes as ▁) fit the scratch too.
  EXPECT_TRUE(t.tok.encode("                ", 16, false, false, out.data(), out.size(), &n).is_ok());
  EXPECT_EQ(t.tok.encode("aaaaaaaaaaaaaaaaa", 17, false, false, out.data(), out.size(), &n).code(),
            StatusCode::kPromptTooLong);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(t.tok.encode("a", 1, true, false, out.data(), out.size(), &n).code(), StatusCode::kInvalidArgument);  // no BOS
}

TEST(SpmTokenizer, DuplicateTextsAreRefused) {
  Vocab v;
  v.add("a");
  v.add("ab");
  v.add("b");
  v.add("ab", -2.0f, kUser);
  v.add_bytes();
  Tok t;
  const Status st = t.init(v);
  EXPECT_EQ(st.code(), StatusCode::kBadTokenizer);
  EXPECT_NE(std::strstr(st.message(), "same text"), nullptr) << st.message();
  // Not usable afterwards.
  std::vector<int32_t> out(4);
  size_t n = 0;
  EXPECT_FALSE(t.tok.encode("a", 1, false, false, out.data(), out.size(), &n).is_ok());
}

TEST(SpmTokenizer, InvalidVocabulariesAreRefused) {
  auto base = [] {
    Vocab v;
    v.add("a");
    v.add_bytes();
    return v;
  };
  {
    Vocab v = base();
    v.add("b", -1.0f, 7);
    Tok t;
    EXPECT_EQ(t.init(v).code(), StatusCode::kBadTokenizer);
  }
  {
    Vocab v = base();
    v.add("b", -1.0f, 0);
    Tok t;
    EXPECT_EQ(t.init(v).code(), StatusCode::kBadTokenizer);
  }
  for (float bad : {std::nanf(""), std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
    Vocab v = base();
    v.add("b", bad);
    Tok t;
    EXPECT_EQ(t.init(v).code(), StatusCode::kBadTokenizer) << bad;
  }
  {
    Vocab v = base();
    v.add("<0xZZ>", 0.0f, kByte);
    Tok t;
    const Status st = t.init(v);
    EXPECT_EQ(st.code(), StatusCode::kBadTokenizer);
    EXPECT_NE(std::strstr(st.message(), "<0xNN>"), nullptr) << st.message();
  }
  {
    Vocab v = base();
    v.add(std::string(65, 'x'), -1.0f, kUser);  // longer than kMaxSpecialBytes
    Tok t;
    EXPECT_EQ(t.init(v).code(), StatusCode::kBadTokenizer);
    Vocab w = base();
    w.add(std::string(64, 'x'), -1.0f, kControl);
    EXPECT_TRUE(t.init(w).is_ok());
  }
  {
    Vocab v = base();
    v.bos = int32_t(v.texts.size());
    Tok t;
    EXPECT_EQ(t.init(v).code(), StatusCode::kBadTokenizer);
  }
  {
    Vocab v = base();
    Tok t;
    t.mem.assign(1024, 0);
    t.arena.init(t.mem.data(), t.mem.size());
    EXPECT_EQ(t.tok.init(v.view(), 64, &t.arena).code(), StatusCode::kArenaTooSmall);
    EXPECT_EQ(t.tok.init(v.view(), SpmTokenizer::kMaxTextBytes + 1, &t.arena).code(), StatusCode::kInvalidArgument);
  }
}

TEST(SpmTokenizer, MissingByteTokensFallBackToSingleByteTextsThenUnk) {
  Vocab v;
  const int32_t a = v.add("a");
  const int32_t unk = v.add("<unk>", 0.0f, kUnknown);
  const int32_t raw_c3 = v.add("\xc3");  // a token whose text is one byte (not valid UTF-8 alone)
  v.unk = unk;
  Tok t;
  ASSERT_TRUE(t.init(v).is_ok());
  uint8_t missing[256];
  EXPECT_EQ(t.tok.missing_byte_tokens(missing, sizeof(missing)), 256u);
  EXPECT_EQ(missing[0], 0);
  EXPECT_EQ(missing[255], 255);
  EXPECT_EQ(t.enc("az\xc3\xa9"), (Ids{a, unk, raw_c3, unk}));
  // Without unk, a byte with no fallback is an init error naming it.
  Vocab w;
  w.add("a");
  Tok t2;
  const Status st = t2.init(w);
  EXPECT_EQ(st.code(), StatusCode::kBadTokenizer);
  EXPECT_NE(std::strstr(st.message(), "<0x00>"), nullptr) << st.message();
}

TEST(SpmTokenizer, LlamaCppLoaderOverrides) {
  auto type = [](const std::string& s, uint8_t file) {
    return llama_cpp_token_type(reinterpret_cast<const uint8_t*>(s.data()), s.size(), file);
  };
  EXPECT_EQ(type("</s>", kUser), kControl);
  EXPECT_EQ(type("<|im_end|>", kNormal), kControl);
  EXPECT_EQ(type("<end_of_turn>", kControl), kControl);
  EXPECT_EQ(type("<s>", kUser), kUser);
  EXPECT_EQ(type("</s", kNormal), kNormal);
  EXPECT_EQ(type("hello", kNormal), kNormal);
}

// Cost: counted work per input byte stays flat as the input grows (no
// quadratic case), for inputs aimed at each part: long merge chains, texts
// full of special-text prefixes with a deep vocabulary of them, byte fallback.
TEST(SpmTokenizer, WorkPerByteIsBoundedOnAdversarialInputs) {
  Vocab v;
  std::string run;
  for (int k = 1; k <= 64; ++k) {  // "a".."a"x64, higher score for longer: merges chain
    run += 'a';
    v.add(run, float(k));
  }
  std::string lt;
  for (int k = 1; k <= 64; ++k) {  // "<", "<<", ... user-defined, 64 deep
    lt += '<';
    v.add(lt, -1000.0f, kUser);
  }
  for (int k = 0; k < 2000; ++k) v.add("<" + std::to_string(k) + ">", -1000.0f, kControl);
  v.add(kSp);
  v.add_bytes();
  Tok t;
  const size_t kMax = 1 << 15;
  ASSERT_TRUE(t.init(v, kMax).is_ok());
  const std::string units[] = {"a", "<", "<1", " ", "\xff", "a<a <"};
  for (const std::string& u : units) {
    double per_byte[2] = {0, 0};
    for (int s = 0; s < 2; ++s) {
      const size_t len = (kMax / 4) << s;
      std::string text;
      while (text.size() + u.size() <= len) text += u;
      std::vector<int32_t> out(text.size() + 1);
      size_t n = 0;
      const uint64_t w0 = t.tok.work();
      ASSERT_TRUE(t.tok.encode(text.data(), text.size(), false, true, out.data(), out.size(), &n).is_ok());
      per_byte[s] = double(t.tok.work() - w0) / double(text.size());
    }
    std::string shown;
    for (unsigned char ch : u) {
      char e[8];
      std::snprintf(e, sizeof(e), ch >= 0x20 && ch < 0x7F ? "%c" : "\\x%02x", ch);
      shown += e;
    }
    std::printf("unit \"%s\": work per byte %.1f at %zu bytes, %.1f at %zu\n", shown.c_str(), per_byte[0], kMax / 4,
                per_byte[1], kMax / 2);
    // Depth-64 special walks (2 x 12 probes per level) and 64 claim passes
    // bound it by a constant; the heap adds log n.
    EXPECT_LT(per_byte[0], 3500.0) << u;
    EXPECT_LT(per_byte[1], per_byte[0] * 1.3 + 20) << u;
  }
}

// ---- Differential test against a literal transcription of llama.cpp's algorithm
// (llm_tokenizer_spm_session + tokenizer_st_partition + the SPM branch of
// tokenize), written with std containers, on random vocabularies and texts.
// Special texts get distinct lengths here: llama.cpp's order among
// equal-length special tokens is unspecified (see spm_tokenizer.h).
struct Reference {
  std::map<std::string, int> ids;
  const Vocab* v = nullptr;

  explicit Reference(const Vocab& vocab) : v(&vocab) {
    for (size_t i = 0; i < vocab.texts.size(); ++i) ids.emplace(vocab.texts[i], int(i));
  }
  int find(const std::string& s) const {
    auto it = ids.find(s);
    return it == ids.end() ? -1 : it->second;
  }
  int byte_to_token(uint8_t b) const {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    int id = find(name);
    if (id < 0) id = find(std::string(1, char(b)));
    return id < 0 ? v->unk : id;
  }
  void session(const std::string& text, std::vector<int>* out) const {
    struct Sym { int prev, next; size_t off, n; };
    struct Big { int left, right; float score; size_t size; };
    std::vector<Sym> sym;
    size_t offs = 0;
    int index = 0;
    static const uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    while (offs < text.size()) {
      Sym s;
      s.off = offs;
      s.n = std::min<size_t>(kLen[uint8_t(text[offs]) >> 4], text.size() - offs);
      offs += s.n;
      s.prev = index - 1;
      s.next = offs == text.size() ? -1 : index + 1;
      ++index;
      sym.push_back(s);
    }
    auto cmp = [](const Big& l, const Big& r) { return l.score < r.score || (l.score == r.score && l.left > r.left); };
    std::priority_queue<Big, std::vector<Big>, decltype(cmp)> q(cmp);
    auto try_add = [&](int l, int r) {
      if (l == -1 || r == -1) return;
      const std::string s = text.substr(sym[l].off, sym[l].n + sym[r].n);
      const int id = find(s);
      if (id < 0) return;
      q.push(Big{l, r, v->scores[id], s.size()});
    };
    for (int i = 1; i < int(sym.size()); ++i) try_add(i - 1, i);
    while (!q.empty()) {
      const Big b = q.top();
      q.pop();
      Sym& l = sym[b.left];
      Sym& r = sym[b.right];
      if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = b.left;
      try_add(l.prev, b.left);
      try_add(b.left, l.next);
    }
    for (int i = 0; i != -1 && !sym.empty(); i = sym[i].next) {
      const std::string s = text.substr(sym[i].off, sym[i].n);
      const int id = find(s);
      if (id >= 0) {
        out->push_back(id);
      } else {
        for (unsigned char c : s) out->push_back(byte_to_token(c));
      }
    }
  }
  std::vector<int> encode(const std::string& raw, bool add_bos, bool parse_special) const {
    struct Frag { bool token; int id; size_t off, len; };
    std::list<Frag> buf;
    if (!raw.empty()) buf.push_back(Frag{false, -1, 0, raw.size()});
    std::vector<int> specials;
    for (size_t i = 0; i < v->texts.size(); ++i) {
      const uint8_t t = v->types[i];
      if ((t == kControl || t == kUser || t == kUnknown) && !v->texts[i].empty()) specials.push_back(int(i));
    }
    std::stable_sort(specials.begin(), specials.end(),
                     [&](int a, int b) { return v->texts[a].size() > v->texts[b].size(); });
    for (int sid : specials) {
      if (!parse_special && v->types[sid] != kUser) continue;
      const std::string& st = v->texts[sid];
      for (auto it = buf.begin(); it != buf.end(); ++it) {
        if (it->token) continue;
        size_t off = it->off, len = it->len;
        auto pos = it;
        bool erased = false;
        while (true) {
          const size_t m = std::string_view(raw.data(), off + len).find(st, off);
          if (m == std::string::npos) break;
          if (m > off) buf.insert(pos, Frag{false, -1, off, m - off});
          buf.insert(pos, Frag{true, sid, 0, 0});
          const size_t end = m + st.size();
          const size_t rest = off + len - end;
          off = end;
          len = rest;
          if (rest == 0) break;
          // the remaining right part replaces the fragment, searched again
        }
        if (off != it->off || len != it->len) {
          if (len > 0) {
            it->off = off;
            it->len = len;
          } else {
            it = buf.erase(it);
            --it;
            erased = true;
          }
        }
        (void)erased;
      }
    }
    std::vector<int> out;
    bool prev_special = true;
    if (add_bos) out.push_back(v->bos);
    for (const Frag& f : buf) {
      if (f.token) {
        out.push_back(f.id);
        prev_special = true;
        continue;
      }
      std::string text = (v->add_space_prefix && prev_special) ? " " : "";
      text += raw.substr(f.off, f.len);
      std::string esc;
      for (char c : text) esc += c == ' ' ? kSp : std::string(1, c);
      session(esc, &out);
      prev_special = false;
    }
    return out;
  }
};

TEST(SpmTokenizer, AgreesWithALiteralTranscriptionOfLlamaCpp) {
  std::mt19937 rng(20261206);
  const std::vector<std::string> chars = {"a", "b", "c", kSp, "\xc3\xa9", "<", ">"};
  const std::vector<std::string> text_chars = {"a", "b", "c", " ", " ", "\xc3\xa9", "<", ">", "\xe4", "\x80", "\xc3", "\n"};
  auto pick = [&](size_t n) { return size_t(rng() % n); };
  size_t cases = 0, differ = 0;
  for (int round = 0; round < 300; ++round) {
    Vocab v;
    std::set<std::string> seen;
    auto add_unique = [&](const std::string& t, float score, uint8_t type) {
      if (t.empty() || !seen.insert(t).second) return -1;
      return v.add(t, score, type);
    };
    for (const std::string& c : chars) {
      if (pick(4) != 0) add_unique(c, -float(pick(3)), kNormal);
    }
    const int n_normal = 5 + int(pick(40));
    for (int k = 0; k < n_normal; ++k) {
      std::string t;
      const size_t len = 2 + pick(4);
      for (size_t i = 0; i < len; ++i) t += chars[pick(chars.size())];
      add_unique(t, -float(pick(4)), kNormal);  // few distinct scores: many ties
    }
    // Specials of distinct lengths over a small alphabet (overlaps of different lengths).
    const char* sp_chars = "ab< \n";
    std::set<size_t> lens;
    const int n_special = int(pick(6));
    for (int k = 0; k < n_special; ++k) {
      const size_t len = 1 + pick(6);
      if (!lens.insert(len).second) continue;
      std::string t;
      for (size_t i = 0; i < len; ++i) t += sp_chars[pick(5)];
      const uint8_t type = pick(3) == 0 ? kControl : (pick(5) == 0 ? kUnknown : kUser);
      if (add_unique(t, -1000.0f, type) < 0) lens.erase(len);
    }
    if (pick(5) != 0) {
      for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", b);
        if (pick(10) != 0) add_unique(name, 0.0f, kByte);
      }
    }
    v.unk = add_unique("<unk>", 0.0f, kUnknown);
    v.bos = add_unique("<bos>", 0.0f, kControl);
    v.add_space_prefix = pick(4) == 0;
    Tok t;
    const Status st = t.init(v, 256);
    ASSERT_TRUE(st.is_ok()) << st.message();
    const Reference ref(v);
    for (int k = 0; k < 40; ++k) {
      std::string text;
      const size_t len = pick(30);
      for (size_t i = 0; i < len; ++i) text += text_chars[pick(text_chars.size())];
      const bool bos = pick(2), special = pick(2);
      const std::vector<int> want = ref.encode(text, bos, special);
      const Ids got = t.enc(text, bos, special);
      ++cases;
      if (got != Ids(want.begin(), want.end())) {
        if (++differ <= 5) {
          std::string w, g, h;
          for (int id : want) w += " " + std::to_string(id);
          for (int id : got) g += " " + std::to_string(id);
          for (unsigned char c : text) {
            char e[4];
            std::snprintf(e, sizeof(e), "%02x", c);
            h += e;
          }
          ADD_FAILURE() << "round " << round << " text " << h << " bos " << bos << " special " << special
                        << "\n  want" << w << "\n  got " << g;
        }
      }
    }
  }
  std::printf("differential: %zu/%zu random cases agree with the literal llama.cpp algorithm\n", cases - differ,
              cases);
  EXPECT_EQ(differ, 0u);
}

TEST(SpmTokenizer, UninitializedEncodeFails) {
  SpmTokenizer t;
  int32_t out[4];
  size_t n = 3;
  EXPECT_EQ(t.encode("a", 1, false, false, out, 4, &n).code(), StatusCode::kInternal);
  EXPECT_EQ(n, 0u);
}

}  // namespace
}  // namespace tern
