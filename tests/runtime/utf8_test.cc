// UTF-8 decode / sanitize / streaming: the maximal-subpart replacement rule
// (one U+FFFD per invalid unit, as Python's decode('utf-8', 'replace')).
#include "runtime/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace tern {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

std::string sanitize(const std::string& in) {
  std::string out(utf8_sanitized_max(in.size()), '\0');
  out.resize(utf8_sanitize(in.data(), in.size(), &out[0], out.size()));
  return out;
}

struct Case {
  const char* name;
  std::string in;
  std::string want;
};

TEST(Utf8, SanitizeCases) {
  const Case cases[] = {
      {"empty", "", ""},
      {"ascii", "hello", "hello"},
      {"nul kept", std::string("a\0b", 3), std::string("a\0b", 3)},
      {"2-byte", "caf\xC3\xA9", "caf\xC3\xA9"},
      {"3-byte", "\xE6\x97\xA5", "\xE6\x97\xA5"},
      {"4-byte", "\xF0\x9F\xA4\x97", "\xF0\x9F\xA4\x97"},
      {"max code point", "\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF"},
      {"stray continuation", "a\x80z", "a" + kFffd + "z"},
      {"0xFF", "\xFF", kFffd},
      {"0xFE 0xFF", "\xFE\xFF", kFffd + kFffd},
      {"overlong C0", "\xC0\xAF", kFffd + kFffd},
      {"overlong C1", "\xC1\xBF", kFffd + kFffd},
      {"overlong E0", "\xE0\x80\xAF", kFffd + kFffd + kFffd},
      {"overlong F0", "\xF0\x80\x80\xAF", kFffd + kFffd + kFffd + kFffd},
      {"surrogate", "\xED\xA0\x80", kFffd + kFffd + kFffd},
      {"above U+10FFFF", "\xF4\x90\x80\x80", kFffd + kFffd + kFffd + kFffd},
      {"F5 lead", "\xF5\x80\x80\x80", kFffd + kFffd + kFffd + kFffd},
      {"truncated 2 at end", "a\xC3", "a" + kFffd},
      {"truncated 3 at end", "a\xE6\x97", "a" + kFffd},
      {"truncated 4 at end", "\xF0\x9F\xA4", kFffd},
      {"truncated then ascii", "\xE6\x97z", kFffd + "z"},
      {"truncated then lead", "\xF0\x9F\xC3\xA9", kFffd + "\xC3\xA9"},
      {"replacement char itself", kFffd, kFffd},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(sanitize(c.in), c.want) << c.name;
    EXPECT_EQ(utf8_valid(c.in.data(), c.in.size()), c.in == c.want) << c.name;
  }
}

TEST(Utf8, SanitizeSmallCapStopsAtWholeCharacter) {
  const std::string in = "ab\xE6\x97\xA5\xFF";
  char out[16];
  EXPECT_EQ(utf8_sanitize(in.data(), in.size(), out, 4), 2u);  // the 3-byte char does not fit
  EXPECT_EQ(utf8_sanitize(in.data(), in.size(), out, 5), 5u);
  EXPECT_EQ(utf8_sanitize(in.data(), in.size(), out, 7), 5u);  // U+FFFD needs 3
  EXPECT_EQ(utf8_sanitize(in.data(), in.size(), out, 8), 8u);
}

TEST(Utf8, DecodeReportsIncompletePrefix) {
  uint32_t cp;
  bool incomplete;
  const uint8_t a[] = {0xF0, 0x9F};
  EXPECT_EQ(utf8_decode(a, 2, &cp, &incomplete), 2u);
  EXPECT_TRUE(incomplete);
  EXPECT_EQ(cp, kUtf8Invalid);
  const uint8_t b[] = {0xF0, 0x41};
  EXPECT_EQ(utf8_decode(b, 2, &cp, &incomplete), 1u);
  EXPECT_FALSE(incomplete);
  const uint8_t c[] = {0xE2, 0x82, 0xAC};
  EXPECT_EQ(utf8_decode(c, 3, &cp, &incomplete), 3u);
  EXPECT_EQ(cp, 0x20ACu);
}

TEST(Utf8, EncodeRoundTrip) {
  for (uint32_t cp : {0u, 0x41u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xFFFDu, 0x10000u, 0x10FFFFu}) {
    uint8_t buf[4];
    const size_t n = utf8_encode(cp, buf);
    uint32_t back;
    EXPECT_EQ(utf8_decode(buf, n, &back), n) << std::hex << cp;
    EXPECT_EQ(back, cp);
  }
}

// Feed `in` to a stream split at every pair of cut points; the output must
// equal sanitize(in) whatever the split (incomplete sequences wait).
TEST(Utf8, StreamEqualsSanitizeForEverySplit) {
  const std::string inputs[] = {
      "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\xA4\x97!",
      "\xF0\x9F\xA4\xFF\xC3\xE6\x97z\xED\xA0\x80\xF4\x90\x80\x80\xC0\xAF",
      "\xE6\x97",
      "a\xF0\x9F\xA4",
  };
  for (const std::string& in : inputs) {
    const std::string want = sanitize(in);
    for (size_t i = 0; i <= in.size(); ++i) {
      for (size_t j = i; j <= in.size(); ++j) {
        Utf8Stream s;
        std::string got;
        char buf[64];
        size_t n;
        const size_t cuts[] = {0, i, j, in.size()};
        for (int k = 0; k < 3; ++k) {
          ASSERT_TRUE(s.feed(in.data() + cuts[k], cuts[k + 1] - cuts[k], buf, sizeof(buf), &n));
          got.append(buf, n);
        }
        got.append(buf, s.finish(buf, sizeof(buf)));
        EXPECT_EQ(got, want) << "cuts " << i << " " << j << " input size " << in.size();
      }
    }
  }
}

TEST(Utf8, StreamHoldsIncompleteUntilNextPiece) {
  Utf8Stream s;
  char buf[64];
  size_t n;
  ASSERT_TRUE(s.feed("a\xF0\x9F", 3, buf, sizeof(buf), &n));
  EXPECT_EQ(std::string(buf, n), "a");
  EXPECT_EQ(s.pending_len, 2);
  ASSERT_TRUE(s.feed("\xA4", 1, buf, sizeof(buf), &n));
  EXPECT_EQ(n, 0u);
  ASSERT_TRUE(s.feed("\x97z", 2, buf, sizeof(buf), &n));
  EXPECT_EQ(std::string(buf, n), "\xF0\x9F\xA4\x97z");
  EXPECT_EQ(s.finish(buf, sizeof(buf)), 0u);
}

TEST(Utf8, StreamRefusesSmallOutput) {
  Utf8Stream s;
  char buf[64];
  size_t n = 99;
  EXPECT_FALSE(s.feed("abc", 3, buf, Utf8Stream::max_output(3) - 1, &n));
  EXPECT_EQ(n, 0u);
  EXPECT_TRUE(s.feed("abc", 3, buf, Utf8Stream::max_output(3), &n));
  EXPECT_EQ(n, 3u);
}

}  // namespace
}  // namespace tern
