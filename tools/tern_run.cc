// tern-run: non-interactive generation and scoring, for scripts.
//
//   tern-run --model m.tern --prompt "Once upon a time" -n 64
//   tern-run --model m.tern --chat --prompt "What is 2+2?" --json
//   tern-run --model m.tern --prompt-ids 1,2,3 --score
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "port/clock.h"
#include "runtime/chat_format.h"
#include "runtime/engine.h"
#include "runtime/generate.h"
#include "runtime/utf8.h"
#include "tools/cli/cli_common.h"

namespace {

using namespace tern;

void usage(FILE* f) {
  std::fprintf(f,
               "usage: tern-run --model BLOB (--prompt TEXT | --prompt-file PATH | --prompt-ids 1,2,3) [options]\n"
               "  -n N                    tokens to generate (default 64)\n"
               "  --chat                  wrap the prompt in the model's chat template (one user turn)\n"
               "  --special               let special-token text in the prompt (e.g. <|im_start|>) be special\n"
               "  --json                  one JSON object per token, then one with timings and memory\n"
               "  --score                 teacher-forced scoring of the prompt: per position the top-1 id and\n"
               "                          the log-probability of the actual next token\n"
               "  --ignore-eos            keep generating past the end-of-sequence token\n"
               "  --print-plan            print the arena these limits need, by category, and exit\n"
               "                          (with --json: one JSON object)\n"
               "%s",
               cli::common_flags_help());
}

bool parse_ids(const std::string& s, std::vector<int32_t>* out) {
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) return false;
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (*end || v < INT32_MIN || v > INT32_MAX) return false;
    out->push_back(int32_t(v));
  }
  return !out->empty();
}

struct StreamCtx {
  Engine* engine;
  bool json;
  Utf8Stream utf8;
};

bool on_token(void* p, int32_t token, bool is_stop) {
  StreamCtx* c = static_cast<StreamCtx*>(p);
  const char* bytes = nullptr;
  size_t len = 0;
  c->engine->tokenizer().token_bytes(token, &bytes, &len);
  if (c->json) {
    std::printf("{\"id\":%d,\"text\":", token);
    cli::json_string(stdout, bytes, len);
    std::printf(",\"stop\":%s}\n", is_stop ? "true" : "false");
  } else if (!is_stop) {
    char out[Utf8Stream::max_output(256)];
    for (size_t off = 0; off < len; off += 256) {
      size_t n = 0;
      const size_t piece = len - off < 256 ? len - off : 256;
      if (c->utf8.feed(bytes + off, piece, out, sizeof(out), &n)) std::fwrite(out, 1, n, stdout);
    }
    std::fflush(stdout);
  }
  return true;
}

int fail(const Status& s) {
  std::fprintf(stderr, "tern-run: error [%s]: %s\n", status_code_name(s.code()), s.message());
  return 1;
}

// Teacher forcing: logits for every position, in chunks.
int score(Engine& e, const std::vector<int32_t>& ids, bool json) {
  KvSequence* seq = e.sequence(0);
  const uint32_t chunk = e.limits().logit_rows;
  const uint32_t vocab = e.hparams().vocab;
  if (ids.size() < 2) {
    std::fprintf(stderr, "tern-run: --score needs at least 2 tokens\n");
    return 1;
  }
  if (ids.size() > e.limits().max_context) {
    return fail(Status::error(StatusCode::kPromptTooLong, "%zu tokens exceed the context of %u", ids.size(),
                              e.limits().max_context));
  }
  double sum_lp = 0;
  size_t counted = 0;
  for (size_t done = 0; done < ids.size(); done += chunk) {
    const uint32_t n = uint32_t(ids.size() - done < chunk ? ids.size() - done : chunk);
    Status s = e.model().forward(seq, ids.data() + done, n, true);
    if (!s.is_ok()) return fail(s);
    for (uint32_t r = 0; r < n; ++r) {
      const size_t pos = done + r;
      if (pos + 1 >= ids.size()) break;
      const float* row = e.model().logits() + size_t(r) * vocab;
      int32_t top = 0;
      for (uint32_t v = 1; v < vocab; ++v) if (row[v] > row[top]) top = int32_t(v);
      double sum = 0;
      for (uint32_t v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - double(row[top]));
      const double lp = double(row[ids[pos + 1]]) - double(row[top]) - std::log(sum);
      sum_lp += lp;
      ++counted;
      if (json) std::printf("{\"pos\":%zu,\"top1\":%d,\"next\":%d,\"logprob\":%.6f}\n", pos, top, ids[pos + 1], lp);
      else std::printf("%zu\t%d\t%d\t%.6f\n", pos, top, ids[pos + 1], lp);
    }
  }
  std::fprintf(stderr, "scored %zu positions, mean log-prob %.4f, perplexity %.3f\n", counted, sum_lp / counted,
               std::exp(-sum_lp / counted));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  EngineOptions opt;
  cli::CommonFlagsSeen seen;
  std::string prompt, prompt_ids;
  bool have_prompt = false, chat = false, json = false, do_score = false, special = false, ignore_eos = false;
  bool show_plan = false;
  uint32_t n_gen = 64;
  for (int i = 1; i < argc; ++i) {
    std::string err;
    const int r = cli::parse_common_flag(argc, argv, &i, &opt, &err, &seen);
    if (r < 0) {
      std::fprintf(stderr, "tern-run: %s\n", err.c_str());
      return 2;
    }
    if (r > 0) continue;
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "-h" || a == "--help") { usage(stdout); return 0; }
    else if (a == "--prompt") { const char* v = next(); if (!v) { usage(stderr); return 2; } prompt = v; have_prompt = true; }
    else if (a == "--prompt-file") {
      const char* v = next();
      std::ifstream in(v ? v : "", std::ios::binary);
      if (!in) { std::fprintf(stderr, "tern-run: cannot read prompt file '%s'\n", v ? v : ""); return 2; }
      std::stringstream ss;
      ss << in.rdbuf();
      prompt = ss.str();
      have_prompt = true;
    }
    else if (a == "--prompt-ids") { const char* v = next(); if (!v) { usage(stderr); return 2; } prompt_ids = v; }
    else if (a == "-n") {
      const char* v = next();
      char* end = nullptr;
      const long n = v ? std::strtol(v, &end, 10) : -1;
      if (!v || *end || n < 0 || n > 1000000) { std::fprintf(stderr, "tern-run: -n needs a count in [0, 1000000]\n"); return 2; }
      n_gen = uint32_t(n);
    }
    else if (a == "--chat") chat = true;
    else if (a == "--json") json = true;
    else if (a == "--score") do_score = true;
    else if (a == "--special") special = true;
    else if (a == "--ignore-eos") ignore_eos = true;
    else if (a == "--print-plan") show_plan = true;
    else { std::fprintf(stderr, "tern-run: unknown argument '%s'\n", a.c_str()); usage(stderr); return 2; }
  }
  if (!opt.model_path) { std::fprintf(stderr, "tern-run: --model is required\n"); usage(stderr); return 2; }
  if (show_plan) {
    {
    std::string env_err;
    if (!cli::finish_common_flags("tern-run", &opt, seen, nullptr, &env_err)) {
      std::fprintf(stderr, "tern-run: %s\n", env_err.c_str());
      return 2;
    }
  }
    if (do_score) {
      if (!opt.limits.prefill_chunk) opt.limits.prefill_chunk = 64;
      opt.limits.logit_rows = opt.limits.prefill_chunk;
    }
    return cli::print_plan(opt, json, "tern-run");
  }
  if (!have_prompt && prompt_ids.empty()) { std::fprintf(stderr, "tern-run: give --prompt, --prompt-file or --prompt-ids\n"); return 2; }
  {
    std::string env_err;
    if (!cli::finish_common_flags("tern-run", &opt, seen, nullptr, &env_err)) {
      std::fprintf(stderr, "tern-run: %s\n", env_err.c_str());
      return 2;
    }
  }
  if (Status s = validate(opt.sampling); !s.is_ok()) return fail(s);
  if (have_prompt) {
    // Invalid UTF-8 (truncated or overlong sequences, surrogates, 0xF5-0xFF)
    // becomes U+FFFD, as in the REPL: the vocabulary has no token for some
    // of those bytes, and silently dropping input is worse than a visible mark.
    std::string clean(utf8_sanitized_max(prompt.size()), '\0');
    clean.resize(utf8_sanitize(prompt.data(), prompt.size(), &clean[0], clean.size()));
    if (clean != prompt) std::fprintf(stderr, "tern-run: invalid UTF-8 in the prompt replaced by U+FFFD\n");
    prompt.swap(clean);
  }
  if (do_score) {
    // Every position's logits: a logits row per prefill token.
    if (!opt.limits.prefill_chunk) opt.limits.prefill_chunk = 64;
    opt.limits.logit_rows = opt.limits.prefill_chunk;
  }

  const uint64_t t_start = now_ns();
  static Engine engine;  // static: large, and lives for the whole run
  if (Status s = engine.open(opt); !s.is_ok()) return fail(s);
  const double load_ms = ns_to_ms(now_ns() - t_start);

  std::vector<int32_t> ids;
  const uint32_t ctx = engine.limits().max_context;
  if (!prompt_ids.empty()) {
    if (!parse_ids(prompt_ids, &ids)) { std::fprintf(stderr, "tern-run: --prompt-ids wants comma-separated integers\n"); return 2; }
  } else {
    if (prompt.empty()) return fail(Status::error(StatusCode::kInvalidArgument, "empty prompt"));
    ids.resize(ctx + 1);
    size_t n = 0;
    size_t off = 0;
    if (engine.hparams().add_bos && engine.hparams().bos >= 0 && !chat) ids[n++] = engine.hparams().bos;
    Status s;
    if (chat) {
      if (!engine.has_chat()) return fail(Status::error(StatusCode::kUnsupported, "model has no ChatML template"));
      s = chat_encode_user_turn(&engine.tokenizer(), engine.chat(), true, false, prompt.data(), prompt.size(),
                                ids.data(), ids.size(), &off);
      n = off;
    } else {
      s = engine.tokenizer().encode(prompt.data(), prompt.size(), special, ids.data() + n, ids.size() - n, &off);
      n += off;
    }
    if (s.code() == StatusCode::kPromptTooLong || n > ctx) {
      return fail(Status::error(StatusCode::kPromptTooLong, "prompt is longer than the context of %u tokens", ctx));
    }
    if (!s.is_ok()) return fail(s);
    ids.resize(n);
  }
  if (do_score) return score(engine, ids, json);

  if (ids.size() >= ctx) {
    return fail(Status::error(StatusCode::kPromptTooLong, "prompt of %zu tokens leaves no room in the context of %u",
                              ids.size(), ctx));
  }
  TokenHistory h;
  h.ids = engine.history(0);
  h.cap = ctx;
  for (size_t i = 0; i < ids.size(); ++i) h.ids[i] = ids[i];
  h.n = uint32_t(ids.size());
  StreamCtx sc{&engine, json, Utf8Stream{}};
  const int32_t stops[2] = {engine.hparams().eos, engine.hparams().im_end};
  GenerateRequest req;
  req.max_new_tokens = n_gen;
  req.stop_ids = ignore_eos ? nullptr : stops;
  req.n_stop = ignore_eos ? 0 : 2;
  req.on_token = on_token;
  req.ctx = &sc;
  GenerateStats st;
  Status s = n_gen ? generate(&engine, engine.sequence(0), &h, req, &st) : engine.prefill(engine.sequence(0), ids.data(), ids.size());
  if (!json) {
    char tail[8];
    const size_t n = sc.utf8.finish(tail, sizeof(tail));
    std::fwrite(tail, 1, n, stdout);
    std::printf("\n");
  }
  const bool ok = s.is_ok();
  if (json) {
    std::printf("{\"done\":true,\"status\":\"%s\",", status_code_name(s.code()));
    if (!ok) { std::printf("\"error\":"); cli::json_string(stdout, s.message(), std::strlen(s.message())); std::printf(","); }
    std::printf("\"prompt_tokens\":%u,\"generated_tokens\":%u,\"load_ms\":%.3f,\"ttft_ms\":%.3f,\"prefill_tok_s\":%.2f,"
                "\"decode_tok_s\":%.2f,",
                st.prompt_tokens, st.generated, load_ms, ns_to_ms(st.ttft_ns), st.prefill_tok_s(), st.decode_tok_s());
    cli::json_memory_fields(stdout, engine);
    std::printf("}\n");
  } else {
    std::fprintf(stderr, "[%s, %u threads] load %.1f ms | prompt %u tok, TTFT %.1f ms, prefill %.1f tok/s | %u tok, decode %.1f tok/s\n",
                 engine.isa_name(), engine.threads(), load_ms, st.prompt_tokens, ns_to_ms(st.ttft_ns),
                 st.prefill_tok_s(), st.generated, st.decode_tok_s());
  }
  if (!ok) return fail(s);
  return 0;
}
