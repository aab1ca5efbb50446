#include "tools/pack/pack_tokenizer.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/blob_format.h"
#include "runtime/spm_tokenizer.h"
#include "runtime/tokenizer.h"

namespace tern::pack {
namespace {

using ull = unsigned long long;
constexpr uint64_t kMaxVocab = blob::limits::kMaxVocab;

Status special_id(const GgufFile& g, const char* key, uint32_t n_tokens, int32_t* out) {
  if (!g.find(key)) return Status::ok();  // *out keeps its default
  uint32_t id;
  TERN_RETURN_IF_ERROR(g.get_u32(key, &id));
  if (id >= n_tokens) return Status::error(StatusCode::kBadTokenizer, "%s = %u is outside the vocabulary of %u", key, id, n_tokens);
  *out = int32_t(id);
  return Status::ok();
}

// The model and pre-tokenizer, or a refusal naming them and what tern reads.
Status read_model(const GgufFile& g, BlobTokenizer* t) {
  std::string model, pre;
  TERN_RETURN_IF_ERROR(g.get_string("tokenizer.ggml.model", &model));
  const bool has_pre = g.find("tokenizer.ggml.pre") != nullptr;
  if (has_pre) TERN_RETURN_IF_ERROR(g.get_string("tokenizer.ggml.pre", &pre));
  if (model == "gpt2") {
    if (!has_pre) TERN_RETURN_IF_ERROR(g.get_string("tokenizer.ggml.pre", &pre));  // the missing-key error
    if (pre != "smollm")
      return Status::error(StatusCode::kUnsupported, "unsupported pre-tokenizer %.60s for the gpt2 model (tern reads %s)",
                           pre.c_str(), supported_tokenizers());
    t->model = uint32_t(blob::tok::Model::kByteBpe);
    t->pre = uint32_t(blob::tok::Pre::kSmollm);
    return Status::ok();
  }
  if (model == "llama") {
    if (has_pre && pre != "default")
      return Status::error(StatusCode::kUnsupported, "unsupported pre-tokenizer %.60s for the llama model (tern reads %s)",
                           pre.c_str(), supported_tokenizers());
    t->model = uint32_t(blob::tok::Model::kSentencePiece);
    t->pre = uint32_t(blob::tok::Pre::kNone);
    return Status::ok();
  }
  return Status::error(StatusCode::kUnsupported, "unsupported tokenizer model \"%.40s\" (tern reads %s)", model.c_str(),
                       supported_tokenizers());
}

}  // namespace

const char* supported_tokenizers() {
  return "model \"gpt2\" with pre \"smollm\"; model \"llama\" with pre \"default\" or none";
}

Status check_tokenizer_counts(const GgufFile& g) {
  uint64_t n_tokens = 0, n = 0;
  TERN_RETURN_IF_ERROR(g.get_array_count("tokenizer.ggml.tokens", GgufType::kString, &n_tokens));
  if (n_tokens == 0 || n_tokens > kMaxVocab)
    return Status::error(StatusCode::kBadTokenizer, "vocabulary of %llu tokens (the runtime reads 1..%llu)",
                         ull(n_tokens), ull(kMaxVocab));
  const GgufTensor* embd = g.find_tensor("token_embd.weight");
  if (embd && embd->n_dims == 2 && embd->ne[1] != n_tokens)
    return Status::error(StatusCode::kBadTokenizer, "vocabulary has %llu tokens, token_embd has %llu rows",
                         ull(n_tokens), ull(embd->ne[1]));
  if (g.find("tokenizer.ggml.merges")) {
    TERN_RETURN_IF_ERROR(g.get_array_count("tokenizer.ggml.merges", GgufType::kString, &n));
    if (n > 4 * kMaxVocab)
      return Status::error(StatusCode::kBadTokenizer, "%llu merges (the runtime reads at most %llu)", ull(n),
                           ull(4 * kMaxVocab));
  }
  if (g.find("tokenizer.ggml.scores")) {
    TERN_RETURN_IF_ERROR(g.get_array_count("tokenizer.ggml.scores", GgufType::kF32, &n));
    if (n != n_tokens)
      return Status::error(StatusCode::kBadTokenizer, "%llu token scores for %llu tokens", ull(n), ull(n_tokens));
  }
  return Status::ok();
}

Status read_tokenizer(const GgufFile& g, BlobHparams* h, BlobTokenizer* t) {
  TERN_RETURN_IF_ERROR(read_model(g, t));
  const bool spm = t->model == uint32_t(blob::tok::Model::kSentencePiece);

  const GgufArray* tokens;
  TERN_RETURN_IF_ERROR(g.get_array("tokenizer.ggml.tokens", GgufType::kString, &tokens));
  const size_t n = tokens->size();
  if (n == 0 || n >= (1u << 31)) return Status::error(StatusCode::kBadTokenizer, "vocabulary of %llu tokens", ull(n));
  t->tokens.resize(n);
  // Text -> id by the runtime's own rule and code (runtime/tokenizer.h,
  // sort_token_texts): a sorted id array, no hash a crafted GGUF could aim;
  // two tokens with one non-empty text are refused, as llama.cpp refuses them.
  std::vector<uint8_t> offsets(4 * (n + 1));
  std::string pool;
  for (size_t i = 0; i < n; ++i) {
    t->tokens[i] = (*tokens)[i].str;
    if (t->tokens[i].size() > UINT32_MAX - pool.size())
      return Status::error(StatusCode::kBadTokenizer, "token texts exceed 4 GiB");
    blob::store_u32(&offsets[4 * i], uint32_t(pool.size()));
    pool += t->tokens[i];
  }
  blob::store_u32(&offsets[4 * n], uint32_t(pool.size()));
  const TokenTexts texts{offsets.data(), reinterpret_cast<const uint8_t*>(pool.data()), uint32_t(n)};
  std::vector<uint32_t> sorted(n);
  std::vector<uint64_t> scratch(2 * n);
  uint64_t steps = 0;
  if (const uint32_t k = sort_token_texts(texts, sorted.data(), scratch.data(), scratch.data() + n, &steps))
    return Status::error(StatusCode::kBadTokenizer, "tokens %u and %u have the same text \"%.60s\" (duplicate tokens are refused, as llama.cpp does)",
                         sorted[k - 1], sorted[k], t->tokens[sorted[k]].c_str());
  auto id_of = [&](const std::string& s) {
    return find_token_text(texts, sorted.data(), reinterpret_cast<const uint8_t*>(s.data()), s.size(), &steps);
  };

  t->types.assign(n, uint8_t(blob::tok::TokenType::kNormal));
  if (g.find("tokenizer.ggml.token_type")) {
    const GgufArray* types;
    TERN_RETURN_IF_ERROR(g.get_array("tokenizer.ggml.token_type", GgufType::kI32, &types));
    if (types->size() != n)
      return Status::error(StatusCode::kBadTokenizer, "%llu token types for %llu tokens", ull(types->size()), ull(n));
    for (size_t i = 0; i < n; ++i) {
      const int64_t ty = (*types)[i].i;
      if (ty < 1 || ty > 6) return Status::error(StatusCode::kBadTokenizer, "token %llu has type %lld (valid: 1..6)", ull(i), (long long)ty);
      t->types[i] = uint8_t(ty);
    }
  }

  const uint32_t nt = uint32_t(n);
  if (spm) {
    // SentencePiece: scores instead of merges; llama.cpp's loader types.
    t->scores.assign(n, 0.0f);
    if (g.find("tokenizer.ggml.scores")) {
      const GgufArray* scores;
      TERN_RETURN_IF_ERROR(g.get_array("tokenizer.ggml.scores", GgufType::kF32, &scores));
      if (scores->size() != n)
        return Status::error(StatusCode::kBadTokenizer, "%llu token scores for %llu tokens", ull(scores->size()), ull(n));
      for (size_t i = 0; i < n; ++i) {
        t->scores[i] = float((*scores)[i].f);
        if (!std::isfinite(t->scores[i]))
          return Status::error(StatusCode::kBadTokenizer, "token %llu has a score that is not finite", ull(i));
      }
    }
    for (size_t i = 0; i < n; ++i) {
      t->types[i] = llama_cpp_token_type(reinterpret_cast<const uint8_t*>(t->tokens[i].data()), t->tokens[i].size(),
                                         t->types[i]);
    }
    bool add_space_prefix = true;
    TERN_RETURN_IF_ERROR(g.get_bool_opt("tokenizer.ggml.add_space_prefix", &add_space_prefix));
    t->flags = add_space_prefix ? blob::tok::kFlagAddSpacePrefix : 0;
    t->merges.clear();
    // llama.cpp's defaults for this model, where they name a token.
    h->bos = nt > 1 ? 1 : -1;
    h->eos = nt > 2 ? 2 : -1;
    h->unk = 0;
    h->add_bos = true;
  } else {
    const GgufArray* merges;
    TERN_RETURN_IF_ERROR(g.get_array("tokenizer.ggml.merges", GgufType::kString, &merges));
    t->merges.resize(merges->size());
    for (size_t j = 0; j < merges->size(); ++j) {
      const std::string& m = (*merges)[j].str;
      const size_t sp = m.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == m.size() || m.find(' ', sp + 1) != std::string::npos)
        return Status::error(StatusCode::kBadTokenizer, "merge %llu \"%.60s\" is not \"A B\"", ull(j), m.c_str());
      const std::string a = m.substr(0, sp), b = m.substr(sp + 1);
      const int32_t ia = id_of(a), ib = id_of(b), iab = id_of(a + b);
      if (ia < 0 || ib < 0 || iab < 0)
        return Status::error(StatusCode::kBadTokenizer, "merge %llu \"%.60s\": %s not in the vocabulary", ull(j), m.c_str(),
                             ia < 0 ? "left part" : ib < 0 ? "right part" : "merged token");
      t->merges[j] = {uint32_t(ia), uint32_t(ib), uint32_t(iab)};
    }
    h->bos = h->eos = h->unk = -1;
    h->add_bos = false;
  }
  h->pad = -1;

  TERN_RETURN_IF_ERROR(special_id(g, "tokenizer.ggml.bos_token_id", nt, &h->bos));
  TERN_RETURN_IF_ERROR(special_id(g, "tokenizer.ggml.eos_token_id", nt, &h->eos));
  // The runtime refuses a blob without one (generation could never stop): say so at pack time.
  if (h->eos < 0)
    return Status::error(StatusCode::kBadGguf, "no tokenizer.ggml.eos_token_id: the model needs an end-of-sequence token");
  TERN_RETURN_IF_ERROR(special_id(g, "tokenizer.ggml.padding_token_id", nt, &h->pad));
  TERN_RETURN_IF_ERROR(special_id(g, "tokenizer.ggml.unknown_token_id", nt, &h->unk));
  auto lookup = [&](const char* s) { return id_of(s); };
  h->im_start = lookup("<|im_start|>");
  h->im_end = lookup("<|im_end|>");
  TERN_RETURN_IF_ERROR(g.get_bool_opt("tokenizer.ggml.add_bos_token", &h->add_bos));
  return Status::ok();
}

}  // namespace tern::pack
