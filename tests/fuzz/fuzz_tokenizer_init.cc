// Fuzz target: Tokenizer::init on vocabularies and merge tables generated from
// the fuzz input, then encode. Where fuzz_tokenizer explores hostile text on
// the real vocabulary, this one explores hostile tokenizer sections: duplicate
// texts and merges, verbatim (special) tokens, missing byte tokens, and (flag)
// a few bit flips in the finished section.
//
// Input (ByteReader, zeros past the end):
//   u8 flags: bit 0 allow_special, bit 1 GPT-2 pre-split, bit 2 all 256 byte
//             tokens (else only the 16 bytes of kRaw), bit 3 flip bits in the
//             section, bit 4 keep duplicate texts (else skipped when generated)
//   u8 extra tokens (% 48), each: u8 selector (length 1 + sel % 6, type from
//             sel >> 4), then one u8 per byte (% 16, an index into kRaw)
//   u8 merges (% 64), each: u8 selector (255 = copy an earlier merge, index u8),
//             else u16 left and u16 right (indices into the normal tokens); the
//             merged text becomes a new token when the vocabulary lacks it
//             (skipped if longer than 64 bytes)
//   if bit 3: u8 flips (% 4), each u16 position and u8 bit
//   the rest: text to encode (at most 1024 bytes)
// Checks, when init succeeds (else: the error is kBadTokenizer and encode refuses):
//   - arena use within arena_bytes(); init work() within 6 s log2 s + the byte lookups;
//   - every id's token_bytes matches the section (byte-level decode or verbatim);
//   - encode of three strings (the input text, a concatenation of token texts,
//     special texts around the input) equals an independent naive BPE
//     (lowest rank first, leftmost on ties; leftmost-longest special split),
//     ids in range, encode work within its O(len log m) bound;
//   - with all 256 byte tokens and no verbatim token among them or in a merge:
//     the token bytes give back the text exactly (byte fallback round trip).
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "arena/arena.h"
#include "runtime/blob_format.h"
#include "runtime/pretokenizer.h"
#include "runtime/tokenizer.h"
#include "runtime/utf8.h"
#include "tests/fuzz/fuzz_support.h"

using namespace tern;

namespace {

constexpr uint8_t kRaw[16] = {'a', 'b', 'c', 'd', ' ', '<', '|', '>', '\n', '0', '1', 'x', 0xC3, 0xA9, 0xE2, 0x82};
constexpr size_t kMaxText = 1024;

// GPT-2 bytes_to_unicode, and its inverse (-1: not in the alphabet).
struct ByteMap {
  uint32_t cp[256];
  int byte_of[324];
  ByteMap() {
    for (int& x : byte_of) x = -1;
    uint32_t extra = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      cp[b] = printable ? b : 256 + extra++;
      byte_of[cp[b]] = int(b);
    }
  }
};
const ByteMap kMap;
uint32_t cp_of_byte(uint8_t b) { return kMap.cp[b]; }
std::string byte_char(uint8_t b) {
  uint8_t u[4];
  const size_t n = utf8_encode(cp_of_byte(b), u);
  return std::string(reinterpret_cast<char*>(u), n);
}
std::string alpha(const std::string& raw) {
  std::string s;
  for (unsigned char c : raw) s += byte_char(c);
  return s;
}
bool verbatim_type(uint8_t t) { return t == 2 || t == 3 || t == 4 || t == 5; }
bool special_type(uint8_t t) { return t == 3 || t == 4; }

struct Vocab {
  std::vector<std::string> texts;  // as stored in the section
  std::vector<uint8_t> types;
  std::vector<uint32_t> merges;  // 3 per merge
};

std::vector<uint8_t> section_bytes(const Vocab& v) {
  std::string pool;
  for (const std::string& t : v.texts) pool += t;
  const uint32_t n = uint32_t(v.texts.size()), m = uint32_t(v.merges.size() / 3);
  std::vector<uint8_t> s(24 + 4 * (size_t(n) + 1) + ((n + 3) & ~3u) + 12 * size_t(m) + pool.size(), 0);
  uint8_t* p = s.data();
  blob::store_u32(p, 1);
  blob::store_u32(p + 4, 1);
  blob::store_u32(p + 8, n);
  blob::store_u32(p + 12, m);
  blob::store_u32(p + 16, uint32_t(pool.size()));
  p += 24;
  uint32_t off = 0;
  for (const std::string& t : v.texts) {
    blob::store_u32(p, off);
    p += 4;
    off += uint32_t(t.size());
  }
  blob::store_u32(p, off);
  p += 4;
  std::memcpy(p, v.types.data(), n);
  p += (n + 3) & ~3u;
  for (uint32_t x : v.merges) {
    blob::store_u32(p, x);
    p += 4;
  }
  if (!pool.empty()) std::memcpy(p, pool.data(), pool.size());
  return s;
}

// The section read back (after any bit flips), as the reference sees it.
// Only called when init accepted it, so the layout is sound.
FUZZ_NO_COVERAGE Vocab parse_section(const std::vector<uint8_t>& s) {
  Vocab v;
  const uint32_t n = blob::load_u32(&s[8]), m = blob::load_u32(&s[12]);
  const size_t offs = 24, types = offs + 4 * (size_t(n) + 1), merges = types + ((n + 3) & ~3u);
  const size_t pool = merges + 12 * size_t(m);
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t a = blob::load_u32(&s[offs + 4 * i]), b = blob::load_u32(&s[offs + 4 * i + 4]);
    v.texts.emplace_back(reinterpret_cast<const char*>(&s[pool + a]), b - a);
    v.types.push_back(s[types + i]);
  }
  for (size_t k = 0; k < 3 * size_t(m); ++k) v.merges.push_back(blob::load_u32(&s[merges + 4 * k]));
  return v;
}

// The independent reference: naive, quadratic, obviously right. Its lookups
// use std::map (the lowest rank of a pair, the last id of a byte's text, the
// list of special ids) only so that it does not dominate the exec rate; the
// merge loop and the special split stay the naive scans.
struct Reference {
  const Vocab& v;
  std::vector<std::string> bytes;  // decoded bytes of each token
  int32_t byte_token[256];
  std::map<std::pair<int32_t, int32_t>, uint32_t> lowest_rank;
  std::vector<size_t> specials;  // ids of special tokens with a text, in id order

  FUZZ_NO_COVERAGE explicit Reference(const Vocab& voc) : v(voc) {
    for (size_t i = 0; i < v.texts.size(); ++i) {
      if (verbatim_type(v.types[i])) {
        bytes.push_back(v.texts[i]);
        continue;
      }
      std::string b;
      const uint8_t* t = reinterpret_cast<const uint8_t*>(v.texts[i].data());
      for (size_t k = 0; k < v.texts[i].size();) {
        uint32_t cp;
        k += utf8_decode(t + k, v.texts[i].size() - k, &cp);
        if (cp < 324 && kMap.byte_of[cp] >= 0) b.push_back(char(kMap.byte_of[cp]));
      }
      bytes.push_back(b);
    }
    std::map<std::string, int32_t> last_id;  // a text's last id
    for (size_t i = 0; i < v.texts.size(); ++i) last_id[v.texts[i]] = int32_t(i);
    for (int b = 0; b < 256; ++b) {
      const auto it = last_id.find(byte_char(uint8_t(b)));
      byte_token[b] = it == last_id.end() ? -1 : it->second;
    }
    for (size_t r = 0; r < v.merges.size() / 3; ++r) {
      lowest_rank.emplace(std::make_pair(int32_t(v.merges[3 * r]), int32_t(v.merges[3 * r + 1])), uint32_t(r));
    }
    for (size_t i = 0; i < v.texts.size(); ++i) {
      if (special_type(v.types[i]) && !v.texts[i].empty()) specials.push_back(i);
    }
  }
  FUZZ_NO_COVERAGE uint32_t rank(int32_t a, int32_t b) const {
    const auto it = lowest_rank.find({a, b});  // emplace kept the first (lowest) rank
    return it == lowest_rank.end() ? UINT32_MAX : it->second;
  }
  FUZZ_NO_COVERAGE void bpe(const uint8_t* t, size_t len, std::vector<int32_t>* out) const {
    std::vector<int32_t> syms;
    for (size_t i = 0; i < len; ++i) {
      if (byte_token[t[i]] >= 0) syms.push_back(byte_token[t[i]]);
    }
    for (;;) {
      uint32_t best = UINT32_MAX;
      size_t at = 0;
      for (size_t i = 0; i + 1 < syms.size(); ++i) {
        const uint32_t r = rank(syms[i], syms[i + 1]);
        if (r < best) best = r, at = i;
      }
      if (best == UINT32_MAX) break;
      syms[at] = int32_t(v.merges[3 * best + 2]);
      syms.erase(syms.begin() + long(at) + 1);
    }
    out->insert(out->end(), syms.begin(), syms.end());
  }
  FUZZ_NO_COVERAGE void plain(const uint8_t* t, size_t len, PreSplit mode, std::vector<int32_t>* out) const {
    for (size_t pos = 0; pos < len;) {
      const size_t piece = next_piece(t, len, pos, mode);
      bpe(t + pos, piece, out);
      pos += piece;
    }
  }
  FUZZ_NO_COVERAGE std::vector<int32_t> encode(const std::string& s, bool special, PreSplit mode) const {
    std::vector<int32_t> out;
    const uint8_t* t = reinterpret_cast<const uint8_t*>(s.data());
    size_t pos = 0;
    while (pos < s.size()) {
      size_t at = s.size(), best_len = 0;
      int32_t best = -1;
      for (size_t p = pos; special && p < s.size() && best < 0; ++p) {
        for (size_t i : specials) {
          const std::string& x = v.texts[i];
          if (x.size() <= best_len || x.size() > s.size() - p) continue;
          if (std::memcmp(x.data(), t + p, x.size()) == 0) best = int32_t(i), best_len = x.size(), at = p;
        }
      }
      plain(t + pos, at - pos, mode, &out);
      if (best >= 0) out.push_back(best);
      pos = at + best_len;
    }
    return out;
  }
};

FUZZ_NO_COVERAGE void check_encode(Tokenizer& tok, const Reference& ref, const std::string& s, bool special,
                                   PreSplit mode, bool round_trip, double lookup_bound_per_byte) {
  std::vector<int32_t> ids(s.size() + 8, -7);
  size_t n = 0;
  const uint64_t before = tok.work();
  const Status st = tok.encode(s.data(), s.size(), special, ids.data(), ids.size(), &n);
  const uint64_t work = tok.work() - before;
  FUZZ_CHECK(st.is_ok(), "encode of %zu bytes: %s", s.size(), st.message());
  ids.resize(n);
  FUZZ_CHECK(double(work) <= lookup_bound_per_byte * double(s.size() + 1), "encode work %llu for %zu bytes",
             (unsigned long long)work, s.size());
  const std::vector<int32_t> want = ref.encode(s, special, mode);
  FUZZ_CHECK(ids == want, "encode of %zu bytes: %zu ids, the reference %zu", s.size(), ids.size(), want.size());
  std::string back;
  for (int32_t id : ids) {
    const char* b;
    size_t len;
    FUZZ_CHECK(tok.token_bytes(id, &b, &len), "id %d out of range", id);
    back.append(b, len);
  }
  if (round_trip) FUZZ_CHECK(back == s, "round trip of %zu bytes gave %zu bytes", s.size(), back.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ByteReader r{data, size};
  const uint8_t flags = r.u8();
  const bool allow_special = flags & 1, all_bytes = flags & 4, flip = flags & 8, keep_dups = flags & 16;
  const PreSplit mode = flags & 2 ? PreSplit::kGpt2 : PreSplit::kSmollm;

  Vocab v;
  auto has = [&](const std::string& t) {
    for (const std::string& x : v.texts) {
      if (x == t) return true;
    }
    return false;
  };
  std::vector<uint32_t> normal;  // ids usable as merge parts
  for (int b = 0; b < 256; ++b) {
    bool in_raw = false;
    for (uint8_t x : kRaw) in_raw = in_raw || x == b;
    if (!all_bytes && !in_raw) continue;
    normal.push_back(uint32_t(v.texts.size()));
    v.texts.push_back(byte_char(uint8_t(b)));
    v.types.push_back(1);
  }
  const uint32_t n_extra = r.u8() % 48;
  for (uint32_t i = 0; i < n_extra; ++i) {
    const uint8_t sel = r.u8();
    std::string raw;
    for (uint32_t k = 0; k < 1u + sel % 6; ++k) raw.push_back(char(kRaw[r.u8() % 16]));
    static const uint8_t kTypes[8] = {1, 1, 1, 1, 3, 4, 5, 2};
    const uint8_t type = kTypes[(sel >> 4) % 8];
    const std::string text = verbatim_type(type) ? raw : alpha(raw);
    if (has(text) && !keep_dups) continue;
    if (type == 1) normal.push_back(uint32_t(v.texts.size()));
    v.texts.push_back(text);
    v.types.push_back(type);
  }
  const uint32_t n_merges = r.u8() % 64;
  for (uint32_t i = 0; i < n_merges && !normal.empty(); ++i) {
    const uint8_t sel = r.u8();
    if (sel == 255 && !v.merges.empty()) {
      const size_t k = 3 * (r.u8() % (v.merges.size() / 3));
      v.merges.insert(v.merges.end(), {v.merges[k], v.merges[k + 1], v.merges[k + 2]});
      continue;
    }
    const uint32_t a = normal[r.u16() % normal.size()], b = normal[r.u16() % normal.size()];
    const std::string c_text = v.texts[a] + v.texts[b];
    if (c_text.size() > 64) continue;  // merged texts double per merge: keep them short
    uint32_t c = UINT32_MAX;
    for (uint32_t k = 0; k < v.texts.size() && c == UINT32_MAX; ++k) {
      if (v.texts[k] == c_text) c = k;
    }
    if (c == UINT32_MAX) {
      c = uint32_t(v.texts.size());
      normal.push_back(c);
      v.texts.push_back(c_text);
      v.types.push_back(1);
    }
    v.merges.insert(v.merges.end(), {a, b, c});
  }
  if (v.texts.empty()) v.texts.push_back(byte_char('a')), v.types.push_back(1);
  std::vector<uint8_t> section = section_bytes(v);
  if (flip) {
    const uint32_t flips = r.u8() % 4;
    for (uint32_t i = 0; i < flips; ++i) {
      const uint32_t pos = r.u16() % uint32_t(section.size());
      section[pos] ^= uint8_t(1u << (r.u8() % 8));
    }
  }
  std::string text;
  while (!r.empty() && text.size() < kMaxText) text.push_back(char(r.u8()));

  // Init in a fixed arena sized by the generated counts (a flipped count
  // makes init refuse the section size before it allocates).
  const uint32_t n = uint32_t(v.texts.size()), m = uint32_t(v.merges.size() / 3);
  const size_t planned = Tokenizer::arena_bytes(n, m);
  // One buffer for every exec, grown when needed and never cleared: a fresh
  // zeroed one cost a tenth of the exec time, and stale bytes from the last
  // exec make any read of memory init did not write show up as a mismatch.
  static std::vector<uint64_t> memory;
  if (memory.size() < planned / 8 + 1) memory.resize(planned / 8 + 1);
  Arena arena;
  arena.init(memory.data(), planned);
  Tokenizer tok;
  const Status st = tok.init(section.data(), section.size(), &arena);
  if (!st.is_ok()) {
    FUZZ_CHECK(st.code() == StatusCode::kBadTokenizer, "init: %s", st.message());
    int32_t out[4];
    size_t got = 0;
    FUZZ_CHECK(!tok.encode("ab", 2, true, out, 4, &got).is_ok(), "a refused tokenizer encoded");
    return 0;
  }
  FUZZ_CHECK(tok.n_tokens() == n, "n_tokens %u, generated %u", tok.n_tokens(), n);
  FUZZ_CHECK(arena.used() <= planned, "arena %zu of %zu", arena.used(), planned);
  const double s = double(n) + double(m);
  const double init_bound = 6.0 * s * std::log2(s + 2) + 256.0 * (std::log2(double(n) + 2) + 1) + 64;
  FUZZ_CHECK(double(tok.work()) <= init_bound, "init work %llu, bound %.0f", (unsigned long long)tok.work(),
             init_bound);

  const Vocab parsed = parse_section(section);
  const Reference ref(parsed);
  for (uint32_t i = 0; i < n; ++i) {
    const char* b;
    size_t len;
    FUZZ_CHECK(tok.token_bytes(int32_t(i), &b, &len), "token_bytes(%u)", i);
    FUZZ_CHECK(std::string(b, len) == ref.bytes[i], "token %u decodes to %zu bytes, the reference %zu", i, len,
               ref.bytes[i].size());
    FUZZ_CHECK(tok.is_special(int32_t(i)) == special_type(parsed.types[i]), "is_special(%u)", i);
  }
  for (int b = 0; b < 256; ++b) {
    const std::string c = byte_char(uint8_t(b));
    FUZZ_CHECK(tok.find(c.data(), c.size()) == ref.byte_token[b], "find(byte %d)", b);
  }
  // Byte fallback round trip: every byte has a token that decodes to it, and no
  // merge joins or makes a verbatim token (whose bytes are its text as is).
  bool clean = true;
  for (int b = 0; b < 256; ++b) {
    clean = clean && ref.byte_token[b] >= 0 && !verbatim_type(parsed.types[size_t(ref.byte_token[b])]);
  }
  for (uint32_t x : parsed.merges) clean = clean && !verbatim_type(parsed.types[x]);
  size_t longest_special = 0, n_special = 0;
  for (size_t i = 0; i < parsed.texts.size(); ++i) {
    if (special_type(parsed.types[i]) && !parsed.texts[i].empty()) {
      ++n_special;
      longest_special = parsed.texts[i].size() > longest_special ? parsed.texts[i].size() : longest_special;
    }
  }
  const double per_byte = 3.0 * (std::log2(double(m) + 2) + 2) +
                          (allow_special ? double(longest_special + 1) * 2 * (std::log2(double(n_special) + 2) + 1) : 0);

  tok.set_pre_split(mode);
  std::string joined;
  for (size_t k = 0; k < 24 && k < parsed.texts.size(); ++k) joined += ref.bytes[(k * 7 + text.size()) % n];
  std::string around;
  for (size_t i = 0; i < parsed.texts.size() && around.size() < 256; ++i) {
    if (special_type(parsed.types[i])) around += parsed.texts[i] + text.substr(0, 8);
  }
  for (const std::string& str : {text, joined, around}) {
    check_encode(tok, ref, str, allow_special, mode, clean, per_byte);
  }
  return 0;
}
