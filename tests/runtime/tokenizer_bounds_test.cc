// Resource bounds of the tokenizer (issue 19 item 2): a tokenizer section from
// a stranger costs O(s log s) work at init and O(log m) per merge lookup at
// encode, whatever its contents. Adversarial sections are built here at three
// sizes and the work is counted with Tokenizer::work() (comparisons and
// binary-search steps), never timed.
//
// The shapes:
//  - "aimed at the old hash": every merge pair lands in slot 0 of the
//    fixed multiplicative hash with linear probing that init used before
//    (hash_pair = high half of ((left << 32 | right) * 0x9E3779B97F4A7C15),
//    masked to a table of the power of two >= 2 x n_merges), plus a quarter
//    as many copies of one pair. That table took m^2/2 probes to build and a
//    lookup that fell into the cluster walked it to its end;
//  - "one giant group": every merge has the same left token (one group of m
//    right ids to sort and search);
//  - many special tokens sharing prefixes, matched in a text full of them.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "arena/arena.h"
#include "runtime/blob_format.h"
#include "runtime/tokenizer.h"
#include "runtime/utf8.h"

namespace tern {
namespace {

// GPT-2 byte -> alphabet character, as UTF-8.
std::string byte_char(uint8_t b) {
  int extra = 0, cp = -1;
  for (int i = 0; i <= b; ++i) {
    const bool printable = (i >= 33 && i <= 126) || (i >= 161 && i <= 172) || i >= 174;
    cp = printable ? i : 256 + extra++;
  }
  uint8_t u[4];
  const size_t n = utf8_encode(uint32_t(cp), u);
  return std::string(reinterpret_cast<char*>(u), n);
}

// Lowercase base-26 digits of v, at least 4 of them.
std::string b26(uint32_t v) {
  std::string s;
  for (int i = 0; i < 4 || v != 0; ++i, v /= 26) s.insert(s.begin(), char('a' + v % 26));
  return s;
}

struct Section {
  std::vector<std::string> texts;
  std::vector<uint8_t> types;
  std::vector<std::array<uint32_t, 3>> merges;

  uint32_t add(const std::string& t, uint8_t type = 1) {
    texts.push_back(t);
    types.push_back(type);
    return uint32_t(texts.size() - 1);
  }
  std::vector<uint8_t> bytes() const {
    std::string pool;
    for (const std::string& t : texts) pool += t;
    const uint32_t n = uint32_t(texts.size());
    std::vector<uint8_t> s(24 + 4 * (size_t(n) + 1) + ((n + 3) & ~3u) + 12 * merges.size() + pool.size(), 0);
    uint8_t* p = s.data();
    blob::store_u32(p, 1);
    blob::store_u32(p + 4, 1);
    blob::store_u32(p + 8, n);
    blob::store_u32(p + 12, uint32_t(merges.size()));
    blob::store_u32(p + 16, uint32_t(pool.size()));
    p += 24;
    uint32_t off = 0;
    for (const std::string& t : texts) {
      blob::store_u32(p, off);
      p += 4;
      off += uint32_t(t.size());
    }
    blob::store_u32(p, off);
    p += 4;
    std::memcpy(p, types.data(), n);
    p += (n + 3) & ~3u;
    for (const auto& m : merges) {
      for (uint32_t v : m) {
        blob::store_u32(p, v);
        p += 4;
      }
    }
    std::memcpy(p, pool.data(), pool.size());
    return s;
  }
};

uint32_t pow2_at_least(uint64_t v) {
  uint32_t p = 16;
  while (p < v) p <<= 1;
  return p;
}

constexpr uint64_t kOldHashMul = 0x9E3779B97F4A7C15ull;
uint32_t old_slot(uint32_t a, uint32_t b, uint32_t table) {
  return uint32_t(((uint64_t(a) << 32 | b) * kOldHashMul) >> 32) & (table - 1);
}

// m distinct merges whose pairs all hash to slot 0 of the old table, then
// m / 4 copies of the first. Token ids: [0, T) left parts "A<id>", [T, T + m)
// right parts "B<i>", [T + m, T + 2m) the merged texts, then the 256 byte
// tokens (so text can be encoded).
Section aimed_at_old_hash(uint32_t m) {
  const uint32_t dups = m / 4;
  const uint32_t table = pow2_at_least(2ull * (m + dups));
  const uint32_t k_lo = uint32_t(kOldHashMul);
  uint32_t inv = k_lo;  // k_lo^-1 mod 2^32 (Newton; k_lo is odd)
  for (int i = 0; i < 5; ++i) inv *= 2u - k_lo * inv;
  Section s;
  for (uint32_t id = 0; id < table; ++id) s.add("A" + b26(id));
  for (uint32_t i = 0; i < m; ++i) s.add("B" + b26(i));
  for (uint32_t i = 0; i < m; ++i) {
    const uint32_t b = table + i;
    const uint32_t a = (0u - uint32_t((uint64_t(b) * kOldHashMul) >> 32)) * inv & (table - 1);
    const uint32_t c = s.add(s.texts[a] + s.texts[b]);
    s.merges.push_back({a, b, c});
  }
  for (uint32_t i = 0; i < dups; ++i) s.merges.push_back(s.merges[0]);
  for (int b = 0; b < 256; ++b) s.add(byte_char(uint8_t(b)));
  return s;
}

// m merges (byte "Z", right_i): one group of m, searched by every lookup
// whose left symbol is a "Z" in the text. Ids: the 256 byte tokens, then the
// right parts "B<i>", then the merged texts.
constexpr uint32_t kZ = 'Z';
constexpr uint32_t kFirstRight = 256;
Section one_giant_group(uint32_t m) {
  Section s;
  for (int b = 0; b < 256; ++b) s.add(byte_char(uint8_t(b)));
  for (uint32_t i = 0; i < m; ++i) s.add("B" + b26(i));
  // Listed in descending right id, so the group arrives in reverse order.
  for (uint32_t i = m; i-- > 0;) {
    const uint32_t b = kFirstRight + i;
    s.merges.push_back({kZ, b, s.add("Z" + s.texts[b])});
  }
  return s;
}

struct Built {
  std::vector<uint8_t> section;
  std::vector<uint8_t> memory;
  Arena arena;
  Tokenizer tok;
  Status status;
  explicit Built(const Section& s) : section(s.bytes()) {
    memory.resize(Tokenizer::arena_bytes(uint32_t(s.texts.size()), uint32_t(s.merges.size())));
    arena.init(memory.data(), memory.size());
    status = tok.init(section.data(), section.size(), &arena);
  }
};

double n_log_n(double n) { return n * std::log2(n); }

// Init work at three sizes: at most kInitPerSlogS x s log2 s (s = tokens +
// merges), and the factor at most doubling from the smallest size (16x the
// merges): introsort's constant depends on the input's order (1.3-2.4 here),
// while m^2 work (the old table: m^2/2 probes) has the factor grow ~16x.
constexpr double kInitPerSlogS = 6.0;

template <typename Make>
void check_init_bound(const char* shape, Make make) {
  double first_ratio = 0;
  for (uint32_t m : {4096u, 16384u, 65536u}) {
    const Section sec = make(m);
    Built b(sec);
    ASSERT_TRUE(b.status.is_ok()) << shape << " m=" << m << ": " << b.status.message();
    const double s = double(sec.texts.size() + sec.merges.size());
    const double ratio = double(b.tok.work()) / n_log_n(s);
    std::printf("%s: %zu tokens, %zu merges: init work %llu = %.2f x s log2 s\n", shape, sec.texts.size(),
                sec.merges.size(), (unsigned long long)b.tok.work(), ratio);
    EXPECT_LE(ratio, kInitPerSlogS) << shape << " m=" << m;
    if (first_ratio == 0) first_ratio = ratio;
    EXPECT_LE(ratio, 2.0 * first_ratio) << shape << " m=" << m << ": grows faster than s log s";
  }
}

TEST(TokenizerBounds, AimedSetReallyCollidesInTheOldTable) {
  const Section s = aimed_at_old_hash(4096);
  const uint32_t table = pow2_at_least(2ull * s.merges.size());
  for (const auto& m : s.merges) ASSERT_EQ(old_slot(m[0], m[1], table), 0u) << m[0] << " " << m[1];
}

TEST(TokenizerBounds, InitAimedAtTheOldHash) { check_init_bound("aimed at the old hash", aimed_at_old_hash); }

TEST(TokenizerBounds, InitOneGiantGroup) { check_init_bound("one giant group", one_giant_group); }

// Encode: every lookup is O(log m) steps. Each byte starts a symbol; lookups
// are the n - 1 initial pairs plus 2 per merge (at most n - 1 merges): < 3 per
// byte, each at most log2(m) + 2 steps.
TEST(TokenizerBounds, EncodeLookupsAreLogarithmic) {
  std::string text;
  uint32_t state = 12345;
  for (int i = 0; i < 16384; ++i) {
    state = state * 1664525u + 1013904223u;
    text.push_back("abcdefghijklmnopqrstuvwxyzABZZZZZZZZ "[(state >> 16) % 37]);
  }
  for (uint32_t m : {4096u, 16384u, 65536u}) {
    for (int shape = 0; shape < 2; ++shape) {
      const Section sec = shape == 0 ? aimed_at_old_hash(m) : one_giant_group(m);
      Built b(sec);
      ASSERT_TRUE(b.status.is_ok()) << b.status.message();
      const uint64_t before = b.tok.work();
      std::vector<int32_t> out(text.size());
      size_t n = 0;
      ASSERT_TRUE(b.tok.encode(text.data(), text.size(), true, out.data(), out.size(), &n).is_ok());
      const uint64_t work = b.tok.work() - before;
      const double bound = 3.0 * double(text.size()) * (std::log2(double(sec.merges.size())) + 2);
      std::printf("shape %d, %zu merges: encode of %zu bytes, work %llu (bound %.0f)\n", shape, sec.merges.size(),
                  text.size(), (unsigned long long)work, bound);
      EXPECT_LE(double(work), bound) << "shape " << shape << " m=" << m;
    }
  }
}

// The giant group's merges fire when the text holds them: "ZB<i>" pieces
// encode to the merged token, so the lookups above were not all misses.
TEST(TokenizerBounds, GiantGroupMergesFire) {
  Section sec = one_giant_group(64);
  // Byte-level merges that build "B<i>" from bytes, ranked before the group.
  const uint32_t first_right = kFirstRight;
  auto byte_id = [](char c) { return uint32_t(uint8_t(c)); };
  std::vector<std::array<uint32_t, 3>> merges;
  // "B" + b26(i) is built left to right: "Ba", "Baa", ... as extra tokens.
  for (uint32_t i = 0; i < 64; ++i) {
    const std::string t = sec.texts[first_right + i];
    uint32_t left = byte_id(t[0]);
    for (size_t k = 1; k < t.size(); ++k) {
      const std::string prefix = t.substr(0, k + 1);
      uint32_t id = 0;
      bool found = false;
      for (uint32_t j = 0; j < sec.texts.size() && !found; ++j) found = sec.texts[j] == prefix && (id = j, true);
      if (!found) id = sec.add(prefix);
      bool have = false;
      for (const auto& mm : merges) have = have || (mm[0] == left && mm[1] == byte_id(t[k]));
      if (!have) merges.push_back({left, byte_id(t[k]), id});
      left = id;
    }
  }
  for (const auto& mm : sec.merges) merges.push_back(mm);
  sec.merges = merges;
  Built b(sec);
  ASSERT_TRUE(b.status.is_ok()) << b.status.message();
  const std::string piece = "Z" + sec.texts[first_right + 37];
  std::vector<int32_t> out(piece.size());
  size_t n = 0;
  ASSERT_TRUE(b.tok.encode(piece.data(), piece.size(), false, out.data(), out.size(), &n).is_ok());
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(b.tok.find(piece.data(), piece.size()), out[0]);
}

// Special tokens: 1024 texts sharing the prefix "<|" and more, a text full of
// near-misses. Per text position the matcher narrows a sorted range byte by
// byte: at most (longest special + 1) x 2 x (log2(count) + 1) steps.
TEST(TokenizerBounds, SpecialTokenMatchingIsBounded) {
  Section sec;
  for (int b = 0; b < 256; ++b) sec.add(byte_char(uint8_t(b)));
  size_t longest = 0;
  for (uint32_t i = 0; i < Tokenizer::kMaxSpecialTokens; ++i) {
    const std::string t = "<|" + b26(i) + "|>";
    longest = t.size() > longest ? t.size() : longest;
    sec.add(t, 3);
  }
  Built b(sec);
  ASSERT_TRUE(b.status.is_ok()) << b.status.message();
  EXPECT_LE(double(b.tok.work()), kInitPerSlogS * n_log_n(double(sec.texts.size())));
  std::string text;
  for (uint32_t i = 0; text.size() < 16384; ++i) text += "<|" + b26(i * 7919u % 2048u) + (i % 3 ? "|>" : "|");
  const uint64_t before = b.tok.work();
  std::vector<int32_t> out(text.size());
  size_t n = 0;
  ASSERT_TRUE(b.tok.encode(text.data(), text.size(), true, out.data(), out.size(), &n).is_ok());
  const uint64_t work = b.tok.work() - before;
  const double bound = double(text.size()) * double(longest + 1) * 2 * (std::log2(1024.0) + 1);
  std::printf("specials: encode of %zu bytes, %zu tokens, work %llu (bound %.0f)\n", text.size(), n,
              (unsigned long long)work, bound);
  EXPECT_LE(double(work), bound);
  EXPECT_GT(n, 100u);
}

}  // namespace
}  // namespace tern
