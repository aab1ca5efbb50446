// The SentencePiece-style tokenizer (llama.cpp's "llama" tokenizer model:
// BPE by token score with byte fallback), what Gemma 3 uses. It reproduces
// llama.cpp's llama_tokenize for such a vocabulary id for id (the oracle:
// tests/goldens/gemma3_tokenizer_cases.md, which describes the behaviour in
// full; tests/model/spm_tokenizer_test.cc checks every case).
//
// Encoding, as llama.cpp does it:
//  1. Special split. The texts of USER_DEFINED tokens (always) and of CONTROL
//     and UNKNOWN tokens (only with parse_special) are cut out of the text
//     first, longest text first over the whole string: for each length L from
//     the longest down, every occurrence of a length-L special text that lies
//     in text not yet claimed is claimed, left to right, not overlapping.
//     (llama.cpp does this per token, its tokens of equal length in an order
//     std::sort leaves unspecified; here equal lengths go together, left to
//     right. The two differ only for two different special texts of the same
//     length that overlap in the input; Gemma has none.)
//  2. Each remaining fragment: spaces (0x20 only) become U+2581 "▁" (with
//     add_space_prefix, a fragment at the start or after a special token gets
//     one more in front). The fragment is cut into "characters" by the lead
//     byte's claimed length alone (0xC_/0xD_ -> 2, 0xE_ -> 3, 0xF_ -> 4, else 1,
//     cut short at the fragment's end; continuation bytes are not checked,
//     exactly as llama.cpp's unicode_len_utf8). Then, repeatedly, the adjacent
//     pair whose concatenation is a vocabulary text (any token type) with the
//     highest score is merged (ties: the leftmost pair).
//  3. Each final piece is its token if its text is one; otherwise each of its
//     bytes becomes the byte token "<0xNN>" (if the vocabulary lacks it: the
//     token whose text is that single byte, as llama.cpp; else the unk token).
//
// Checked against llama.cpp itself (the 490 goldens; 4000 random texts the
// same way, TERN_GEMMA_TOKENIZER_EXTRA_CASES in the model test) and against a
// literal transcription of its algorithm on random vocabularies
// (tests/runtime/spm_tokenizer_test.cc). The merge queue differs in form, not
// in order: llama.cpp pushes every candidate pair and skips stale ones when
// popped; here each piece keeps only its current pair in an indexed heap.
// Both pop the valid pair of highest (score, -left index) each time.
//
// Cost bounded by the input, whatever the vocabulary holds: no hash an input
// could aim. Texts are found by binary search over the ids sorted by text
// (sort_token_texts, shared with the BPE tokenizer: the same duplicate rule);
// the merge queue is an indexed binary heap holding at most one candidate
// pair per piece (the piece and its right neighbour), so no stale entries
// pile up. For a text of n bytes, encode() costs
//  - the special split: at each byte whose value can start a special text, a
//    walk down the sorted vocabulary of at most kMaxSpecialBytes levels, two
//    binary searches (O(log V)) per level; then one O(n) pass per special
//    length present;
//  - the merges: <= 2n + 2 pieces, <= 3 text lookups (O(log V) comparisons
//    of <= 2 x the longest token's bytes) and O(log n) heap steps per merge.
// work() counts the comparisons, binary-search and heap steps; the tests
// bound them per byte on adversarial vocabularies and inputs.
//
// Memory: init() takes every table in the arena (arena_bytes()); encode() uses
// scratch sized at init from max_text_bytes and allocates nothing. For Gemma 3
// (262,144 tokens, 2.3 MB of texts): 4.3 MB of tables (sorted ids, decoded
// lengths and bytes) plus the larger of ~76 bytes of encode scratch per byte
// of max_text_bytes and init's sort (16 bytes per token, rewound). Only the
// sorted ids (1 MB) are resident after init: the sort's pages are given back,
// and a token's decoded bytes are written on its first token_bytes(). One
// encode at a time per SpmTokenizer. The vocabulary arrays (texts, scores,
// types) are views: they must outlive the tokenizer (like the blob's weights).
#pragma once
#include <cstddef>
#include <cstdint>

#include "arena/arena.h"
#include "runtime/token_sink.h"
#include "runtime/status.h"
#include "runtime/tokenizer.h"  // TokenTexts, sort_token_texts, find_token_text

namespace tern {

// The vocabulary, as views (a blob section or arrays the caller keeps alive).
struct SpmVocab {
  TokenTexts texts = {};            // token i's text in SentencePiece form ("▁" for space)
  const uint8_t* scores = nullptr;  // f32 little-endian [n]: merge priority, higher first
  const uint8_t* types = nullptr;   // u8 [n]: blob::tok::TokenType (1 normal, 2 unknown,
                                    // 3 control, 4 user-defined, 5 unused, 6 byte)
  int32_t bos = -1;                 // -1 = none
  int32_t eos = -1;
  int32_t unk = -1;
  bool add_space_prefix = false;    // Gemma 3: false
};

// The type llama.cpp's vocabulary loader gives a token of this text and file
// type (llama-vocab.cpp, load(): "control-looking token ... its type will be
// overridden"): a text it knows as an end-of-generation, end-of-turn,
// end-of-message or fill-in-the-middle marker is CONTROL whatever the file
// says. Gemma 3's "</s>" (id 212, USER_DEFINED in the file) is the one such
// token there: llama.cpp then leaves it plain text unless parse_special.
// Apply it where file types become SpmVocab::types (the packer, the test) to
// reproduce llama.cpp. Not reproduced: llama.cpp takes only the first FIM
// spelling it meets per role (hash-map order) and none when the file names
// that role's id; its gpt-oss and Gemma 4 exceptions.
uint8_t llama_cpp_token_type(const uint8_t* text, size_t len, uint8_t file_type);

class SpmTokenizer {
 public:
  // Longest special text matched (a 64-bit mask of lengths per text byte).
  // init() refuses a vocabulary with a longer CONTROL / USER_DEFINED /
  // UNKNOWN text (Gemma 3's longest is 31).
  static constexpr size_t kMaxSpecialBytes = 64;
  // Largest max_text_bytes init() accepts (the scratch is ~80 bytes per byte).
  static constexpr size_t kMaxTextBytes = size_t(1) << 24;

  // Arena bytes init() needs: a vocabulary of n_tokens whose texts total
  // pool_bytes, and encode() inputs of at most max_text_bytes. The peak of
  // init (the vocabulary sort, 16 bytes per token) is included.
  static size_t arena_bytes(uint32_t n_tokens, uint32_t pool_bytes, size_t max_text_bytes);

  // Validate the vocabulary completely and build the tables: texts
  // (offsets non-decreasing from 0), types in 1..6, scores finite, no two
  // tokens with the same non-empty text (refused, as llama.cpp refuses them),
  // byte-type tokens spelled "<0xNN>", special texts <= kMaxSpecialBytes,
  // bos / eos / unk in range or -1, and every byte reachable by byte fallback
  // ("<0xNN>", else the single-byte text, else unk). kBadTokenizer with a
  // message on any violation; kArenaTooSmall if the arena is short;
  // kInvalidArgument for max_text_bytes > kMaxTextBytes.
  Status init(const SpmVocab& vocab, size_t max_text_bytes, Arena* arena);

  // Encode text[0, len). add_bos: the BOS id first (an error if the
  // vocabulary has none). parse_special: CONTROL / UNKNOWN texts in the text
  // become their tokens (USER_DEFINED ones always do). Writes at most `cap`
  // ids and sets *n; kPromptTooLong if more are needed (*n = cap, the ids
  // that fit) or if len > max_text_bytes (nothing written). Invalid UTF-8 is
  // never refused (see step 2 above).
  Status encode(const char* text, size_t len, bool add_bos, bool parse_special, int32_t* out, size_t cap,
                size_t* n);

  // The bytes token `id` decodes to, as llama.cpp's token_to_piece: normal
  // tokens their text with "▁" -> space; byte tokens their byte;
  // user-defined tokens their text; control and unknown tokens nothing, or
  // their text when `special`; unused tokens nothing. False for an invalid id.
  // The bytes stay valid while the tokenizer lives. The first call for an
  // id writes its decoded bytes into the arena (see dec_pool_).
  bool token_bytes(int32_t id, const char** bytes, size_t* len, bool special = false) const;

  // Exact vocabulary lookup of a SentencePiece-form text; -1 if absent.
  int32_t find(const char* text, size_t len) const;
  // The token's type (1..6), 0 for an invalid id.
  uint8_t token_type(int32_t id) const;
  // CONTROL or UNKNOWN (what decodes to nothing unless asked).
  bool is_control(int32_t id) const;
  uint32_t n_tokens() const { return n_tokens_; }
  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  int32_t unk() const { return unk_; }
  size_t max_text_bytes() const { return max_text_; }

  // Bytes without a "<0xNN>" token (their fallback is the single-byte text
  // token or unk). Writes up to `cap` of them to `bytes` (may be null) and
  // returns how many there are (0 for Gemma 3).
  uint32_t missing_byte_tokens(uint8_t* bytes, size_t cap) const;

  // Comparisons and heap steps done by init() (which resets the count) and
  // by encode() since: what the cost-bound tests count.
  uint64_t work() const { return work_; }

 private:
  using Emitter = TokenSink;  // runtime/token_sink.h
  Status build(const SpmVocab& vocab, size_t max_text_bytes, Arena* arena);
  uint32_t decode_token(int32_t id, uint8_t* out) const;  // id's decoded bytes to out (its dec_pool_ place); their count
  int32_t lookup(const uint8_t* s, size_t len);
  uint64_t special_lengths(const uint8_t* s, size_t avail, bool parse_special);
  bool encode_fragment(const uint8_t* raw, size_t len, bool space_prefix, Emitter* em);
  // Indexed max-heap of pieces by their candidate pair (score, then leftmost).
  bool heap_better(int32_t a, int32_t b) const;
  void heap_up(int32_t slot);
  void heap_down(int32_t slot);
  void heap_remove(int32_t sym);
  void set_candidate(int32_t sym, size_t frag_end);

  // Views.
  TokenTexts texts_ = {};
  const uint8_t* scores_ = nullptr;
  const uint8_t* types_ = nullptr;
  uint32_t n_tokens_ = 0;
  int32_t bos_ = -1, eos_ = -1, unk_ = -1;
  bool add_space_prefix_ = false;

  // Arena tables.
  uint32_t* vocab_sorted_ = nullptr;  // [n_tokens] ids in byte order of their texts
  // Decoded bytes, filled on a token's first token_bytes() (a write through
  // these pointers from a const method: like encode(), one caller at a time).
  uint32_t* dec_len_ = nullptr;       // [n_tokens] decoded length + 1; 0: not decoded yet
  uint8_t* dec_pool_ = nullptr;       // token i's bytes at its text offset (control texts verbatim)
  int32_t byte_token_[256] = {};      // byte fallback token of each byte
  uint8_t missing_bytes_[32] = {};    // bitmap: no "<0xNN>" token
  uint8_t first_user_[32] = {};       // bitmap: first bytes of USER_DEFINED texts
  uint8_t first_all_[32] = {};        // ... of USER_DEFINED, CONTROL and UNKNOWN texts
  uint32_t max_user_len_ = 0;         // longest USER_DEFINED text
  uint32_t max_special_len_ = 0;      // longest of all three

  // Encode scratch; T = max_text_bytes, S = 2T + 2 pieces.
  size_t max_text_ = 0;
  uint64_t* mask_ = nullptr;       // [T] bit L-1: a special text of length L starts here
  uint8_t* claim_ = nullptr;       // [T] 0 free, L at a claimed start, 0xFF inside
  uint8_t* esc_ = nullptr;         // [3T + 3] the escaped fragment
  int32_t* sym_start_ = nullptr;   // [S] byte offset of piece i in esc_
  int32_t* sym_prev_ = nullptr;    // [S]
  int32_t* sym_next_ = nullptr;    // [S] -1 at the end
  int32_t* sym_id_ = nullptr;      // [S] token of a merged piece, -1 if never merged
  int32_t* cand_id_ = nullptr;     // [S] token of the pair (i, next[i])
  uint32_t* cand_key_ = nullptr;   // [S] its score, as an order-preserving u32
  int32_t* heap_ = nullptr;        // [S] piece indexes
  int32_t* heap_pos_ = nullptr;    // [S] slot of piece i in heap_, -1 if absent
  int32_t heap_n_ = 0;
  uint64_t work_ = 0;
};

}  // namespace tern
