#include "runtime/text_tokenizer.h"

#include <cstring>

#include "runtime/blob_format.h"
#include "runtime/model_file.h"

namespace tern {

namespace {

using blob::load_u32;
namespace tok = blob::tok;
constexpr StatusCode kBad = StatusCode::kBadTokenizer;

}  // namespace

size_t TextTokenizer::text_bytes_for_context(uint32_t max_context) {
  constexpr size_t kMin = 4096;
  const uint64_t want = uint64_t(max_context) * 16;
  if (want < kMin) return kMin;
  return want > SpmTokenizer::kMaxTextBytes ? SpmTokenizer::kMaxTextBytes : size_t(want);
}

size_t TextTokenizer::arena_bytes(const ModelShape& s, size_t max_text_bytes) {
  if (s.tokenizer_model != uint32_t(tok::Model::kSentencePiece)) return Tokenizer::arena_bytes(s.n_tokens, s.n_merges);
  if (max_text_bytes > SpmTokenizer::kMaxTextBytes) max_text_bytes = SpmTokenizer::kMaxTextBytes;
  const size_t a = Arena::kDefaultAlign;
  // The join buffer (and its alignment padding), then the tokenizer's tables.
  return arena_align_up(max_text_bytes > 0 ? max_text_bytes : 1, a) + a +
         SpmTokenizer::arena_bytes(s.n_tokens, s.token_text_bytes, max_text_bytes);
}

Status TextTokenizer::init(const ModelFile& f, size_t max_text_bytes, Arena* arena) {
  Specials sp;
  sp.bos = f.hp.bos;
  sp.eos = f.hp.eos;
  sp.unk = f.hp.unk;
  sp.add_bos = f.hp.add_bos;
  return init(f.tokenizer, f.tokenizer_bytes, sp, max_text_bytes, arena);
}

Status TextTokenizer::init(const uint8_t* section, size_t section_bytes, const Specials& sp, size_t max_text_bytes,
                           Arena* arena) {
  kind_ = Kind::kNone;
  prompt_bos_ = -1;
  join_ = nullptr;
  if (arena == nullptr) return Status::error(StatusCode::kInvalidArgument, "no arena");
  if (section == nullptr || section_bytes < tok::kHeaderBytes) {
    return Status::error(kBad, "tokenizer section too small (%zu bytes)", section_bytes);
  }
  const uint32_t model = load_u32(section + tok::kModel);
  if (model == uint32_t(tok::Model::kByteBpe)) {
    TERN_RETURN_IF_ERROR(bpe_.init(section, section_bytes, arena));
    kind_ = Kind::kByteBpe;
  } else if (model == uint32_t(tok::Model::kSentencePiece)) {
    TERN_RETURN_IF_ERROR(init_spm(section, section_bytes, sp, max_text_bytes, arena));
    kind_ = Kind::kSentencePiece;
  } else {
    return Status::error(kBad, "tokenizer model %u unsupported (this runtime reads 1 = byte-level BPE, 2 = "
                         "SentencePiece)", model);
  }
  if (sp.add_bos && sp.bos >= 0) {
    if (uint32_t(sp.bos) >= n_tokens()) {
      kind_ = Kind::kNone;
      return Status::error(kBad, "bos id %d outside the vocabulary of %u", sp.bos, n_tokens());
    }
    prompt_bos_ = sp.bos;
  }
  return Status::ok();
}

// Model 2's header and arrays; the vocabulary itself SpmTokenizer::init checks
// (offsets from 0 and non-decreasing, types 1..6, finite scores, byte tokens,
// duplicates, special ids).
Status TextTokenizer::init_spm(const uint8_t* section, size_t section_bytes, const Specials& sp,
                               size_t max_text_bytes, Arena* arena) {
  const uint32_t pre = load_u32(section + tok::kPre);
  const uint32_t n_tokens = load_u32(section + tok::kNTokens);
  const uint32_t n_merges = load_u32(section + tok::kNMerges);
  const uint32_t pool_bytes = load_u32(section + tok::kPoolBytes);
  const uint32_t flags = load_u32(section + tok::kFlags);
  if (pre != uint32_t(tok::Pre::kNone)) {
    return Status::error(kBad, "SentencePiece tokenizer (model 2) with pre-tokenizer %u: it has none (0)", pre);
  }
  if (n_merges != 0) return Status::error(kBad, "SentencePiece tokenizer (model 2) with %u merges: it has none", n_merges);
  if ((flags & ~tok::kKnownFlags) != 0) {
    return Status::error(kBad, "tokenizer flags 0x%x: unknown bits (known: 0x%x)", flags, tok::kKnownFlags);
  }
  if (n_tokens < 1 || n_tokens > 0x7FFFFFFEu) return Status::error(kBad, "n_tokens %u out of range", n_tokens);
  const tok::Layout lay = tok::layout(uint32_t(tok::Model::kSentencePiece), n_tokens, n_merges, pool_bytes);
  if (lay.total != section_bytes) {
    return Status::error(kBad, "tokenizer section is %zu bytes, its counts say %llu", section_bytes,
                         (unsigned long long)lay.total);
  }
  if (load_u32(section + lay.offsets + 4 * uint64_t(n_tokens)) != pool_bytes) {
    return Status::error(kBad, "token_offset[n_tokens] != pool_bytes (%u)", pool_bytes);
  }
  for (uint64_t p = lay.types + n_tokens; p < lay.merges; ++p) {
    if (section[p] != 0) return Status::error(kBad, "token_type padding is not zero");
  }
  if (max_text_bytes > SpmTokenizer::kMaxTextBytes) {
    return Status::error(StatusCode::kInvalidArgument, "max_text_bytes %zu above %zu", max_text_bytes,
                         SpmTokenizer::kMaxTextBytes);
  }
  join_ = static_cast<char*>(arena->allocate(max_text_bytes > 0 ? max_text_bytes : 1, "tokenizer"));
  if (join_ == nullptr) {
    ModelShape s;
    s.tokenizer_model = uint32_t(tok::Model::kSentencePiece);
    s.n_tokens = n_tokens;
    s.token_text_bytes = pool_bytes;
    return Status::error(StatusCode::kArenaTooSmall, "tokenizer needs %zu arena bytes", arena_bytes(s, max_text_bytes));
  }
  SpmVocab v;
  v.texts = TokenTexts{section + lay.offsets, section + lay.pool, n_tokens};
  v.scores = section + lay.scores;
  v.types = section + lay.types;
  v.bos = sp.bos;
  v.eos = sp.eos;
  v.unk = sp.unk;
  v.add_space_prefix = (flags & tok::kFlagAddSpacePrefix) != 0;
  return spm_.init(v, max_text_bytes, arena);
}

Status TextTokenizer::encode(const char* text, size_t len, bool allow_special, int32_t* out, size_t cap, size_t* n) {
  *n = 0;
  switch (kind_) {
    case Kind::kByteBpe: return bpe_.encode(text, len, allow_special, out, cap, n);
    case Kind::kSentencePiece: {
      if (len > spm_.max_text_bytes()) {
        return Status::error(StatusCode::kPromptTooLong,
                             "text of %zu bytes is longer than the tokenizer takes at this context (%zu bytes: 16 "
                             "per token of max context)",
                             len, spm_.max_text_bytes());
      }
      return spm_.encode(text, len, false, allow_special, out, cap, n);
    }
    case Kind::kNone: break;
  }
  return Status::error(StatusCode::kInternal, "tokenizer not initialized");
}

Status TextTokenizer::encode_prompt(const char* text, size_t len, bool allow_special, bool bos, int32_t* out,
                                    size_t cap, size_t* n) {
  *n = 0;
  size_t k = 0;
  if (bos && prompt_bos_ >= 0) {
    if (cap == 0) return Status::error(StatusCode::kPromptTooLong, "no room for the BOS token");
    out[k++] = prompt_bos_;
  }
  size_t got = 0;
  const Status s = encode(text, len, allow_special, out + k, cap - k, &got);
  *n = k + got;
  return s;
}

Status TextTokenizer::encode_pieces(const Piece* pieces, size_t n_pieces, int32_t* out, size_t cap, size_t* n) {
  *n = 0;
  if (kind_ != Kind::kSentencePiece) {
    for (size_t i = 0; i < n_pieces; ++i) {
      size_t got = 0;
      const Status s = encode(pieces[i].text, pieces[i].len, false, out + *n, cap - *n, &got);
      *n += got;
      if (!s.is_ok()) return s;
    }
    return Status::ok();
  }
  const size_t max = spm_.max_text_bytes();
  size_t total = 0;
  for (size_t i = 0; i < n_pieces; ++i) {
    if (pieces[i].len > max - total) {
      return Status::error(StatusCode::kPromptTooLong,
                           "text of over %zu bytes is longer than the tokenizer takes at this context (%zu bytes: "
                           "16 per token of max context)",
                           max, max);
    }
    if (pieces[i].len > 0) std::memcpy(join_ + total, pieces[i].text, pieces[i].len);
    total += pieces[i].len;
  }
  return encode(join_, total, false, out, cap, n);
}

bool TextTokenizer::token_bytes(int32_t id, const char** bytes, size_t* len) const {
  switch (kind_) {
    case Kind::kByteBpe: return bpe_.token_bytes(id, bytes, len);
    case Kind::kSentencePiece: return spm_.token_bytes(id, bytes, len, true);
    case Kind::kNone: break;
  }
  return false;
}

bool TextTokenizer::is_special(int32_t id) const {
  switch (kind_) {
    case Kind::kByteBpe: return bpe_.is_special(id);
    case Kind::kSentencePiece: return spm_.is_control(id);
    case Kind::kNone: break;
  }
  return false;
}

int32_t TextTokenizer::find(const char* text, size_t len) const {
  switch (kind_) {
    case Kind::kByteBpe: return bpe_.find(text, len);
    case Kind::kSentencePiece: return spm_.find(text, len);
    case Kind::kNone: break;
  }
  return -1;
}

uint32_t TextTokenizer::n_tokens() const {
  switch (kind_) {
    case Kind::kByteBpe: return bpe_.n_tokens();
    case Kind::kSentencePiece: return spm_.n_tokens();
    case Kind::kNone: break;
  }
  return 0;
}

uint64_t TextTokenizer::work() const {
  switch (kind_) {
    case Kind::kByteBpe: return bpe_.work();
    case Kind::kSentencePiece: return spm_.work();
    case Kind::kNone: break;
  }
  return 0;
}

}  // namespace tern
