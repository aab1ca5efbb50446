// The tokenizer the engine and everything above it use: one interface over
// the blob's tokenizer section, whichever scheme it holds (blob::tok::Model):
//  - 1: byte-level BPE with the GPT-2 byte map (runtime/tokenizer.h; SmolLM2),
//  - 2: SentencePiece-style BPE by score with byte fallback
//       (runtime/spm_tokenizer.h; Gemma 3, Llama 2 style vocabularies).
// Each scheme keeps its own reference behaviour (HF tokenizers for 1,
// llama.cpp for 2); this class only routes, adds the prompt rule (BOS) and
// validates the section's header for model 2.
//
// The prompt rule, in one place: a prompt - plain text or the start of a
// chat - begins with the BOS token exactly when the blob says so (hparams
// add_bos, and a bos id); encode_prompt() applies it, prompt_bos() says it.
//
// Memory: init() takes arena_bytes() from the arena, nothing after. A
// SentencePiece vocabulary encodes at most max_text_bytes() per call (its
// scratch is ~80 bytes per byte of that): the engine sizes it from the
// context (text_bytes_for_context); byte-level BPE has no limit (it works
// in chunks).
#pragma once
#include <cstddef>
#include <cstdint>

#include "arena/arena.h"
#include "runtime/memory_plan.h"
#include "runtime/spm_tokenizer.h"
#include "runtime/status.h"
#include "runtime/tokenizer.h"

namespace tern {

struct ModelFile;

class TextTokenizer {
 public:
  enum class Kind : uint8_t { kNone = 0, kByteBpe = 1, kSentencePiece = 2 };

  // Text bytes one SentencePiece encode() call may take at this max context:
  // 16 per token of context (text averages 3-5 bytes per token; whitespace
  // runs and long words reach 31), at least 4 KiB, at most
  // SpmTokenizer::kMaxTextBytes. A longer text is kPromptTooLong (it would
  // almost surely not fit the context anyway). ~1.2 KB of arena per token
  // of context (the encode scratch is ~76 bytes per text byte).
  static size_t text_bytes_for_context(uint32_t max_context);

  // Arena bytes init() takes for the tokenizer a model shape describes
  // (ModelShape's tokenizer fields) and encode inputs of at most
  // max_text_bytes (SentencePiece only; byte-level BPE ignores it). Exact:
  // the memory planner charges this.
  static size_t arena_bytes(const ModelShape& shape, size_t max_text_bytes);

  // The ids the blob's hparams give the tokenizer.
  struct Specials {
    int32_t bos = -1, eos = -1, unk = -1;
    bool add_bos = false;  // prompts start with bos
  };

  // Validate the tokenizer section completely and build the tables in the
  // arena. kBadTokenizer with a message for any inconsistency (an unknown
  // model names the supported ones), kArenaTooSmall if the arena is short.
  Status init(const uint8_t* section, size_t section_bytes, const Specials& specials, size_t max_text_bytes,
              Arena* arena);
  // The same for an opened blob: its section and hparams.
  Status init(const ModelFile& file, size_t max_text_bytes, Arena* arena);

  // Encode UTF-8 text (invalid UTF-8 is never refused; see each scheme).
  // allow_special: control token texts in the text (e.g. "<|im_start|>",
  // "<start_of_turn>") become those tokens; otherwise they are plain text.
  // (User-defined tokens: BPE treats them as control; SentencePiece always
  // splits them out, as llama.cpp does.) No BOS. Writes at most `cap` ids;
  // kPromptTooLong if more are needed (*n = cap: the ids that fit) or if the
  // text is longer than max_text_bytes() (nothing written).
  Status encode(const char* text, size_t len, bool allow_special, int32_t* out, size_t cap, size_t* n);
  // A prompt: prompt_bos() first when `bos` and the model adds one, then encode().
  Status encode_prompt(const char* text, size_t len, bool allow_special, bool bos, int32_t* out, size_t cap,
                       size_t* n);
  // Plain text given in pieces (special texts never special). SentencePiece
  // encodes the concatenation as one text, as a tokenizer given the joined
  // string would (the pieces together at most max_text_bytes()); byte-level
  // BPE encodes piece by piece.
  struct Piece {
    const char* text;
    size_t len;
  };
  Status encode_pieces(const Piece* pieces, size_t n_pieces, int32_t* out, size_t cap, size_t* n);

  // The token prompts start with, or -1 (the model adds none).
  int32_t prompt_bos() const { return prompt_bos_; }
  // The bytes of one token as generated text: normal tokens their text
  // (BPE byte map / "▁" decoded), byte tokens their byte, control and
  // user-defined tokens their text verbatim (callers hide is_special ones
  // unless asked). False for an invalid id.
  bool token_bytes(int32_t id, const char** bytes, size_t* len) const;
  // Tokens that are markup, not text: BPE control and user-defined tokens;
  // SentencePiece control and unknown tokens (its user-defined ones, e.g.
  // Gemma's "\n", are text).
  bool is_special(int32_t id) const;
  // Exact lookup of a token text as the vocabulary spells it (BPE: the
  // byte-level alphabet, "Ġthe"; SentencePiece: "▁the"); -1 if absent.
  int32_t find(const char* text, size_t len) const;
  uint32_t n_tokens() const;
  Kind kind() const { return kind_; }
  // SentencePiece: the longest text encode() takes; 0 (no limit) for BPE.
  size_t max_text_bytes() const { return kind_ == Kind::kSentencePiece ? spm_.max_text_bytes() : 0; }
  // Comparisons and search steps of the scheme (see Tokenizer::work, SpmTokenizer::work).
  uint64_t work() const;

  // The scheme itself (tests, tools): null unless it is this kind.
  Tokenizer* bpe() { return kind_ == Kind::kByteBpe ? &bpe_ : nullptr; }
  SpmTokenizer* spm() { return kind_ == Kind::kSentencePiece ? &spm_ : nullptr; }

 private:
  Status init_spm(const uint8_t* section, size_t section_bytes, const Specials& specials, size_t max_text_bytes,
                  Arena* arena);

  Kind kind_ = Kind::kNone;
  int32_t prompt_bos_ = -1;
  Tokenizer bpe_;
  SpmTokenizer spm_;
  char* join_ = nullptr;  // [max_text_bytes] SentencePiece: encode_pieces' concatenation
};

}  // namespace tern
