// tern-chat: the interactive REPL. The conversation stays in the KV cache
// across turns (only each new message is prefilled); replies stream as they
// decode. Commands: /reset /stats /help /quit; end of input quits.
//
// After the engine is open, nothing here allocates: input lines go through
// fixed static buffers, so a turn costs no heap however long the session.
#include <cstdio>
#include <cstring>
#include <string>

#include "port/clock.h"
#include "runtime/chat_session.h"
#include "runtime/engine.h"
#include "runtime/utf8.h"
#include "tools/cli/cli_common.h"
#include "tools/cli/repl_line.h"

namespace {

using namespace tern;

constexpr size_t kMaxLineBytes = 256 * 1024;
char g_line[kMaxLineBytes];
char g_clean[cli::repl_clean_bytes(kMaxLineBytes)];

void usage(FILE* f) {
  std::fprintf(f, "usage: tern-chat --model BLOB [-n MAX_REPLY_TOKENS] [options]\n"
                 "  --print-plan            print the arena these limits need, by category, and exit\n%s",
               cli::common_flags_help());
}

void help() {
  std::printf("commands:\n"
              "  /reset   forget the conversation (frees its KV blocks)\n"
              "  /stats   memory, KV cache and kernel report\n"
              "  /help    this text\n"
              "  /quit    leave (so does end of input, Ctrl-D)\n"
              "anything else is a message to the model.\n");
}

void print_text(void*, const char* text, size_t len) {
  std::fwrite(text, 1, len, stdout);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  EngineOptions opt;
  cli::CommonFlagsSeen seen;
  uint32_t max_reply = 256;
  bool show_plan = false;
  for (int i = 1; i < argc; ++i) {
    std::string err;
    const int r = cli::parse_common_flag(argc, argv, &i, &opt, &err, &seen);
    if (r < 0) { std::fprintf(stderr, "tern-chat: %s\n", err.c_str()); return 2; }
    if (r > 0) continue;
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") { usage(stdout); return 0; }
    if (a == "--print-plan") { show_plan = true; continue; }
    if (a == "-n" && i + 1 < argc) {
      char* end = nullptr;
      const long v = std::strtol(argv[++i], &end, 10);
      if (*end || v <= 0 || v > 1000000) { std::fprintf(stderr, "tern-chat: -n needs a positive count\n"); return 2; }
      max_reply = uint32_t(v);
      continue;
    }
    std::fprintf(stderr, "tern-chat: unknown argument '%s'\n", a.c_str());
    usage(stderr);
    return 2;
  }
  if (!opt.model_path) { usage(stderr); return 2; }
  {
    std::string env_err;
    if (!cli::finish_common_flags("tern-chat", &opt, seen, nullptr, &env_err)) {
      std::fprintf(stderr, "tern-chat: %s\n", env_err.c_str());
      return 2;
    }
  }
  if (show_plan) return cli::print_plan(opt, false, "tern-chat");
  if (Status s = validate(opt.sampling); !s.is_ok()) {
    std::fprintf(stderr, "tern-chat: %s\n", s.message());
    return 2;
  }
  static Engine engine;
  if (Status s = engine.open(opt); !s.is_ok()) {
    std::fprintf(stderr, "tern-chat: error [%s]: %s\n", status_code_name(s.code()), s.message());
    return 1;
  }
  static ChatSession chat;
  if (Status s = chat.init(&engine, 0); !s.is_ok()) {
    std::fprintf(stderr, "tern-chat: %s\n", s.message());
    return 1;
  }
  std::printf("tern-chat: %s (%u layers, context %u tokens), kernels %s, %u thread%s, loaded in %.1f ms. /help for commands.\n",
              opt.model_path, engine.hparams().layers, engine.limits().max_context, engine.isa_name(),
              engine.threads(), engine.threads() == 1 ? "" : "s", engine.open_ms());
  for (;;) {
    std::printf("> ");
    std::fflush(stdout);
    size_t len = 0;
    const cli::LineRead got = cli::read_repl_line(stdin, g_line, kMaxLineBytes, &len);
    if (got == cli::LineRead::kEnd) {
      std::printf("\n");
      break;  // end of input
    }
    if (got == cli::LineRead::kTooLong) {
      std::printf("[message too long: over %zu KiB; the context holds %u tokens, %u used. Nothing was sent.]\n",
                  kMaxLineBytes / 1024, chat.context_max(), chat.context_used());
      continue;
    }
    const cli::ReplInput in = cli::parse_repl_line(g_line, len, g_clean, sizeof(g_clean));
    switch (in.kind) {
      case cli::ReplInputKind::kEmpty: continue;
      case cli::ReplInputKind::kQuit: break;
      case cli::ReplInputKind::kHelp: help(); continue;
      case cli::ReplInputKind::kReset:
        chat.reset();
        std::printf("[conversation reset; %u KV blocks free]\n", engine.model().kv().free_blocks());
        continue;
      case cli::ReplInputKind::kStats:
        std::printf("turns: %u, context: %u of %u tokens\n", chat.turns(), chat.context_used(), chat.context_max());
        cli::print_memory_report(stdout, engine);
        continue;
      case cli::ReplInputKind::kUnknownCommand: std::printf("[unknown command; /help lists them]\n"); continue;
      case cli::ReplInputKind::kMessage: break;
    }
    if (in.kind == cli::ReplInputKind::kQuit) break;
    GenerateStats st;
    Status s = chat.turn(in.text, in.len, max_reply, print_text, nullptr, &st);
    if (s.code() == StatusCode::kPromptTooLong) {
      std::printf("[%s]\n", s.message());
      continue;
    }
    std::printf("\n");
    if (!s.is_ok()) {
      std::printf("[%s: %s]\n", status_code_name(s.code()), s.message());
    }
    std::printf("[%u prompt tokens, TTFT %.0f ms, %.1f tok/s prefill | %u tokens, %.1f tok/s | context %u/%u]\n",
                st.prompt_tokens, ns_to_ms(st.ttft_ns), st.prefill_tok_s(), st.generated, st.decode_tok_s(),
                chat.context_used(), chat.context_max());
  }
  return 0;
}
