// tern-chat: the interactive REPL. The conversation stays in the KV cache
// across turns (only each new message is prefilled); replies stream as they
// decode. Commands: /reset /stats /system /help /quit; end of input quits.
//
// On a terminal the line is edited in raw mode (tools/cli/line_editor.h):
// no 4,095-byte canonical-mode limit, arrows, history. The terminal stays raw
// for the whole session (a paste or keys typed while a reply streams wait,
// uncut, for the next prompt); only during a reply does Ctrl-C raise SIGINT,
// which port/terminal.h turns into a flag the reply polls. Piped input is
// read line by line. Both join `"""` blocks and `\` continuations.
//
// After the engine is open, nothing here allocates: input goes through fixed
// static buffers, so a turn costs no heap however long the session.
#include <cstdio>
#include <cstring>
#include <string>

#include "port/clock.h"
#include "port/terminal.h"
#include "runtime/chat_session.h"
#include "runtime/engine.h"
#include "runtime/utf8.h"
#include "tools/cli/cli_common.h"
#include "tools/cli/line_editor.h"
#include "tools/cli/repl_line.h"

namespace {

using namespace tern;

constexpr size_t kMaxLineBytes = 256 * 1024;  // one message, whether typed, pasted or joined
constexpr size_t kMaxSystemBytes = 64 * 1024;
constexpr uint32_t kDefaultMaxReply = 256;
// Linux's canonical-mode line limit: a terminal read without raw mode cuts there.
constexpr size_t kCanonicalLineMax = 4095;

char g_line[kMaxLineBytes];     // the line being read or edited
char g_stash[kMaxLineBytes];    // the editor's typed line while history shows
char g_history[64 * 1024];      // the editor's past lines
char g_message[kMaxLineBytes];  // lines joined into one message
char g_clean[cli::repl_clean_bytes(kMaxLineBytes)];
char g_system[kMaxSystemBytes];  // the system prompt set by --system or /system
size_t g_system_len = 0;
bool g_system_custom = false;  // false: the template's default
char g_render[cli::LineEditor::render_max(8)];
char g_input[4096];  // terminal bytes read but not yet fed to the editor
size_t g_input_pos = 0, g_input_end = 0;

cli::LineEditor g_editor;
cli::MessageJoiner g_joiner;

void usage(FILE* f) {
  std::fprintf(f,
               "usage: tern-chat --model BLOB [options]\n"
               "A chat with the model's chat template; the conversation stays in the KV cache.\n"
               "  -n N                    most tokens per reply (default %u); a reply cut off there is\n"
               "                          closed in the history, and its turn line says so\n"
               "  --system TEXT           system prompt (default: the chat template's; '' for none);\n"
               "                          it counts against the context (/stats shows it)\n"
               "  --context-shift         when a message does not fit the context, drop the oldest turns\n"
               "                          (the system prompt stays) and prefill what is kept again;\n"
               "                          without it tern-chat says the context is full and offers /reset\n"
               "  --special               show special tokens (e.g. <|im_start|>) in replies\n"
               "  --print-plan            print the arena these limits need, by category, and exit\n"
               "  --version               print the version and exit\n"
               "  -h, --help              this text\n"
               "%s"
               "Sampling is greedy unless --temp > 0; then without --seed a random seed is drawn and\n"
               "shown in the banner and /stats.\n"
               "Input: on a terminal, line editing (Left/Right, Home/End, Backspace/Delete,\n"
               "Ctrl-A/E/K/U/W, Up/Down for history). Ctrl-C stops a reply; Ctrl-C twice at an empty\n"
               "prompt, Ctrl-D, /quit or end of input quit. A message of several lines: a line\n"
               "starting with \"\"\" opens it and one ending with \"\"\" closes it; or end lines with \\.\n"
               "Commands: /help /reset /stats /system [TEXT] /quit.\n",
               kDefaultMaxReply, cli::common_flags_help());
}

void help() {
  std::printf("commands:\n"
              "  /reset         forget the conversation (frees its KV blocks; the system prompt stays)\n"
              "  /stats         system prompt, seed, context use, memory, KV cache and kernels\n"
              "  /system TEXT   set the system prompt and start a new conversation ('/system \"\"': none);\n"
              "                 /system alone shows it\n"
              "  /help          this text\n"
              "  /quit          leave (so do Ctrl-D, end of input, and Ctrl-C twice at an empty prompt)\n"
              "\"\"\" starts and ends a message of several lines; a line ending in \\ continues.\n"
              "Ctrl-C stops a reply. Anything else is a message to the model.\n");
}

void print_text(void*, const char* text, size_t len) {
  std::fwrite(text, 1, len, stdout);
  std::fflush(stdout);
}

bool stop_requested(void*) { return port::interrupted(); }

// --- input ---

enum class Got { kLine, kTooLong, kEnd, kInterrupt };

bool g_terminal = false;  // stdin and stdout are a terminal: raw-mode editing
bool g_line_was_empty = true;

void draw(const char* prompt) {
  const size_t n = g_editor.render(prompt, std::strlen(prompt), port::terminal_columns(1), g_render, sizeof(g_render));
  (void)port::write_bytes(1, g_render, n);
}

// One line from the terminal through the editor, in raw mode.
Got read_terminal_line(const char* prompt, size_t* len) {
  std::fflush(stdout);
  g_editor.begin();
  draw(prompt);
  for (;;) {
    if (g_input_pos == g_input_end) {
      const long r = port::read_bytes(0, g_input, sizeof(g_input));
      if (r <= 0) {
        (void)port::write_bytes(1, "\n", 1);
        return Got::kEnd;
      }
      g_input_pos = 0;
      g_input_end = size_t(r);
    }
    cli::LineEditor::Event ev;
    g_input_pos += g_editor.feed(g_input + g_input_pos, g_input_end - g_input_pos, &ev);
    if (ev == cli::LineEditor::Event::kNone) {
      if (g_input_pos == g_input_end) draw(prompt);  // once per read, not per byte of a paste
      continue;
    }
    draw(prompt);
    g_line_was_empty = g_editor.len() == 0;
    switch (ev) {
      case cli::LineEditor::Event::kEnter:
        (void)port::write_bytes(1, "\n", 1);
        if (g_editor.overflow()) return Got::kTooLong;
        *len = g_editor.len();  // the editor's buffer is g_line
        g_editor.history_add(g_line, *len);
        return Got::kLine;
      case cli::LineEditor::Event::kEof:
        (void)port::write_bytes(1, "\n", 1);
        return Got::kEnd;
      case cli::LineEditor::Event::kInterrupt:
        (void)port::write_bytes(1, "^C\n", 3);
        return Got::kInterrupt;
      case cli::LineEditor::Event::kNone: break;
    }
  }
}

Got read_line(const char* prompt, size_t* len) {
  if (g_terminal && port::terminal_raw(0, false)) return read_terminal_line(prompt, len);
  g_terminal = false;  // no raw mode: read lines as from a pipe
  std::printf("%s", prompt);
  std::fflush(stdout);
  switch (cli::read_repl_line(stdin, g_line, kMaxLineBytes, len)) {
    case cli::LineRead::kEnd: std::printf("\n"); return Got::kEnd;
    case cli::LineRead::kTooLong: return Got::kTooLong;
    case cli::LineRead::kLine: break;
  }
  if (*len >= kCanonicalLineMax && port::is_terminal(0)) {
    // A terminal in canonical mode (stdout is not a terminal, so no editor)
    // cut this line at its limit; the rest arrives as the next line.
    std::printf("[the terminal cut this line at %zu bytes, its line limit: nothing was sent. Run with the "
                "output on the terminal for line editing, or split the message into lines in a \"\"\" block]\n",
                kCanonicalLineMax);
    return Got::kTooLong;
  }
  return Got::kLine;
}

// --- output ---

void print_system_prompt(const Engine& engine, const ChatSession& chat) {
  if (!chat.has_system()) {
    std::printf("system prompt: none\n");
    return;
  }
  const char* text = g_system_custom ? g_system : engine.chat().system_prompt;
  const size_t len = g_system_custom ? g_system_len : engine.chat().system_len;
  std::printf("system prompt (%s, %zu bytes, %u tokens%s): %.*s\n",
              g_system_custom ? "set by --system or /system" : "the chat template's default", len,
              chat.system_tokens(),
              engine.chat().has_system_role() ? "" : "; this format has no system role: it opens the first user turn",
              int(len), text);
}

void print_stats(const Engine& engine, const ChatSession& chat, const EngineOptions& opt, bool seed_random) {
  std::printf("turns: %u (%u in the context), context: %u of %u tokens used, %u of them the system prompt%s\n",
              chat.turns(), chat.turns_in_context(), chat.context_used(), chat.context_max(), chat.system_tokens(),
              chat.context_shift() ? "; context shift on" : "");
  print_system_prompt(engine, chat);
  if (opt.sampling.temperature > 0) {
    std::printf("sampling: temperature %g, seed %llu%s\n", double(opt.sampling.temperature),
                (unsigned long long)opt.sampling.seed, seed_random ? " (drawn at random; --seed repeats it)" : "");
  } else {
    std::printf("sampling: greedy (--temp 0)\n");
  }
  cli::print_memory_report(stdout, engine);
}

void print_turn_line(const ChatSession& chat, const GenerateStats& st, uint32_t max_reply) {
  const ChatTurnInfo& info = chat.last_turn();
  std::printf("[%u prompt tokens, TTFT %.0f ms, %.1f tok/s prefill | %u tokens, %.1f tok/s | context %u/%u",
              st.prompt_tokens, ns_to_ms(st.ttft_ns), st.prefill_tok_s(), st.generated, st.decode_tok_s(),
              chat.context_used(), chat.context_max());
  switch (info.end) {
    case ChatTurnInfo::End::kLength: std::printf(" | cut off at -n %u, turn closed", max_reply); break;
    case ChatTurnInfo::End::kStopped: std::printf(" | stopped by Ctrl-C, turn closed"); break;
    case ChatTurnInfo::End::kContextFull:
      std::printf(" | cut off: the context is full; %s", chat.context_shift() ? "the next message drops the oldest turns"
                                                                               : "/reset starts over");
      break;
    case ChatTurnInfo::End::kError: std::printf(" | cut off by the error above"); break;
    case ChatTurnInfo::End::kEndOfTurn:
    case ChatTurnInfo::End::kNone: break;
  }
  std::printf("]\n");
  if (info.dropped_turns > 0) {
    std::printf("[context shift: dropped the %u oldest turn%s (%u tokens) after the system prompt; the %u tokens "
                "kept were prefilled again]\n",
                info.dropped_turns, info.dropped_turns == 1 ? "" : "s", info.dropped_tokens, info.refilled_tokens);
  }
}

// Set the system prompt from text (already valid UTF-8); on failure keep the old one.
bool set_system(ChatSession* chat, const char* text, size_t len) {
  if (len == 2 && std::memcmp(text, "\"\"", 2) == 0) len = 0;  // /system "" : none
  if (len > kMaxSystemBytes) {
    std::printf("[system prompt too long: over %zu KiB; unchanged]\n", kMaxSystemBytes / 1024);
    return false;
  }
  Status s = chat->set_system(text, len);
  if (!s.is_ok()) {
    std::printf("[%s; the system prompt is unchanged, the conversation reset]\n", s.message());
    if (g_system_custom) (void)chat->set_system(g_system, g_system_len);
    else (void)chat->set_system(nullptr, 0);
    return false;
  }
  std::memcpy(g_system, text, len);
  g_system_len = len;
  g_system_custom = true;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  EngineOptions opt;
  cli::CommonFlagsSeen seen;
  uint32_t max_reply = kDefaultMaxReply;
  bool show_plan = false, special = false, context_shift = false;
  const char* system_arg = nullptr;
  for (int i = 1; i < argc; ++i) {
    std::string err;
    const int r = cli::parse_common_flag(argc, argv, &i, &opt, &err, &seen);
    if (r < 0) { std::fprintf(stderr, "tern-chat: %s\n", err.c_str()); return 2; }
    if (r > 0) continue;
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") { usage(stdout); return 0; }
    if (a == "--version") { std::printf("tern-chat (%s)\n", cli::version()); return 0; }
    if (a == "--print-plan") { show_plan = true; continue; }
    if (a == "--special") { special = true; continue; }
    if (a == "--context-shift") { context_shift = true; continue; }
    if (a == "--system") {
      if (i + 1 >= argc) { std::fprintf(stderr, "tern-chat: --system needs a text ('' for none)\n"); return 2; }
      system_arg = argv[++i];
      continue;
    }
    if (a == "-n") {
      if (i + 1 >= argc) { std::fprintf(stderr, "tern-chat: -n needs a positive count\n"); return 2; }
      char* end = nullptr;
      const long v = std::strtol(argv[++i], &end, 10);
      if (*end || v <= 0 || v > 1000000) { std::fprintf(stderr, "tern-chat: -n needs a positive count\n"); return 2; }
      max_reply = uint32_t(v);
      continue;
    }
    return cli::unknown_argument("tern-chat", argv[i]);
  }
  if (!opt.model_path) {
    std::fprintf(stderr, "tern-chat: --model BLOB is required (tern-chat --help lists the options)\n");
    return 2;
  }
  bool seed_random = false;
  {
    std::string env_err;
    if (!cli::finish_common_flags("tern-chat", &opt, seen, &seed_random, &env_err)) {
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
  chat.set_context_shift(context_shift);
  chat.set_show_special(special);
  chat.set_stop_check(stop_requested, nullptr);
  if (system_arg != nullptr) {
    const size_t n = std::strlen(system_arg);
    if (n > kMaxSystemBytes) {
      std::fprintf(stderr, "tern-chat: --system: over %zu KiB\n", kMaxSystemBytes / 1024);
      return 2;
    }
    const size_t clean = utf8_sanitize(system_arg, n, g_clean, sizeof(g_clean));
    if (clean != n || !utf8_valid(system_arg, n)) std::fprintf(stderr, "tern-chat: --system: invalid UTF-8 replaced by U+FFFD\n");
    if (Status s = chat.set_system(g_clean, clean); !s.is_ok()) {
      std::fprintf(stderr, "tern-chat: --system: %s\n", s.message());
      return 2;
    }
    std::memcpy(g_system, g_clean, clean);
    g_system_len = clean;
    g_system_custom = true;
  }
  g_terminal = port::is_terminal(0) && port::is_terminal(1);
  g_editor.init(g_line, g_stash, kMaxLineBytes, g_history, sizeof(g_history));
  g_joiner.init(g_message, kMaxLineBytes);
  (void)port::install_interrupt_handler();

  std::printf("tern-chat: %s (%u layers, context %u tokens), kernels %s, %u thread%s, loaded in %.1f ms.",
              opt.model_path, engine.hparams().layers, engine.limits().max_context, engine.isa_name(),
              engine.threads(), engine.threads() == 1 ? "" : "s", engine.open_ms());
  std::printf(" Chat format %s.", chat_kind_name(engine.chat().kind));
  if (opt.sampling.temperature > 0) {
    std::printf(" Sampling at temperature %g, seed %llu%s.", double(opt.sampling.temperature),
                (unsigned long long)opt.sampling.seed, seed_random ? " (random; --seed repeats it)" : "");
  }
  std::printf(" /help for commands.\n");

  bool last_was_interrupt = false;  // a second Ctrl-C at an empty prompt quits
  for (;;) {
    size_t len = 0;
    const Got got = read_line(g_joiner.pending() ? "... " : "> ", &len);
    if (got == Got::kEnd) {
      if (g_joiner.pending()) std::printf("[end of input inside a multi-line message: it was not sent]\n");
      break;
    }
    if (got == Got::kInterrupt) {
      if (g_joiner.pending()) {
        g_joiner.cancel();
        std::printf("[multi-line message dropped]\n");
        last_was_interrupt = false;
        continue;
      }
      if (!g_line_was_empty) {  // Ctrl-C on a typed line clears it
        last_was_interrupt = false;
        continue;
      }
      if (last_was_interrupt) break;
      std::printf("[Ctrl-C again, Ctrl-D or /quit to leave]\n");
      last_was_interrupt = true;
      continue;
    }
    last_was_interrupt = false;
    if (got == Got::kTooLong) {
      if (g_joiner.pending()) g_joiner.cancel();
      std::printf("[message too long: over %zu KiB; the context holds %u tokens, %u used. Nothing was sent.]\n",
                  kMaxLineBytes / 1024, chat.context_max(), chat.context_used());
      continue;
    }
    const cli::MessageJoiner::Step step = g_joiner.add(g_line, len);
    if (step == cli::MessageJoiner::Step::kMore) continue;
    if (step == cli::MessageJoiner::Step::kTooLong) {
      std::printf("[message too long: over %zu KiB; the context holds %u tokens, %u used. Nothing was sent.]\n",
                  kMaxLineBytes / 1024, chat.context_max(), chat.context_used());
      continue;
    }
    const cli::ReplInput in =
        cli::parse_repl_line(g_joiner.text(), g_joiner.len(), g_clean, sizeof(g_clean), g_joiner.was_block());
    bool quit = false;
    switch (in.kind) {
      case cli::ReplInputKind::kEmpty: continue;
      case cli::ReplInputKind::kQuit: quit = true; break;
      case cli::ReplInputKind::kHelp: help(); continue;
      case cli::ReplInputKind::kReset:
        chat.reset();
        std::printf("[conversation reset; %u KV blocks free]\n", engine.model().kv().free_blocks());
        continue;
      case cli::ReplInputKind::kStats: print_stats(engine, chat, opt, seed_random); continue;
      case cli::ReplInputKind::kSystem:
        if (in.len == 0) {
          print_system_prompt(engine, chat);
          continue;
        }
        if (in.replaced) std::printf("[invalid UTF-8 in the system prompt: %zu replaced by U+FFFD]\n", in.replaced);
        if (set_system(&chat, in.text, in.len)) {
          std::printf("[system prompt set (%u tokens); conversation reset]\n", chat.system_tokens());
        }
        continue;
      case cli::ReplInputKind::kUnknownCommand: std::printf("[unknown command; /help lists them]\n"); continue;
      case cli::ReplInputKind::kMessage: break;
    }
    if (quit) break;
    if (in.replaced) {
      std::printf("[invalid UTF-8 in the message: %zu sequence%s replaced by U+FFFD]\n", in.replaced,
                  in.replaced == 1 ? "" : "s");
    }
    GenerateStats st;
    port::clear_interrupt();
    // The terminal stays raw (no 4,095-byte limit, no echo into the reply for
    // keys typed ahead), but Ctrl-C raises SIGINT while the reply streams.
    if (g_terminal) (void)port::terminal_raw(0, true);
    Status s = chat.turn(in.text, in.len, max_reply, print_text, nullptr, &st);
    if (g_terminal) (void)port::terminal_raw(0, false);
    const bool interrupted = port::interrupted();
    port::clear_interrupt();
    if (chat.last_turn().end == ChatTurnInfo::End::kNone) {  // refused: nothing ran
      std::printf("[%s]\n", s.message());
      continue;
    }
    std::printf("\n");
    if (!s.is_ok()) std::printf("[%s: %s]\n", status_code_name(s.code()), s.message());
    print_turn_line(chat, st, max_reply);
    last_was_interrupt = interrupted;
  }
  port::terminal_restore();
  return 0;
}
