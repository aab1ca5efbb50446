// The runtime tokenizer: GPT-2 byte-level BPE with the smollm pre-tokenizer,
// built from the blob's tokenizer section (runtime/blob_format.h, tok::).
//
// init() validates the whole section and builds its tables in the arena;
// after that nothing allocates. encode() uses scratch owned by the Tokenizer:
// one encode at a time per Tokenizer (the const lookups are thread-safe).
// The section memory must outlive the Tokenizer (it keeps views into it:
// token texts, types and merges, like weights).
//
// Encoding = (optional) special-token split -> pre-tokenizer pieces
// (runtime/pretokenizer.h) -> BPE per piece: start from one token per byte
// (the GPT-2 byte map), repeatedly merge the adjacent pair of lowest merge
// rank (leftmost on ties), as HF tokenizers' BPE does.
//
// Vocabulary rules (tern-pack's read_tokenizer applies the same two):
//  - Two tokens with the same non-empty text are an error (kBadTokenizer):
//    llama.cpp refuses such a vocabulary too (llama-vocab.cpp: "duplicate
//    token in vocabulary"; older versions abort on the same condition), so
//    there is no "which id wins" to agree on. Empty texts may repeat; they
//    are never looked up.
//  - The same merge pair listed twice: the lowest rank wins (llama.cpp's
//    bpe_ranks.emplace keeps the first); the later copy must name the same
//    merged token and costs O(1) at init.
//
// Cost bounded by the section, whatever its contents: no hash table an
// attacker could aim (no secret needed). Token texts are a sorted id array
// (binary search); merges are grouped by left id (counting sort) and sorted
// by right id within the group; special tokens are a sorted array narrowed
// byte by byte. init() is O(n log n + m log m) comparisons, a merge lookup
// O(log m), a special-token match at one text position O(depth x log s),
// depth <= the longest special text (at most kMaxSpecialBytes). work() counts them; the tests bound
// them (tests/runtime/tokenizer_bounds_test.cc). A small direct-mapped memo
// of merge lookups speeds encode up; a collision in it only costs the search.
//
// Deviations from HF, by design:
//  - Invalid UTF-8 in the input (HF cannot receive it: Python str / Rust
//    String) is encoded byte-wise: each invalid unit is one "other" character
//    for the pre-tokenizer and its raw bytes go through BPE, so
//    token_bytes() of the ids gives back the input bytes exactly - except
//    bytes the vocabulary has no token for (SmolLM2 lacks C0, C1, F5..FF,
//    which never occur in UTF-8): those are dropped, as HF BPE without an
//    unk token does. Callers that want nothing dropped sanitize first
//    (tern-chat does: invalid UTF-8 becomes U+FFFD).
//  - A piece longer than kMaxPieceBytes (4096; e.g. 5000 spaces in a row, or
//    a 5 KB run of letters without a space) is split into chunks of at most
//    that many bytes, cut at a character boundary, and BPE runs per chunk.
//    Natural text never has such pieces; tokens near the cut may differ.
//  - Unicode tables are Python's unicodedata (Unicode 14); HF's regex engine
//    may know newer characters.
#pragma once
#include <cstddef>
#include <cstdint>

#include "arena/arena.h"
#include "runtime/token_sink.h"
#include "runtime/pretokenizer.h"
#include "runtime/status.h"
#include "runtime/utf8.h"

namespace tern {

// Token texts as the blob's tokenizer section stores them: token i is
// pool[offsets[i] .. offsets[i + 1]), offsets u32 little-endian.
struct TokenTexts {
  const uint8_t* offsets;  // u32 LE [n + 1], non-decreasing
  const uint8_t* pool;
  uint32_t n;
};

// The vocabulary rule, one implementation for tern-pack and Tokenizer::init:
// writes ids[0, n) in byte order of their texts (memcmp order, a proper
// prefix first; equal texts by id). scratch, scratch2: u64[n] each; scratch2
// may be the memory of ids (then 8n bytes). Returns 0 if no two tokens share
// a non-empty text, else k > 0 with ids[k - 1] and ids[k] such a pair (a
// duplicate token: refused, as llama.cpp refuses it). A radix sort on the
// first 4 bytes (8n steps), then each run of r texts sharing them is sorted
// by the next 4 bytes as integers (O(r log r)), up to 16 bytes deep, then by
// full comparison; all steps added to *steps. No allocation.
uint32_t sort_token_texts(const TokenTexts& t, uint32_t* ids, uint64_t* scratch, uint64_t* scratch2,
                          uint64_t* steps);
// The id whose text is s[0, len) in ids sorted by sort_token_texts, or -1.
// O(log n) comparisons, added to *steps.
int32_t find_token_text(const TokenTexts& t, const uint32_t* ids, const uint8_t* s, size_t len, uint64_t* steps);

class Tokenizer {
 public:
  static constexpr size_t kMaxPieceBytes = 4096;   // BPE chunk; bounds the encode scratch
  static constexpr size_t kMaxSpecialTokens = 1024;  // control + user-defined tokens matched in text
  // Longest special text: matching costs O(length x log count) per text
  // position, so a section cannot make it unbounded (SmolLM2's longest is 16).
  static constexpr size_t kMaxSpecialBytes = 256;

  // Arena bytes init() takes for a vocabulary of this size (the memory planner calls this).
  static size_t arena_bytes(uint32_t n_tokens, uint32_t n_merges);

  // Validate the section completely and build the lookup tables in the arena.
  // Returns kBadTokenizer (with a message) on any inconsistency, kArenaTooSmall
  // if the arena cannot hold arena_bytes().
  Status init(const uint8_t* section, size_t section_bytes, Arena* arena);

  // Encode UTF-8 text. allow_special: exact occurrences of control /
  // user-defined token texts (e.g. "<|im_start|>") become those tokens
  // (leftmost-longest, as HF); when false they are tokenized as plain text.
  // Invalid UTF-8 is encoded byte-wise (see above). Writes at most `cap` ids;
  // returns kPromptTooLong if more are needed (*n_out = cap, the ids that fit).
  Status encode(const char* text, size_t len, bool allow_special, int32_t* out, size_t cap,
                size_t* n_out);

  // The raw bytes of one token (byte-level alphabet decoded; control and
  // user-defined tokens: their text as is). False for an invalid id.
  bool token_bytes(int32_t id, const char** bytes, size_t* len) const;
  // Exact vocabulary lookup of a token text in the byte-level alphabet form
  // (e.g. "Ġthe" for " the"). -1 if absent.
  int32_t find(const char* text, size_t len) const;
  // Control / user-defined tokens.
  bool is_special(int32_t id) const;
  uint32_t n_tokens() const { return n_tokens_; }

  // Comparisons and binary-search steps done by init() (which resets the
  // count) and by encode() since: what the resource-bound tests count.
  uint64_t work() const { return work_; }

  // The split the pre-tokenizer uses. init() sets kSmollm (the section's
  // `pre` = 1, what SmolLM2 was trained with); kGpt2 reproduces the tokenizer
  // transformers 5.x builds from the GGUF, which drops the digit split.
  void set_pre_split(PreSplit mode) { pre_split_ = mode; }
  PreSplit pre_split() const { return pre_split_; }

 private:
  using Emitter = TokenSink;  // runtime/token_sink.h
  Status build(const uint8_t* section, size_t section_bytes, Arena* arena);
  Status build_merges();
  uint32_t merge_rank(int32_t left, int32_t right, uint64_t* steps) const;  // UINT32_MAX if no merge
  uint32_t cached_rank(int32_t left, int32_t right, uint64_t* steps);       // merge_rank through cache_
  void setup_cache(uint32_t unique_merges);
  int32_t merge_result(uint32_t rank) const;
  const uint8_t* token_text(int32_t id, uint32_t* len) const;
  int32_t match_special(const uint8_t* text, size_t avail, size_t* len, uint64_t* steps) const;
  bool encode_segment(const uint8_t* text, size_t len, Emitter* em);
  bool encode_chunk(const uint8_t* text, size_t len, Emitter* em);

  // Views into the section.
  const uint8_t* offsets_ = nullptr;  // u32[n_tokens + 1]
  const uint8_t* types_ = nullptr;    // u8[n_tokens]
  const uint8_t* merges_ = nullptr;   // u32[n_merges][3]
  const uint8_t* pool_ = nullptr;     // u8[pool_bytes]
  TokenTexts texts_ = {};  // offsets_ and pool_
  uint32_t n_tokens_ = 0;
  uint32_t n_merges_ = 0;
  PreSplit pre_split_ = PreSplit::kSmollm;

  // Arena tables.
  uint64_t* merge_keys_ = nullptr;    // [unique merges] (right id << 32) | rank, grouped by left id,
                                      // ascending within a group (the lowest rank of a pair kept)
  uint32_t* merge_end_ = nullptr;     // [n_tokens] end of left id a's group; it starts at merge_end_[a - 1] (0 for a = 0)
  uint32_t* vocab_sorted_ = nullptr;  // [n_tokens] ids in byte order of their texts (shorter first on a common prefix)
  // Direct-mapped memo of merge_rank results (misses included) in the unused
  // tail of the merge or vocabulary table; none (mask 0) if no tail is big
  // enough. Only a speed-up: a collision costs one merge_rank search, so
  // text that collides costs what no cache costs.
  struct RankMemo {
    uint64_t pair;  // (left << 32) | right; ~0 = empty
    uint32_t rank;
    uint32_t unused;
  };
  RankMemo* cache_ = nullptr;
  uint32_t cache_mask_ = 0;
  uint32_t* bytes_offset_ = nullptr;  // [n_tokens + 1] into bytes_pool_
  uint8_t* bytes_pool_ = nullptr;     // decoded token bytes
  int32_t byte_token_[256] = {};      // token of each single byte, -1 if the vocab lacks it
  int32_t* specials_ = nullptr;       // [kMaxSpecialTokens] ids of matchable special tokens, in byte order of their texts
  uint32_t n_specials_ = 0;
  uint8_t special_first_[32] = {};    // bitmap of first bytes of special texts
  // Encode scratch, [kMaxPieceBytes] symbols and [3 * kMaxPieceBytes] heap entries.
  int32_t* sym_id_ = nullptr;
  int32_t* sym_prev_ = nullptr;
  int32_t* sym_next_ = nullptr;
  uint64_t* heap_ = nullptr;  // (rank << 32) | left symbol index; min-heap
  uint64_t work_ = 0;         // see work()
};

}  // namespace tern
