// Fuzz target: the tokenizer's encode and decode on the real SmolLM2
// vocabulary (49152 tokens, 48900 merges), loaded once from the packed int4
// blob: TERN_FUZZ_BLOB if set, else the blob the build's model cache holds
// (TERN_FUZZ_REAL_BLOB; scripts/fetch_model.sh + tern-pack make it). A real
// vocabulary rather than a toy one: the merge table, byte map and special
// tokens are what hostile text meets in practice.
//
// Input: byte 0 selects the mode, the rest is the payload.
//  encode (bit 0 clear): payload = text; bit 1 = allow_special, bit 2 = the
//    GPT-2 pre-split instead of SmolLM's. Checks: the token bytes of the ids
//    concatenate back to the input exactly (the tokenizer's round-trip
//    promise, invalid UTF-8 included); every id is valid; a too-small output
//    cap gives kPromptTooLong with a prefix of the full encoding.
//  decode (bit 0 set): payload = little-endian u16/u32 ids, streamed through
//    Utf8Stream as tern-chat does. Checks: invalid ids are refused, the
//    stream emits only valid UTF-8, and equals utf8_sanitize of the bytes.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "port/blob_map.h"
#include "runtime/model_file.h"
#include "runtime/tokenizer.h"
#include "runtime/utf8.h"
#include "tests/fuzz/fuzz_support.h"

using namespace tern;

namespace {

// Bytes with a single-byte token (GPT-2 byte-level alphabet lookup); the
// tokenizer drops the others (documented in runtime/tokenizer.h).
bool g_byte_known[256];

void find_known_bytes(const Tokenizer& tok) {
  for (uint32_t b = 0; b < 256; ++b) {
    // bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to U+0100 + n.
    const bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    uint32_t cp = b;
    if (!self) {
      uint32_t n = 0;
      for (uint32_t c = 0; c < b; ++c) n += !((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE);
      cp = 0x100 + n;
    }
    uint8_t u[4];
    const size_t ul = utf8_encode(cp, u);
    g_byte_known[b] = tok.find(reinterpret_cast<const char*>(u), ul) >= 0;
  }
}

Tokenizer* load() {
  static Tokenizer tok;
  static BlobMap map;
  static ModelFile file;
  static std::vector<uint64_t> arena_mem;
  static Arena arena;
  const char* path = std::getenv("TERN_FUZZ_BLOB");
  if (!path || !*path) path = TERN_FUZZ_REAL_BLOB;
  const int err = blob_map_file(path, &map);
  FUZZ_CHECK(err == 0, "cannot map the tokenizer blob %s (set TERN_FUZZ_BLOB, or fetch and pack the model)", path);
  Status s = open_model_file(map.data, map.size, &file);
  FUZZ_CHECK(s.is_ok(), "%s: %s", path, s.message());
  arena_mem.resize(Tokenizer::arena_bytes(file.n_tokens, file.n_merges) / 8 + 64);
  arena.init(arena_mem.data(), arena_mem.size() * 8);
  s = tok.init(file.tokenizer, file.tokenizer_bytes, &arena);
  FUZZ_CHECK(s.is_ok(), "tokenizer init: %s", s.message());
  find_known_bytes(tok);
  return &tok;
}

void fuzz_encode(Tokenizer* tok, uint8_t mode, const char* text, size_t len) {
  tok->set_pre_split(mode & 4 ? PreSplit::kGpt2 : PreSplit::kSmollm);
  const bool special = mode & 2;
  // Every byte is at most one token, plus slack.
  static std::vector<int32_t> ids, ids_small;
  ids.assign(len + 8, -7);
  size_t n = 0;
  Status s = tok->encode(text, len, special, ids.data(), ids.size(), &n);
  FUZZ_CHECK(s.is_ok(), "encode of %zu bytes: %s", len, s.message());
  FUZZ_CHECK(n <= len, "%zu ids for %zu bytes", n, len);
  // What the ids must spell: the input without the bytes the vocabulary lacks.
  static std::vector<char> kept;
  kept.clear();
  for (size_t i = 0; i < len; ++i)
    if (g_byte_known[uint8_t(text[i])]) kept.push_back(text[i]);
  const char* const input = text;
  const size_t input_len = len;
  text = kept.data();
  len = kept.size();
  size_t at = 0;
  for (size_t i = 0; i < n; ++i) {
    const char* b = nullptr;
    size_t bl = 0;
    FUZZ_CHECK(ids[i] >= 0 && tok->token_bytes(ids[i], &b, &bl), "id %d at %zu is invalid", ids[i], i);
    FUZZ_CHECK(bl > 0 && at + bl <= len && std::memcmp(text + at, b, bl) == 0,
               "token %zu (id %d) does not match input bytes at %zu", i, ids[i], at);
    if (!special) FUZZ_CHECK(!tok->is_special(ids[i]), "special token %d without allow_special", ids[i]);
    at += bl;
  }
  FUZZ_CHECK(at == len, "ids decode to %zu of %zu bytes", at, len);
  if (n > 1) {  // a short output buffer: kPromptTooLong and the ids that fit
    const size_t cap = n / 2;
    ids_small.assign(cap, -7);
    size_t m = 0;
    s = tok->encode(input, input_len, special, ids_small.data(), cap, &m);
    FUZZ_CHECK(s.code() == StatusCode::kPromptTooLong && m == cap, "cap %zu: %s, %zu ids", cap,
               status_code_name(s.code()), m);
    FUZZ_CHECK(std::memcmp(ids_small.data(), ids.data(), cap * sizeof(int32_t)) == 0, "capped encode differs");
  }
}

void fuzz_decode(Tokenizer* tok, uint8_t mode, const uint8_t* p, size_t len) {
  const bool wide = mode & 2;  // u32 ids (any value) or u16 ids (mostly valid)
  const size_t step = wide ? 4 : 2;
  static std::vector<char> raw, streamed, sanitized;
  raw.clear();
  streamed.clear();
  Utf8Stream stream;
  char out[Utf8Stream::max_output(1024)];
  for (size_t i = 0; i + step <= len; i += step) {
    uint32_t u = 0;
    std::memcpy(&u, p + i, step);  // little-endian hosts only (x86-64, Arm)
    const int32_t id = int32_t(u);
    const char* b = nullptr;
    size_t bl = 0;
    const bool ok = tok->token_bytes(id, &b, &bl);
    FUZZ_CHECK(ok == (id >= 0 && uint32_t(id) < tok->n_tokens()), "token_bytes(%d) = %d", id, ok);
    if (!ok) continue;
    FUZZ_CHECK(bl <= 1024, "token %d has %zu bytes", id, bl);
    raw.insert(raw.end(), b, b + bl);
    size_t n = 0;
    FUZZ_CHECK(stream.feed(b, bl, out, sizeof(out), &n), "stream refused a %zu-byte piece", bl);
    streamed.insert(streamed.end(), out, out + n);
  }
  streamed.resize(streamed.size() + 3);
  const size_t tail = stream.finish(streamed.data() + streamed.size() - 3, 3);
  streamed.resize(streamed.size() - 3 + tail);
  FUZZ_CHECK(utf8_valid(streamed.data(), streamed.size()), "decoded stream is not valid UTF-8");
  sanitized.resize(utf8_sanitized_max(raw.size()) + 1);
  const size_t sn = utf8_sanitize(raw.data(), raw.size(), sanitized.data(), sanitized.size());
  FUZZ_CHECK(sn == streamed.size() && std::memcmp(sanitized.data(), streamed.data(), sn) == 0,
             "streamed decode (%zu bytes) differs from sanitizing the whole (%zu bytes)", streamed.size(), sn);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Tokenizer* tok = load();
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  if (mode & 1) {
    fuzz_decode(tok, mode, data + 1, size - 1);
  } else {
    // Exactly-sized heap copy so ASan catches any read past the text.
    std::vector<char> text(data + 1, data + size);
    fuzz_encode(tok, mode, text.data(), text.size());
  }
  return 0;
}
