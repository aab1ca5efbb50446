// tern-run: non-interactive generation and scoring, for scripts.
//
//   tern-run --model m.tern --prompt "Once upon a time" -n 64
//   tern-run --model m.tern --chat --prompt "What is 2+2?" --json
//   tern-run --model m.tern --prompt-ids 1,2,3 --score
//   tern-run --model m.tern --prompt "Hello" --tokenize [--json]
//   tern-run --model m.tern --prompts-file questions.txt --chat [--json]
//
// main() = parse the command line, build the prompt's ids, then run one of
// generate / score / tokenize (which opens only the blob's tokenizer). After parsing, every error goes through Output::fail: one
// line on stderr and, with --json, one final JSON object on stdout.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "port/blob_map.h"
#include "port/clock.h"
#include "runtime/chat_format.h"
#include "runtime/engine.h"
#include "runtime/generate.h"
#include "runtime/score.h"
#include "runtime/utf8.h"
#include "tools/cli/cli_common.h"
#include "tools/cli/prompts_batch.h"
#include "tools/cli/token_ids.h"

namespace {

using namespace tern;

constexpr const char* kTool = "tern-run";

void usage(FILE* f) {
  std::fprintf(f,
               "usage: tern-run -m BLOB (-p TEXT | -f PATH | --prompt-ids IDS) [options]\n"
               "  -p, --prompt TEXT       the prompt\n"
               "  -f, --prompt-file PATH  read the prompt from a file ('-': standard input); one trailing\n"
               "                          newline is dropped (as llama.cpp's -f does)\n"
               "  --prompt-ids IDS        the prompt as token ids: \"1,2,3\", \"1, 2, 3\" or \"1 2 3\"\n"
               "  --prompts-file PATH     every line its own prompt and sequence, all run together through the\n"
               "                          scheduler (--max-sequences at once, default min(lines, 8)); with --json\n"
               "                          every object carries \"seq\", the line's index (from 0)\n"
               "  -n N                    tokens to generate (default 64; 0 = prefill only, with its stats)\n"
               "  --chat                  wrap the prompt in the model's chat format (one user turn; ChatML or\n"
               "                          Gemma, whichever the blob has)\n"
               "  --special               let special-token text in the prompt (e.g. <|im_start|>) be special\n"
               "  --no-bos                do not start the prompt with the BOS token (by default the blob decides:\n"
               "                          Gemma adds it, SmolLM2 does not)\n"
               "  --tokenize              print the prompt's token ids on one line, \"[2, 9259, 1902]\" (as\n"
               "                          llama.cpp's llama-tokenize --ids; --prompt-ids reads it back), and exit;\n"
               "                          with --json one object {\"ids\":[..],\"pieces\":[..]}: each piece the\n"
               "                          token's text as a string, or {\"hex\":\"e2\"} when its bytes are not\n"
               "                          valid UTF-8 (a byte token alone); respects --chat, --special, --no-bos\n"
               "  --stop STR              stop when the output contains STR (repeatable, up to %u, 1..%u bytes);\n"
               "                          STR itself is not printed\n"
               "  --ignore-eos            keep generating past the end-of-sequence and end-of-turn tokens\n"
               "                          (<|im_end|>, <end_of_turn>)\n"
               "  --json                  one JSON object per token ({\"id\",\"text\",\"stop\"}), then one final\n"
               "                          object: status, finish_reason, timings, memory (on errors: status, error)\n"
               "  --score                 teacher-forced scoring of the prompt: per position the top-1 id and\n"
               "                          the log-probability of the actual next token, then a summary\n"
               "  --print-plan            print the arena these limits need, by category, and exit\n"
               "                          (with --json: one JSON object)\n"
               "%s",
               GenerateRequest::kMaxStopStrings, GenerateRequest::kMaxStopStringBytes, cli::common_flags_help());
}

struct Args {
  EngineOptions opt;
  cli::CommonFlagsSeen seen;
  std::string prompt;          // --prompt text
  const char* prompt_file = nullptr;
  const char* prompt_ids = nullptr;
  const char* prompts_file = nullptr;  // --prompts-file
  bool chat = false, json = false, score = false, special = false, ignore_eos = false, show_plan = false;
  bool tokenize = false, no_bos = false;
  uint32_t n_gen = 64;
  std::vector<std::string> stops;
};

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "%s: %s (%s --help lists the options)\n", kTool, msg.c_str(), kTool);
  return 2;
}

// Returns -1 to go on, else the exit code.
int parse_args(int argc, char** argv, Args* a) {
  bool have_prompt = false;
  for (int i = 1; i < argc; ++i) {
    std::string err;
    const int r = cli::parse_common_flag(argc, argv, &i, &a->opt, &err, &a->seen);
    if (r < 0) return usage_error(err);
    if (r > 0) continue;
    const std::string f = argv[i];
    const char* v = nullptr;
    auto need = [&]() -> bool {
      if (i + 1 >= argc) return false;
      v = argv[++i];
      return true;
    };
    if (f == "-h" || f == "--help") {
      usage(stdout);
      return 0;
    } else if (f == "--version") {
      std::printf("%s (%s)\n", kTool, cli::version());
      return 0;
    } else if (f == "-p" || f == "--prompt" || f == "-f" || f == "--prompt-file" || f == "--prompt-ids" ||
               f == "--prompts-file") {
      if (!need()) return usage_error("missing value for " + f);
      if (have_prompt) return usage_error("give one of --prompt, --prompt-file, --prompt-ids, --prompts-file");
      have_prompt = true;
      if (f == "-p" || f == "--prompt") a->prompt = v;
      else if (f == "--prompt-ids") a->prompt_ids = v;
      else if (f == "--prompts-file") a->prompts_file = v;
      else a->prompt_file = v;
    } else if (f == "-n" || f == "--n-predict") {
      if (!need()) return usage_error("missing value for " + f);
      char* end = nullptr;
      const long n = std::strtol(v, &end, 10);
      if (!*v || *end || n < 0 || n > 1000000) return usage_error("-n needs a count in [0, 1000000]");
      a->n_gen = uint32_t(n);
    } else if (f == "--stop") {
      if (!need()) return usage_error("missing value for --stop");
      const size_t len = std::strlen(v);
      if (len == 0 || len > GenerateRequest::kMaxStopStringBytes) {
        return usage_error("--stop needs 1.." + std::to_string(GenerateRequest::kMaxStopStringBytes) + " bytes");
      }
      if (a->stops.size() >= GenerateRequest::kMaxStopStrings) {
        return usage_error("at most " + std::to_string(GenerateRequest::kMaxStopStrings) + " --stop strings");
      }
      a->stops.push_back(v);
    } else if (f == "--chat") a->chat = true;
    else if (f == "--json") a->json = true;
    else if (f == "--score") a->score = true;
    else if (f == "--special") a->special = true;
    else if (f == "--ignore-eos") a->ignore_eos = true;
    else if (f == "--print-plan") a->show_plan = true;
    else if (f == "--tokenize") a->tokenize = true;
    else if (f == "--no-bos") a->no_bos = true;
    else return cli::unknown_argument(kTool, argv[i]);
  }
  if (!a->opt.model_path) return usage_error("--model is required");
  if (!have_prompt && !a->show_plan) return usage_error("give --prompt, --prompt-file or --prompt-ids");
  if (a->tokenize && a->prompt_ids) return usage_error("--tokenize needs a text prompt (--prompt or --prompt-file)");
  if (a->tokenize && a->score) return usage_error("give one of --tokenize, --score");
  if (a->prompts_file && (a->tokenize || a->score)) return usage_error("--prompts-file generates: not with --tokenize or --score");
  if (a->score) {
    // Every position's logits: a logits row per prefill token.
    if (!a->opt.limits.prefill_chunk) a->opt.limits.prefill_chunk = 64;
    a->opt.limits.logit_rows = a->opt.limits.prefill_chunk;
  }
  return -1;
}

// stdout bookkeeping: whether the text output ends with a newline, so the
// stats line on stderr never lands glued to it in a shared pipe.
struct Output {
  bool json = false;
  bool line_open = false;  // stdout has text after its last '\n'

  void text(const char* s, size_t n) {
    if (n == 0) return;
    std::fwrite(s, 1, n, stdout);
    line_open = s[n - 1] != '\n';
  }
  // End the text output: a final newline if needed, then flush stdout.
  void end_text() {
    if (line_open) std::fputc('\n', stdout);
    line_open = false;
    std::fflush(stdout);
  }
  // An error after parsing: one line on stderr; with --json one final object.
  int fail(const Status& s) {
    end_text();
    return cli::report_error(kTool, s, json);
  }
};

// The prompt file's bytes ('-': standard input), without one trailing newline.
Status read_prompt_file(const char* path, std::string* out) {
  out->clear();
  if (std::strcmp(path, "-") == 0) {
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), stdin)) > 0) out->append(buf, n);
    if (std::ferror(stdin)) return Status::error(StatusCode::kIoError, "cannot read the prompt from standard input");
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::error(StatusCode::kIoError, "cannot read prompt file '%s'", path);
    std::stringstream ss;
    ss << in.rdbuf();
    *out = ss.str();
  }
  if (!out->empty() && out->back() == '\n') {
    out->pop_back();
    if (!out->empty() && out->back() == '\r') out->pop_back();
  }
  return Status::ok();
}

// Invalid UTF-8 (truncated or overlong sequences, surrogates, 0xF5-0xFF)
// becomes U+FFFD, as in the REPL: the vocabulary has no token for some of
// those bytes, and silently dropping input is worse than a visible mark.
std::string sanitized_prompt(const std::string& prompt) {
  std::string clean(utf8_sanitized_max(prompt.size()), '\0');
  clean.resize(utf8_sanitize(prompt.data(), prompt.size(), &clean[0], clean.size()));
  if (clean != prompt) std::fprintf(stderr, "%s: invalid UTF-8 in the prompt replaced by U+FFFD\n", kTool);
  return clean;
}

// The text prompt's ids into ids[0, cap): the chat format's user turn
// (--chat) or the text itself, each with the BOS the model asks for
// (TextTokenizer::prompt_bos) unless --no-bos.
Status encode_text_prompt(TextTokenizer* tok, const ChatFormat& chat, const Args& a, const std::string& clean,
                          int32_t* ids, size_t cap, size_t* n) {
  if (a.chat) {
    if (chat.kind == ChatKind::kNone) {
      return Status::error(StatusCode::kUnsupported, "model has no chat format tern knows (ChatML or Gemma)");
    }
    ChatFormat fmt = chat;
    if (a.no_bos) fmt.bos = -1;
    return chat_encode_user_turn(tok, fmt, true, false, clean.data(), clean.size(), ids, cap, n);
  }
  return tok->encode_prompt(clean.data(), clean.size(), a.special, !a.no_bos, ids, cap, n);
}

// The prompt's token ids: --prompt-ids as given (checked against the
// vocabulary), or the text encoded (encode_text_prompt).
Status build_prompt(Engine& e, const Args& a, const std::string& prompt, std::vector<int32_t>* ids) {
  const uint32_t ctx = e.limits().max_context;
  if (a.prompt_ids) {
    std::string err;
    if (!cli::parse_token_ids(a.prompt_ids, std::strlen(a.prompt_ids), ids, &err)) {
      return Status::error(StatusCode::kInvalidArgument, "%s", err.c_str());
    }
    return e.check_tokens(ids->data(), ids->size());
  }
  if (prompt.empty()) return Status::error(StatusCode::kInvalidArgument, "empty prompt");
  const std::string clean = sanitized_prompt(prompt);
  ids->resize(ctx + 1);
  size_t n = 0;
  Status s = encode_text_prompt(&e.tokenizer(), e.chat(), a, clean, ids->data(), ids->size(), &n);
  if (s.code() == StatusCode::kPromptTooLong && n < ids->size()) return s;  // the text limit, not the context
  if (s.code() == StatusCode::kPromptTooLong || n > ctx) {
    return Status::error(StatusCode::kPromptTooLong, "prompt is longer than the context of %u tokens", ctx);
  }
  if (!s.is_ok()) return s;
  ids->resize(n);
  return Status::ok();
}

// --- tokenize ---

// --tokenize: only the blob's tokenizer (no weights, KV or threads), in an
// arena sized for this prompt; the ids on one line, or one JSON object.
int run_tokenize(const Args& a, const std::string& prompt, bool json) {
  auto fail = [&](const Status& s) { return cli::report_error(kTool, s, json); };
  BlobMap map;
  if (const int err = blob_map_file(a.opt.model_path, &map); err != 0) {
    return fail(Status::error(StatusCode::kIoError, "cannot open blob '%s': %s", a.opt.model_path, std::strerror(err)));
  }
  struct Unmap {
    BlobMap* m;
    ~Unmap() { blob_unmap(m); }
  } unmap{&map};
  static ModelFile file;  // static: ModelFile is large
  if (Status s = open_model_file(map.data, map.size, &file); !s.is_ok()) return fail(s);
  const std::string clean = sanitized_prompt(prompt);
  // The engine's text limit for these limits, or more for a longer text
  // (tokenizing has no context), up to 1 MiB: a SentencePiece encode takes
  // ~80 arena bytes per text byte.
  constexpr size_t kMaxTokenizeText = size_t(1) << 20;
  const uint32_t ctx = resolve_run_limits(a.opt, file.default_limits).max_context;
  size_t max_text = TextTokenizer::text_bytes_for_context(ctx);
  const size_t want = clean.size() + 1024;  // + the chat format's own text
  if (want > max_text) max_text = want < kMaxTokenizeText ? want : kMaxTokenizeText;
  std::vector<uint8_t> mem;
  static TextTokenizer tok;
  ChatFormat chat;
  if (Status s = cli::open_tokenizer(file, max_text, &mem, &tok, &chat); !s.is_ok()) return fail(s);
  // At most one token per byte of text (BPE merges only shrink a byte
  // sequence; SentencePiece falls back to one token per byte), plus the BOS
  // and the chat format's markers and default system text.
  std::vector<int32_t> ids(clean.size() + 2 * sizeof(chat.system_prompt) + 64);
  size_t n = 0;
  if (Status s = encode_text_prompt(&tok, chat, a, clean, ids.data(), ids.size(), &n); !s.is_ok()) return fail(s);
  if (!json) {
    std::printf("[");
    for (size_t i = 0; i < n; ++i) std::printf(i ? ", %d" : "%d", ids[i]);
    std::printf("]\n");
    return 0;
  }
  std::printf("{\"ids\":[");
  for (size_t i = 0; i < n; ++i) std::printf(i ? ",%d" : "%d", ids[i]);
  std::printf("],\"pieces\":[");
  for (size_t i = 0; i < n; ++i) {
    const char* bytes = "";
    size_t len = 0;
    (void)tok.token_bytes(ids[i], &bytes, &len);
    if (i) std::printf(",");
    if (utf8_valid(bytes, len)) {
      cli::json_string(stdout, bytes, len);
    } else {
      std::printf("{\"hex\":\"");
      for (size_t k = 0; k < len; ++k) std::printf("%02x", unsigned(uint8_t(bytes[k])));
      std::printf("\"}");
    }
  }
  std::printf("],\"n_tokens\":%zu}\n", n);
  return 0;
}

// --- scoring ---

struct ScoreOut {
  bool json;
};

bool print_position(void* p, const ScorePosition& sp) {
  if (static_cast<ScoreOut*>(p)->json) {
    std::printf("{\"pos\":%zu,\"top1\":%d,\"next\":%d,\"logprob\":%.6f}\n", sp.pos, sp.top1, sp.next, sp.logprob);
  } else {
    std::printf("%zu\t%d\t%d\t%.6f\n", sp.pos, sp.top1, sp.next, sp.logprob);
  }
  return true;
}

int run_score(Engine& e, const std::vector<int32_t>& ids, Output* out, double load_ms) {
  ScoreOut so{out->json};
  ScoreSummary sum;
  const uint64_t t0 = now_ns();
  const Status s = score_tokens(&e, e.sequence(0), ids.data(), ids.size(), print_position, &so, &sum);
  if (!s.is_ok()) return out->fail(s);
  const double ms = ns_to_ms(now_ns() - t0);
  std::fflush(stdout);
  if (out->json) {
    std::printf("{\"done\":true,\"status\":\"ok\",\"positions\":%zu,\"mean_logprob\":%.6f,\"perplexity\":%.6f,"
                "\"top1_matches\":%zu,\"load_ms\":%.3f,\"score_ms\":%.3f,",
                sum.positions, sum.mean_logprob(), sum.perplexity(), sum.top1_hits, load_ms, ms);
    cli::json_memory_fields(stdout, e);
    std::printf("}\n");
    std::fflush(stdout);
  } else {
    std::fprintf(stderr, "scored %zu positions, mean log-prob %.4f, perplexity %.3f\n", sum.positions,
                 sum.mean_logprob(), sum.perplexity());
  }
  return 0;
}

// --- generation ---

struct StreamCtx {
  Output* out;
  Utf8Stream utf8;
  // --json: the visible text the current token released (valid UTF-8 pieces).
  char text[16384];
  size_t text_len = 0;
};

void json_flush_text(StreamCtx* c) {
  // Only reached if one token releases more than the buffer: an object
  // without an id carries the text so nothing is lost.
  std::printf("{\"id\":null,\"text\":");
  cli::json_string(stdout, c->text, c->text_len);
  std::printf(",\"stop\":false}\n");
  c->text_len = 0;
}

void on_text(void* p, const char* bytes, size_t len) {
  StreamCtx* c = static_cast<StreamCtx*>(p);
  char out[Utf8Stream::max_output(256)];
  for (size_t off = 0; off < len; off += 256) {
    size_t n = 0;
    const size_t piece = len - off < 256 ? len - off : 256;
    if (!c->utf8.feed(bytes + off, piece, out, sizeof(out), &n)) continue;
    if (!c->out->json) {
      c->out->text(out, n);
      continue;
    }
    if (c->text_len + n > sizeof(c->text)) json_flush_text(c);
    std::memcpy(c->text + c->text_len, out, n);
    c->text_len += n;
  }
  if (!c->out->json) std::fflush(stdout);
}

bool on_token(void* p, int32_t token, bool is_stop) {
  StreamCtx* c = static_cast<StreamCtx*>(p);
  if (c->out->json) {
    std::printf("{\"id\":%d,\"text\":", token);
    cli::json_string(stdout, c->text, c->text_len);
    std::printf(",\"stop\":%s}\n", is_stop ? "true" : "false");
    std::fflush(stdout);
    c->text_len = 0;
  }
  return true;
}

int run_generate(Engine& e, const Args& a, const std::vector<int32_t>& ids, Output* out, double load_ms) {
  const uint32_t ctx = e.limits().max_context;
  if (a.n_gen > 0 && ids.size() >= ctx) {
    return out->fail(Status::error(StatusCode::kPromptTooLong,
                                   "prompt of %zu tokens leaves no room in the context of %u", ids.size(), ctx));
  }
  TokenHistory h;
  h.ids = e.history(0);
  h.cap = ctx;
  for (size_t i = 0; i < ids.size(); ++i) h.ids[i] = ids[i];
  h.n = uint32_t(ids.size());
  static StreamCtx sc{out, Utf8Stream{}, {}, 0};
  // EOS and the end of a turn (ChatML <|im_end|>, Gemma <end_of_turn>), as
  // llama.cpp's end-of-generation set has them.
  const int32_t stop_ids[3] = {e.hparams().eos, e.hparams().im_end, e.chat().end_of_turn()};
  const char* stop_strs[GenerateRequest::kMaxStopStrings];
  uint32_t stop_lens[GenerateRequest::kMaxStopStrings];
  for (size_t i = 0; i < a.stops.size(); ++i) {
    stop_strs[i] = a.stops[i].data();
    stop_lens[i] = uint32_t(a.stops[i].size());
  }
  GenerateRequest req;
  req.max_new_tokens = a.n_gen;
  req.stop_ids = a.ignore_eos ? nullptr : stop_ids;
  req.n_stop = a.ignore_eos ? 0 : 3;
  req.on_token = on_token;
  req.ctx = &sc;
  req.on_text = on_text;
  req.text_ctx = &sc;
  req.stop_strings = stop_strs;
  req.stop_string_lens = stop_lens;
  req.n_stop_strings = uint32_t(a.stops.size());
  GenerateStats st;
  Status s = generate(&e, e.sequence(0), &h, req, &st);
  {
    char tail[8];
    const size_t n = sc.utf8.finish(tail, sizeof(tail));
    if (!out->json) out->text(tail, n);
  }
  // Running out of context is where the user's -n ends, not a failure.
  const bool context_end = s.code() == StatusCode::kContextFull && st.finish == FinishReason::kContext;
  const bool ok = s.is_ok() || context_end;
  if (!ok && st.prompt_tokens == 0) return out->fail(s);  // nothing ran: no stats
  out->end_text();
  const bool sampling = e.sampler().params().temperature > 0;
  if (context_end) {
    std::fprintf(stderr, "%s: context full: stopped after %u of %u tokens, the context of %u tokens is full "
                 "(raise --max-context)\n", kTool, st.generated, a.n_gen, ctx);
  }
  if (out->json) {
    std::printf("{\"done\":true,\"status\":\"%s\",", ok ? "ok" : status_code_name(s.code()));
    if (!ok) {
      std::printf("\"error\":");
      cli::json_string(stdout, s.message(), std::strlen(s.message()));
      std::printf(",");
    }
    std::printf("\"finish_reason\":\"%s\",", finish_reason_name(ok ? st.finish : FinishReason::kError));
    if (st.finish == FinishReason::kStopString && st.stop_string >= 0) {
      std::printf("\"stop_string\":");
      cli::json_string(stdout, stop_strs[st.stop_string], stop_lens[st.stop_string]);
      std::printf(",");
    }
    if (sampling) std::printf("\"seed\":%llu,", (unsigned long long)e.sampler().params().seed);
    std::printf("\"prompt_tokens\":%u,\"generated_tokens\":%u,\"load_ms\":%.3f,\"prefill_ms\":%.3f,\"ttft_ms\":%.3f,"
                "\"prefill_tok_s\":%.2f,\"decode_tok_s\":%.2f,",
                st.prompt_tokens, st.generated, load_ms, ns_to_ms(st.prefill_ns), ns_to_ms(st.ttft_ns),
                st.prefill_tok_s(), st.decode_tok_s());
    cli::json_memory_fields(stdout, e);
    std::printf("}\n");
    std::fflush(stdout);
  } else {
    char gen[128] = "";
    if (st.generated > 0) {
      std::snprintf(gen, sizeof(gen), " | TTFT %.1f ms | %u tok, decode %.1f tok/s", ns_to_ms(st.ttft_ns),
                    st.generated, st.decode_tok_s());
    }
    std::fprintf(stderr, "[%s, %u thread%s] load %.1f ms | prompt %u tok, prefill %.1f ms, %.1f tok/s%s | %s\n",
                 e.isa_name(), e.threads(), e.threads() == 1 ? "" : "s", load_ms, st.prompt_tokens, ns_to_ms(st.prefill_ns), st.prefill_tok_s(), gen,
                 finish_reason_name(ok ? st.finish : FinishReason::kError));
  }
  if (!ok) {
    std::fprintf(stderr, "%s: error [%s]: %s\n", kTool, status_code_name(s.code()), s.message());
    return 1;
  }
  return 0;
}

// --prompts-file: the file's lines (a last empty one after the final newline
// is not a line), each encoded as --prompt would be; an empty or overlong
// line stops the run before any work, naming the line.
int run_prompts_file(Args* a, Output* out) {
  std::string all;
  if (Status s = read_prompt_file(a->prompts_file, &all); !s.is_ok()) return out->fail(s);
  std::vector<std::string> lines;
  for (size_t start = 0; start <= all.size();) {
    size_t end = all.find('\n', start);
    if (end == std::string::npos) end = all.size();
    std::string line = all.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
    start = end + 1;
  }
  if (lines.size() == 1 && lines[0].empty()) {
    return out->fail(Status::error(StatusCode::kInvalidArgument, "prompts file '%s' is empty", a->prompts_file));
  }
  EngineOptions& opt = a->opt;
  if (!opt.limits.max_sequences) opt.limits.max_sequences = uint32_t(std::min<size_t>(lines.size(), 8));
  if (!opt.limits.prefill_chunk) opt.limits.prefill_chunk = 64;
  opt.limits.logit_rows = std::min(opt.limits.max_sequences, opt.limits.prefill_chunk);
  const uint64_t t_start = now_ns();
  static Engine engine;
  if (Status s = engine.open(opt); !s.is_ok()) return out->fail(s);
  const double load_ms = ns_to_ms(now_ns() - t_start);
  std::vector<std::vector<int32_t>> prompts(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) {
      return out->fail(Status::error(StatusCode::kInvalidArgument, "line %zu of the prompts file is empty", i + 1));
    }
    if (Status s = build_prompt(engine, *a, lines[i], &prompts[i]); !s.is_ok()) {
      return out->fail(Status::error(s.code(), "line %zu: %s", i + 1, s.message()));
    }
  }
  cli::PromptsBatchOptions o;
  o.max_new_tokens = a->n_gen;
  o.ignore_eos = a->ignore_eos;
  o.json = a->json;
  o.stops = a->stops;
  o.sampling = opt.sampling;
  return cli::run_prompts_batch(engine, prompts, o, load_ms, kTool);
}

}  // namespace

int main(int argc, char** argv) {
  static Args args;  // static: EngineOptions and the strings live for the whole run
  if (const int rc = parse_args(argc, argv, &args); rc >= 0) return rc;
  Output out;
  out.json = args.json;
  bool seed_random = false;
  {
    std::string err;
    if (!cli::finish_common_flags(kTool, &args.opt, args.seen, &seed_random, &err)) {
      return out.fail(Status::error(StatusCode::kInvalidArgument, "%s", err.c_str()));
    }
  }
  if (args.show_plan) return cli::print_plan(args.opt, args.json, kTool);
  if (Status s = validate(args.opt.sampling); !s.is_ok()) return out.fail(s);
  if (args.opt.sampling.temperature > 0 && !args.score) {
    std::fprintf(stderr, "%s: seed %llu%s\n", kTool, (unsigned long long)args.opt.sampling.seed,
                 seed_random ? " (random; repeat the run with --seed)" : "");
  }
  std::string prompt = args.prompt;
  if (args.prompt_file) {
    if (Status s = read_prompt_file(args.prompt_file, &prompt); !s.is_ok()) return out.fail(s);
  }

  if (args.tokenize) return run_tokenize(args, prompt, args.json);
  if (args.prompts_file) return run_prompts_file(&args, &out);

  const uint64_t t_start = now_ns();
  static Engine engine;  // static: large, and lives for the whole run
  if (Status s = engine.open(args.opt); !s.is_ok()) return out.fail(s);
  const double load_ms = ns_to_ms(now_ns() - t_start);

  std::vector<int32_t> ids;
  if (Status s = build_prompt(engine, args, prompt, &ids); !s.is_ok()) return out.fail(s);
  if (args.score) return run_score(engine, ids, &out, load_ms);
  return run_generate(engine, args, ids, &out, load_ms);
}
