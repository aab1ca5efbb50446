// GGUF -> blob conversion: hyperparameters, tokenizer, chat template, memory
// plan and the weights (see packer.h for the precision rules).
#include "tools/pack/packer.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "kernels/blocks.h"
#include "kernels/weight_quant.h"
#include "port/blob_map.h"
#include "runtime/engine.h"
#include "runtime/model_file.h"
#include "runtime/tokenizer.h"

namespace tern::pack {
namespace {

using blob::DType;
using blob::TensorRole;
using ull = unsigned long long;

// ---- Tensor names -> roles ---------------------------------------------------

struct RoleName { const char* suffix; TensorRole role; bool is_norm; };
constexpr RoleName kLayerRoles[] = {
    {"attn_norm", TensorRole::kAttnNorm, true}, {"attn_q", TensorRole::kAttnQ, false},
    {"attn_k", TensorRole::kAttnK, false},      {"attn_v", TensorRole::kAttnV, false},
    {"attn_output", TensorRole::kAttnOut, false}, {"ffn_norm", TensorRole::kFfnNorm, true},
    {"ffn_gate", TensorRole::kFfnGate, false},  {"ffn_up", TensorRole::kFfnUp, false},
    {"ffn_down", TensorRole::kFfnDown, false},
};

// The GGUF name of a role ("blk.N.attn_q.weight", "token_embd.weight", ...).
std::string tensor_name(TensorRole role, uint32_t layer) {
  switch (role) {
    case TensorRole::kTokenEmbd: return "token_embd.weight";
    case TensorRole::kOutputNorm: return "output_norm.weight";
    case TensorRole::kOutput: return "output.weight";
    default: break;
  }
  for (const RoleName& r : kLayerRoles)
    if (r.role == role) return "blk." + std::to_string(layer) + "." + r.suffix + ".weight";
  return "";
}

// Expected [rows, cols] of a role (norms: [1, dim]).
void role_shape(TensorRole role, const BlobHparams& h, uint32_t* rows, uint32_t* cols) {
  const uint32_t q = h.heads * h.head_dim, kv = h.kv_heads * h.head_dim;
  switch (role) {
    case TensorRole::kTokenEmbd: case TensorRole::kOutput: *rows = h.vocab; *cols = h.dim; return;
    case TensorRole::kOutputNorm: case TensorRole::kAttnNorm: case TensorRole::kFfnNorm: *rows = 1; *cols = h.dim; return;
    case TensorRole::kAttnQ: *rows = q; *cols = h.dim; return;
    case TensorRole::kAttnK: case TensorRole::kAttnV: *rows = kv; *cols = h.dim; return;
    case TensorRole::kAttnOut: *rows = h.dim; *cols = q; return;
    case TensorRole::kFfnGate: case TensorRole::kFfnUp: *rows = h.ffn; *cols = h.dim; return;
    case TensorRole::kFfnDown: *rows = h.dim; *cols = h.ffn; return;
  }
}

bool is_norm(TensorRole r) {
  return r == TensorRole::kOutputNorm || r == TensorRole::kAttnNorm || r == TensorRole::kFfnNorm;
}

// ---- Hyperparameters ---------------------------------------------------------

Status read_hparams(const GgufFile& g, blob::WeightKind kind, BlobHparams* h) {
  std::string arch;
  TERN_RETURN_IF_ERROR(g.get_string("general.architecture", &arch));
  if (arch != "llama") return Status::error(StatusCode::kUnsupported, "unsupported architecture \"%.40s\" (reads llama)", arch.c_str());
  h->arch = blob::Arch::kLlama;
  TERN_RETURN_IF_ERROR(g.get_u32("llama.block_count", &h->layers));
  TERN_RETURN_IF_ERROR(g.get_u32("llama.embedding_length", &h->dim));
  TERN_RETURN_IF_ERROR(g.get_u32("llama.attention.head_count", &h->heads));
  h->kv_heads = h->heads;
  TERN_RETURN_IF_ERROR(g.get_u32_opt("llama.attention.head_count_kv", &h->kv_heads));
  TERN_RETURN_IF_ERROR(g.get_u32("llama.feed_forward_length", &h->ffn));
  TERN_RETURN_IF_ERROR(g.get_u32("llama.context_length", &h->train_context));
  TERN_RETURN_IF_ERROR(g.get_f32_opt("llama.rope.freq_base", &h->rope_base));
  TERN_RETURN_IF_ERROR(g.get_f32("llama.attention.layer_norm_rms_epsilon", &h->norm_eps));
  if (h->layers == 0 || h->dim == 0 || h->heads == 0 || h->kv_heads == 0 || h->ffn == 0)
    return Status::error(StatusCode::kBadHparams, "zero layers, dim, heads, kv heads or ffn");
  if (h->layers > 1024 || h->dim > 65536 || h->heads > 1024 || h->ffn > 1u << 20)
    return Status::error(StatusCode::kBadHparams, "hyperparameters out of range");
  if (h->heads % h->kv_heads != 0)
    return Status::error(StatusCode::kBadHparams, "heads %u not a multiple of kv heads %u", h->heads, h->kv_heads);
  if (const GgufValue* kl = g.find("llama.attention.key_length")) {
    (void)kl;
    TERN_RETURN_IF_ERROR(g.get_u32("llama.attention.key_length", &h->head_dim));
    uint32_t vl = h->head_dim;
    TERN_RETURN_IF_ERROR(g.get_u32_opt("llama.attention.value_length", &vl));
    if (vl != h->head_dim) return Status::error(StatusCode::kUnsupported, "value_length %u != key_length %u", vl, h->head_dim);
  } else {
    if (h->dim % h->heads != 0) return Status::error(StatusCode::kBadHparams, "dim %u not a multiple of heads %u", h->dim, h->heads);
    h->head_dim = h->dim / h->heads;
  }
  h->rope_dim = h->head_dim;
  TERN_RETURN_IF_ERROR(g.get_u32_opt("llama.rope.dimension_count", &h->rope_dim));
  if (h->head_dim == 0 || h->head_dim > 1024 || h->rope_dim == 0 || h->rope_dim > h->head_dim || h->rope_dim % 2 != 0)
    return Status::error(StatusCode::kBadHparams, "head_dim %u / rope_dim %u invalid", h->head_dim, h->rope_dim);
  if (!(h->rope_base > 0.0f) || !std::isfinite(h->rope_base) || !(h->norm_eps > 0.0f) || !std::isfinite(h->norm_eps))
    return Status::error(StatusCode::kBadHparams, "rope base %g or norm eps %g invalid", double(h->rope_base), double(h->norm_eps));
  if (h->dim % kGroup != 0 || h->ffn % kGroup != 0 || (h->heads * h->head_dim) % kGroup != 0)
    return Status::error(StatusCode::kBadHparams, "dim %u, ffn %u and q_dim %u must be multiples of 32", h->dim, h->ffn, h->heads * h->head_dim);
  // llama.cpp's converter permutes Q/K rows so RoPE rotates adjacent pairs.
  h->rope_pairing = blob::RopePairing::kAdjacent;
  h->weight_kind = kind;
  return Status::ok();
}

// ---- Tokenizer -----------------------------------------------------------------

Status special_id(const GgufFile& g, const char* key, uint32_t n_tokens, int32_t* out) {
  if (!g.find(key)) { *out = -1; return Status::ok(); }
  uint32_t id;
  TERN_RETURN_IF_ERROR(g.get_u32(key, &id));
  if (id >= n_tokens) return Status::error(StatusCode::kBadTokenizer, "%s = %u is outside the vocabulary of %u", key, id, n_tokens);
  *out = int32_t(id);
  return Status::ok();
}

Status read_tokenizer(const GgufFile& g, BlobHparams* h, BlobTokenizer* t) {
  std::string model, pre;
  TERN_RETURN_IF_ERROR(g.get_string("tokenizer.ggml.model", &model));
  if (model != "gpt2")
    return Status::error(StatusCode::kUnsupported, "unsupported tokenizer model \"%.40s\" (reads gpt2 byte-level BPE)", model.c_str());
  TERN_RETURN_IF_ERROR(g.get_string("tokenizer.ggml.pre", &pre));
  if (pre != "smollm") return Status::error(StatusCode::kUnsupported, "unsupported pre-tokenizer %.60s", pre.c_str());
  t->model = 1;
  t->pre = 1;

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

  const uint32_t nt = uint32_t(n);
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
  h->add_bos = false;
  TERN_RETURN_IF_ERROR(g.get_bool_opt("tokenizer.ggml.add_bos_token", &h->add_bos));
  return Status::ok();
}

// Bound the tokenizer arrays before read_tokenizer expands them: the
// vocabulary must fit the runtime (and equal token_embd's rows, checked after),
// merges at most 4 per token as the runtime allows. Each token then costs the
// packer a bounded number of bytes, and token_embd holds >= 18 bytes per token
// of the file, so a huge vocabulary cannot amplify memory.
Status check_tokenizer_counts(const GgufFile& g) {
  constexpr uint64_t kMaxVocab = 1u << 22;  // runtime/model_file.cc
  uint64_t n_tokens = 0, n_merges = 0;
  TERN_RETURN_IF_ERROR(g.get_array_count("tokenizer.ggml.tokens", GgufType::kString, &n_tokens));
  if (n_tokens == 0 || n_tokens > kMaxVocab)
    return Status::error(StatusCode::kBadTokenizer, "vocabulary of %llu tokens (the runtime reads 1..%llu)",
                         ull(n_tokens), ull(kMaxVocab));
  const GgufTensor* embd = g.find_tensor("token_embd.weight");
  if (embd && embd->n_dims == 2 && embd->ne[1] != n_tokens)
    return Status::error(StatusCode::kBadTokenizer, "vocabulary has %llu tokens, token_embd has %llu rows",
                         ull(n_tokens), ull(embd->ne[1]));
  if (g.find("tokenizer.ggml.merges")) {
    TERN_RETURN_IF_ERROR(g.get_array_count("tokenizer.ggml.merges", GgufType::kString, &n_merges));
    if (n_merges > 4 * kMaxVocab)
      return Status::error(StatusCode::kBadTokenizer, "%llu merges (the runtime reads at most %llu)", ull(n_merges),
                           ull(4 * kMaxVocab));
  }
  return Status::ok();
}

// ---- Weights -------------------------------------------------------------------

inline uint16_t le16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline void st16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v); p[1] = uint8_t(v >> 8); }
inline bool f16_finite(uint16_t h) { return (h & 0x7c00u) != 0x7c00u; }

Status non_finite(const GgufTensor& src) {
  return Status::error(StatusCode::kBadTensor, "tensor %.64s holds a non-finite value", src.name.c_str());
}

// Dequantize one row and check it is finite.
Status source_row(const GgufTensor& src, uint64_t r, float* row) {
  TERN_RETURN_IF_ERROR(dequantize_rows(src, r, 1, row));
  for (uint64_t c = 0; c < src.cols(); ++c)
    if (!std::isfinite(row[c])) return non_finite(src);
  return Status::ok();
}

// Q4_1 -> kInt4G32, bit for bit: nibbles to the q plane, {d, m} to the scales.
Status copy_q4_1(const GgufTensor& src, const BlobTensor& t, uint8_t* out) {
  const uint64_t rows = t.rows, groups = t.cols / kGroup;
  uint8_t* q = out;
  uint8_t* dm = q + rows * t.cols / 2;
  const uint8_t* blk = src.data;
  for (uint64_t b = 0; b < rows * groups; ++b, blk += 20) {
    if (!f16_finite(le16(blk)) || !f16_finite(le16(blk + 2))) return non_finite(src);
    std::memcpy(dm + 4 * b, blk, 4);  // f16 d, f16 m: same order, same little-endian bytes
    std::memcpy(q + 16 * b, blk + 4, 16);
  }
  return Status::ok();
}

// Q8_0 -> kInt8G32, bit for bit except groups holding -128 (re-quantized).
Status copy_q8_0(const GgufTensor& src, const BlobTensor& t, uint8_t* out, uint64_t* requantized_groups) {
  const uint64_t rows = t.rows, groups = t.cols / kGroup;
  int8_t* q = reinterpret_cast<int8_t*>(out);
  uint8_t* d = out + rows * t.cols;
  const uint8_t* blk = src.data;
  for (uint64_t b = 0; b < rows * groups; ++b, blk += 34) {
    const uint16_t dh = le16(blk);
    if (!f16_finite(dh)) return non_finite(src);
    bool has_min = false;
    for (int j = 0; j < 32; ++j) has_min |= int8_t(blk[2 + j]) == -128;
    if (!has_min) {
      st16(d + 2 * b, dh);
      std::memcpy(q + 32 * b, blk + 2, 32);
      continue;
    }
    float x[32];
    const float df = f16_to_f32(dh);
    for (int j = 0; j < 32; ++j) x[j] = df * float(int8_t(blk[2 + j]));
    uint16_t dn;
    quantize_row_int8_g32(x, 32, q + 32 * b, &dn);
    st16(d + 2 * b, dn);
    ++*requantized_groups;
  }
  return Status::ok();
}

Status requantize(const GgufTensor& src, const BlobTensor& t, uint8_t* out) {
  const uint32_t rows = t.rows, cols = t.cols, groups = cols / kGroup;
  std::vector<float> row(cols);
  std::vector<uint16_t> scales(size_t(groups) * 2);
  uint8_t* q = out;
  for (uint32_t r = 0; r < rows; ++r) {
    TERN_RETURN_IF_ERROR(source_row(src, r, row.data()));
    if (t.dtype == DType::kInt8G32) {
      quantize_row_int8_g32(row.data(), cols, reinterpret_cast<int8_t*>(q) + uint64_t(r) * cols, scales.data());
      uint8_t* d = q + uint64_t(rows) * cols + uint64_t(r) * groups * 2;
      for (uint32_t g = 0; g < groups; ++g) st16(d + 2 * g, scales[g]);
    } else {
      quantize_row_int4_g32(row.data(), cols, q + uint64_t(r) * cols / 2, scales.data());
      uint8_t* dm = q + uint64_t(rows) * cols / 2 + uint64_t(r) * groups * 4;
      for (uint32_t g = 0; g < 2 * groups; ++g) st16(dm + 2 * g, scales[g]);
    }
  }
  return Status::ok();
}

// Validate the source's shape for its role and fix the stored dtype and shape
// (no payload: it is converted straight into the blob image by fill_tensor).
Status describe_tensor(const GgufTensor& src, TensorRole role, uint32_t layer, const BlobHparams& h,
                       blob::WeightKind kind, BlobTensor* out) {
  uint32_t rows = 0, cols = 0;
  role_shape(role, h, &rows, &cols);
  const char* nm = src.name.c_str();
  out->name = src.name;
  out->role = role;
  out->layer = layer;
  out->rows = rows;
  out->cols = cols;
  if (is_norm(role)) {
    if (src.n_dims != 1 || src.ne[0] != cols)
      return Status::error(StatusCode::kBadTensor, "tensor %.64s: expected a vector of %u", nm, cols);
    out->dtype = DType::kF32;
    return Status::ok();
  }
  if (src.n_dims != 2 || src.ne[0] != cols || src.ne[1] != rows)
    return Status::error(StatusCode::kBadTensor, "tensor %.64s: GGUF shape [%llu, %llu] (n_dims %u), expected [%u, %u] (cols, rows)",
                         nm, ull(src.ne[0]), ull(src.ne[1]), src.n_dims, cols, rows);
  const bool q8_source = GgmlType(src.type) == GgmlType::kQ8_0;
  out->dtype = (kind == blob::WeightKind::kInt8 || q8_source) ? DType::kInt8G32 : DType::kInt4G32;
  return Status::ok();
}

// Convert `src` into `out`: exactly blob::tensor_bytes(t.dtype, t.rows, t.cols) bytes.
Status fill_tensor(const GgufTensor& src, const BlobTensor& t, uint8_t* out, PackSummary* sum) {
  if (t.dtype == DType::kF32) {  // norms: one row
    std::vector<float> v(t.cols);
    TERN_RETURN_IF_ERROR(source_row(src, 0, v.data()));
    for (uint32_t c = 0; c < t.cols; ++c) blob::store_f32(out + 4 * uint64_t(c), v[c]);
    return Status::ok();
  }
  const GgmlType st = GgmlType(src.type);
  if (st == GgmlType::kQ8_0) {
    ++sum->copied_q8_0;
    return copy_q8_0(src, t, out, &sum->q8_minus128_groups);
  }
  if (st == GgmlType::kQ4_1 && t.dtype == DType::kInt4G32) {
    ++sum->copied_q4_1;
    return copy_q4_1(src, t, out);
  }
  ++sum->requantized;
  return requantize(src, t, out);
}

}  // namespace

Status pack_gguf(const GgufFile& g, const PackOptions& opt, std::vector<uint8_t>* blob_out, PackSummary* sum) {
  *sum = PackSummary{};
  BlobContents c;
  BlobHparams& h = c.hparams;
  TERN_RETURN_IF_ERROR(read_hparams(g, opt.weights, &h));
  TERN_RETURN_IF_ERROR(check_tokenizer_counts(g));
  TERN_RETURN_IF_ERROR(read_tokenizer(g, &h, &c.tokenizer));
  if (g.find("tokenizer.chat_template")) TERN_RETURN_IF_ERROR(g.get_string("tokenizer.chat_template", &c.chat_template));

  const GgufTensor* embd = g.find_tensor("token_embd.weight");
  if (!embd) return Status::error(StatusCode::kMissingTensor, "missing tensor token_embd.weight");
  if (embd->n_dims != 2 || embd->ne[0] != h.dim || embd->ne[1] >= (1u << 31))
    return Status::error(StatusCode::kBadTensor, "token_embd.weight: GGUF shape [%llu, %llu], expected [%u, vocab]",
                         ull(embd->ne[0]), ull(embd->ne[1]), h.dim);
  h.vocab = uint32_t(embd->ne[1]);
  if (h.vocab != c.tokenizer.tokens.size())
    return Status::error(StatusCode::kBadTokenizer, "vocabulary has %llu tokens, token_embd has %u rows",
                         ull(c.tokenizer.tokens.size()), h.vocab);
  if (const GgufValue* vs = g.find("llama.vocab_size")) {
    uint32_t v;
    TERN_RETURN_IF_ERROR(g.get_u32("llama.vocab_size", &v));
    if (v != h.vocab) return Status::error(StatusCode::kBadHparams, "llama.vocab_size %u != token_embd rows %u", v, h.vocab);
    (void)vs;
  }
  h.tied_embed = g.find_tensor("output.weight") == nullptr;

  // The tensor list the blob needs, in directory order; every GGUF tensor must be one of them.
  struct Want { TensorRole role; uint32_t layer; };
  std::vector<Want> want = {{TensorRole::kTokenEmbd, 0}, {TensorRole::kOutputNorm, 0}};
  if (!h.tied_embed) want.push_back({TensorRole::kOutput, 0});
  for (uint32_t l = 0; l < h.layers; ++l)
    for (const RoleName& r : kLayerRoles) want.push_back({r.role, l});
  if (g.tensors().size() != want.size()) {
    // Sorted names and binary search: no hash a file could aim.
    std::vector<std::string> names;
    for (const Want& w : want) names.push_back(tensor_name(w.role, w.layer));
    std::sort(names.begin(), names.end());
    for (const GgufTensor& t : g.tensors())
      if (!std::binary_search(names.begin(), names.end(), t.name))
        return Status::error(StatusCode::kUnsupported, "unsupported tensor %.64s", t.name.c_str());
  }
  c.tensors.resize(want.size());
  std::vector<const GgufTensor*> sources(want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const std::string name = tensor_name(want[i].role, want[i].layer);
    sources[i] = g.find_tensor(name);
    if (!sources[i]) return Status::error(StatusCode::kMissingTensor, "missing tensor %.64s", name.c_str());
    TERN_RETURN_IF_ERROR(describe_tensor(*sources[i], want[i].role, want[i].layer, h, opt.weights, &c.tensors[i]));
  }

  // Memory plan for the requested limits.
  ModelShape shape;
  shape.layers = h.layers;
  shape.dim = h.dim;
  shape.heads = h.heads;
  shape.kv_heads = h.kv_heads;
  shape.head_dim = h.head_dim;
  shape.ffn = h.ffn;
  shape.vocab = h.vocab;
  shape.rope_dim = h.rope_dim;
  shape.n_tokens = uint32_t(c.tokenizer.tokens.size());
  shape.n_merges = uint32_t(c.tokenizer.merges.size());
  const char* why = "";
  if (!plan_memory(shape, opt.limits, &sum->plan, &why))
    return Status::error(StatusCode::kInvalidArgument, "run limits cannot be planned: %s", why);
  if ((uint64_t(sum->plan.sampler) >> 32) != 0)  // (a shift: no always-false warning where size_t is 32-bit)
    return Status::error(StatusCode::kInvalidArgument, "sampler plan of %zu bytes does not fit the blob's u32 field",
                         sum->plan.sampler);
  c.plan.limits = opt.limits;
  c.plan.arena_bytes = sum->plan.total;
  c.plan.bytes = sum->plan;

  // Lay the blob out, then convert every tensor straight into its place: the
  // packer holds the mapped GGUF and one blob image, never a second copy of
  // the weights.
  std::vector<uint64_t> payload_at;
  TERN_RETURN_IF_ERROR(layout_blob(c, blob_out, &payload_at));
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    const Status st = fill_tensor(*sources[i], c.tensors[i], blob_out->data() + payload_at[i], sum);
    if (!st.is_ok()) {
      blob_out->clear();
      return st;
    }
    if (opt.progress) opt.progress(uint32_t(i + 1), uint32_t(c.tensors.size()), c.tensors[i].name);
  }
  seal_blob(blob_out);

  sum->tensors = uint32_t(c.tensors.size());
  for (const BlobTensor& t : c.tensors) {
    const uint64_t bytes = blob::tensor_bytes(t.dtype, t.rows, t.cols);
    sum->bytes_by_dtype[uint32_t(t.dtype)] += bytes;
    sum->tensors_by_dtype[uint32_t(t.dtype)] += 1;
    if (!is_norm(t.role)) {
      sum->matrix_elems += uint64_t(t.rows) * t.cols;
      sum->matrix_bytes += bytes;
    }
  }
  sum->blob_bytes = blob_out->size();
  sum->limits = opt.limits;
  sum->hparams = h;
  sum->n_tokens = shape.n_tokens;
  sum->n_merges = shape.n_merges;
  if (opt.check_opens) {
    const Status st = check_blob_opens(blob_out->data(), blob_out->size());
    if (!st.is_ok()) {
      blob_out->clear();
      return Status::error(st.code(), "the runtime would refuse this blob, so it is not written: %s", st.message());
    }
  }
  return Status::ok();
}

Status check_blob_opens(const uint8_t* data, size_t size) {
  // Opening reads fields at their natural alignment (u64 at most; section
  // offsets are multiples of 8) and never runs a kernel, so any 16-byte
  // aligned image opens in place (every malloc'd buffer is); others are copied
  // to page-aligned scratch, as a mapped file would be.
  void* copy = nullptr;
  if (reinterpret_cast<uintptr_t>(data) % 16 != 0) {
    copy = os_reserve_arena(size ? size : 1);
    if (!copy) return Status::error(StatusCode::kArenaTooSmall, "no scratch memory for a %zu-byte blob copy", size);
    std::memcpy(copy, data, size);
    data = static_cast<const uint8_t*>(copy);
  }
  // The plan the engine will take, for the scratch arena's size.
  Status st = Status::ok();
  size_t arena_bytes = 0;
  {
    ModelFile f;
    st = open_model_file(data, size, &f);
    if (st.is_ok()) {
      EngineOptions probe;
      RunLimits limits = resolve_run_limits(probe, f.default_limits);
      MemoryPlan plan;
      const char* why = "";
      if (!plan_memory(f.shape(), limits, &plan, &why))
        st = Status::error(StatusCode::kInvalidArgument, "run limits rejected: %s", why);
      arena_bytes = plan.total;
    }
  }
  void* arena = nullptr;
  if (st.is_ok()) {
    arena = os_reserve_arena(arena_bytes);
    if (!arena)
      st = Status::error(StatusCode::kArenaTooSmall, "the OS refused %zu bytes of scratch arena to check the blob",
                         arena_bytes);
  }
  if (st.is_ok()) {
    std::unique_ptr<Engine> engine(new Engine);
    EngineOptions o;
    o.blob_data = data;
    o.blob_size = size;
    o.threads = 1;
    o.verify_weights = true;
    o.arena_buffer = arena;
    o.arena_bytes = arena_bytes;
    st = engine->open(o);
    engine.reset();
  }
  if (arena) os_release_arena(arena, arena_bytes);
  if (copy) os_release_arena(copy, size ? size : 1);
  return st;
}

std::string format_summary(const PackSummary& s) {
  char buf[4096];
  const auto mib = [](uint64_t b) { return double(b) / (1024.0 * 1024.0); };
  const BlobHparams& h = s.hparams;
  const double bpw = s.matrix_elems ? 8.0 * double(s.matrix_bytes) / double(s.matrix_elems) : 0.0;
  int n = std::snprintf(
      buf, sizeof buf,
      "model: llama, %u layers, dim %u, heads %u/%u (head_dim %u), ffn %u, vocab %u, %s embeddings\n"
      "tokenizer: %u tokens, %u merges; bos %d eos %d pad %d unk %d im_start %d im_end %d add_bos %d\n"
      "weights: %s\n"
      "tensors: %u\n"
      "  f32:  %3u tensors %12" PRIu64 " bytes (%7.2f MiB)\n"
      "  int8: %3u tensors %12" PRIu64 " bytes (%7.2f MiB)\n"
      "  int4: %3u tensors %12" PRIu64 " bytes (%7.2f MiB)\n"
      "matrices: %" PRIu64 " weights, %" PRIu64 " bytes, %.3f bits per weight (scales included)\n"
      "  Q4_1 copied exactly to int4: %u; Q8_0 copied exactly to int8: %u; re-quantized: %u\n"
      "  Q8_0 groups re-quantized because they held -128: %" PRIu64 "\n",
      h.layers, h.dim, h.heads, h.kv_heads, h.head_dim, h.ffn, h.vocab, h.tied_embed ? "tied" : "untied",
      s.n_tokens, s.n_merges, h.bos, h.eos, h.pad, h.unk, h.im_start, h.im_end, h.add_bos ? 1 : 0,
      h.weight_kind == blob::WeightKind::kInt4
          ? "int4 (kInt4G32; the Q8_0 token embedding stays 8-bit as kInt8G32: 8->4 bit re-quantization would lose accuracy)"
          : "int8 (kInt8G32)",
      s.tensors, s.tensors_by_dtype[0], s.bytes_by_dtype[0], mib(s.bytes_by_dtype[0]), s.tensors_by_dtype[1],
      s.bytes_by_dtype[1], mib(s.bytes_by_dtype[1]), s.tensors_by_dtype[2], s.bytes_by_dtype[2],
      mib(s.bytes_by_dtype[2]), s.matrix_elems, s.matrix_bytes, bpw, s.copied_q4_1, s.copied_q8_0, s.requantized,
      s.q8_minus128_groups);
  const MemoryPlan& p = s.plan;
  std::snprintf(buf + n, sizeof buf - size_t(n),
                "blob: %" PRIu64 " bytes (%.2f MiB)\n"
                "arena for max_context %u, max_sequences %u, prefill_chunk %u, kv_block %u, logit_rows %u, threads %u:\n"
                "  activations %10zu bytes\n"
                "  kv_blocks   %10zu bytes (%u blocks, %zu bytes per token)\n"
                "  logits      %10zu bytes\n"
                "  tokenizer   %10zu bytes\n"
                "  sampler     %10zu bytes\n"
                "  total       %10zu bytes (%.2f MiB)\n",
                s.blob_bytes, mib(s.blob_bytes), s.limits.max_context, s.limits.max_sequences, s.limits.prefill_chunk,
                s.limits.kv_block_tokens, s.limits.logit_rows, s.limits.threads, p.activations, p.kv_blocks,
                p.kv_block_count, p.kv_bytes_per_token, p.logits, p.tokenizer, p.sampler, p.total, mib(p.total));
  return buf;
}

}  // namespace tern::pack
