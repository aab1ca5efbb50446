// The GGUF corruption matrix: the tiny llama GGUF (tests/support/tiny_model.h)
// corrupted one named way at a time and run through what tern-pack does
// (GgufFile::parse, then pack_gguf). GGUF problems share kBadGguf, so each
// case asserts the message names the field and the problem. Sweeps:
// truncation at every byte of the first 64 KiB, and a bit flip of every byte
// of the header, metadata and tensor infos: each parses and packs to a blob
// the runtime loads, or fails with a status — never a crash (ASan preset).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "tests/support/tiny_model.h"

namespace tern {
namespace {

using pack::GgmlType;
using pack::GgufType;
using testing::TinyGguf;

void put_u32(std::vector<uint8_t>& b, size_t at, uint32_t v) { for (int i = 0; i < 4; ++i) b[at + i] = uint8_t(v >> (8 * i)); }
void put_u64(std::vector<uint8_t>& b, size_t at, uint64_t v) { for (int i = 0; i < 8; ++i) b[at + i] = uint8_t(v >> (8 * i)); }

Status parse_and_pack(const std::vector<uint8_t>& bytes, std::vector<uint8_t>* blob = nullptr) {
  std::vector<uint8_t> local;
  return testing::pack_tiny(bytes, blob ? blob : &local);
}

void expect_error(const char* what, const std::vector<uint8_t>& bytes, StatusCode code, const char* needle) {
  const Status st = parse_and_pack(bytes);
  EXPECT_FALSE(st.is_ok()) << what;
  EXPECT_EQ(status_code_name(st.code()), std::string(status_code_name(code))) << what << ": " << st.message();
  EXPECT_NE(std::string(st.message()).find(needle), std::string::npos)
      << what << ": message '" << st.message() << "' lacks '" << needle << "'";
}

// Offsets inside tensor info i: name length u64, name, n_dims u32, ne[n_dims] u64, type u32, offset u64.
struct InfoAt {
  size_t n_dims, ne0, type, offset;
};
InfoAt info_fields(const TinyGguf& g, const TinyGguf::Layout& l, size_t i) {
  const size_t base = l.info_at[i] + 8 + g.tensors[i].name.size();
  const size_t nd = g.tensors[i].ne.size();
  return {base, base + 4, base + 4 + 8 * nd, base + 4 + 8 * nd + 4};
}

TEST(GgufCorruption, ValidTinyModelPacksAndLoads) {
  std::vector<uint8_t> blob;
  Status st = parse_and_pack(testing::tiny_llama_gguf().bytes(), &blob);
  ASSERT_TRUE(st.is_ok()) << st.message();
  Engine e;
  EngineOptions o;
  o.blob_data = blob.data();
  o.blob_size = blob.size();
  st = e.open(o);
  ASSERT_TRUE(st.is_ok()) << st.message();
}

TEST(GgufCorruption, HeaderCases) {
  const TinyGguf g = testing::tiny_llama_gguf();
  const std::vector<uint8_t> ok = g.bytes();
  auto with = [&](std::function<void(std::vector<uint8_t>&)> f) { std::vector<uint8_t> b = ok; f(b); return b; };
  expect_error("bad magic", with([](auto& b) { b[0] = 'g'; }), StatusCode::kBadGguf, "bad magic");
  expect_error("tern blob given to the packer", with([](auto& b) { std::memcpy(b.data(), "TERN", 4); }), StatusCode::kBadGguf, "not a GGUF");
  expect_error("version 1", with([](auto& b) { put_u32(b, 4, 1); }), StatusCode::kBadGguf, "unsupported GGUF version 1");
  expect_error("version 4", with([](auto& b) { put_u32(b, 4, 4); }), StatusCode::kBadGguf, "unsupported GGUF version 4");
  expect_error("big-endian file", with([](auto& b) { put_u32(b, 4, 0x03000000u); }), StatusCode::kBadGguf, "big-endian");
  expect_error("tensor count -1", with([](auto& b) { put_u64(b, 8, ~0ull); }), StatusCode::kBadGguf, "tensor_count 18446744073709551615 too large");
  expect_error("tensor count 2^40", with([](auto& b) { put_u64(b, 8, 1ull << 40); }), StatusCode::kBadGguf, "tensor_count");
  expect_error("kv count -1", with([](auto& b) { put_u64(b, 16, ~0ull); }), StatusCode::kBadGguf, "kv_count 18446744073709551615 too large");
  expect_error("kv count one too many", with([&](auto& b) { put_u64(b, 16, g.kv.size() + 1); }), StatusCode::kBadGguf, "");
  expect_error("tensor count one too many", with([&](auto& b) { put_u64(b, 8, g.tensors.size() + 1); }), StatusCode::kBadGguf, "");
}

TEST(GgufCorruption, TensorInfoCases) {
  const TinyGguf g = testing::tiny_llama_gguf();
  TinyGguf::Layout l;
  const std::vector<uint8_t> ok = g.bytes(&l);
  const size_t q = 4;  // blk.0.attn_q.weight, ne = {32, 32}, F16
  ASSERT_EQ(g.tensors[q].name, "blk.0.attn_q.weight");
  const InfoAt f = info_fields(g, l, q);
  auto with = [&](std::function<void(std::vector<uint8_t>&)> fn) { std::vector<uint8_t> b = ok; fn(b); return b; };
  expect_error("n_dims 0", with([&](auto& b) { put_u32(b, f.n_dims, 0); }), StatusCode::kBadGguf, "n_dims 0 not in 1..4");
  expect_error("n_dims 5", with([&](auto& b) { put_u32(b, f.n_dims, 5); }), StatusCode::kBadGguf, "");
  expect_error("n_dims -1", with([&](auto& b) { put_u32(b, f.n_dims, ~0u); }), StatusCode::kBadGguf, "n_dims 4294967295");
  expect_error("dim 0", with([&](auto& b) { put_u64(b, f.ne0, 0); }), StatusCode::kBadGguf, "dimension 0 is 0");
  expect_error("dim -1", with([&](auto& b) { put_u64(b, f.ne0, ~0ull); }), StatusCode::kBadGguf, "element count overflows");
  expect_error("dim INT64_MAX", with([&](auto& b) { put_u64(b, f.ne0 + 8, uint64_t(INT64_MAX)); }), StatusCode::kBadGguf, "overflows");
  expect_error("dims whose product overflows 64 bits", with([&](auto& b) { put_u64(b, f.ne0, 1ull << 32); put_u64(b, f.ne0 + 8, 1ull << 32); }),
               StatusCode::kBadGguf, "element count overflows");
  expect_error("bytes overflow 64 bits",
               with([&](auto& b) { put_u64(b, f.ne0, 1ull << 31); put_u64(b, f.ne0 + 8, 1ull << 31); put_u32(b, f.type, 0); }),
               StatusCode::kBadGguf, "byte size overflows");
  expect_error("unknown tensor type", with([&](auto& b) { put_u32(b, f.type, 77); }), StatusCode::kBadGguf, "unknown tensor type 77");
  expect_error("type -1", with([&](auto& b) { put_u32(b, f.type, ~0u); }), StatusCode::kBadGguf, "unknown tensor type 4294967295");
  expect_error("offset negative (2^63)", with([&](auto& b) { put_u64(b, f.offset, 1ull << 63); }), StatusCode::kBadGguf, "outside the file");
  expect_error("offset -32", with([&](auto& b) { put_u64(b, f.offset, ~0ull - 31); }), StatusCode::kBadGguf, "outside the file");
  expect_error("offset unaligned", with([&](auto& b) { put_u64(b, f.offset, 8); }), StatusCode::kBadGguf, "not a multiple of the alignment 32");
  expect_error("offset past the end", with([&](auto& b) { put_u64(b, f.offset, ok.size()); }), StatusCode::kBadGguf, "outside the file");
  expect_error("offset overlapping another tensor", with([&](auto& b) { put_u64(b, f.offset, 0); }), StatusCode::kBadGguf, "overlap");
  // Tensor bytes different from what shape and type need: a larger shape runs
  // past the data; a same-size but different shape is the wrong model shape.
  expect_error("shape needs more bytes than stored", with([&](auto& b) { put_u64(b, info_fields(g, l, 11).ne0, 64000); }),
               StatusCode::kBadGguf, "blk.0.ffn_down.weight: data");
  expect_error("type needs more bytes than stored", with([&](auto& b) { put_u32(b, info_fields(g, l, 11).type, uint32_t(GgmlType::kF64)); }),
               StatusCode::kBadGguf, "blk.0.ffn_down.weight: data");
  expect_error("shape transposed", with([&](auto& b) { put_u64(b, info_fields(g, l, 9).ne0, 64); put_u64(b, info_fields(g, l, 9).ne0 + 8, 32); }),
               StatusCode::kBadTensor, "blk.0.ffn_gate.weight");
  expect_error("type needs twice the bytes (F32 for F16)", with([&](auto& b) { put_u32(b, f.type, uint32_t(GgmlType::kF32)); }),
               StatusCode::kBadGguf, "overlap");
  // A type or shape that needs *fewer* bytes than were written is not
  // detectable: GGUF stores no per-tensor byte count, and the rest looks like
  // alignment padding. Read as F16, an F32 norm of 1.0f is (0, 1.875, ...):
  // finite, so it packs. Pinned here so the limitation stays known.
  EXPECT_TRUE(parse_and_pack(with([&](auto& b) { put_u32(b, info_fields(g, l, 1).type, uint32_t(GgmlType::kF16)); })).is_ok());
}

TEST(GgufCorruption, AlignmentCases) {
  for (uint32_t a : {0u, 3u, 48u, 1u << 31}) {
    TinyGguf g = testing::tiny_llama_gguf();
    g.set_u32("general.alignment", a);
    expect_error("bad alignment", g.bytes(), StatusCode::kBadGguf, "general.alignment");
  }
  TinyGguf g = testing::tiny_llama_gguf();
  g.set_str("general.alignment", "32");
  expect_error("alignment of the wrong type", g.bytes(), StatusCode::kBadGguf, "general.alignment has type string");
  g = testing::tiny_llama_gguf();
  g.set_u32("general.alignment", 64);
  g.alignment = 64;
  EXPECT_TRUE(parse_and_pack(g.bytes()).is_ok()) << "alignment 64 is valid";
}

TEST(GgufCorruption, MetadataCases) {
  struct M {
    const char* what;
    std::function<void(TinyGguf&)> edit;
    StatusCode code;
    const char* needle;
  };
  const std::vector<M> cases = {
      {"block_count string", [](TinyGguf& g) { g.set_str("llama.block_count", "1"); }, StatusCode::kBadGguf, "llama.block_count has type string, expected u32"},
      {"embedding_length f32", [](TinyGguf& g) { g.set_f32("llama.embedding_length", 32.0f); }, StatusCode::kBadGguf, "llama.embedding_length has type f32"},
      {"rope base as string", [](TinyGguf& g) { g.set_str("llama.rope.freq_base", "1e4"); }, StatusCode::kBadGguf, "llama.rope.freq_base"},
      {"tokens as i32 array", [](TinyGguf& g) { g.set_i32s("tokenizer.ggml.tokens", {1, 2}); }, StatusCode::kBadGguf, "tokenizer.ggml.tokens is an array of i32"},
      {"token types as strings", [](TinyGguf& g) { g.set_strs("tokenizer.ggml.token_type", {"1"}); }, StatusCode::kBadGguf, "tokenizer.ggml.token_type"},
      {"architecture missing", [](TinyGguf& g) { g.erase("general.architecture"); }, StatusCode::kBadGguf, "general.architecture"},
      {"block_count missing", [](TinyGguf& g) { g.erase("llama.block_count"); }, StatusCode::kBadGguf, "llama.block_count"},
      {"block_count 0", [](TinyGguf& g) { g.set_u32("llama.block_count", 0); }, StatusCode::kBadHparams, ""},
      {"block_count -1", [](TinyGguf& g) { g.set_u32("llama.block_count", ~0u); }, StatusCode::kBadHparams, ""},
      {"head_count 0", [](TinyGguf& g) { g.set_u32("llama.attention.head_count", 0); }, StatusCode::kBadHparams, ""},
      {"token types shorter than tokens", [](TinyGguf& g) { g.set_i32s("tokenizer.ggml.token_type", {1, 1}); }, StatusCode::kBadTokenizer, ""},
      {"eos id -1 (as u32)", [](TinyGguf& g) { g.set_u32("tokenizer.ggml.eos_token_id", ~0u); }, StatusCode::kBadTokenizer, "eos"},
      {"merge of unknown tokens", [](TinyGguf& g) { g.set_strs("tokenizer.ggml.merges", {"x yz"}); }, StatusCode::kBadTokenizer, "x yz"},
      // Refused before the arrays are expanded (bounded memory, issue 19 item 3).
      {"more tokens than token_embd rows", [](TinyGguf& g) { g.set_strs("tokenizer.ggml.tokens", std::vector<std::string>(300, "t")); },
       StatusCode::kBadTokenizer, "vocabulary has 300 tokens, token_embd has 262 rows"},
      {"no tokens", [](TinyGguf& g) { g.set_strs("tokenizer.ggml.tokens", {}); }, StatusCode::kBadTokenizer, "vocabulary of 0 tokens"},
      {"merges as i32 array", [](TinyGguf& g) { g.set_i32s("tokenizer.ggml.merges", {1}); }, StatusCode::kBadGguf, "tokenizer.ggml.merges is an array of i32"},
      {"unused bool array holding 2",
       [](TinyGguf& g) {
         g.set("junk.bools", [](std::vector<uint8_t>& b) {
           TinyGguf::u32(b, uint32_t(GgufType::kArray)); TinyGguf::u32(b, uint32_t(GgufType::kBool)); TinyGguf::u64(b, 3);
           b.push_back(1); b.push_back(0); b.push_back(2);
         });
       },
       StatusCode::kBadGguf, "junk.bools: bool element 2 is not 0 or 1"},
      {"unused array nested 9 deep",
       [](TinyGguf& g) {
         g.set("junk.deep", [](std::vector<uint8_t>& b) {
           TinyGguf::u32(b, uint32_t(GgufType::kArray));
           for (int d = 0; d < 9; ++d) { TinyGguf::u32(b, uint32_t(GgufType::kArray)); TinyGguf::u64(b, 1); }
           TinyGguf::u32(b, uint32_t(GgufType::kU8)); TinyGguf::u64(b, 0);
         });
       },
       StatusCode::kBadGguf, "junk.deep: arrays nested deeper than 8"},
      {"unused string array running past the file",
       [](TinyGguf& g) {
         g.set("junk.strs", [](std::vector<uint8_t>& b) {
           TinyGguf::u32(b, uint32_t(GgufType::kArray)); TinyGguf::u32(b, uint32_t(GgufType::kString)); TinyGguf::u64(b, 1);
           TinyGguf::u64(b, 1ull << 40);
         });
       },
       StatusCode::kBadGguf, "junk.strs: string length exceeds the file"},
  };
  for (const M& c : cases) {
    TinyGguf g = testing::tiny_llama_gguf();
    c.edit(g);
    expect_error(c.what, g.bytes(), c.code, c.needle);
  }
}

// Duplicate keys and tensor names, written raw (the builder dedups keys).
TEST(GgufCorruption, Duplicates) {
  TinyGguf g = testing::tiny_llama_gguf();
  g.kv.push_back(g.kv[1]);  // llama.block_count again
  expect_error("duplicate key", g.bytes(), StatusCode::kBadGguf, "duplicate metadata key llama.block_count");
  g = testing::tiny_llama_gguf();
  g.tensor("blk.0.attn_k.weight")->name = "blk.0.attn_q.weight";
  expect_error("duplicate tensor name", g.bytes(), StatusCode::kBadGguf, "duplicate tensor name blk.0.attn_q.weight");
}

// Vocabulary texts with a NUL byte and SentencePiece-like byte names that are
// not valid bytes ("<0x-1>"). A NUL is outside the GPT-2 byte-level alphabet
// (byte 0 is U+0100 there): the runtime rejects the vocabulary naming the
// token, and so does the packer, which runs the runtime's inits before
// writing. "<0x-1>" is plain text to a GPT-2 vocabulary: it packs, loads and
// encodes/decodes as itself.
TEST(GgufCorruption, VocabWithNulAndOddByteNames) {
  TinyGguf g = testing::tiny_llama_gguf();
  std::vector<std::string> tokens;
  for (uint32_t b = 0; b < 256; ++b) tokens.push_back(testing::gpt2_byte_text(uint8_t(b)));
  const std::string G = testing::gpt2_byte_text(' ');
  tokens.push_back(std::string("a\0b", 3));   // 256
  tokens.push_back("<0x-1>");                 // 257
  tokens.push_back(G + "the");                // 258, unreachable without merges: fine
  tokens.push_back("<|endoftext|>");
  tokens.push_back("<|im_start|>");
  tokens.push_back("<|im_end|>");
  g.set_strs("tokenizer.ggml.tokens", tokens);
  g.set_strs("tokenizer.ggml.merges", {G + " t"});
  expect_error("merge result missing", g.bytes(), StatusCode::kBadTokenizer, "");
  g.set_strs("tokenizer.ggml.merges", {});
  // The runtime's tokenizer init refuses token 256 ("a\0b" is outside the
  // byte-level alphabet); the packer runs that init before writing, so it
  // refuses too, with the runtime's message, instead of writing a dead blob.
  std::vector<uint8_t> blob;
  Status st = parse_and_pack(g.bytes(), &blob);
  EXPECT_EQ(st.code(), StatusCode::kBadTokenizer) << st.message();
  EXPECT_NE(std::string(st.message()).find("token 256"), std::string::npos) << st.message();
  EXPECT_NE(std::string(st.message()).find("runtime would refuse"), std::string::npos) << st.message();
  tokens[256] = "a" + testing::gpt2_byte_text(0) + "b";  // the byte-level spelling of "a\0b"
  g.set_strs("tokenizer.ggml.tokens", tokens);
  st = parse_and_pack(g.bytes(), &blob);
  ASSERT_TRUE(st.is_ok()) << st.message();
  Engine e;
  EngineOptions o;
  o.blob_data = blob.data();
  o.blob_size = blob.size();
  st = e.open(o);
  ASSERT_TRUE(st.is_ok()) << st.message();
  const char* bytes;
  size_t len;
  ASSERT_TRUE(e.tokenizer().token_bytes(257, &bytes, &len));
  EXPECT_EQ(std::string(bytes, len), "<0x-1>");
  ASSERT_TRUE(e.tokenizer().token_bytes(256, &bytes, &len));
  EXPECT_EQ(len, 3u);
  int32_t ids[64];
  size_t n = 0;
  const std::string text = std::string("x\0<0x-1>", 8);
  st = e.tokenizer().encode(text.data(), text.size(), false, ids, 64, &n);
  ASSERT_TRUE(st.is_ok()) << st.message();
  std::string back;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(e.tokenizer().token_bytes(ids[i], &bytes, &len));
    back.append(bytes, len);
  }
  EXPECT_EQ(back, text);
}

// Every prefix of the first 64 KiB fails with a status (kBadGguf: the reader
// sees it first), never a crash or an out-of-bounds read.
TEST(GgufCorruption, TruncationAtEveryByte) {
  TinyGguf::Layout l;
  const std::vector<uint8_t> full = testing::tiny_llama_gguf().bytes(&l);
  const size_t n = std::min<size_t>(full.size(), 65536);
  pack::GgufFile f;
  for (size_t len = 0; len < n; ++len) {
    const Status st = pack::GgufFile::parse(std::vector<uint8_t>(full.begin(), full.begin() + long(len)), &f);
    ASSERT_FALSE(st.is_ok()) << "prefix " << len;
    ASSERT_EQ(st.code(), StatusCode::kBadGguf) << "prefix " << len << ": " << st.message();
  }
  // And at every section boundary through the packer.
  for (size_t cut : {size_t(0), size_t(4), size_t(8), size_t(16), size_t(24), l.kv_start, l.infos_start, l.data_start,
                     full.size() - 1}) {
    expect_error("cut at a section boundary", std::vector<uint8_t>(full.begin(), full.begin() + long(cut)),
                 StatusCode::kBadGguf, "");
  }
}

// A single-bit flip of every byte before the tensor data (header, metadata,
// tensor infos; the bit rotates with the byte, every bit of the header and
// the tensor infos): parse + pack either fails with a status or yields a blob
// the runtime accepts or rejects with a status.
TEST(GgufCorruption, BitFlipsBeforeTheData) {
  TinyGguf::Layout l;
  const std::vector<uint8_t> full = testing::tiny_llama_gguf().bytes(&l);
  size_t packed = 0, rejected = 0, loaded = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < l.data_start; ++i) {
    const bool every_bit = i < l.kv_start || i >= l.infos_start;
    for (int bit = 0; bit < 8; ++bit) {
      if (!every_bit && bit != int(i % 8)) continue;
      std::vector<uint8_t> b = full;
      b[i] ^= uint8_t(1u << bit);
      std::vector<uint8_t> blob;
      const Status st = parse_and_pack(b, &blob);
      if (!st.is_ok()) {
        ++rejected;
        ASSERT_NE(st.code(), StatusCode::kInternal) << "byte " << i << ": " << st.message();
        continue;
      }
      ++packed;
      Engine e;
      EngineOptions o;
      o.blob_data = blob.data();
      o.blob_size = blob.size();
      const Status os = e.open(o);
      // The packer's invariant: it refuses, or it writes a blob the engine opens.
      EXPECT_TRUE(os.is_ok()) << "byte " << i << " bit " << bit << ": packed a blob the engine refuses: "
                              << os.message();
      if (os.is_ok()) ++loaded;
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("GGUF bit flips: %zu rejected, %zu packed (%zu of them load); %.2f s\n", rejected, packed, loaded, s);
  EXPECT_EQ(packed, loaded);
}

}  // namespace
}  // namespace tern
