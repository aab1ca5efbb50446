// make-tiny-gguf: write a small llama-architecture GGUF with random weights
// from a fixed seed, so tests can pack and run a whole model in well under a
// second and the bare-metal port can link one into a Cortex-M image.
//
//   make-tiny-gguf OUT.gguf [--seed N] [--layers L] [--dim D] [--heads H]
//                  [--kv-heads K] [--ffn F] [--vocab V] [--tokenizer bpe|spm]
//
// Defaults: 2 layers, dim 128, 4 heads of 32, 2 KV heads, ffn 384, vocab 512
// (about 520k parameters, untied output head). The tokenizer is a real
// gpt2-style byte-level BPE: <|endoftext|>, <|im_start|>, <|im_end|> as
// control tokens 0..2 (where SmolLM2 has them), the 256 byte tokens in GPT-2's
// byte-to-unicode spelling, then merges ("Ġ t", "t h", ...) up to the vocab,
// and a ChatML chat template. With --tokenizer spm the vocabulary is
// SentencePiece-style as Gemma 3's ("llama" model, no pre-tokenizer):
// <pad> <eos> <bos> <unk> <start_of_turn> <end_of_turn> as ids 0..5 (Gemma's
// first four ids; EOS 1, BOS 2, UNK 3, BOS added), the 256 byte tokens
// "<0x00>".."<0xFF>", "\n" and "\n\n" as user-defined tokens, then "▁", letters,
// digits, punctuation and pieces ("▁t", "th", "▁th", ...) scored in order,
// no add_space_prefix and no chat template (Gemma's chat format comes from
// the two turn tokens). Every weight is F32, so the packer quantizes each one
// itself (int8 or int4).
//
// The random numbers come from splitmix64, not <random>'s distributions,
// whose output the standard leaves to the implementation: the same seed gives
// the same file on every host.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifndef TERN_VERSION_STRING
#define TERN_VERSION_STRING "unknown"
#endif

namespace {

// ---- GGUF writing -------------------------------------------------------------

enum : uint32_t { kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9 };
enum : uint32_t { kGgmlF32 = 0 };
constexpr uint64_t kAlignment = 32;

struct Buf {
  std::vector<uint8_t> b;
  void raw(const void* p, size_t n) { b.insert(b.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n); }
  void u32(uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back(uint8_t(v >> (8 * i))); }
  void u64(uint64_t v) { for (int i = 0; i < 8; ++i) b.push_back(uint8_t(v >> (8 * i))); }
  void f32(float f) { uint32_t v; std::memcpy(&v, &f, 4); u32(v); }
  void str(const std::string& s) { u64(s.size()); raw(s.data(), s.size()); }
};

struct Tensor {
  std::string name;
  std::vector<uint64_t> ne;  // GGUF order: ne[0] = columns (contiguous)
  std::vector<float> data;
};

class Writer {
 public:
  void kv_u32(const char* k, uint32_t v) { kv_.str(k); kv_.u32(kU32); kv_.u32(v); ++n_kv_; }
  void kv_f32(const char* k, float v) { kv_.str(k); kv_.u32(kF32); kv_.f32(v); ++n_kv_; }
  void kv_bool(const char* k, bool v) { kv_.str(k); kv_.u32(kBool); kv_.b.push_back(v ? 1 : 0); ++n_kv_; }
  void kv_str(const char* k, const std::string& v) { kv_.str(k); kv_.u32(kString); kv_.str(v); ++n_kv_; }
  void kv_strs(const char* k, const std::vector<std::string>& v) {
    kv_.str(k); kv_.u32(kArray); kv_.u32(kString); kv_.u64(v.size());
    for (const std::string& s : v) kv_.str(s);
    ++n_kv_;
  }
  void kv_f32s(const char* k, const std::vector<float>& v) {
    kv_.str(k); kv_.u32(kArray); kv_.u32(kF32); kv_.u64(v.size());
    for (float x : v) kv_.f32(x);
    ++n_kv_;
  }
  void kv_i32s(const char* k, const std::vector<int32_t>& v) {
    kv_.str(k); kv_.u32(kArray); kv_.u32(kI32); kv_.u64(v.size());
    for (int32_t x : v) kv_.u32(uint32_t(x));
    ++n_kv_;
  }
  void tensor(Tensor t) { tensors_.push_back(std::move(t)); }

  bool save(const char* path) const {
    Buf out;
    out.raw("GGUF", 4);
    out.u32(3);
    out.u64(tensors_.size());
    out.u64(n_kv_);
    out.raw(kv_.b.data(), kv_.b.size());
    uint64_t offset = 0;
    for (const Tensor& t : tensors_) {
      out.str(t.name);
      out.u32(uint32_t(t.ne.size()));
      for (uint64_t n : t.ne) out.u64(n);
      out.u32(kGgmlF32);
      out.u64(offset);
      offset += (t.data.size() * 4 + kAlignment - 1) / kAlignment * kAlignment;
    }
    while (out.b.size() % kAlignment) out.b.push_back(0);
    for (const Tensor& t : tensors_) {
      for (float f : t.data) out.f32(f);
      while (out.b.size() % kAlignment) out.b.push_back(0);
    }
    FILE* f = std::fopen(path, "wb");
    if (!f) return false;
    const bool ok = std::fwrite(out.b.data(), 1, out.b.size(), f) == out.b.size();
    return std::fclose(f) == 0 && ok;
  }

 private:
  Buf kv_;
  uint64_t n_kv_ = 0;
  std::vector<Tensor> tensors_;
};

// ---- Random numbers -------------------------------------------------------------

struct SplitMix64 {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [-a, a), from the top 24 bits: exact in float on every host.
  float uniform(float a) { return a * (float(int32_t(next() >> 40) - (1 << 23)) / float(1 << 23)); }
};

// ---- Tokenizer --------------------------------------------------------------------

// GPT-2's byte-to-unicode table: printable bytes stand for themselves, the
// rest map to U+0100 upwards. Returns the UTF-8 spelling of byte b.
std::string byte_token(int b) {
  auto printable = [](int c) { return (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF); };
  int cp = b;
  if (!printable(b)) {
    int n = 0;
    for (int c = 0; c < b; ++c) n += printable(c) ? 0 : 1;
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) s += char(cp);
  else { s += char(0xC0 | (cp >> 6)); s += char(0x80 | (cp & 0x3F)); }
  return s;
}

void make_vocab(uint32_t vocab, std::vector<std::string>* tokens, std::vector<int32_t>* types,
                std::vector<std::string>* merges) {
  *tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  *types = {3, 3, 3};  // control
  for (int b = 0; b < 256; ++b) { tokens->push_back(byte_token(b)); types->push_back(1); }
  const std::string sp = byte_token(' ');  // "Ġ"
  std::vector<std::pair<std::string, std::string>> pairs;
  for (char c = 'a'; c <= 'z'; ++c) pairs.push_back({sp, std::string(1, c)});
  static const char* kBigrams[] = {"th", "he", "in", "er", "an", "re", "on", "at", "en", "nd", "ti", "es", "or",
                                   "te", "of", "ed", "is", "it", "al", "ar", "st", "to", "nt", "ng", "se", "ha",
                                   "as", "ou", "io", "le", "ve", "co", "me", "de", "hi", "ri", "ro", "ic", "ne",
                                   "ea", "ra", "ce", "li", "ch", "ll", "be", "ma", "si", "om", "ur"};
  for (const char* bg : kBigrams) pairs.push_back({std::string(1, bg[0]), std::string(1, bg[1])});
  for (const char* bg : kBigrams) pairs.push_back({sp, bg});
  for (char a = 'a'; a <= 'z'; ++a)
    for (char b = 'a'; b <= 'z'; ++b) pairs.push_back({std::string(1, a), std::string(1, b)});
  for (const auto& p : pairs) {
    if (tokens->size() >= vocab) break;
    const std::string merged = p.first + p.second;
    bool have = false;
    for (const std::string& t : *tokens) have |= t == merged;
    if (have) continue;
    tokens->push_back(merged);
    types->push_back(1);
    merges->push_back(p.first + " " + p.second);
  }
}

// A SentencePiece-style vocabulary (see the file comment): specials, byte
// tokens, then pieces with scores falling in list order (higher merges first).
void make_spm_vocab(uint32_t vocab, std::vector<std::string>* tokens, std::vector<int32_t>* types,
                    std::vector<float>* scores) {
  *tokens = {"<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"};
  *types = {3, 3, 3, 2, 3, 3};
  *scores = std::vector<float>(tokens->size(), 0.0f);
  char hex[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(hex, sizeof(hex), "<0x%02X>", b);
    tokens->push_back(hex);
    types->push_back(6);
    scores->push_back(0.0f);
  }
  for (const char* t : {"\n", "\n\n"}) {
    tokens->push_back(t);
    types->push_back(4);
    scores->push_back(0.0f);
  }
  const std::string sp = "\xE2\x96\x81";  // U+2581
  std::vector<std::string> pieces = {sp};
  for (char c = 'a'; c <= 'z'; ++c) pieces.push_back(std::string(1, c));
  for (char c = '0'; c <= '9'; ++c) pieces.push_back(std::string(1, c));
  for (const char* p : {".", ",", "!", "?", "'", ":", "-"}) pieces.push_back(p);
  static const char* kBigrams[] = {"th", "he", "in", "er", "an", "re", "on", "at", "en", "nd", "ti", "es", "or",
                                   "te", "of", "ed", "is", "it", "al", "ar", "st", "to", "nt", "ng", "se", "ha"};
  for (const char* bg : kBigrams) pieces.push_back(bg);
  for (char c = 'a'; c <= 'z'; ++c) pieces.push_back(sp + c);
  for (const char* bg : kBigrams) pieces.push_back(sp + bg);
  for (const char* w : {"the", "and", "hello", "world", "tern"}) pieces.push_back(sp + w);
  for (char a = 'a'; a <= 'z'; ++a)
    for (char b = 'a'; b <= 'z'; ++b) pieces.push_back(std::string(1, a) + b);
  float score = -1.0f;
  for (const std::string& p : pieces) {
    if (tokens->size() >= vocab) break;
    bool have = false;
    for (const std::string& t : *tokens) have |= t == p;
    if (have) continue;
    tokens->push_back(p);
    types->push_back(1);
    scores->push_back(score);
    score -= 1.0f;
  }
}

const char kChatTemplate[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a tiny test model.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

bool parse_u32(const char* s, uint32_t* out) {
  char* end = nullptr;
  const unsigned long v = std::strtoul(s, &end, 10);
  if (!*s || *end || v == 0 || v > 65536) return false;
  *out = uint32_t(v);
  return true;
}

constexpr uint32_t kSpmMaxVocab = 6 + 256 + 2 + 1 + 26 + 10 + 7 + 26 + 26 + 26 + 5 + 676 - 26;  // bigrams repeat

void print_usage(FILE* f) {
  std::fprintf(f,
               "usage: make-tiny-gguf OUT.gguf [--seed N] [--layers L] [--dim D] [--heads H] [--kv-heads K]\n"
               "                      [--ffn F] [--vocab V] [--tokenizer bpe|spm]\n"
               "                      (dim, ffn multiples of 32; vocab 259..%u with bpe, 264..%u with spm)\n"
               "Writes a random llama GGUF (F32 weights) with a real vocabulary, for tests and the\n"
               "bare-metal demo: byte-level BPE with a ChatML template (bpe), or SentencePiece-style as\n"
               "Gemma 3's, BOS added, Gemma's turn tokens (spm). Defaults: --seed 1 --layers 2 --dim 128\n"
               "--heads 4 --kv-heads 2 --ffn 384 --vocab 512 --tokenizer bpe. --version prints the version.\n",
               3u + 256u + 26u + 100u + 676u, kSpmMaxVocab);
}

// A usage error: one line, and where the options are listed.
int usage_error(const std::string& what) {
  std::fprintf(stderr, "make-tiny-gguf: %s (make-tiny-gguf --help lists the options)\n", what.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const char* out = nullptr;
  uint32_t seed = 1, layers = 2, dim = 128, heads = 4, kv_heads = 2, ffn = 384, vocab = 512;
  bool spm = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    uint32_t* dst = a == "--seed" ? &seed : a == "--layers" ? &layers : a == "--dim" ? &dim : a == "--heads" ? &heads
                  : a == "--kv-heads" ? &kv_heads : a == "--ffn" ? &ffn : a == "--vocab" ? &vocab : nullptr;
    if (a == "-h" || a == "--help") {
      print_usage(stdout);
      return 0;
    } else if (a == "--version") {
      std::printf("make-tiny-gguf (tern %s)\n", TERN_VERSION_STRING);
      return 0;
    } else if (a == "--tokenizer") {
      const std::string v = i + 1 < argc ? argv[++i] : "";
      if (v != "bpe" && v != "spm") return usage_error("--tokenizer needs bpe or spm");
      spm = v == "spm";
    } else if (dst) {
      if (i + 1 >= argc || !parse_u32(argv[++i], dst)) return usage_error(a + " needs an integer in 1..65536");
    } else if (!a.empty() && a[0] != '-' && !out) {
      out = argv[i];
    } else if (!a.empty() && a[0] != '-') {
      return usage_error("one output file only ('" + a + "')");
    } else {
      std::fprintf(stderr, "make-tiny-gguf: unknown argument '%s' (make-tiny-gguf --help lists the options)\n",
                   argv[i]);
      return 2;
    }
  }
  if (!out) return usage_error("give the output file");
  if (dim % 32 || ffn % 32) return usage_error("--dim and --ffn must be multiples of 32");
  if (dim % heads || heads % kv_heads || (dim / heads) % 2) {
    return usage_error("--heads must divide --dim into an even head size, and --kv-heads divide --heads");
  }
  if (vocab < (spm ? 264u : 259u)) return usage_error(spm ? "--vocab must be at least 264 with --tokenizer spm" : "--vocab must be at least 259");

  std::vector<std::string> tokens, merges;
  std::vector<int32_t> types;
  std::vector<float> scores;
  if (spm) make_spm_vocab(vocab, &tokens, &types, &scores);
  else make_vocab(vocab, &tokens, &types, &merges);
  if (tokens.size() != vocab) return usage_error("--vocab too large for the generated vocabulary");

  const uint32_t head_dim = dim / heads, kv_dim = kv_heads * head_dim;
  Writer w;
  w.kv_str("general.architecture", "llama");
  w.kv_str("general.name", "tern tiny random llama");
  w.kv_u32("general.alignment", uint32_t(kAlignment));
  w.kv_u32("llama.block_count", layers);
  w.kv_u32("llama.context_length", 2048);
  w.kv_u32("llama.embedding_length", dim);
  w.kv_u32("llama.feed_forward_length", ffn);
  w.kv_u32("llama.attention.head_count", heads);
  w.kv_u32("llama.attention.head_count_kv", kv_heads);
  w.kv_u32("llama.rope.dimension_count", head_dim);
  w.kv_f32("llama.rope.freq_base", 10000.0f);
  w.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.kv_u32("llama.vocab_size", vocab);
  if (spm) {
    w.kv_str("tokenizer.ggml.model", "llama");
    w.kv_str("tokenizer.ggml.pre", "default");
    w.kv_strs("tokenizer.ggml.tokens", tokens);
    w.kv_f32s("tokenizer.ggml.scores", scores);
    w.kv_i32s("tokenizer.ggml.token_type", types);
    w.kv_u32("tokenizer.ggml.bos_token_id", 2);
    w.kv_u32("tokenizer.ggml.eos_token_id", 1);
    w.kv_u32("tokenizer.ggml.unknown_token_id", 3);
    w.kv_u32("tokenizer.ggml.padding_token_id", 0);
    w.kv_bool("tokenizer.ggml.add_bos_token", true);
    w.kv_bool("tokenizer.ggml.add_space_prefix", false);
  } else {
    w.kv_str("tokenizer.ggml.model", "gpt2");
    w.kv_str("tokenizer.ggml.pre", "smollm");
    w.kv_strs("tokenizer.ggml.tokens", tokens);
    w.kv_i32s("tokenizer.ggml.token_type", types);
    w.kv_strs("tokenizer.ggml.merges", merges);
    w.kv_u32("tokenizer.ggml.bos_token_id", 1);
    w.kv_u32("tokenizer.ggml.eos_token_id", 2);
    w.kv_u32("tokenizer.ggml.unknown_token_id", 0);
    w.kv_u32("tokenizer.ggml.padding_token_id", 2);
    w.kv_bool("tokenizer.ggml.add_bos_token", false);
    w.kv_str("tokenizer.chat_template", kChatTemplate);
  }

  SplitMix64 rng{seed};
  // Scales chosen so activations neither vanish nor blow up through the
  // layers and the logits have clear winners (greedy decoding is then
  // insensitive to the last-bit differences between libm implementations).
  auto matrix = [&](const std::string& name, uint32_t rows, uint32_t cols, float scale) {
    Tensor t{name, {cols, rows}, std::vector<float>(size_t(rows) * cols)};
    const float a = scale * std::sqrt(3.0f / float(cols));  // uniform with std = scale / sqrt(cols)
    for (float& x : t.data) x = rng.uniform(a);
    w.tensor(std::move(t));
  };
  auto norm = [&](const std::string& name) {
    Tensor t{name, {dim}, std::vector<float>(dim)};
    for (float& x : t.data) x = 1.0f + rng.uniform(0.25f);
    w.tensor(std::move(t));
  };
  matrix("token_embd.weight", vocab, dim, std::sqrt(float(dim)));  // unit-variance rows
  // An untied head: with tied embeddings a random model's residual stream is
  // dominated by the input token's own row, and greedy decoding just repeats
  // the last token. Logit spread ~8 leaves clear gaps between the winners.
  matrix("output.weight", vocab, dim, 8.0f);
  for (uint32_t l = 0; l < layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    norm(p + "attn_norm.weight");
    matrix(p + "attn_q.weight", dim, dim, 1.0f);
    matrix(p + "attn_k.weight", kv_dim, dim, 1.0f);
    matrix(p + "attn_v.weight", kv_dim, dim, 1.0f);
    matrix(p + "attn_output.weight", dim, dim, 1.0f);
    norm(p + "ffn_norm.weight");
    matrix(p + "ffn_gate.weight", ffn, dim, 1.0f);
    matrix(p + "ffn_up.weight", ffn, dim, 1.0f);
    matrix(p + "ffn_down.weight", dim, ffn, 1.0f);
  }
  norm("output_norm.weight");

  if (!w.save(out)) {
    std::fprintf(stderr, "make-tiny-gguf: cannot write %s\n", out);
    return 1;
  }
  const uint64_t params = 2ull * vocab * dim + layers * (uint64_t(dim) * (2 * dim + 2 * kv_dim) + 3ull * dim * ffn + 2 * dim) + dim;
  std::printf("make-tiny-gguf: %s: %u layers, dim %u, %u heads (%u kv), ffn %u, vocab %u (%s), %llu parameters\n",
              out, layers, dim, heads, kv_heads, ffn, vocab,
              spm ? "SentencePiece" : (std::to_string(merges.size()) + " merges").c_str(),
              static_cast<unsigned long long>(params));
  return 0;
}
