#include "runtime/tokenizer.h"

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

uint32_t next_pow2(uint64_t v) {
  uint32_t p = 16;
  while (p < v) p <<= 1;
  return p;
}
uint32_t merge_table_size(uint32_t n_merges) { return next_pow2(uint64_t(n_merges) * 2); }
uint32_t vocab_table_size(uint32_t n_tokens) { return next_pow2(uint64_t(n_tokens) * 2); }

uint32_t hash_pair(int32_t a, int32_t b) {
  uint64_t h = (uint64_t(uint32_t(a)) << 32 | uint32_t(b)) * 0x9E3779B97F4A7C15ull;
  return uint32_t(h >> 32);
}

uint32_t hash_text(const uint8_t* s, size_t n) {  // FNV-1a
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; ++i) h = (h ^ s[i]) * 16777619u;
  return h ^ (h >> 15);
}

bool special_type(uint8_t type) {
  return type == uint8_t(blob::tok::TokenType::kControl) ||
         type == uint8_t(blob::tok::TokenType::kUserDefined);
}

// Section layout, computed in 64-bit so hostile counts cannot wrap.
struct Layout {
  uint64_t offsets, types, merges, pool, total;
};
Layout section_layout(uint32_t n_tokens, uint32_t n_merges, uint32_t pool_bytes) {
  Layout l;
  l.offsets = blob::tok::kHeaderBytes;
  l.types = l.offsets + 4ull * (uint64_t(n_tokens) + 1);
  l.merges = l.types + ((uint64_t(n_tokens) + 3) & ~3ull);
  l.pool = l.merges + 12ull * n_merges;
  l.total = l.pool + pool_bytes;
  return l;
}

// Array sizes, in init's allocation order.
struct Sizes {
  size_t merge_slots, vocab_slots, bytes_offset, bytes_pool, specials, sym, heap;
};
Sizes table_sizes(uint32_t n_tokens, uint32_t n_merges) {
  Sizes s;
  s.merge_slots = size_t(merge_table_size(n_merges)) * 4;
  s.vocab_slots = size_t(vocab_table_size(n_tokens)) * 4;
  s.bytes_offset = (size_t(n_tokens) + 1) * 4;
  s.bytes_pool = size_t(n_tokens) * kTokenBytesPerToken;
  s.specials = Tokenizer::kMaxSpecialTokens * 4;
  s.sym = Tokenizer::kMaxPieceBytes * 4;  // three of these
  s.heap = 3 * Tokenizer::kMaxPieceBytes * 8;
  return s;
}

}  // namespace

// Output sink for encode: stops (and remembers) at the first id past capacity.
struct Tokenizer::Emitter {
  int32_t* out;
  size_t cap;
  size_t n = 0;
  bool full = false;
  bool put(int32_t id) {
    if (n == cap) {
      full = true;
      return false;
    }
    out[n++] = id;
    return true;
  }
};

size_t Tokenizer::arena_bytes(uint32_t n_tokens, uint32_t n_merges) {
  const Sizes s = table_sizes(n_tokens, n_merges);
  const size_t a = Arena::kDefaultAlign;
  // Each allocation may need up to align-1 padding.
  return arena_align_up(s.merge_slots, a) + arena_align_up(s.vocab_slots, a) +
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
  constexpr StatusCode kBad = StatusCode::kBadTokenizer;
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
  const Layout lay = section_layout(n_tokens, n_merges, pool_bytes);
  if (lay.total != section_bytes) {
    return Status::error(kBad, "tokenizer section is %zu bytes, its counts say %llu", section_bytes,
                         (unsigned long long)lay.total);
  }
  offsets_ = section + lay.offsets;
  types_ = section + lay.types;
  merges_ = section + lay.merges;
  pool_ = section + lay.pool;
  n_tokens_ = n_tokens;
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
  merge_slots_ = static_cast<uint32_t*>(arena->allocate(sz.merge_slots, "tokenizer"));
  vocab_slots_ = static_cast<uint32_t*>(arena->allocate(sz.vocab_slots, "tokenizer"));
  bytes_offset_ = static_cast<uint32_t*>(arena->allocate(sz.bytes_offset, "tokenizer"));
  bytes_pool_ = static_cast<uint8_t*>(arena->allocate(sz.bytes_pool, "tokenizer"));
  specials_ = static_cast<int32_t*>(arena->allocate(sz.specials, "tokenizer"));
  sym_id_ = static_cast<int32_t*>(arena->allocate(sz.sym, "tokenizer"));
  sym_prev_ = static_cast<int32_t*>(arena->allocate(sz.sym, "tokenizer"));
  sym_next_ = static_cast<int32_t*>(arena->allocate(sz.sym, "tokenizer"));
  heap_ = static_cast<uint64_t*>(arena->allocate(sz.heap, "tokenizer"));
  if (!merge_slots_ || !vocab_slots_ || !bytes_offset_ || !bytes_pool_ || !specials_ || !sym_id_ ||
      !sym_prev_ || !sym_next_ || !heap_) {
    n_tokens_ = 0;
    return Status::error(StatusCode::kArenaTooSmall, "tokenizer needs %zu arena bytes",
                         arena_bytes(n_tokens, n_merges));
  }
  merge_mask_ = merge_table_size(n_merges) - 1;
  vocab_mask_ = vocab_table_size(n_tokens) - 1;
  std::memset(merge_slots_, 0, sz.merge_slots);
  std::memset(vocab_slots_, 0, sz.vocab_slots);

  // Decode token texts to bytes; index texts; collect special tokens.
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
        k += uint32_t(utf8_decode(t + k, tlen - k, &cp));
        if (cp >= 324 || bm.byte_of_cp[cp] < 0) {
          return Status::error(kBad, "token %u text is not in the byte-level alphabet", i);
        }
        if (w == sz.bytes_pool) return Status::error(kBad, "token texts exceed %zu bytes per token on average", kTokenBytesPerToken);
        bytes_pool_[w++] = uint8_t(bm.byte_of_cp[cp]);
      }
    }
    if (tlen > 0) {
      // Later duplicates win, as in HF's text -> id map.
      uint32_t s = hash_text(t, tlen) & vocab_mask_;
      for (;; s = (s + 1) & vocab_mask_) {
        const uint32_t v = vocab_slots_[s];
        if (v == 0) { vocab_slots_[s] = i + 1; break; }
        uint32_t olen;
        const uint8_t* o = token_text(int32_t(v - 1), &olen);
        if (olen == tlen && std::memcmp(o, t, tlen) == 0) { vocab_slots_[s] = i + 1; break; }
      }
    }
    if (special_type(type) && tlen > 0) {
      if (n_specials_ == kMaxSpecialTokens) {
        return Status::error(kBad, "more than %zu special tokens", kMaxSpecialTokens);
      }
      specials_[n_specials_++] = int32_t(i);
      const uint8_t first = bytes_pool_[bytes_offset_[i]];
      special_first_[first >> 3] |= uint8_t(1u << (first & 7));
    }
  }
  bytes_offset_[n_tokens] = w;

  // Single-byte tokens (BPE's starting symbols).
  for (int b = 0; b < 256; ++b) {
    uint8_t u[4];
    const size_t n = utf8_encode(bm.cp_of_byte[b], u);
    byte_token_[b] = find(reinterpret_cast<const char*>(u), n);
  }

  // Merges: ids in range, merged text = left text + right text; index by pair.
  for (uint32_t r = 0; r < n_merges; ++r) {
    const uint8_t* m = merges_ + 12 * size_t(r);
    const uint32_t a = load_u32(m), b = load_u32(m + 4), c = load_u32(m + 8);
    if (a >= n_tokens || b >= n_tokens || c >= n_tokens) {
      return Status::error(kBad, "merge %u has a token id out of range", r);
    }
    uint32_t la, lb, lc;
    const uint8_t* ta = token_text(int32_t(a), &la);
    const uint8_t* tb = token_text(int32_t(b), &lb);
    const uint8_t* tc = token_text(int32_t(c), &lc);
    if (la == 0 || lb == 0 || uint64_t(la) + lb != lc || std::memcmp(ta, tc, la) != 0 ||
        std::memcmp(tb, tc + la, lb) != 0) {
      return Status::error(kBad, "merge %u: token %u is not token %u + token %u", r, c, a, b);
    }
    // Later duplicates win, as in HF's merge map.
    uint32_t s = hash_pair(int32_t(a), int32_t(b)) & merge_mask_;
    for (;; s = (s + 1) & merge_mask_) {
      const uint32_t v = merge_slots_[s];
      if (v == 0) { merge_slots_[s] = r + 1; break; }
      const uint8_t* o = merges_ + 12 * size_t(v - 1);
      if (load_u32(o) == a && load_u32(o + 4) == b) { merge_slots_[s] = r + 1; break; }
    }
  }
  return Status::ok();
}

int32_t Tokenizer::find(const char* text, size_t len) const {
  if (n_tokens_ == 0 || len == 0) return -1;
  const uint8_t* t = reinterpret_cast<const uint8_t*>(text);
  for (uint32_t s = hash_text(t, len) & vocab_mask_;; s = (s + 1) & vocab_mask_) {
    const uint32_t v = vocab_slots_[s];
    if (v == 0) return -1;
    uint32_t olen;
    const uint8_t* o = token_text(int32_t(v - 1), &olen);
    if (olen == len && std::memcmp(o, t, len) == 0) return int32_t(v - 1);
  }
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

uint32_t Tokenizer::merge_rank(int32_t left, int32_t right) const {
  for (uint32_t s = hash_pair(left, right) & merge_mask_;; s = (s + 1) & merge_mask_) {
    const uint32_t v = merge_slots_[s];
    if (v == 0) return kNoRank;
    const uint8_t* m = merges_ + 12 * size_t(v - 1);
    if (int32_t(load_u32(m)) == left && int32_t(load_u32(m + 4)) == right) return v - 1;
  }
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

  for (int32_t i = 0; i + 1 < n; ++i) {
    const uint32_t r = merge_rank(sym_id_[i], sym_id_[i + 1]);
    if (r != kNoRank) push(r, i);
  }
  // Pushes: <= n-1 initially plus <= 2 per merge, merges <= n-1: heap <= 3n.
  while (heap_n > 0) {
    const uint64_t top = pop();
    const uint32_t rank = uint32_t(top >> 32);
    const int32_t pos = int32_t(uint32_t(top));
    if (sym_id_[pos] < 0) continue;
    const int32_t nx = sym_next_[pos];
    if (nx < 0 || merge_rank(sym_id_[pos], sym_id_[nx]) != rank) continue;
    sym_id_[pos] = merge_result(rank);
    sym_id_[nx] = -1;
    const int32_t nn = sym_next_[nx];
    sym_next_[pos] = nn;
    if (nn >= 0) sym_prev_[nn] = pos;
    const int32_t pv = sym_prev_[pos];
    if (pv >= 0) {
      const uint32_t r = merge_rank(sym_id_[pv], sym_id_[pos]);
      if (r != kNoRank) push(r, pv);
    }
    if (nn >= 0) {
      const uint32_t r = merge_rank(sym_id_[pos], sym_id_[nn]);
      if (r != kNoRank) push(r, pos);
    }
  }
  for (int32_t i = 0; i >= 0; i = sym_next_[i]) {
    if (!em->put(sym_id_[i])) return false;
  }
  return true;
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
        for (uint32_t k = 0; k < n_specials_; ++k) {
          const int32_t id = specials_[k];
          const uint32_t sl = bytes_offset_[id + 1] - bytes_offset_[id];
          if (sl <= match_len || sl > len - p) continue;
          if (std::memcmp(t + p, bytes_pool_ + bytes_offset_[id], sl) == 0) {
            match_len = sl;
            match_id = id;
          }
        }
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
