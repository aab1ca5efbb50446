// The pre-tokenizer: splits text into the pieces BPE runs on, exactly like the
// regex split of the HF tokenizer, implemented by hand over code points.
//
//   GPT-2 (HF ByteLevel, use_regex):
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   smollm (SmolLM2's tokenizer.json, llama.cpp LLAMA_VOCAB_PRE_TYPE_SMOLLM):
//     first every \p{N} character is isolated as its own piece (HF Digits
//     individual_digits), then the GPT-2 split runs on the text between them.
//
// \p{L}, \p{N}, \s come from runtime/unicode_tables.inc (\s = White_Space).
// An invalid UTF-8 unit counts as one "other" character ([^\s\p{L}\p{N}]),
// so its raw bytes go to BPE like any punctuation.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tern {

enum class CharClass : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kSpace = 3 };

// Class of a code point (kUtf8Invalid -> kOther).
CharClass char_class(uint32_t cp);

enum class PreSplit : uint8_t {
  kSmollm = 1,  // isolate each \p{N}, then the GPT-2 regex (the model's own tokenizer)
  kGpt2 = 2,    // GPT-2 regex only (what transformers builds from the GGUF)
};

// Length in bytes of the piece starting at text[pos] (pos < len); the piece is
// text[pos, pos + result). `len` bounds every read. Result >= 1.
size_t next_piece(const uint8_t* text, size_t len, size_t pos, PreSplit mode);

}  // namespace tern
