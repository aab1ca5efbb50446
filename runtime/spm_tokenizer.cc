#include "runtime/spm_tokenizer.h"

#include <cmath>
#include <cstring>

#include "port/blob_map.h"  // os_discard_pages
#include "runtime/blob_format.h"

namespace tern {

namespace {

using blob::load_f32;
using blob::load_u32;
using TT = blob::tok::TokenType;

// The persistent tables and the encode scratch, in init's allocation order.
struct SpmSizes {
  size_t sorted, dec_len, dec_pool, mask, claim, esc, sym;  // sym: one of the 8 piece arrays
  size_t sort_peak;                                          // the vocabulary sort's 16 bytes per token
};
SpmSizes spm_sizes(uint32_t n_tokens, uint32_t pool_bytes, size_t max_text) {
  SpmSizes s;
  const size_t t = max_text > 0 ? max_text : 1;
  s.sorted = size_t(n_tokens) * 4;
  s.dec_len = (size_t(n_tokens) + 1) * 4;  // one spare entry: the arena plan of blobs packed before is unchanged
  s.dec_pool = pool_bytes > 0 ? pool_bytes : 1;
  s.mask = t * 8;
  s.claim = t;
  s.esc = 3 * t + 3;
  s.sym = (2 * t + 2) * 4;
  s.sort_peak = size_t(n_tokens) * 16;
  return s;
}

// An order-preserving u32 of a finite float: larger float, larger key; -0 = +0.
uint32_t score_key(float f) {
  if (f == 0.0f) f = 0.0f;
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// llama.cpp's unicode_len_utf8: the length a lead byte claims, continuation
// bytes unchecked.
size_t claimed_len(uint8_t b) {
  static const uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[b >> 4];
}

int hex_value(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

const uint8_t* text_of(const TokenTexts& t, uint32_t id, uint32_t* len) {
  const uint32_t a = load_u32(t.offsets + 4 * size_t(id));
  *len = load_u32(t.offsets + 4 * size_t(id) + 4) - a;
  return t.pool + a;
}

bool is_special_type(uint8_t type) {
  return type == uint8_t(TT::kControl) || type == uint8_t(TT::kUserDefined) || type == uint8_t(TT::kUnknown);
}

bool bit(const uint8_t* map, uint8_t b) { return (map[b >> 3] >> (b & 7)) & 1; }
void set_bit(uint8_t* map, uint8_t b) { map[b >> 3] |= uint8_t(1u << (b & 7)); }

const uint8_t kSpace[3] = {0xE2, 0x96, 0x81};  // U+2581, SentencePiece's space

// Texts llama.cpp's loader forces to CONTROL (EOT, EOM, FIM and EOG lists of
// llama-vocab.cpp, 2025-2026), in no particular order.
const char* const kLlamaCppControlTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<PRE>", "<|code_prefix|>", "<|prefix|>",
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<SUF>", "<|code_suffix|>", "<|suffix|>",
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<MID>", "<|code_middle|>", "<|middle|>",
    "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]",
    "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>",
};

}  // namespace

uint8_t llama_cpp_token_type(const uint8_t* text, size_t len, uint8_t file_type) {
  if (file_type == uint8_t(TT::kControl) || len < 3 || len > 20) return file_type;
  for (const char* t : kLlamaCppControlTexts) {
    if (std::strlen(t) == len && std::memcmp(t, text, len) == 0) return uint8_t(TT::kControl);
  }
  return file_type;
}


size_t SpmTokenizer::arena_bytes(uint32_t n_tokens, uint32_t pool_bytes, size_t max_text_bytes) {
  if (max_text_bytes > kMaxTextBytes) max_text_bytes = kMaxTextBytes;
  const SpmSizes s = spm_sizes(n_tokens, pool_bytes, max_text_bytes);
  const size_t a = Arena::kDefaultAlign;
  const size_t persistent = arena_align_up(s.sorted, a) + arena_align_up(s.dec_len, a) +
                            arena_align_up(s.dec_pool, a) + arena_align_up(s.mask, a) +
                            arena_align_up(s.claim, a) + arena_align_up(s.esc, a) + 8 * arena_align_up(s.sym, a);
  const size_t peak = arena_align_up(s.sort_peak, a);
  // Each allocation may need up to align-1 padding before it.
  return (persistent > peak ? persistent : peak) + 14 * a;
}

Status SpmTokenizer::init(const SpmVocab& vocab, size_t max_text_bytes, Arena* arena) {
  work_ = 0;
  const Status st = build(vocab, max_text_bytes, arena);
  if (!st.is_ok()) n_tokens_ = 0;  // a half-built tokenizer encodes nothing
  return st;
}

Status SpmTokenizer::build(const SpmVocab& v, size_t max_text_bytes, Arena* arena) {
  constexpr StatusCode kBad = StatusCode::kBadTokenizer;
  n_tokens_ = 0;
  const uint32_t n = v.texts.n;
  if (arena == nullptr) return Status::error(StatusCode::kInvalidArgument, "no arena");
  if (max_text_bytes > kMaxTextBytes) {
    return Status::error(StatusCode::kInvalidArgument, "max_text_bytes %zu above %zu", max_text_bytes,
                         kMaxTextBytes);
  }
  if (n < 1 || n > 0x7FFFFFFEu) return Status::error(kBad, "n_tokens %u out of range", n);
  if (!v.texts.offsets || !v.texts.pool || !v.scores || !v.types) {
    return Status::error(kBad, "vocabulary array missing");
  }
  if (load_u32(v.texts.offsets) != 0) return Status::error(kBad, "token_offset[0] is not 0");
  for (uint32_t i = 0; i < n; ++i) {
    if (load_u32(v.texts.offsets + 4 * size_t(i) + 4) < load_u32(v.texts.offsets + 4 * size_t(i))) {
      return Status::error(kBad, "token_offset decreases at token %u", i);
    }
  }
  const uint32_t pool_bytes = load_u32(v.texts.offsets + 4 * size_t(n));
  const int32_t named[3] = {v.bos, v.eos, v.unk};
  for (int32_t id : named) {
    if (id < -1 || id >= int32_t(n)) return Status::error(kBad, "special id %d out of range", id);
  }
  uint32_t max_user = 0, max_special = 0;
  std::memset(first_user_, 0, sizeof(first_user_));
  std::memset(first_all_, 0, sizeof(first_all_));
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t type = v.types[i];
    if (type < 1 || type > 6) return Status::error(kBad, "token %u has type %u", i, type);
    if (!std::isfinite(load_f32(v.scores + 4 * size_t(i)))) {
      return Status::error(kBad, "token %u has a score that is not finite", i);
    }
    uint32_t len;
    const uint8_t* t = text_of(v.texts, i, &len);
    if (type == uint8_t(TT::kByte) &&
        (len != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || hex_value(t[3]) < 0 || hex_value(t[4]) < 0 ||
         t[5] != '>')) {
      return Status::error(kBad, "byte token %u is not spelled <0xNN>", i);
    }
    if (is_special_type(type) && len > 0) {
      if (len > kMaxSpecialBytes) {
        return Status::error(kBad, "special token %u is %u bytes long (at most %zu)", i, len, kMaxSpecialBytes);
      }
      set_bit(first_all_, t[0]);
      if (len > max_special) max_special = len;
      if (type == uint8_t(TT::kUserDefined)) {
        set_bit(first_user_, t[0]);
        if (len > max_user) max_user = len;
      }
    }
  }

  // Vocabulary order: sorted in a 16-byte-per-token scratch, then moved to
  // its 4-byte-per-token place at the same arena start.
  const SpmSizes sz = spm_sizes(n, pool_bytes, max_text_bytes);
  const Arena::Mark m = arena->mark();
  // Its own region name: rewound below, so the arena report can tell it from the tables.
  uint8_t* tmp = static_cast<uint8_t*>(arena->allocate(sz.sort_peak, "tokenizer init"));
  if (tmp == nullptr) {
    return Status::error(StatusCode::kArenaTooSmall, "tokenizer needs %zu arena bytes",
                         arena_bytes(n, pool_bytes, max_text_bytes));
  }
  uint64_t* scratch = reinterpret_cast<uint64_t*>(tmp);
  uint64_t* scratch2 = reinterpret_cast<uint64_t*>(tmp + size_t(n) * 8);
  uint32_t* ids = reinterpret_cast<uint32_t*>(scratch2);
  const uint32_t dup = sort_token_texts(v.texts, ids, scratch, scratch2, &work_);
  if (dup != 0) {
    return Status::error(kBad, "tokens %u and %u have the same text (duplicate tokens are refused, as llama.cpp does)",
                         ids[dup - 1], ids[dup]);
  }
  arena->rewind(m);
  vocab_sorted_ = static_cast<uint32_t*>(arena->allocate(sz.sorted, "tokenizer"));
  if (vocab_sorted_ != nullptr) std::memmove(vocab_sorted_, ids, sz.sorted);
  // The decoded bytes are written on first use (token_bytes), each token's at
  // its text's offset (never longer than the text: "▁" 3 -> 1, "<0xNN>" 6 ->
  // 1), so the pages of tokens never printed stay untouched.
  dec_len_ = static_cast<uint32_t*>(arena->allocate(sz.dec_len, "tokenizer"));
  dec_pool_ = static_cast<uint8_t*>(arena->allocate(sz.dec_pool, "tokenizer"));
  // The sort touched 16 bytes per token (4 MB for Gemma 3) of which the ids
  // keep 4: the rest lies under the decoded lengths (which must read 0, "not
  // decoded yet"), the decoded bytes and encode's scratch. Give those pages
  // back: the tokenizer's resident set after init is the sorted ids.
  if (vocab_sorted_ != nullptr) os_discard_pages(tmp + sz.sorted, sz.sort_peak - sz.sorted);
  if (dec_len_ != nullptr) os_discard_pages(dec_len_, sz.dec_len);
  mask_ = static_cast<uint64_t*>(arena->allocate(sz.mask, "tokenizer"));
  claim_ = static_cast<uint8_t*>(arena->allocate(sz.claim, "tokenizer"));
  esc_ = static_cast<uint8_t*>(arena->allocate(sz.esc, "tokenizer"));
  int32_t** syms[] = {&sym_start_, &sym_prev_, &sym_next_, &sym_id_, &cand_id_, &heap_, &heap_pos_};
  bool ok = vocab_sorted_ && dec_len_ && dec_pool_ && mask_ && claim_ && esc_;
  for (int32_t** p : syms) {
    *p = static_cast<int32_t*>(arena->allocate(sz.sym, "tokenizer"));
    ok = ok && *p != nullptr;
  }
  cand_key_ = static_cast<uint32_t*>(arena->allocate(sz.sym, "tokenizer"));
  if (!ok || cand_key_ == nullptr) {
    return Status::error(StatusCode::kArenaTooSmall, "tokenizer needs %zu arena bytes",
                         arena_bytes(n, pool_bytes, max_text_bytes));
  }

  texts_ = v.texts;
  scores_ = v.scores;
  types_ = v.types;
  bos_ = v.bos;
  eos_ = v.eos;
  unk_ = v.unk;
  add_space_prefix_ = v.add_space_prefix;
  max_user_len_ = max_user;
  max_special_len_ = max_special;
  max_text_ = max_text_bytes;
  n_tokens_ = n;

  // Byte fallback: "<0xNN>", else the single-byte text, else unk.
  std::memset(missing_bytes_, 0, sizeof(missing_bytes_));
  static const char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const uint8_t name[6] = {'<', '0', 'x', uint8_t(kHex[b >> 4]), uint8_t(kHex[b & 15]), '>'};
    int32_t id = find_token_text(texts_, vocab_sorted_, name, 6, &work_);
    if (id < 0) {
      set_bit(missing_bytes_, uint8_t(b));
      const uint8_t one = uint8_t(b);
      id = find_token_text(texts_, vocab_sorted_, &one, 1, &work_);
      if (id < 0) id = unk_;
      if (id < 0) {
        n_tokens_ = 0;
        return Status::error(kBad, "no byte token <0x%02X> (nor a token for that byte alone) and no unk token", b);
      }
    }
    byte_token_[b] = id;
  }
  return Status::ok();
}

uint32_t SpmTokenizer::missing_byte_tokens(uint8_t* bytes, size_t cap) const {
  uint32_t k = 0;
  for (int b = 0; b < 256; ++b) {
    if (!bit(missing_bytes_, uint8_t(b))) continue;
    if (bytes != nullptr && k < cap) bytes[k] = uint8_t(b);
    ++k;
  }
  return k;
}

int32_t SpmTokenizer::lookup(const uint8_t* s, size_t len) {
  return find_token_text(texts_, vocab_sorted_, s, len, &work_);
}

int32_t SpmTokenizer::find(const char* text, size_t len) const {
  if (n_tokens_ == 0 || len == 0 || text == nullptr) return -1;
  uint64_t steps = 0;
  return find_token_text(texts_, vocab_sorted_, reinterpret_cast<const uint8_t*>(text), len, &steps);
}

uint8_t SpmTokenizer::token_type(int32_t id) const {
  return id >= 0 && uint32_t(id) < n_tokens_ ? types_[id] : 0;
}

bool SpmTokenizer::is_control(int32_t id) const {
  const uint8_t t = token_type(id);
  return t == uint8_t(TT::kControl) || t == uint8_t(TT::kUnknown);
}

uint32_t SpmTokenizer::decode_token(int32_t id, uint8_t* out) const {
  uint32_t len;
  const uint8_t* t = text_of(texts_, uint32_t(id), &len);
  const uint8_t type = types_[id];
  uint32_t w = 0;
  if (type == uint8_t(TT::kByte)) {  // init checked the <0xNN> spelling
    out[w++] = uint8_t(hex_value(t[3]) * 16 + hex_value(t[4]));
  } else if (type == uint8_t(TT::kNormal)) {
    for (uint32_t k = 0; k < len;) {
      if (k + 3 <= len && std::memcmp(t + k, kSpace, 3) == 0) {
        out[w++] = ' ';
        k += 3;
      } else {
        out[w++] = t[k++];
      }
    }
  } else if (type != uint8_t(TT::kUnused)) {  // control, unknown, user-defined: verbatim
    std::memcpy(out, t, len);
    w = len;
  }
  return w;
}

bool SpmTokenizer::token_bytes(int32_t id, const char** bytes, size_t* len, bool special) const {
  if (id < 0 || uint32_t(id) >= n_tokens_) return false;
  uint8_t* out = dec_pool_ + load_u32(texts_.offsets + 4 * size_t(id));
  // First use of this id: decode it into its place (see build).
  if (dec_len_[id] == 0) dec_len_[id] = decode_token(id, out) + 1;
  *bytes = reinterpret_cast<const char*>(out);
  *len = (is_control(id) && !special) ? 0 : dec_len_[id] - 1;
  return true;
}

// Lengths of the active special texts that s[0, avail) starts with, as a mask
// (bit L-1). Walks the vocabulary in byte order: [lo, hi) holds the texts
// that start with s[0, d); the one of length exactly d, if any, comes first
// (texts are distinct), the rest are ordered by their byte d, so each step is
// two binary searches. The walk stops at the longest special text.
uint64_t SpmTokenizer::special_lengths(const uint8_t* s, size_t avail, bool parse_special) {
  const size_t max_d = parse_special ? max_special_len_ : max_user_len_;
  const size_t depth = avail < max_d ? avail : max_d;
  uint32_t lo = 0, hi = n_tokens_;
  uint64_t mask = 0, steps = 0;
  for (size_t d = 0;; ++d) {
    while (lo < hi) {  // the text of length exactly d (at d = 0: every empty text)
      uint32_t len;
      text_of(texts_, vocab_sorted_[lo], &len);
      if (len != d) break;
      if (d > 0) {
        const uint8_t type = types_[vocab_sorted_[lo]];
        if (type == uint8_t(TT::kUserDefined) ||
            (parse_special && (type == uint8_t(TT::kControl) || type == uint8_t(TT::kUnknown)))) {
          mask |= uint64_t(1) << (d - 1);
        }
      }
      ++lo;
    }
    if (d == depth || lo >= hi) break;
    const uint8_t c = s[d];
    auto byte_at = [this, d](uint32_t k) {
      uint32_t len;
      return text_of(texts_, vocab_sorted_[k], &len)[d];  // every text left is longer than d
    };
    uint32_t l = lo, h = hi;
    while (l < h) {  // first with byte d >= c
      const uint32_t mid = l + (h - l) / 2;
      ++steps;
      if (byte_at(mid) < c) l = mid + 1; else h = mid;
    }
    lo = l;
    h = hi;
    while (l < h) {  // first with byte d > c
      const uint32_t mid = l + (h - l) / 2;
      ++steps;
      if (byte_at(mid) <= c) l = mid + 1; else h = mid;
    }
    hi = l;
  }
  work_ += steps;
  return mask;
}

// Heap order: the higher score first, then the leftmost piece (llama.cpp's
// llm_bigram_spm comparator).
bool SpmTokenizer::heap_better(int32_t a, int32_t b) const {
  return cand_key_[a] > cand_key_[b] || (cand_key_[a] == cand_key_[b] && a < b);
}

void SpmTokenizer::heap_up(int32_t slot) {
  const int32_t x = heap_[slot];
  while (slot > 0) {
    const int32_t parent = (slot - 1) / 2;
    ++work_;
    if (!heap_better(x, heap_[parent])) break;
    heap_[slot] = heap_[parent];
    heap_pos_[heap_[slot]] = slot;
    slot = parent;
  }
  heap_[slot] = x;
  heap_pos_[x] = slot;
}

void SpmTokenizer::heap_down(int32_t slot) {
  const int32_t x = heap_[slot];
  for (;;) {
    int32_t c = 2 * slot + 1;
    if (c >= heap_n_) break;
    if (c + 1 < heap_n_ && heap_better(heap_[c + 1], heap_[c])) ++c;
    ++work_;
    if (!heap_better(heap_[c], x)) break;
    heap_[slot] = heap_[c];
    heap_pos_[heap_[slot]] = slot;
    slot = c;
  }
  heap_[slot] = x;
  heap_pos_[x] = slot;
}

void SpmTokenizer::heap_remove(int32_t sym) {
  const int32_t slot = heap_pos_[sym];
  if (slot < 0) return;
  heap_pos_[sym] = -1;
  const int32_t last = heap_[--heap_n_];
  if (slot == heap_n_) return;
  heap_[slot] = last;
  heap_pos_[last] = slot;
  heap_up(slot);
  heap_down(heap_pos_[last]);
}

// The candidate of piece `sym`: the pair (sym, next) if its text is a token.
// Replaces the piece's earlier candidate (which the merge made stale).
void SpmTokenizer::set_candidate(int32_t sym, size_t frag_end) {
  const int32_t nx = sym_next_[sym];
  int32_t id = -1;
  if (nx >= 0) {
    const int32_t nn = sym_next_[nx];
    const size_t end = nn >= 0 ? size_t(sym_start_[nn]) : frag_end;
    id = lookup(esc_ + sym_start_[sym], end - size_t(sym_start_[sym]));
  }
  if (id < 0) {
    heap_remove(sym);
    return;
  }
  cand_id_[sym] = id;
  cand_key_[sym] = score_key(load_f32(scores_ + 4 * size_t(id)));
  if (heap_pos_[sym] < 0) {
    heap_[heap_n_] = sym;
    heap_pos_[sym] = heap_n_++;
    heap_up(heap_pos_[sym]);
  } else {
    heap_up(heap_pos_[sym]);
    heap_down(heap_pos_[sym]);
  }
}

// One fragment without special texts: escape spaces, cut into characters,
// merge by score, emit (byte fallback for pieces that are not tokens).
// Pieces <= 2 per input byte (+2 for the prefix): a space's 3 bytes start at
// most 2 pieces, any other byte at most 1.
bool SpmTokenizer::encode_fragment(const uint8_t* raw, size_t len, bool space_prefix, Emitter* em) {
  size_t m = 0;
  if (space_prefix) {
    std::memcpy(esc_, kSpace, 3);
    m = 3;
  }
  for (size_t i = 0; i < len; ++i) {
    if (raw[i] == ' ') {
      std::memcpy(esc_ + m, kSpace, 3);
      m += 3;
    } else {
      esc_[m++] = raw[i];
    }
  }
  if (m == 0) return true;
  int32_t ns = 0;
  for (size_t off = 0; off < m; ++ns) {
    const size_t l = claimed_len(esc_[off]);
    sym_start_[ns] = int32_t(off);
    sym_prev_[ns] = ns - 1;
    sym_next_[ns] = ns + 1;
    sym_id_[ns] = -1;
    heap_pos_[ns] = -1;
    off += l < m - off ? l : m - off;
  }
  sym_next_[ns - 1] = -1;
  heap_n_ = 0;
  for (int32_t i = 0; i + 1 < ns; ++i) set_candidate(i, m);
  while (heap_n_ > 0) {
    const int32_t left = heap_[0];
    const int32_t right = sym_next_[left];
    sym_id_[left] = cand_id_[left];
    heap_remove(left);
    heap_remove(right);
    const int32_t nn = sym_next_[right];
    sym_next_[left] = nn;
    if (nn >= 0) sym_prev_[nn] = left;
    if (sym_prev_[left] >= 0) set_candidate(sym_prev_[left], m);
    set_candidate(left, m);
  }
  for (int32_t i = 0; i >= 0; i = sym_next_[i]) {
    int32_t id = sym_id_[i];
    const size_t start = size_t(sym_start_[i]);
    const size_t end = sym_next_[i] >= 0 ? size_t(sym_start_[sym_next_[i]]) : m;
    if (id < 0) id = lookup(esc_ + start, end - start);
    if (id >= 0) {
      if (!em->put(id)) return false;
      continue;
    }
    for (size_t k = start; k < end; ++k) {
      if (!em->put(byte_token_[esc_[k]])) return false;
    }
  }
  return true;
}

Status SpmTokenizer::encode(const char* text, size_t len, bool add_bos, bool parse_special, int32_t* out,
                            size_t cap, size_t* n) {
  *n = 0;
  if (n_tokens_ == 0) return Status::error(StatusCode::kInternal, "tokenizer not initialized");
  if (text == nullptr && len > 0) return Status::error(StatusCode::kInvalidArgument, "null text");
  if (out == nullptr && cap > 0) return Status::error(StatusCode::kInvalidArgument, "null output");
  if (len > max_text_) {
    return Status::error(StatusCode::kPromptTooLong, "text is %zu bytes, the tokenizer takes at most %zu", len,
                         max_text_);
  }
  if (add_bos && bos_ < 0) return Status::error(StatusCode::kInvalidArgument, "the vocabulary has no BOS token");
  const uint8_t* t = reinterpret_cast<const uint8_t*>(text);
  Emitter em{out, cap};
  if (add_bos) em.put(bos_);

  // 1. Special split: the lengths of special texts starting at each byte,
  // then claims by length, longest first. Claimed intervals are never shorter
  // than the length being placed, so [p, p + L) is free iff its first and
  // last bytes are.
  if (len > 0) std::memset(claim_, 0, len);
  const uint8_t* first = parse_special ? first_all_ : first_user_;
  uint64_t present = 0;
  if ((parse_special ? max_special_len_ : max_user_len_) > 0) {
    for (size_t p = 0; p < len; ++p) {
      mask_[p] = bit(first, t[p]) ? special_lengths(t + p, len - p, parse_special) : 0;
      present |= mask_[p];
    }
  }
  for (size_t l = kMaxSpecialBytes; l >= 1 && present != 0; --l) {
    const uint64_t b = uint64_t(1) << (l - 1);
    if (!(present & b)) continue;
    for (size_t p = 0; p + l <= len; ++p) {
      if (!(mask_[p] & b) || claim_[p] != 0 || claim_[p + l - 1] != 0) continue;
      claim_[p] = uint8_t(l);
      if (l > 1) std::memset(claim_ + p + 1, 0xFF, l - 1);
    }
    work_ += len;
  }

  // 2-3. Fragments and special tokens in text order.
  bool after_special = true;  // llama.cpp: the start counts as after a special token
  for (size_t p = 0; p < len && !em.full;) {
    if (claim_[p] != 0) {
      const size_t l = claim_[p];
      em.put(lookup(t + p, l));
      after_special = true;
      p += l;
      continue;
    }
    size_t q = p;
    while (q < len && claim_[q] == 0) ++q;
    if (!encode_fragment(t + p, q - p, add_space_prefix_ && after_special, &em)) break;
    after_special = false;
    p = q;
  }
  *n = em.n;
  if (em.full) return Status::error(StatusCode::kPromptTooLong, "text needs more than %zu tokens", cap);
  return Status::ok();
}

}  // namespace tern
