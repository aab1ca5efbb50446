// A tiny but complete llama model for hostile-input tests: a GGUF writer that
// builds the file in memory field by field (so tests can corrupt any field),
// a 1-layer llama with a byte-level GPT-2 vocabulary (all 256 byte tokens, a
// few merges, ChatML control tokens), and packing it into a tern blob with the
// real packer library. The packed blob is ~20 KB, so a test can load it tens
// of thousands of times (truncations, bit flips) in seconds.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/blocks.h"
#include "tools/pack/gguf_reader.h"
#include "tools/pack/packer.h"

namespace tern::testing {

// Little-endian GGUF v3 image builder. Metadata values and tensors are kept as
// writer callbacks / raw payloads so a test can replace any of them.
struct TinyGguf {
  struct Kv {
    std::string key;
    std::function<void(std::vector<uint8_t>&)> write;  // type tag + value
  };
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;  // fastest-first
    pack::GgmlType type;
    std::vector<uint8_t> data;
  };
  uint32_t version = 3;
  uint32_t alignment = 32;  // data alignment the writer uses (general.alignment if != 32)
  std::vector<Kv> kv;
  std::vector<Tensor> tensors;

  static void u8(std::vector<uint8_t>& b, uint8_t v) { b.push_back(v); }
  static void u16(std::vector<uint8_t>& b, uint16_t v) { u8(b, uint8_t(v)); u8(b, uint8_t(v >> 8)); }
  static void u32(std::vector<uint8_t>& b, uint32_t v) { for (int i = 0; i < 4; ++i) u8(b, uint8_t(v >> (8 * i))); }
  static void u64(std::vector<uint8_t>& b, uint64_t v) { for (int i = 0; i < 8; ++i) u8(b, uint8_t(v >> (8 * i))); }
  static void f32(std::vector<uint8_t>& b, float f) { uint32_t u; std::memcpy(&u, &f, 4); u32(b, u); }
  static void str(std::vector<uint8_t>& b, const std::string& s) { u64(b, s.size()); b.insert(b.end(), s.begin(), s.end()); }

  void set(const std::string& key, std::function<void(std::vector<uint8_t>&)> w) {
    for (Kv& k : kv) if (k.key == key) { k.write = std::move(w); return; }
    kv.push_back({key, std::move(w)});
  }
  void erase(const std::string& key) {
    for (size_t i = 0; i < kv.size(); ++i) if (kv[i].key == key) { kv.erase(kv.begin() + long(i)); return; }
  }
  void set_u32(const std::string& key, uint32_t v) { set(key, [v](auto& b) { u32(b, uint32_t(pack::GgufType::kU32)); u32(b, v); }); }
  void set_i32(const std::string& key, int32_t v) { set(key, [v](auto& b) { u32(b, uint32_t(pack::GgufType::kI32)); u32(b, uint32_t(v)); }); }
  void set_f32(const std::string& key, float v) { set(key, [v](auto& b) { u32(b, uint32_t(pack::GgufType::kF32)); f32(b, v); }); }
  void set_str(const std::string& key, const std::string& v) { set(key, [v](auto& b) { u32(b, uint32_t(pack::GgufType::kString)); str(b, v); }); }
  void set_strs(const std::string& key, const std::vector<std::string>& v) {
    set(key, [v](auto& b) {
      u32(b, uint32_t(pack::GgufType::kArray)); u32(b, uint32_t(pack::GgufType::kString)); u64(b, v.size());
      for (const auto& s : v) str(b, s);
    });
  }
  void set_i32s(const std::string& key, const std::vector<int32_t>& v) {
    set(key, [v](auto& b) {
      u32(b, uint32_t(pack::GgufType::kArray)); u32(b, uint32_t(pack::GgufType::kI32)); u64(b, v.size());
      for (int32_t x : v) u32(b, uint32_t(x));
    });
  }
  Tensor* tensor(const std::string& name) {
    for (Tensor& t : tensors) if (t.name == name) return &t;
    return nullptr;
  }

  // Byte offsets of interesting places in the last bytes() image, for tests
  // that patch fields in place.
  struct Layout {
    size_t kv_start = 0;            // first metadata key
    size_t infos_start = 0;         // first tensor info
    std::vector<size_t> info_at;    // each tensor info (its name length field)
    size_t data_start = 0;          // tensor data section
  };

  std::vector<uint8_t> bytes(Layout* layout = nullptr) const {
    std::vector<uint8_t> b = {'G', 'G', 'U', 'F'};
    u32(b, version);
    u64(b, tensors.size());
    u64(b, kv.size());
    Layout l;
    l.kv_start = b.size();
    for (const Kv& k : kv) { str(b, k.key); k.write(b); }
    l.infos_start = b.size();
    uint64_t off = 0;
    for (const Tensor& t : tensors) {
      l.info_at.push_back(b.size());
      str(b, t.name);
      u32(b, uint32_t(t.ne.size()));
      for (uint64_t d : t.ne) u64(b, d);
      u32(b, uint32_t(t.type));
      u64(b, off);
      off += (t.data.size() + alignment - 1) / alignment * alignment;
    }
    while (b.size() % alignment) b.push_back(0);
    l.data_start = b.size();
    for (const Tensor& t : tensors) {
      b.insert(b.end(), t.data.begin(), t.data.end());
      while (b.size() % alignment) b.push_back(0);
    }
    if (layout) *layout = l;
    return b;
  }
};

// The GPT-2 byte-to-unicode alphabet: the text of the token for byte b.
inline std::string gpt2_byte_text(uint8_t byte) {
  uint32_t cp;
  if ((byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || byte >= 174) {
    cp = byte;
  } else {
    uint32_t n = 0;  // rank of this byte among the remapped ones
    for (uint32_t b = 0; b < byte; ++b)
      if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)) ++n;
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

inline std::vector<float> tiny_randoms(size_t n, uint32_t seed, float scale = 0.2f) {
  std::vector<float> v(n);
  uint32_t s = seed * 2654435761u + 12345u;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = (float((s >> 8) & 0xffff) / 32768.0f - 1.0f) * scale;
  }
  return v;
}

inline std::vector<uint8_t> tiny_f32(const std::vector<float>& x) {
  std::vector<uint8_t> b(x.size() * 4);
  std::memcpy(b.data(), x.data(), b.size());
  return b;
}

inline std::vector<uint8_t> tiny_f16(const std::vector<float>& x) {
  std::vector<uint8_t> b;
  for (float v : x) TinyGguf::u16(b, f32_to_f16(v));
  return b;
}

// GGML Q8_0 blocks {f16 d; i8 q[32]} of x (x.size() a multiple of 32).
inline std::vector<uint8_t> tiny_q8_0(const std::vector<float>& x) {
  std::vector<uint8_t> b;
  for (size_t g = 0; g < x.size() / 32; ++g) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[g * 32 + i]));
    const float d = amax / 127.0f;
    TinyGguf::u16(b, f32_to_f16(d));
    for (int i = 0; i < 32; ++i) b.push_back(uint8_t(int8_t(d > 0 ? std::lround(x[g * 32 + i] / d) : 0)));
  }
  return b;
}

// Tiny llama: 1 layer, dim 32, 2 heads of 16, 1 kv head, ffn 64. Vocabulary:
// ids 0..255 the byte tokens, 256 "Ġt", 257 "he", 258 "Ġthe", then the
// control tokens 259 <|endoftext|>, 260 <|im_start|>, 261 <|im_end|>.
// `seed` changes every weight (two seeds give two different models).
constexpr uint32_t kTinyVocab = 262;
constexpr int32_t kTinyEndOfText = 259, kTinyImStart = 260, kTinyImEnd = 261;

inline TinyGguf tiny_llama_gguf(uint32_t seed = 1) {
  TinyGguf g;
  g.set_str("general.architecture", "llama");
  g.set_u32("llama.block_count", 1);
  g.set_u32("llama.context_length", 256);
  g.set_u32("llama.embedding_length", 32);
  g.set_u32("llama.feed_forward_length", 64);
  g.set_u32("llama.attention.head_count", 2);
  g.set_u32("llama.attention.head_count_kv", 1);
  g.set_f32("llama.rope.freq_base", 10000.0f);
  g.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  g.set_u32("llama.rope.dimension_count", 16);
  g.set_str("tokenizer.ggml.model", "gpt2");
  g.set_str("tokenizer.ggml.pre", "smollm");
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (uint32_t b = 0; b < 256; ++b) {
    tokens.push_back(gpt2_byte_text(uint8_t(b)));
    types.push_back(1);
  }
  const std::string G = gpt2_byte_text(' ');  // "Ġ"
  for (const std::string& t : {G + "t", std::string("he"), G + "the"}) {
    tokens.push_back(t);
    types.push_back(1);
  }
  for (const char* t : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    tokens.push_back(t);
    types.push_back(3);
  }
  g.set_strs("tokenizer.ggml.tokens", tokens);
  g.set_i32s("tokenizer.ggml.token_type", types);
  g.set_strs("tokenizer.ggml.merges", {G + " t", "h e", G + "t he"});
  g.set_u32("tokenizer.ggml.bos_token_id", uint32_t(kTinyEndOfText));
  g.set_u32("tokenizer.ggml.eos_token_id", uint32_t(kTinyImEnd));
  g.set_str("tokenizer.chat_template",
            "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
            "'<|im_end|>' + '\\n'}}{% endfor %}");
  const uint32_t s = seed * 100;
  g.tensors = {
      // The two [vocab, dim] matrices are Q8_0 (as SmolLM2's embedding), the others
      // F16: the GGUF stays ~40 KB, so sweeps over every byte stay cheap, even under ASan.
      {"token_embd.weight", {32, kTinyVocab}, pack::GgmlType::kQ8_0, tiny_q8_0(tiny_randoms(32 * kTinyVocab, s + 1, 1.0f))},
      {"output_norm.weight", {32}, pack::GgmlType::kF32, tiny_f32(std::vector<float>(32, 1.0f))},
      {"output.weight", {32, kTinyVocab}, pack::GgmlType::kQ8_0, tiny_q8_0(tiny_randoms(32 * kTinyVocab, s + 2, 1.0f))},
      {"blk.0.attn_norm.weight", {32}, pack::GgmlType::kF32, tiny_f32(std::vector<float>(32, 1.0f))},
      {"blk.0.attn_q.weight", {32, 32}, pack::GgmlType::kF16, tiny_f16(tiny_randoms(1024, s + 3))},
      {"blk.0.attn_k.weight", {32, 16}, pack::GgmlType::kF16, tiny_f16(tiny_randoms(512, s + 4))},
      {"blk.0.attn_v.weight", {32, 16}, pack::GgmlType::kF16, tiny_f16(tiny_randoms(512, s + 5))},
      {"blk.0.attn_output.weight", {32, 32}, pack::GgmlType::kF16, tiny_f16(tiny_randoms(1024, s + 6))},
      {"blk.0.ffn_norm.weight", {32}, pack::GgmlType::kF32, tiny_f32(std::vector<float>(32, 1.0f))},
      {"blk.0.ffn_gate.weight", {32, 64}, pack::GgmlType::kF16, tiny_f16(tiny_randoms(2048, s + 7))},
      {"blk.0.ffn_up.weight", {32, 64}, pack::GgmlType::kF16, tiny_f16(tiny_randoms(2048, s + 8))},
      {"blk.0.ffn_down.weight", {64, 32}, pack::GgmlType::kF16, tiny_f16(tiny_randoms(2048, s + 9))},
  };
  return g;
}

// Parse and pack a GGUF image with the real packer (what tern-pack does).
inline Status pack_tiny(const std::vector<uint8_t>& gguf_bytes, std::vector<uint8_t>* blob,
                        blob::WeightKind weights = blob::WeightKind::kInt4) {
  pack::GgufFile g;
  TERN_RETURN_IF_ERROR(pack::GgufFile::parse(gguf_bytes, &g));
  pack::PackOptions opt;
  opt.weights = weights;
  opt.limits.max_context = 64;
  opt.limits.max_sequences = 2;
  opt.limits.prefill_chunk = 8;
  opt.limits.kv_block_tokens = 16;
  pack::PackSummary sum;
  return pack::pack_gguf(g, opt, blob, &sum);
}

// The tiny model as a valid blob (aborts the test binary's expectations if the
// packer fails: callers ASSERT on the status).
inline Status tiny_blob(std::vector<uint8_t>* blob, uint32_t seed = 1,
                        blob::WeightKind weights = blob::WeightKind::kInt4) {
  return pack_tiny(tiny_llama_gguf(seed).bytes(), blob, weights);
}

// Tiny llama with a SentencePiece-style vocabulary laid out as Gemma 3's
// (tokenizer.ggml.model "llama"): 0 <pad>, 1 <eos>, 2 <bos>, 3 <unk>,
// 4 <start_of_turn>, 5 <end_of_turn> (control; unk type unknown), 6..261 the
// byte tokens <0x00>..<0xFF>, 262 "\n" and 263 "\n\n" user-defined (as
// Gemma's), 264 "</s>" user-defined in the file (llama.cpp retypes it
// control), then normal pieces scored in list order up to kTinySpmVocab.
// BOS added, no add_space_prefix (Gemma 3's settings) unless asked; no chat
// template (Gemma 3 270M's GGUF has none). Same weights as tiny_llama_gguf.
constexpr uint32_t kTinySpmVocab = 352;
constexpr int32_t kTinySpmBos = 2, kTinySpmEos = 1, kTinySpmUnk = 3, kTinySpmStartOfTurn = 4,
                  kTinySpmEndOfTurn = 5, kTinySpmNewline = 262;

inline void tiny_spm_vocab(std::vector<std::string>* tokens, std::vector<int32_t>* types, std::vector<float>* scores) {
  *tokens = {"<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"};
  *types = {3, 3, 3, 2, 3, 3};
  char hex[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(hex, sizeof(hex), "<0x%02X>", b);
    tokens->push_back(hex);
    types->push_back(6);
  }
  for (const char* t : {"\n", "\n\n", "</s>"}) {
    tokens->push_back(t);
    types->push_back(4);
  }
  *scores = std::vector<float>(tokens->size(), 0.0f);
  const std::string sp = "\xE2\x96\x81";  // U+2581
  std::vector<std::string> pieces = {sp, sp + sp};
  for (char c = 'a'; c <= 'z'; ++c) pieces.push_back(std::string(1, c));
  for (const char* p : {"th", "he", "ll", "lo", "llo", "ld", "in", "er", "an", "or", "wo", "rl"}) pieces.push_back(p);
  for (const char* p : {"t", "h", "w", "a", "i", "o", "s", "m", "u"}) pieces.push_back(sp + p);
  for (const char* p : {"the", "hello", "world", "wor", "hel"}) pieces.push_back(sp + p);
  for (const char* p : {"hello", "user", "model", "é", "ü", "日本", "日"}) pieces.push_back(p);
  float score = -1.0f;
  for (const std::string& p : pieces) {
    tokens->push_back(p);
    types->push_back(1);
    scores->push_back(score);
    score -= 0.5f;
  }
  while (tokens->size() < kTinySpmVocab) {  // filler pieces nothing merges into
    tokens->push_back("<unused" + std::to_string(tokens->size()) + ">");
    types->push_back(5);
    scores->push_back(0.0f);
  }
}

inline TinyGguf tiny_spm_llama_gguf(uint32_t seed = 1, bool add_space_prefix = false) {
  TinyGguf g = tiny_llama_gguf(seed);
  g.erase("tokenizer.ggml.merges");
  g.erase("tokenizer.chat_template");
  g.set_str("tokenizer.ggml.model", "llama");
  g.set_str("tokenizer.ggml.pre", "default");
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<float> scores;
  tiny_spm_vocab(&tokens, &types, &scores);
  g.set_strs("tokenizer.ggml.tokens", tokens);
  g.set_i32s("tokenizer.ggml.token_type", types);
  g.set("tokenizer.ggml.scores", [scores](auto& b) {
    TinyGguf::u32(b, uint32_t(pack::GgufType::kArray)); TinyGguf::u32(b, uint32_t(pack::GgufType::kF32));
    TinyGguf::u64(b, scores.size());
    for (float x : scores) TinyGguf::f32(b, x);
  });
  g.set_u32("tokenizer.ggml.bos_token_id", uint32_t(kTinySpmBos));
  g.set_u32("tokenizer.ggml.eos_token_id", uint32_t(kTinySpmEos));
  g.set_u32("tokenizer.ggml.unknown_token_id", uint32_t(kTinySpmUnk));
  g.set_u32("tokenizer.ggml.padding_token_id", 0);
  g.set("tokenizer.ggml.add_bos_token", [](auto& b) { TinyGguf::u32(b, uint32_t(pack::GgufType::kBool)); TinyGguf::u8(b, 1); });
  g.set("tokenizer.ggml.add_space_prefix",
        [add_space_prefix](auto& b) { TinyGguf::u32(b, uint32_t(pack::GgufType::kBool)); TinyGguf::u8(b, add_space_prefix ? 1 : 0); });
  // The [vocab, dim] matrices for this vocabulary.
  const uint32_t s = seed * 100;
  g.tensor("token_embd.weight")->ne = {32, kTinySpmVocab};
  g.tensor("token_embd.weight")->data = tiny_q8_0(tiny_randoms(32 * kTinySpmVocab, s + 1, 1.0f));
  g.tensor("output.weight")->ne = {32, kTinySpmVocab};
  g.tensor("output.weight")->data = tiny_q8_0(tiny_randoms(32 * kTinySpmVocab, s + 2, 1.0f));
  return g;
}

inline Status tiny_spm_blob(std::vector<uint8_t>* blob, uint32_t seed = 1, bool add_space_prefix = false) {
  return pack_tiny(tiny_spm_llama_gguf(seed, add_space_prefix).bytes(), blob);
}

}  // namespace tern::testing
