#include "runtime/tokenizer.h"

#include <algorithm>  // std::sort: in place, no allocation, O(n log n) comparisons (introsort)
#include <cstring>

#include "runtime/blob_format.h"

namespace tern {

namespace {

constexpr size_t kTokenBytesPerToken = 12;  // decoded-text budget per token (see arena_bytes)
constexpr uint32_t kNoRank = 0xFFFFFFFFu;

using blob::load_u32;

// GPT-2 bytes_to_unicode: printable bytes map to themselves, the other 68
// (0..32, 127..160, 173) to U+0100.. in byte order. Code points < 324.
struct ByteMap {
  uint16_t cp_of_byte[256];
  int16_t byte_of_cp[324];  // -1 if not in the alphabet
};

ByteMap make_byte_map() {
  ByteMap m{};
  for (int i = 0; i < 324; ++i) m.byte_of_cp[i] = -1;
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    const int cp = printable ? b : 256 + extra++;
    m.cp_of_byte[b] = uint16_t(cp);
    m.byte_of_cp[cp] = int16_t(b);
  }
  return m;
}

uint64_t next_pow2(uint64_t v) {
  uint64_t p = 16;
  while (p < v) p <<= 1;
  return p;
}

// Byte order of texts: memcmp, a proper prefix first.
int compare_bytes(const uint8_t* a, size_t la, const uint8_t* b, size_t lb) {
  const size_t n = la < lb ? la : lb;
  const int c = n ? std::memcmp(a, b, n) : 0;
  if (c != 0) return c;
  return la < lb ? -1 : la > lb ? 1 : 0;
}

// The first 4 bytes of a text, big-endian, zero-padded: keys that differ
// order their texts as compare_bytes does; equal keys need the full compare.
uint64_t prefix_key(const uint8_t* t, uint32_t len) {
  uint64_t k = 0;
  for (uint32_t i = 0; i < 4; ++i) k = (k << 8) | (i < len ? t[i] : 0u);
  return k;
}

bool special_type(uint8_t type) {
  return type == uint8_t(blob::tok::TokenType::kControl) ||
         type == uint8_t(blob::tok::TokenType::kUserDefined);
}

// Array sizes, in init's allocation order. merge_keys and vocab_index keep
// the byte counts of the open-addressing tables they replaced (4 bytes x the
// power of two >= 2 x count), so blobs packed before keep a valid stored
// memory plan: >= 8 x n_merges for merge_keys_, >= 8 x n_tokens for
// vocab_sorted_ + merge_end_. bytes_pool (12 x n_tokens) doubles as the
// 8 x n_tokens scratch of the vocabulary sort before the texts are decoded.
struct Sizes {
  size_t merge_keys, vocab_index, bytes_offset, bytes_pool, specials, sym, heap;
};
Sizes table_sizes(uint32_t n_tokens, uint32_t n_merges) {
  Sizes s;
  s.merge_keys = size_t(next_pow2(uint64_t(n_merges) * 2)) * 4;
  s.vocab_index = size_t(next_pow2(uint64_t(n_tokens) * 2)) * 4;
  s.bytes_offset = (size_t(n_tokens) + 1) * 4;
  s.bytes_pool = size_t(n_tokens) * kTokenBytesPerToken;
  s.specials = Tokenizer::kMaxSpecialTokens * 4;
  s.sym = Tokenizer::kMaxPieceBytes * 4;  // three of these
  s.heap = 3 * Tokenizer::kMaxPieceBytes * 8;
  return s;
}

}  // namespace


namespace {

const uint8_t* text_of(const TokenTexts& t, uint32_t id, uint32_t* len) {
  const uint32_t a = load_u32(t.offsets + 4 * size_t(id));
  *len = load_u32(t.offsets + 4 * size_t(id) + 4) - a;
  return t.pool + a;
}

// Sorts keys[i, j) (low halves: ids) whose texts share their zero-padded
// bytes [0, d) by the rest of the texts: the next 4 bytes as an integer key
// (kRefineLevels times), then the full comparison. Equal texts end adjacent.
constexpr int kRefineLevels = 3;

void finish_run(const TokenTexts& t, uint64_t* keys, uint32_t i, uint32_t j, uint32_t d, uint64_t* steps,
                uint32_t* dup) {
  uint64_t s = 0;
  std::sort(keys + i, keys + j, [&t, &s, d](uint64_t x, uint64_t y) {
    ++s;
    uint32_t lx, ly;
    const uint8_t* tx = text_of(t, uint32_t(x), &lx);
    const uint8_t* ty = text_of(t, uint32_t(y), &ly);
    uint32_t k = lx < ly ? lx : ly;  // the first min(d, lengths) bytes are equal
    k = k < d ? k : d;
    const int c = compare_bytes(tx + k, lx - k, ty + k, ly - k);
    return c < 0 || (c == 0 && uint32_t(x) < uint32_t(y));
  });
  for (uint32_t k = i + 1; k < j && *dup == 0; ++k) {
    uint32_t la, lb;
    const uint8_t* ta = text_of(t, uint32_t(keys[k - 1]), &la);
    const uint8_t* tb = text_of(t, uint32_t(keys[k]), &lb);
    ++s;
    if (la > 0 && compare_bytes(ta, la, tb, lb) == 0) *dup = k;
  }
  *steps += s;
}

void refine_run(const TokenTexts& t, uint64_t* keys, uint32_t i, uint32_t j, uint32_t d, int level, uint64_t* steps,
                uint32_t* dup) {
  bool longer = false;
  for (uint32_t k = i; k < j; ++k) {
    const uint32_t id = uint32_t(keys[k]);
    uint32_t len;
    const uint8_t* p = text_of(t, id, &len);
    longer = longer || len > d;
    keys[k] = len > d ? (prefix_key(p + d, len - d) << 32) | id : id;
  }
  *steps += j - i;
  if (!longer || level == kRefineLevels) {
    finish_run(t, keys, i, j, d, steps, dup);
    return;
  }
  uint64_t s = 0;
  std::sort(keys + i, keys + j, [&s](uint64_t x, uint64_t y) {
    ++s;
    return x < y;
  });
  *steps += s;
  for (uint32_t a = i; a < j;) {
    uint32_t b = a + 1;
    while (b < j && (keys[b] >> 32) == (keys[a] >> 32)) ++b;
    if (b - a > 1) refine_run(t, keys, a, b, d + 4, level + 1, steps, dup);
    a = b;
  }
}

}  // namespace

// An LSD radix sort of (4-byte prefix key, id) pairs by the key (4 passes of
// 8 bits; stable, so ids stay ascending within a key), then each run of equal
// keys refined by refine_run.
uint32_t sort_token_texts(const TokenTexts& t, uint32_t* ids, uint64_t* scratch, uint64_t* scratch2,
                          uint64_t* steps) {
  const uint32_t n = t.n;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t len;
    const uint8_t* p = text_of(t, i, &len);
    scratch[i] = (prefix_key(p, len) << 32) | i;
  }
  uint64_t* from = scratch;
  uint64_t* to = scratch2;
  for (uint32_t shift = 32; shift < 64; shift += 8) {
    uint32_t start[257] = {};
    for (uint32_t i = 0; i < n; ++i) ++start[((from[i] >> shift) & 0xFF) + 1];
    for (uint32_t c = 0; c < 256; ++c) start[c + 1] += start[c];
    for (uint32_t i = 0; i < n; ++i) to[start[(from[i] >> shift) & 0xFF]++] = from[i];
    uint64_t* x = from;
    from = to;
    to = x;
    *steps += 2 * uint64_t(n);
  }
  // 4 passes: the keys are back in scratch.
  uint32_t dup = 0;
  for (uint32_t i = 0; i < n;) {
    uint32_t j = i + 1;
    while (j < n && (scratch[j] >> 32) == (scratch[i] >> 32)) ++j;
    if (j - i > 1) refine_run(t, scratch, i, j, 4, 1, steps, &dup);
    i = j;
  }
  // scratch2 is free again; it may be the memory of ids (memcpy keeps these
  // stores after the loads above).
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t id = uint32_t(scratch[i]);
    std::memcpy(ids + i, &id, 4);
  }
  return dup;
}

int32_t find_token_text(const TokenTexts& t, const uint32_t* ids, const uint8_t* text, size_t len, uint64_t* steps) {
  uint32_t lo = 0, hi = t.n;
  uint64_t s = 0;
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    uint32_t ml;
    const uint8_t* mt = text_of(t, ids[mid], &ml);
    ++s;
    if (compare_bytes(mt, ml, text, len) < 0) lo = mid + 1; else hi = mid;
  }
  *steps += s;
  if (lo == t.n) return -1;
  uint32_t ml;
  const uint8_t* mt = text_of(t, ids[lo], &ml);
  return compare_bytes(mt, ml, text, len) == 0 ? int32_t(ids[lo]) : -1;
}

size_t Tokenizer::arena_bytes(uint32_t n_tokens, uint32_t n_merges) {
  const Sizes s = table_sizes(n_tokens, n_merges);
  const size_t a = Arena::kDefaultAlign;
  // Each allocation may need up to align-1 padding.
  return arena_align_up(s.merge_keys, a) + arena_align_up(s.vocab_index, a) +
         arena_align_up(s.bytes_offset, a) + arena_align_up(s.bytes_pool, a) +
         arena_align_up(s.specials, a) + 3 * arena_align_up(s.sym, a) + arena_align_up(s.heap, a) +
         9 * a;
}

const uint8_t* Tokenizer::token_text(int32_t id, uint32_t* len) const {
  const uint32_t a = load_u32(offsets_ + 4 * size_t(id));
  const uint32_t b = load_u32(offsets_ + 4 * size_t(id) + 4);
  *len = b - a;
  return pool_ + a;
}

Status Tokenizer::init(const uint8_t* section, size_t section_bytes, Arena* arena) {
  work_ = 0;
  const Status st = build(section, section_bytes, arena);
  if (!st.is_ok()) n_tokens_ = 0;  // a half-built tokenizer encodes nothing
  return st;
}

Status Tokenizer::build(const uint8_t* section, size_t section_bytes, Arena* arena) {
  constexpr StatusCode kBad = StatusCode::kBadTokenizer;
  n_tokens_ = 0;
  if (section == nullptr || section_bytes < blob::tok::kHeaderBytes) {
    return Status::error(kBad, "tokenizer section too small (%zu bytes)", section_bytes);
  }
  const uint32_t model = load_u32(section + 0);
  const uint32_t pre = load_u32(section + 4);
  const uint32_t n_tokens = load_u32(section + 8);
  const uint32_t n_merges = load_u32(section + 12);
  const uint32_t pool_bytes = load_u32(section + 16);
  const uint32_t reserved = load_u32(section + 20);
  if (model != 1) return Status::error(kBad, "tokenizer model %u unsupported (1 = byte-level BPE)", model);
  if (pre != 1) return Status::error(kBad, "pre-tokenizer %u unsupported (1 = smollm)", pre);
  if (reserved != 0) return Status::error(kBad, "tokenizer reserved field is %u, not 0", reserved);
  if (n_tokens < 1 || n_tokens > 0x7FFFFFFEu) return Status::error(kBad, "n_tokens %u out of range", n_tokens);
  const blob::tok::Layout lay = blob::tok::layout(model, n_tokens, n_merges, pool_bytes);
  if (lay.total != section_bytes) {
    return Status::error(kBad, "tokenizer section is %zu bytes, its counts say %llu", section_bytes,
                         (unsigned long long)lay.total);
  }
  offsets_ = section + lay.offsets;
  types_ = section + lay.types;
  merges_ = section + lay.merges;
  pool_ = section + lay.pool;
  n_merges_ = n_merges;
  pre_split_ = PreSplit::kSmollm;

  // Offsets, types, padding.
  if (load_u32(offsets_) != 0) return Status::error(kBad, "token_offset[0] is not 0");
  if (load_u32(offsets_ + 4 * size_t(n_tokens)) != pool_bytes) {
    return Status::error(kBad, "token_offset[n_tokens] != pool_bytes (%u)", pool_bytes);
  }
  for (uint32_t i = 0; i < n_tokens; ++i) {
    if (load_u32(offsets_ + 4 * size_t(i) + 4) < load_u32(offsets_ + 4 * size_t(i))) {
      return Status::error(kBad, "token_offset decreases at token %u", i);
    }
    if (types_[i] < 1 || types_[i] > 6) return Status::error(kBad, "token %u has type %u", i, types_[i]);
  }
  for (uint64_t p = lay.types + n_tokens; p < lay.merges; ++p) {
    if (section[p] != 0) return Status::error(kBad, "token_type padding is not zero");
  }

  // Arena tables, in table_sizes() order.
  const Sizes sz = table_sizes(n_tokens, n_merges);
  merge_keys_ = static_cast<uint64_t*>(arena->allocate(sz.merge_keys, "tokenizer"));
  vocab_sorted_ = static_cast<uint32_t*>(arena->allocate(sz.vocab_index, "tokenizer"));
  bytes_offset_ = static_cast<uint32_t*>(arena->allocate(sz.bytes_offset, "tokenizer"));
  bytes_pool_ = static_cast<uint8_t*>(arena->allocate(sz.bytes_pool, "tokenizer"));
  specials_ = static_cast<int32_t*>(arena->allocate(sz.specials, "tokenizer"));
  sym_id_ = static_cast<int32_t*>(arena->allocate(sz.sym, "tokenizer"));
  sym_prev_ = static_cast<int32_t*>(arena->allocate(sz.sym, "tokenizer"));
  sym_next_ = static_cast<int32_t*>(arena->allocate(sz.sym, "tokenizer"));
  heap_ = static_cast<uint64_t*>(arena->allocate(sz.heap, "tokenizer"));
  if (!merge_keys_ || !vocab_sorted_ || !bytes_offset_ || !bytes_pool_ || !specials_ || !sym_id_ ||
      !sym_prev_ || !sym_next_ || !heap_) {
    return Status::error(StatusCode::kArenaTooSmall, "tokenizer needs %zu arena bytes",
                         arena_bytes(n_tokens, n_merges));
  }
  merge_end_ = vocab_sorted_ + n_tokens;  // sz.vocab_index >= 8 x n_tokens
  n_tokens_ = n_tokens;                   // token_text() and lookups below need it

  // Vocabulary order. Scratch: bytes_pool (>= 8 x n_tokens, decoded into
  // below) and the vocabulary table itself (>= 8 x n_tokens).
  texts_ = TokenTexts{offsets_, pool_, n_tokens};
  const uint32_t dup = sort_token_texts(texts_, vocab_sorted_, reinterpret_cast<uint64_t*>(bytes_pool_),
                                        reinterpret_cast<uint64_t*>(vocab_sorted_), &work_);
  if (dup != 0) {
    return Status::error(kBad, "tokens %u and %u have the same text (duplicate tokens are refused, as llama.cpp does)",
                         vocab_sorted_[dup - 1], vocab_sorted_[dup]);
  }

  // Decode token texts to bytes (overwrites the sort scratch); collect special tokens.
  const ByteMap bm = make_byte_map();
  uint32_t w = 0;
  n_specials_ = 0;
  std::memset(special_first_, 0, sizeof(special_first_));
  for (uint32_t i = 0; i < n_tokens; ++i) {
    uint32_t tlen;
    const uint8_t* t = token_text(int32_t(i), &tlen);
    bytes_offset_[i] = w;
    const uint8_t type = types_[i];
    const bool verbatim = special_type(type) || type == uint8_t(blob::tok::TokenType::kUnknown) ||
                          type == uint8_t(blob::tok::TokenType::kUnused);
    if (verbatim) {
      if (sz.bytes_pool - w < tlen) return Status::error(kBad, "token texts exceed %zu bytes per token on average", kTokenBytesPerToken);
      std::memcpy(bytes_pool_ + w, t, tlen);
      w += tlen;
    } else {
      for (uint32_t k = 0; k < tlen;) {
        uint32_t cp;
        // Fast paths for the alphabet's 1- and 2-byte characters (the
        // alphabet is < U+0144); overlong forms fall through to utf8_decode.
        if (t[k] < 0x80) {
          cp = t[k++];
        } else if ((t[k] & 0xE0) == 0xC0 && k + 1 < tlen && (t[k + 1] & 0xC0) == 0x80 &&
                   (cp = (uint32_t(t[k] & 0x1F) << 6) | (t[k + 1] & 0x3F)) >= 0x80) {
          k += 2;
        } else {
          k += uint32_t(utf8_decode(t + k, tlen - k, &cp));
        }
        if (cp >= 324 || bm.byte_of_cp[cp] < 0) {
          return Status::error(kBad, "token %u text is not in the byte-level alphabet", i);
        }
        if (w == sz.bytes_pool) return Status::error(kBad, "token texts exceed %zu bytes per token on average", kTokenBytesPerToken);
        bytes_pool_[w++] = uint8_t(bm.byte_of_cp[cp]);
      }
    }
    if (special_type(type) && tlen > 0) {
      if (n_specials_ == kMaxSpecialTokens) {
        return Status::error(kBad, "more than %zu special tokens", kMaxSpecialTokens);
      }
      if (tlen > kMaxSpecialBytes) {
        return Status::error(kBad, "special token %u is %u bytes long (at most %zu)", i, tlen, kMaxSpecialBytes);
      }
      specials_[n_specials_++] = int32_t(i);
      const uint8_t first = bytes_pool_[bytes_offset_[i]];
      special_first_[first >> 3] |= uint8_t(1u << (first & 7));
    }
  }
  bytes_offset_[n_tokens] = w;
  {
    // Special bytes are their texts (verbatim), and texts are distinct: a strict order.
    uint64_t steps = 0;
    std::sort(specials_, specials_ + n_specials_, [this, &steps](int32_t x, int32_t y) {
      ++steps;
      return compare_bytes(bytes_pool_ + bytes_offset_[x], bytes_offset_[x + 1] - bytes_offset_[x],
                           bytes_pool_ + bytes_offset_[y], bytes_offset_[y + 1] - bytes_offset_[y]) < 0;
    });
    work_ += steps;
  }

  // Single-byte tokens (BPE's starting symbols).
  for (int b = 0; b < 256; ++b) {
    uint8_t u[4];
    const size_t n = utf8_encode(bm.cp_of_byte[b], u);
    byte_token_[b] = find_token_text(texts_, vocab_sorted_, u, n, &work_);
  }
  return build_merges();
}

// Merges: ids in range, merged text = left text + right text; grouped by left
// id (counting sort into merge_end_), each group sorted by (right, rank), the
// later copies of a pair dropped.
Status Tokenizer::build_merges() {
  constexpr StatusCode kBad = StatusCode::kBadTokenizer;
  const uint32_t n_tokens = n_tokens_, n_merges = n_merges_;
  std::memset(merge_end_, 0, size_t(n_tokens) * 4);
  for (uint32_t r = 0; r < n_merges; ++r) {
    const uint8_t* m = merges_ + 12 * size_t(r);
    const uint32_t a = load_u32(m), b = load_u32(m + 4), c = load_u32(m + 8);
    if (a >= n_tokens || b >= n_tokens || c >= n_tokens) {
      return Status::error(kBad, "merge %u has a token id out of range", r);
    }
    ++merge_end_[a];
  }
  uint32_t sum = 0;
  for (uint32_t a = 0; a < n_tokens; ++a) {
    const uint32_t count = merge_end_[a];
    merge_end_[a] = sum;  // group start, advanced to its end by the placement below
    sum += count;
  }
  for (uint32_t r = 0; r < n_merges; ++r) {
    const uint8_t* m = merges_ + 12 * size_t(r);
    merge_keys_[merge_end_[load_u32(m)]++] = (uint64_t(load_u32(m + 4)) << 32) | r;
  }
  uint64_t steps = 0;
  uint32_t start = 0, w = 0;
  for (uint32_t a = 0; a < n_tokens; ++a) {
    const uint32_t end = merge_end_[a];
    if (end - start > 1) {
      std::sort(merge_keys_ + start, merge_keys_ + end, [&steps](uint64_t x, uint64_t y) {
        ++steps;
        return x < y;
      });
    }
    uint32_t kept = kNoRank, kept_right = 0;
    for (uint32_t i = start; i < end; ++i) {
      const uint64_t key = merge_keys_[i];
      const uint32_t right = uint32_t(key >> 32), r = uint32_t(key);
      if (kept != kNoRank && right == kept_right) {
        // The same pair again: the lowest rank (kept) wins; O(1) to check.
        if (merge_result(r) != merge_result(kept)) {
          return Status::error(kBad, "merges %u and %u join the same pair into different tokens", kept, r);
        }
        continue;
      }
      // Validated once per distinct pair: a copy is checked in O(1) above,
      // so copies of a merge of long tokens cannot multiply the memcmp work.
      uint32_t la, lb, lc;
      const uint8_t* ta = token_text(int32_t(a), &la);
      const uint8_t* tb = token_text(int32_t(right), &lb);
      const uint32_t c = uint32_t(merge_result(r));
      const uint8_t* tc = token_text(int32_t(c), &lc);
      if (la == 0 || lb == 0 || uint64_t(la) + lb != lc || std::memcmp(ta, tc, la) != 0 ||
          std::memcmp(tb, tc + la, lb) != 0) {
        return Status::error(kBad, "merge %u: token %u is not token %u + token %u", r, c, a, right);
      }
      merge_keys_[w++] = key;
      kept = r;
      kept_right = right;
    }
    merge_end_[a] = w;
    start = end;
  }
  work_ += steps;
  setup_cache(w);
  return Status::ok();
}

void Tokenizer::setup_cache(uint32_t unique_merges) {
  constexpr size_t kMaxEntries = 8192;  // 128 KB
  const Sizes sz = table_sizes(n_tokens_, n_merges_);
  const size_t a = Arena::kDefaultAlign;
  const size_t merge_used = arena_align_up(size_t(unique_merges) * 8, a);
  const size_t vocab_used = arena_align_up(size_t(n_tokens_) * 8, a);
  const size_t merge_tail = sz.merge_keys > merge_used ? sz.merge_keys - merge_used : 0;
  const size_t vocab_tail = sz.vocab_index > vocab_used ? sz.vocab_index - vocab_used : 0;
  uint8_t* base = merge_tail >= vocab_tail ? reinterpret_cast<uint8_t*>(merge_keys_) + merge_used
                                           : reinterpret_cast<uint8_t*>(vocab_sorted_) + vocab_used;
  const size_t tail = merge_tail >= vocab_tail ? merge_tail : vocab_tail;
  size_t entries = kMaxEntries;
  while (entries * sizeof(RankMemo) > tail) entries /= 2;
  if (entries < 64) {
    cache_ = nullptr;
    cache_mask_ = 0;
    return;
  }
  cache_ = reinterpret_cast<RankMemo*>(base);
  cache_mask_ = uint32_t(entries - 1);
  std::memset(cache_, 0xFF, entries * sizeof(RankMemo));
}

uint32_t Tokenizer::cached_rank(int32_t left, int32_t right, uint64_t* steps) {
  if (cache_mask_ == 0) return merge_rank(left, right, steps);
  const uint64_t pair = (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  RankMemo& e = cache_[uint32_t((pair * 0x9E3779B97F4A7C15ull) >> 40) & cache_mask_];
  if (e.pair == pair) return e.rank;
  const uint32_t r = merge_rank(left, right, steps);
  e.pair = pair;
  e.rank = r;
  return r;
}

int32_t Tokenizer::find(const char* text, size_t len) const {
  if (n_tokens_ == 0 || len == 0) return -1;
  uint64_t steps = 0;
  return find_token_text(texts_, vocab_sorted_, reinterpret_cast<const uint8_t*>(text), len, &steps);
}

bool Tokenizer::token_bytes(int32_t id, const char** bytes, size_t* len) const {
  if (id < 0 || uint32_t(id) >= n_tokens_) return false;
  *bytes = reinterpret_cast<const char*>(bytes_pool_ + bytes_offset_[id]);
  *len = bytes_offset_[id + 1] - bytes_offset_[id];
  return true;
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && uint32_t(id) < n_tokens_ && special_type(types_[id]);
}

uint32_t Tokenizer::merge_rank(int32_t left, int32_t right, uint64_t* steps) const {
  const uint32_t lo = left > 0 ? merge_end_[left - 1] : 0, hi = merge_end_[left];
  if (lo == hi) return kNoRank;
  // Branch-free lower bound of (right << 32) in the left id's group: the
  // compare becomes a conditional move, so no mispredicted branch per step.
  const uint64_t want = uint64_t(uint32_t(right)) << 32;
  const uint64_t* base = merge_keys_ + lo;
  uint32_t n = hi - lo, s = 0;
  while (n > 1) {
    const uint32_t half = n / 2;
    base = base[half] < want ? base + half : base;
    n -= half;
    ++s;
  }
  *steps += s + 1;
  base += *base < want;
  if (base < merge_keys_ + hi && uint32_t(*base >> 32) == uint32_t(right)) return uint32_t(*base);
  return kNoRank;
}

int32_t Tokenizer::merge_result(uint32_t rank) const {
  return int32_t(load_u32(merges_ + 12 * size_t(rank) + 8));
}

// BPE over one chunk (<= kMaxPieceBytes bytes): symbols in a linked list over
// the byte positions, candidate merges in a min-heap keyed (rank, left index).
// Stale heap entries are skipped by re-checking the pair's current rank.
bool Tokenizer::encode_chunk(const uint8_t* text, size_t len, Emitter* em) {
  int32_t n = 0;
  for (size_t i = 0; i < len; ++i) {
    const int32_t id = byte_token_[text[i]];
    if (id < 0) continue;  // byte absent from the vocabulary: dropped, as HF BPE without unk
    sym_id_[n] = id;
    sym_prev_[n] = n - 1;
    sym_next_[n] = n + 1;
    ++n;
  }
  if (n == 0) return true;
  sym_next_[n - 1] = -1;

  size_t heap_n = 0;
  auto push = [&](uint32_t rank, int32_t pos) {
    uint64_t key = (uint64_t(rank) << 32) | uint32_t(pos);
    size_t i = heap_n++;
    while (i > 0) {
      const size_t parent = (i - 1) / 2;
      if (heap_[parent] <= key) break;
      heap_[i] = heap_[parent];
      i = parent;
    }
    heap_[i] = key;
  };
  auto pop = [&]() {
    const uint64_t top = heap_[0];
    const uint64_t last = heap_[--heap_n];
    size_t i = 0;
    for (;;) {
      size_t c = 2 * i + 1;
      if (c >= heap_n) break;
      if (c + 1 < heap_n && heap_[c + 1] < heap_[c]) ++c;
      if (heap_[c] >= last) break;
      heap_[i] = heap_[c];
      i = c;
    }
    if (heap_n > 0) heap_[i] = last;
    return top;
  };

  uint64_t steps = 0;  // merge-lookup steps, added to work_ once
  for (int32_t i = 0; i + 1 < n; ++i) {
    const uint32_t r = cached_rank(sym_id_[i], sym_id_[i + 1], &steps);
    if (r != kNoRank) push(r, i);
  }
  // Pushes: <= n-1 initially plus <= 2 per merge, merges <= n-1: heap <= 3n.
  while (heap_n > 0) {
    const uint64_t top = pop();
    const uint32_t rank = uint32_t(top >> 32);
    const int32_t pos = int32_t(uint32_t(top));
    if (sym_id_[pos] < 0) continue;
    const int32_t nx = sym_next_[pos];
    // Stale entry? A kept rank names exactly one pair, so compare the pair
    // stored at that rank with the current neighbours: O(1), no lookup.
    if (nx < 0) continue;
    const uint8_t* m = merges_ + 12 * size_t(rank);
    if (int32_t(load_u32(m)) != sym_id_[pos] || int32_t(load_u32(m + 4)) != sym_id_[nx]) continue;
    sym_id_[pos] = merge_result(rank);
    sym_id_[nx] = -1;
    const int32_t nn = sym_next_[nx];
    sym_next_[pos] = nn;
    if (nn >= 0) sym_prev_[nn] = pos;
    const int32_t pv = sym_prev_[pos];
    if (pv >= 0) {
      const uint32_t r = cached_rank(sym_id_[pv], sym_id_[pos], &steps);
      if (r != kNoRank) push(r, pv);
    }
    if (nn >= 0) {
      const uint32_t r = cached_rank(sym_id_[pos], sym_id_[nn], &steps);
      if (r != kNoRank) push(r, pos);
    }
  }
  work_ += steps;
  for (int32_t i = 0; i >= 0; i = sym_next_[i]) {
    if (!em->put(sym_id_[i])) return false;
  }
  return true;
}

// The longest special token that is a prefix of text[0, avail): its id, or -1.
// specials_[lo, hi) is kept to the specials that start with text[0, d); in
// byte order the one of length exactly d (texts are distinct: at most one)
// comes first, then the rest ordered by their byte d, so each step is two
// binary searches.
int32_t Tokenizer::match_special(const uint8_t* text, size_t avail, size_t* len, uint64_t* steps) const {
  uint32_t lo = 0, hi = n_specials_;
  int32_t best = -1;
  uint64_t s = 0;
  auto byte_at = [this](uint32_t k, size_t d) { return bytes_pool_[bytes_offset_[specials_[k]] + d]; };
  for (size_t d = 0; lo < hi; ++d) {
    const int32_t first = specials_[lo];
    if (bytes_offset_[first + 1] - bytes_offset_[first] == d) {
      best = first;
      *len = d;
      if (++lo == hi) break;
    }
    if (d == avail) break;
    const uint8_t c = text[d];
    uint32_t l = lo, h = hi;
    while (l < h) {  // first with byte d >= c (every special left is longer than d)
      const uint32_t mid = l + (h - l) / 2;
      ++s;
      if (byte_at(mid, d) < c) l = mid + 1; else h = mid;
    }
    lo = l;
    h = hi;
    while (l < h) {  // first with byte d > c
      const uint32_t mid = l + (h - l) / 2;
      ++s;
      if (byte_at(mid, d) <= c) l = mid + 1; else h = mid;
    }
    hi = l;
  }
  *steps += s;
  return best;
}

bool Tokenizer::encode_segment(const uint8_t* text, size_t len, Emitter* em) {
  size_t pos = 0;
  while (pos < len) {
    size_t piece = next_piece(text, len, pos, pre_split_);
    // Pieces longer than the BPE scratch go in chunks cut at a character start.
    while (piece > kMaxPieceBytes) {
      size_t cut = kMaxPieceBytes;
      while (cut > kMaxPieceBytes - 3 && (text[pos + cut] & 0xC0) == 0x80) --cut;
      if (!encode_chunk(text + pos, cut, em)) return false;
      pos += cut;
      piece -= cut;
    }
    if (!encode_chunk(text + pos, piece, em)) return false;
    pos += piece;
  }
  return true;
}

Status Tokenizer::encode(const char* text, size_t len, bool allow_special, int32_t* out, size_t cap,
                         size_t* n_out) {
  *n_out = 0;
  if (n_tokens_ == 0) return Status::error(StatusCode::kInternal, "tokenizer not initialized");
  if (text == nullptr && len > 0) return Status::error(StatusCode::kInvalidArgument, "null text");
  Emitter em{out, cap};
  const uint8_t* t = reinterpret_cast<const uint8_t*>(text);
  size_t pos = 0;
  while (pos < len) {
    // Leftmost-longest special token at or after pos.
    size_t seg_end = len, match_len = 0;
    int32_t match_id = -1;
    if (allow_special && n_specials_ > 0) {
      for (size_t p = pos; p < len && match_id < 0; ++p) {
        if (!(special_first_[t[p] >> 3] & (1u << (t[p] & 7)))) continue;
        match_id = match_special(t + p, len - p, &match_len, &work_);
        if (match_id >= 0) seg_end = p;
      }
    }
    if (!encode_segment(t + pos, seg_end - pos, &em)) break;
    if (match_id >= 0 && !em.put(match_id)) break;
    pos = seg_end + match_len;
  }
  *n_out = em.n;
  if (em.full) {
    return Status::error(StatusCode::kPromptTooLong, "text needs more than %zu tokens", cap);
  }
  return Status::ok();
}

}  // namespace tern
