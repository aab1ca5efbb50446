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
#include "runtime/pretokenizer.h"
#include "runtime/status.h"
#include "runtime/utf8.h"

namespace tern {

class Tokenizer {
 public:
  static constexpr size_t kMaxPieceBytes = 4096;   // BPE chunk; bounds the encode scratch
  static constexpr size_t kMaxSpecialTokens = 1024;  // control + user-defined tokens matched in text

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

  // The split the pre-tokenizer uses. init() sets kSmollm (the section's
  // `pre` = 1, what SmolLM2 was trained with); kGpt2 reproduces the tokenizer
  // transformers 5.x builds from the GGUF, which drops the digit split.
  void set_pre_split(PreSplit mode) { pre_split_ = mode; }
  PreSplit pre_split() const { return pre_split_; }

 private:
  struct Emitter;
  uint32_t merge_rank(int32_t left, int32_t right) const;  // UINT32_MAX if no merge
  int32_t merge_result(uint32_t rank) const;
  const uint8_t* token_text(int32_t id, uint32_t* len) const;
  bool encode_segment(const uint8_t* text, size_t len, Emitter* em);
  bool encode_chunk(const uint8_t* text, size_t len, Emitter* em);

  // Views into the section.
  const uint8_t* offsets_ = nullptr;  // u32[n_tokens + 1]
  const uint8_t* types_ = nullptr;    // u8[n_tokens]
  const uint8_t* merges_ = nullptr;   // u32[n_merges][3]
  const uint8_t* pool_ = nullptr;     // u8[pool_bytes]
  uint32_t n_tokens_ = 0;
  uint32_t n_merges_ = 0;
  PreSplit pre_split_ = PreSplit::kSmollm;

  // Arena tables.
  uint32_t* merge_slots_ = nullptr;  // [merge_mask + 1] rank + 1, 0 = empty; open addressing
  uint32_t merge_mask_ = 0;
  uint32_t* vocab_slots_ = nullptr;  // [vocab_mask + 1] id + 1, 0 = empty; keyed by token text
  uint32_t vocab_mask_ = 0;
  uint32_t* bytes_offset_ = nullptr;  // [n_tokens + 1] into bytes_pool_
  uint8_t* bytes_pool_ = nullptr;     // decoded token bytes
  int32_t byte_token_[256] = {};      // token of each single byte, -1 if the vocab lacks it
  int32_t* specials_ = nullptr;       // [kMaxSpecialTokens] ids of matchable special tokens
  uint32_t n_specials_ = 0;
  uint8_t special_first_[32] = {};    // bitmap of first bytes of special texts
  // Encode scratch, [kMaxPieceBytes] symbols and [3 * kMaxPieceBytes] heap entries.
  int32_t* sym_id_ = nullptr;
  int32_t* sym_prev_ = nullptr;
  int32_t* sym_next_ = nullptr;
  uint64_t* heap_ = nullptr;  // (rank << 32) | left symbol index; min-heap
};

}  // namespace tern
