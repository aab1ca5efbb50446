// GGUF tokenizer metadata -> the blob's tokenizer section (BlobTokenizer)
// and the tokenizer fields of the hparams (special ids, add_bos, the ChatML
// markers). What tern reads:
//   tokenizer.ggml.model "gpt2", pre "smollm"  -> model 1, byte-level BPE (SmolLM2)
//   tokenizer.ggml.model "llama", pre absent or "default"
//                                              -> model 2, SentencePiece-style
//                                                 (Gemma 3, Llama 2 style)
// Anything else is refused naming what was found and this list.
//
// Model 2 follows llama.cpp's loader (llama-vocab.cpp) where the GGUF is
// silent: no tokenizer.ggml.scores -> every score 0; no token_type -> normal;
// bos / eos / unk default to 1 / 2 / 0 (when inside the vocabulary);
// add_bos_token and add_space_prefix default to true. Token types are
// stored as llama.cpp's loader retypes them (llama_cpp_token_type: an
// end-of-turn or fill-in-the-middle text is control), so the runtime splits
// and decodes exactly as llama.cpp does. Merges, if the file has any, are
// not used by this scheme and not stored.
#pragma once
#include "runtime/status.h"
#include "tools/pack/blob_writer.h"
#include "tools/pack/gguf_reader.h"

namespace tern::pack {

// What read_tokenizer accepts, for messages and --help.
const char* supported_tokenizers();

// Bound the tokenizer arrays before read_tokenizer expands them: the
// vocabulary must fit the runtime (and equal token_embd's rows), merges at
// most 4 per token as the runtime allows, scores and types one per token.
// Each token then costs the packer a bounded number of bytes, and
// token_embd holds >= 18 bytes per token of the file, so a huge vocabulary
// cannot amplify memory.
Status check_tokenizer_counts(const GgufFile& g);

// Read the vocabulary into *t and the special ids, add_bos and the ChatML
// markers into *h. Refuses (kBadTokenizer) duplicate token texts (as
// llama.cpp does), token types outside 1..6, non-finite scores, special ids
// outside the vocabulary, merges naming unknown tokens; (kUnsupported) an
// unknown model or pre-tokenizer; (kBadGguf) a model without an
// end-of-sequence token.
Status read_tokenizer(const GgufFile& g, BlobHparams* h, BlobTokenizer* t);

}  // namespace tern::pack
