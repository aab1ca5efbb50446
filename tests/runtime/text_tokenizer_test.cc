// The tokenizer facade on packed blobs: a tiny llama with a SentencePiece
// vocabulary laid out as Gemma 3's (tests/support/tiny_model.h), packed by
// the real packer and opened by the engine, against an SpmTokenizer built
// straight from the GGUF's arrays; the byte-level BPE tiny model for the
// other scheme. Also: the BOS rule, decoding, both chat formats, the memory
// plan of the SentencePiece tables, and the text limit.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "runtime/chat_format.h"
#include "runtime/chat_session.h"
#include "runtime/engine.h"
#include "runtime/text_tokenizer.h"
#include "runtime/utf8.h"
#include "tests/support/tiny_model.h"

namespace tern {
namespace {

using testing::kTinySpmBos;
using testing::kTinySpmEndOfTurn;
using testing::kTinySpmStartOfTurn;

const std::string kSp = "\xE2\x96\x81";

// The tiny SentencePiece vocabulary as SpmTokenizer reads it from a GGUF
// (the packer's job, done by hand: llama.cpp's types, the scores).
struct Reference {
  std::vector<uint8_t> offsets, pool, scores, types, mem;
  Arena arena;
  SpmTokenizer tok;

  explicit Reference(bool add_space_prefix) {
    std::vector<std::string> tokens;
    std::vector<int32_t> ty;
    std::vector<float> sc;
    testing::tiny_spm_vocab(&tokens, &ty, &sc);
    const size_t n = tokens.size();
    offsets.resize(4 * (n + 1));
    scores.resize(4 * n);
    for (size_t i = 0; i < n; ++i) {
      blob::store_u32(&offsets[4 * i], uint32_t(pool.size()));
      pool.insert(pool.end(), tokens[i].begin(), tokens[i].end());
      blob::store_f32(&scores[4 * i], sc[i]);
      types.push_back(llama_cpp_token_type(reinterpret_cast<const uint8_t*>(tokens[i].data()), tokens[i].size(),
                                           uint8_t(ty[i])));
    }
    blob::store_u32(&offsets[4 * n], uint32_t(pool.size()));
    SpmVocab v;
    v.texts = TokenTexts{offsets.data(), pool.data(), uint32_t(n)};
    v.scores = scores.data();
    v.types = types.data();
    v.bos = testing::kTinySpmBos;
    v.eos = testing::kTinySpmEos;
    v.unk = testing::kTinySpmUnk;
    v.add_space_prefix = add_space_prefix;
    mem.resize(SpmTokenizer::arena_bytes(uint32_t(n), uint32_t(pool.size()), 1 << 16));
    arena.init(mem.data(), mem.size());
    const Status st = tok.init(v, 1 << 16, &arena);
    EXPECT_TRUE(st.is_ok()) << st.message();
  }
  std::vector<int32_t> encode(const std::string& s, bool special) {
    std::vector<int32_t> ids(s.size() + 8);
    size_t n = 0;
    EXPECT_TRUE(tok.encode(s.data(), s.size(), false, special, ids.data(), ids.size(), &n).is_ok());
    ids.resize(n);
    return ids;
  }
};

// An engine over a blob it keeps alive.
struct Opened {
  std::vector<uint8_t> blob;
  Engine engine;
  Status status;
  Opened(std::vector<uint8_t> b, uint32_t max_context = 0) : blob(std::move(b)) {
    EngineOptions o;
    o.blob_data = blob.data();
    o.blob_size = blob.size();
    o.limits.max_context = max_context;
    status = engine.open(o);
  }
};

std::vector<uint8_t> spm_blob(bool add_space_prefix = false) {
  std::vector<uint8_t> b;
  const Status st = testing::tiny_spm_blob(&b, 1, add_space_prefix);
  EXPECT_TRUE(st.is_ok()) << st.message();
  return b;
}

std::vector<int32_t> encode(TextTokenizer& t, const std::string& s, bool special) {
  std::vector<int32_t> ids(s.size() + 8);
  size_t n = 0;
  const Status st = t.encode(s.data(), s.size(), special, ids.data(), ids.size(), &n);
  EXPECT_TRUE(st.is_ok()) << st.message();
  ids.resize(n);
  return ids;
}

std::string decode(const TextTokenizer& t, const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    const char* b = nullptr;
    size_t len = 0;
    EXPECT_TRUE(t.token_bytes(id, &b, &len)) << id;
    s.append(b, len);
  }
  return s;
}

// Texts that exercise the scheme: merges, spaces and runs of them, newlines
// (user-defined, always split), special texts, byte fallback (characters
// and bytes the vocabulary lacks, invalid UTF-8).
std::vector<std::string> texts() {
  std::vector<std::string> t = {
      "hello world",      " hello  world ",  "the theme",         "\n\nhello\n",  "a\n\n\nb",
      "héllo wörld ü",    "日本語 日",         "x<start_of_turn>y", "</s>hi</s>",   "<end_of_turn>\n",
      "tab\there",        std::string("nul\0byte", 8), "\xff\xfe invalid \xc3", "\xe6\x97", "",
      "hello" + kSp + "world", "<unk><bos>",  "emoji \xf0\x9f\x98\x80!",
  };
  // Deterministic random mixes of the pieces above.
  uint32_t s = 12345;
  const char* parts[] = {"he", "llo", " ", "  ", "\n", "world", "é", "\xe6\x97\xa5", "<start_of_turn>", "x", "\xff",
                         "the", kSp.c_str(), "</s>"};
  for (int k = 0; k < 200; ++k) {
    std::string x;
    for (int j = 0; j < 12; ++j) {
      s = s * 1664525u + 1013904223u;
      x += parts[(s >> 16) % (sizeof(parts) / sizeof(parts[0]))];
    }
    t.push_back(x);
  }
  return t;
}

TEST(TextTokenizer, SentencePieceBlobEncodesAsSpmTokenizer) {
  for (bool prefix : {false, true}) {
    Opened o(spm_blob(prefix));
    ASSERT_TRUE(o.status.is_ok()) << o.status.message();
    TextTokenizer& t = o.engine.tokenizer();
    ASSERT_EQ(t.kind(), TextTokenizer::Kind::kSentencePiece);
    EXPECT_EQ(t.n_tokens(), testing::kTinySpmVocab);
    Reference ref(prefix);
    for (const std::string& s : texts()) {
      for (bool special : {false, true}) {
        EXPECT_EQ(encode(t, s, special), ref.encode(s, special)) << "text '" << s << "' special " << special
                                                                 << " prefix " << prefix;
      }
    }
  }
}

TEST(TextTokenizer, SentencePieceDecodesBackToTheText) {
  Opened o(spm_blob());
  ASSERT_TRUE(o.status.is_ok()) << o.status.message();
  TextTokenizer& t = o.engine.tokenizer();
  for (const std::string& s : texts()) {
    if (s.find(kSp) != std::string::npos) continue;  // "▁" itself decodes to a space
    // Invalid UTF-8: a lead byte swallows what follows (llama.cpp's rule), an
    // escaped space among it comes back as its bytes (the goldens' 3 cases).
    if (!utf8_valid(s.data(), s.size())) continue;
    EXPECT_EQ(decode(t, encode(t, s, false)), s) << s;
    EXPECT_EQ(decode(t, encode(t, s, true)), s) << s;  // control tokens decode to their text
  }
  EXPECT_EQ(encode(t, "hello world", false), (std::vector<int32_t>{t.find("hello", 5), t.find((kSp + "world").data(), kSp.size() + 5)}));
  // Control and unknown tokens are markup; user-defined ones ("\n") are text.
  EXPECT_TRUE(t.is_special(kTinySpmBos));
  EXPECT_TRUE(t.is_special(testing::kTinySpmUnk));
  EXPECT_TRUE(t.is_special(t.find("</s>", 4)));  // retyped control, as llama.cpp does
  EXPECT_FALSE(t.is_special(testing::kTinySpmNewline));
  EXPECT_FALSE(t.is_special(t.find("hello", 5)));
  // A byte token alone is its byte.
  const char* b = nullptr;
  size_t len = 0;
  ASSERT_TRUE(t.token_bytes(6 + 0xC3, &b, &len));
  EXPECT_EQ(std::string(b, len), "\xc3");
  EXPECT_FALSE(t.token_bytes(-1, &b, &len));
  EXPECT_FALSE(t.token_bytes(int32_t(testing::kTinySpmVocab), &b, &len));
}

TEST(TextTokenizer, BosRuleInOnePlace) {
  Opened spm(spm_blob());
  ASSERT_TRUE(spm.status.is_ok()) << spm.status.message();
  TextTokenizer& t = spm.engine.tokenizer();
  EXPECT_EQ(t.prompt_bos(), kTinySpmBos);  // add_bos_token = true
  int32_t ids[32];
  size_t n = 0;
  ASSERT_TRUE(t.encode_prompt("hello", 5, false, true, ids, 32, &n).is_ok());
  ASSERT_EQ(n, 2u);
  EXPECT_EQ(ids[0], kTinySpmBos);
  ASSERT_TRUE(t.encode_prompt("hello", 5, false, false, ids, 32, &n).is_ok());
  EXPECT_EQ(n, 1u);
  // Empty text: the BOS alone (as llama.cpp); no room at all: kPromptTooLong.
  ASSERT_TRUE(t.encode_prompt("", 0, false, true, ids, 32, &n).is_ok());
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(t.encode_prompt("hello", 5, false, true, ids, 0, &n).code(), StatusCode::kPromptTooLong);

  std::vector<uint8_t> bpe_blob;
  ASSERT_TRUE(testing::tiny_blob(&bpe_blob).is_ok());
  Opened bpe(bpe_blob);
  ASSERT_TRUE(bpe.status.is_ok()) << bpe.status.message();
  EXPECT_EQ(bpe.engine.tokenizer().kind(), TextTokenizer::Kind::kByteBpe);
  EXPECT_EQ(bpe.engine.tokenizer().prompt_bos(), -1);  // add_bos_token absent: no BOS
  ASSERT_TRUE(bpe.engine.tokenizer().encode_prompt("the", 3, false, true, ids, 32, &n).is_ok());
  EXPECT_EQ(n, 2u);  // "t", "he": no BOS
}

TEST(TextTokenizer, MemoryPlanIsExact) {
  for (uint32_t ctx : {64u, 256u, 4096u}) {
    std::vector<uint8_t> blob = spm_blob();
    ModelFile f;
    ASSERT_TRUE(open_model_file(blob.data(), blob.size(), &f).is_ok());
    const ModelShape shape = f.shape();
    EXPECT_EQ(shape.tokenizer_model, 2u);
    EXPECT_EQ(shape.n_tokens, testing::kTinySpmVocab);
    EXPECT_EQ(shape.n_merges, 0u);
    EXPECT_GT(shape.token_text_bytes, 256u * 6);
    RunLimits l = resolve_run_limits(EngineOptions{}, f.default_limits);
    l.max_context = ctx;
    MemoryPlan plan;
    const char* why = "";
    ASSERT_TRUE(plan_memory(shape, l, &plan, &why)) << why;
    const size_t max_text = TextTokenizer::text_bytes_for_context(ctx);
    EXPECT_EQ(max_text, ctx * 16 < 4096 ? 4096u : ctx * 16);
    const size_t tok_bytes = TextTokenizer::arena_bytes(shape, max_text);
    EXPECT_EQ(plan.tokenizer, tok_bytes + arena_align_up(size_t(ctx) * 4, 64) * l.max_sequences);
    EXPECT_EQ(tok_bytes, arena_align_up(max_text, 64) + 64 +
                             SpmTokenizer::arena_bytes(shape.n_tokens, shape.token_text_bytes, max_text));

    // The engine runs in exactly the plan, and its tokenizer takes no more
    // than planned (alignment slack aside).
    std::vector<uint8_t> arena(plan.total);
    Engine e;
    EngineOptions o;
    o.blob_data = blob.data();
    o.blob_size = blob.size();
    o.limits.max_context = ctx;
    o.arena_buffer = arena.data();
    o.arena_bytes = arena.size();
    const Status st = e.open(o);
    ASSERT_TRUE(st.is_ok()) << st.message();
    const size_t used = e.arena().region_bytes("tokenizer") + e.arena().region_bytes("tokens");
    EXPECT_LE(used, plan.tokenizer);
    // The plan rounds every table up to 64 bytes and allows 64 bytes of
    // alignment per allocation; the tables themselves are counted exactly.
    EXPECT_GE(used + 32 * 64, plan.tokenizer) << "the plan is far above what the tokenizer takes";
    EXPECT_EQ(e.tokenizer().max_text_bytes(), max_text);
    // The engine refuses an arena one byte short of the plan.
    Engine e2;
    o.arena_bytes = plan.total - 1;
    EXPECT_EQ(e2.open(o).code(), StatusCode::kArenaTooSmall);
  }
  // The packer stored the runtime's plan for its limits (Engine::open
  // compares them; check the bytes too).
  std::vector<uint8_t> blob = spm_blob();
  ModelFile f;
  ASSERT_TRUE(open_model_file(blob.data(), blob.size(), &f).is_ok());
  MemoryPlan plan;
  ASSERT_TRUE(plan_memory(f.shape(), resolve_run_limits(EngineOptions{}, f.default_limits), &plan, nullptr));
  EXPECT_EQ(f.stored_plan.tokenizer, plan.tokenizer);
  EXPECT_EQ(f.stored_plan.total, plan.total);
}

TEST(TextTokenizer, TextLimitIsKPromptTooLong) {
  Opened o(spm_blob(), 64);  // 4 KiB of text
  ASSERT_TRUE(o.status.is_ok()) << o.status.message();
  TextTokenizer& t = o.engine.tokenizer();
  EXPECT_EQ(t.max_text_bytes(), 4096u);
  std::string s(4097, 'a');
  std::vector<int32_t> ids(8192);
  size_t n = 1;
  const Status st = t.encode(s.data(), s.size(), false, ids.data(), ids.size(), &n);
  EXPECT_EQ(st.code(), StatusCode::kPromptTooLong);
  EXPECT_EQ(n, 0u);
  EXPECT_NE(std::string(st.message()).find("4096"), std::string::npos) << st.message();
  s.resize(4096);
  EXPECT_TRUE(t.encode(s.data(), s.size(), false, ids.data(), ids.size(), &n).is_ok());
  EXPECT_EQ(n, 4096u);  // 'a' has no merge with itself
  // Pieces count together.
  const TextTokenizer::Piece p[2] = {{s.data(), 2048}, {s.data(), 2049}};
  EXPECT_EQ(t.encode_pieces(p, 2, ids.data(), ids.size(), &n).code(), StatusCode::kPromptTooLong);
}

std::vector<int32_t> tok_ids(TextTokenizer& t, const std::string& s) { return encode(t, s, false); }

void append(std::vector<int32_t>* v, const std::vector<int32_t>& w) { v->insert(v->end(), w.begin(), w.end()); }

TEST(ChatFormat, GemmaFromTheVocabulary) {
  Opened o(spm_blob());
  ASSERT_TRUE(o.status.is_ok()) << o.status.message();
  ASSERT_TRUE(o.engine.has_chat());
  const ChatFormat& fmt = o.engine.chat();
  EXPECT_EQ(fmt.kind, ChatKind::kGemma);
  EXPECT_EQ(fmt.turn_start, kTinySpmStartOfTurn);
  EXPECT_EQ(fmt.turn_end, kTinySpmEndOfTurn);
  EXPECT_EQ(fmt.end_of_turn(), kTinySpmEndOfTurn);
  EXPECT_EQ(fmt.bos, kTinySpmBos);
  EXPECT_FALSE(fmt.has_system_role());
  TextTokenizer& t = o.engine.tokenizer();

  // <bos><start_of_turn>user\nTEXT<end_of_turn>\n<start_of_turn>model\n
  const std::string text = "hello <start_of_turn>world";  // the marker typed: plain text
  std::vector<int32_t> want = {kTinySpmBos, kTinySpmStartOfTurn};
  append(&want, tok_ids(t, "user\n" + text));
  want.push_back(kTinySpmEndOfTurn);
  append(&want, tok_ids(t, "\n"));
  want.push_back(kTinySpmStartOfTurn);
  append(&want, tok_ids(t, "model\n"));
  std::vector<int32_t> ids(256);
  size_t n = 0;
  ASSERT_TRUE(chat_encode_user_turn(&t, fmt, true, false, text.data(), text.size(), ids.data(), ids.size(), &n).is_ok());
  ids.resize(n);
  EXPECT_EQ(ids, want);
  int starts = 0;
  for (int32_t id : ids) starts += id == kTinySpmStartOfTurn;
  EXPECT_EQ(starts, 2) << "user text cannot forge a turn";

  // No system role: the system text opens the first user turn, then a blank line.
  std::vector<int32_t> sys(64);
  ASSERT_TRUE(chat_encode_system_turn(&t, fmt, "Be brief.", 9, sys.data(), sys.size(), &n).is_ok());
  sys.resize(n);
  want = {kTinySpmBos, kTinySpmStartOfTurn};
  append(&want, tok_ids(t, "user\nBe brief.\n\n"));
  EXPECT_EQ(sys, want);
  ChatTurnPrefix in_turn;
  in_turn.in_user_turn = true;
  std::vector<int32_t> turn(64);
  size_t user_at = 9;
  ASSERT_TRUE(chat_encode_turn(&t, fmt, in_turn, "hello", 5, turn.data(), turn.size(), &n, &user_at).is_ok());
  turn.resize(n);
  want = tok_ids(t, "hello");
  want.push_back(kTinySpmEndOfTurn);
  append(&want, tok_ids(t, "\n"));
  want.push_back(kTinySpmStartOfTurn);
  append(&want, tok_ids(t, "model\n"));
  EXPECT_EQ(turn, want);
  EXPECT_EQ(user_at, 0u);
  // A later turn after a reply cut short: the reply is closed first.
  ChatTurnPrefix cut;
  cut.after_reply = cut.reply_cut = true;
  turn.assign(64, 0);
  ASSERT_TRUE(chat_encode_turn(&t, fmt, cut, "hi", 2, turn.data(), turn.size(), &n, &user_at).is_ok());
  EXPECT_EQ(turn[0], kTinySpmEndOfTurn);
  EXPECT_EQ(turn[1], testing::kTinySpmNewline);
  EXPECT_EQ(user_at, 2u);
  EXPECT_EQ(turn[2], kTinySpmStartOfTurn);
}

TEST(ChatFormat, ChatMlUnchangedOnTheBpeModel) {
  std::vector<uint8_t> blob;
  ASSERT_TRUE(testing::tiny_blob(&blob).is_ok());
  Opened o(blob);
  ASSERT_TRUE(o.status.is_ok()) << o.status.message();
  const ChatFormat& fmt = o.engine.chat();
  EXPECT_EQ(fmt.kind, ChatKind::kChatMl);
  EXPECT_EQ(fmt.bos, -1);
  EXPECT_EQ(fmt.end_of_turn(), testing::kTinyImEnd);
  TextTokenizer& t = o.engine.tokenizer();
  std::vector<int32_t> ids(64);
  size_t n = 0;
  ASSERT_TRUE(chat_encode_user_turn(&t, fmt, true, false, "the", 3, ids.data(), ids.size(), &n).is_ok());
  ids.resize(n);
  std::vector<int32_t> want;
  append(&want, encode(t, "<|im_start|>user\n", true));
  append(&want, encode(t, "the", false));
  append(&want, encode(t, "<|im_end|>\n<|im_start|>assistant\n", true));
  EXPECT_EQ(ids, want);
  EXPECT_EQ(ids[0], testing::kTinyImStart);
}

TEST(ChatFormat, NoneWhenTheBlobHasNeither) {
  // The SentencePiece model with <start_of_turn> made a normal token: no format.
  testing::TinyGguf g = testing::tiny_spm_llama_gguf();
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<float> scores;
  testing::tiny_spm_vocab(&tokens, &types, &scores);
  types[kTinySpmStartOfTurn] = 1;
  g.set_i32s("tokenizer.ggml.token_type", types);
  std::vector<uint8_t> blob;
  ASSERT_TRUE(testing::pack_tiny(g.bytes(), &blob).is_ok());
  Opened o(blob);
  ASSERT_TRUE(o.status.is_ok()) << o.status.message();
  EXPECT_FALSE(o.engine.has_chat());
  ChatSession chat;
  const Status st = chat.init(&o.engine, 0);
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(std::string(st.message()).find("Gemma"), std::string::npos) << st.message();
}

// A Gemma-format conversation in the KV cache: the opening, turns that
// continue the system's user turn, and a context shift that keeps turn 1.
TEST(ChatSession, GemmaTurnsAndContextShift) {
  Opened o(spm_blob(), 64);
  ASSERT_TRUE(o.status.is_ok()) << o.status.message();
  TextTokenizer& t = o.engine.tokenizer();
  ChatSession chat;
  ASSERT_TRUE(chat.init(&o.engine, 0).is_ok());
  EXPECT_FALSE(chat.has_system());
  EXPECT_EQ(chat.system_tokens(), 1u);  // the BOS
  ASSERT_TRUE(chat.set_system("Be brief.", 9).is_ok());
  EXPECT_TRUE(chat.has_system());
  const uint32_t sys = chat.system_tokens();
  EXPECT_EQ(chat.history().ids[0], kTinySpmBos);
  EXPECT_EQ(chat.history().ids[1], kTinySpmStartOfTurn);

  GenerateStats st;
  auto no_text = [](void*, const char*, size_t) {};
  ASSERT_TRUE(chat.turn("hello", 5, 3, no_text, nullptr, &st).is_ok());
  // Turn 1 continues the open user turn: its text right after the opening.
  const std::vector<int32_t> hello = tok_ids(t, "hello");
  for (size_t i = 0; i < hello.size(); ++i) EXPECT_EQ(chat.history().ids[sys + i], hello[i]);
  EXPECT_EQ(chat.history().ids[sys + hello.size()], kTinySpmEndOfTurn);

  // Fill the 64-token context with context shift: turn 1 (with the system
  // text) always stays; later turns go.
  chat.set_context_shift(true);
  const uint32_t turn1_end = chat.context_used();
  for (int k = 0; k < 12; ++k) {
    const Status s = chat.turn("the world", 9, 3, no_text, nullptr, &st);
    ASSERT_TRUE(s.is_ok() || s.code() == StatusCode::kContextFull) << s.message();
    ASSERT_GE(chat.context_used(), turn1_end) << "turn " << k;
    for (size_t i = 0; i < hello.size(); ++i) ASSERT_EQ(chat.history().ids[sys + i], hello[i]) << "turn " << k;
    // Every later turn starts with its own header, never inside the open turn.
    ASSERT_EQ(chat.history().ids[1], kTinySpmStartOfTurn);
  }
  EXPECT_GT(chat.last_turn().dropped_turns + chat.turns(), 0u);
  EXPECT_LE(chat.context_used(), chat.context_max());
}

}  // namespace
}  // namespace tern
