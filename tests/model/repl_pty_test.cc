// tern-chat as a user runs it (issue 18, chat parts), on the real model:
//  * through a pseudo-terminal: line editing and history, Ctrl-C stopping a
//    reply and quitting, a """ block, a 6,000-byte paste (over the 4,095-byte
//    limit of a terminal in canonical mode);
//  * through a pipe: a reply cut off at -n is closed (the next reply never
//    prints <|im_start|>user), """ blocks, a full context, context shift,
//    invalid UTF-8, the seed, --help / --version / an unknown argument.
// Every run is greedy with a small -n, bounded by a timeout.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/goldens.h"
#include "tests/support/run_command.h"

namespace tern {
namespace {

std::string chat_bin() { return testing::tool_path("tern-chat"); }
std::string blob() { return testing::model_path("smollm2-135m-int4.tern"); }

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}
bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// tern-chat on the slave side of a pseudo-terminal, as its controlling
// terminal (so Ctrl-C on the master raises SIGINT in it, as on a real one).
class Pty {
 public:
  ~Pty() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) close(master_);
  }

  bool start(const std::vector<std::string>& args) {
    master_ = posix_openpt(O_RDWR | O_NOCTTY);
    if (master_ < 0 || grantpt(master_) != 0 || unlockpt(master_) != 0) return false;
    const char* slave_name = ptsname(master_);
    if (slave_name == nullptr) return false;
    const std::string slave_path = slave_name;
    struct winsize ws = {};
    ws.ws_row = 24;
    ws.ws_col = 80;
    ioctl(master_, TIOCSWINSZ, &ws);
    std::vector<char*> argv;
    std::string bin = chat_bin();
    argv.push_back(&bin[0]);
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(&a[0]);
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      setsid();
      const int slave = open(slave_path.c_str(), O_RDWR);
      if (slave < 0) _exit(126);
      ioctl(slave, TIOCSCTTY, 0);
      dup2(slave, 0);
      dup2(slave, 1);
      dup2(slave, 2);
      if (slave > 2) close(slave);
      close(master_);
      execv(argv[0], argv.data());
      _exit(127);
    }
    fcntl(master_, F_SETFL, fcntl(master_, F_GETFL) | O_NONBLOCK);
    return true;
  }

  // Write all of s, reading the output meanwhile (a long paste must not
  // block on a full output buffer).
  bool send(const std::string& s) {
    size_t at = 0;
    const auto deadline = clock::now() + std::chrono::seconds(180);
    while (at < s.size()) {
      if (clock::now() > deadline) return false;
      struct pollfd p = {master_, POLLIN | POLLOUT, 0};
      if (poll(&p, 1, 100) < 0) return false;
      if (p.revents & POLLIN) drain();
      if (p.revents & POLLOUT) {
        const ssize_t w = write(master_, s.data() + at, std::min<size_t>(s.size() - at, 512));
        if (w > 0) at += size_t(w);
      }
    }
    return true;
  }

  // Read until `what` appears after the mark (then the mark moves past it).
  bool wait_for(const std::string& what, int seconds = 60) {
    const auto deadline = clock::now() + std::chrono::seconds(seconds);
    for (;;) {
      const size_t at = out.find(what, mark);
      if (at != std::string::npos) {
        mark = at + what.size();
        return true;
      }
      if (clock::now() > deadline) return false;
      struct pollfd p = {master_, POLLIN, 0};
      if (poll(&p, 1, 100) > 0) {
        if (!drain()) return out.find(what, mark) != std::string::npos;
      }
    }
  }

  // Read until at least n bytes arrived after the mark.
  bool wait_bytes(size_t n, int seconds = 60) {
    const auto deadline = clock::now() + std::chrono::seconds(seconds);
    while (out.size() < mark + n) {
      if (clock::now() > deadline) return false;
      struct pollfd p = {master_, POLLIN, 0};
      if (poll(&p, 1, 100) > 0 && !drain()) return false;
    }
    return true;
  }

  // The exit code, or -1 if it did not exit in time (then it is killed).
  int wait_exit(int seconds = 30) {
    const auto deadline = clock::now() + std::chrono::seconds(seconds);
    for (;;) {
      drain();
      int st = 0;
      const pid_t r = waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        drain();
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
      }
      if (clock::now() > deadline) return -1;
      usleep(20000);
    }
  }

  std::string since_mark() const { return out.substr(mark); }
  std::string out;
  size_t mark = 0;

 private:
  using clock = std::chrono::steady_clock;
  // False at end of output (the child closed the terminal).
  bool drain() {
    char buf[4096];
    for (;;) {
      const ssize_t n = read(master_, buf, sizeof(buf));
      if (n > 0) {
        out.append(buf, size_t(n));
        continue;
      }
      return n < 0 && (errno == EAGAIN || errno == EINTR);
    }
  }
  int master_ = -1;
  pid_t pid_ = -1;
};

std::vector<std::string> args(std::initializer_list<const char*> extra) {
  std::vector<std::string> a = {"--model", blob(), "--temp", "0", "--threads", "1"};
  for (const char* e : extra) a.push_back(e);
  return a;
}

const char kLeft[] = "\x1b[D", kRight[] = "\x1b[C", kUp[] = "\x1b[A", kHome[] = "\x1b[H";

TEST(ReplPty, LineEditingAndHistory) {
  Pty t;
  ASSERT_TRUE(t.start(args({"-n", "4"})));
  ASSERT_TRUE(t.wait_for("/help for commands.")) << t.out;
  ASSERT_TRUE(t.wait_for("> ")) << t.out;
  // "/sytem Be brief." -> Home, Right x3, "s" -> "/system Be brief."; "xx" then two backspaces.
  ASSERT_TRUE(t.send(std::string("/sytem Be brief.xx\x7f\x7f") + kHome + kRight + kRight + kRight + "s\r"));
  ASSERT_TRUE(t.wait_for("[system prompt set")) << t.out;
  // Ctrl-U drops what was typed; Ctrl-W the last word: "/system " shows the prompt.
  ASSERT_TRUE(t.send("garbage\x15/system nonsense\x17\r"));
  ASSERT_TRUE(t.wait_for("system prompt (set by --system or /system, 9 bytes")) << t.since_mark();
  ASSERT_TRUE(t.wait_for("Be brief.")) << t.since_mark();
  // Up twice recalls "/system Be brief." (a third Up has nothing older); Ctrl-E,
  // Left x7 and Ctrl-K cut " brief.", then " short." is typed.
  ASSERT_TRUE(t.send(std::string(kUp) + kUp + kUp + "\x05" + kLeft + kLeft + kLeft + kLeft + kLeft + kLeft + kLeft +
                     "\x0b" + " short.\r"));
  ASSERT_TRUE(t.wait_for("[system prompt set")) << t.since_mark();
  ASSERT_TRUE(t.send("/system\r"));
  ASSERT_TRUE(t.wait_for("(set by --system or /system, 9 bytes")) << t.since_mark();
  ASSERT_TRUE(t.wait_for("Be short.")) << t.since_mark();
  // UTF-8: "é" is one step left.
  ASSERT_TRUE(t.send(std::string("/system caf\xc3\xa9!") + kLeft + kLeft + "X\r"));
  ASSERT_TRUE(t.wait_for("[system prompt set")) << t.since_mark();
  ASSERT_TRUE(t.send("/system\r"));
  ASSERT_TRUE(t.wait_for("cafX\xc3\xa9!")) << t.since_mark();
  ASSERT_TRUE(t.send("\x04"));  // Ctrl-D on an empty line
  EXPECT_EQ(t.wait_exit(), 0) << t.out;
}

TEST(ReplPty, CtrlCStopsTheReplyAndTwiceQuits) {
  Pty t;
  ASSERT_TRUE(t.start(args({"-n", "400"})));
  ASSERT_TRUE(t.wait_for("/help for commands.")) << t.out;
  ASSERT_TRUE(t.wait_for("> ")) << t.out;
  // At an empty prompt, one Ctrl-C only says how to leave.
  ASSERT_TRUE(t.send("\x03"));
  ASSERT_TRUE(t.wait_for("Ctrl-C again")) << t.since_mark();
  ASSERT_TRUE(t.send("Write a long story about a dragon who learns to fly.\r"));
  ASSERT_TRUE(t.wait_for("learns to fly.")) << t.since_mark();  // the editor's echo
  ASSERT_TRUE(t.wait_for("\n")) << t.since_mark();                // Enter
  ASSERT_TRUE(t.wait_bytes(40)) << t.since_mark();  // the reply is streaming: the terminal is back in cooked mode
  ASSERT_TRUE(t.send("\x03"));
  ASSERT_TRUE(t.wait_for("stopped by Ctrl-C, turn closed", 30)) << t.since_mark();
  ASSERT_TRUE(t.wait_for("> ")) << t.since_mark();
  const std::string turn = t.out.substr(0, t.mark);
  EXPECT_FALSE(has(turn, "400 tokens")) << "the reply ran to -n:\n" << turn;
  // The conversation goes on after the stop.
  ASSERT_TRUE(t.send("Thanks!\r"));
  ASSERT_TRUE(t.wait_for("prompt tokens", 60)) << t.since_mark();
  ASSERT_TRUE(t.wait_for("> ")) << t.since_mark();
  // Ctrl-C twice at the empty prompt quits.
  ASSERT_TRUE(t.send("\x03"));
  ASSERT_TRUE(t.wait_for("Ctrl-C again")) << t.since_mark();
  ASSERT_TRUE(t.send("\x03"));
  EXPECT_EQ(t.wait_exit(), 0) << t.since_mark();
}

TEST(ReplPty, TripleQuoteBlockIsOneMessage) {
  Pty t;
  ASSERT_TRUE(t.start(args({"-n", "4"})));
  ASSERT_TRUE(t.wait_for("> ")) << t.out;
  ASSERT_TRUE(t.send("\"\"\"\r"));
  ASSERT_TRUE(t.wait_for("... ")) << t.since_mark();
  ASSERT_TRUE(t.send("Say hello\r"));
  ASSERT_TRUE(t.wait_for("... ")) << t.since_mark();
  ASSERT_TRUE(t.send("/quit\r"));  // inside a block: text, not a command
  ASSERT_TRUE(t.wait_for("... ")) << t.since_mark();
  ASSERT_TRUE(t.send("in French.\"\"\"\r"));
  ASSERT_TRUE(t.wait_for("prompt tokens")) << t.since_mark();
  ASSERT_TRUE(t.send("/stats\r"));
  ASSERT_TRUE(t.wait_for("turns: 1 ")) << t.since_mark();
  ASSERT_TRUE(t.send("/quit\r"));
  EXPECT_EQ(t.wait_exit(), 0) << t.out;
  EXPECT_EQ(count(t.out, "prompt tokens"), 1u) << t.out;
}

// Issue 18 item 3: a terminal in canonical mode cut a pasted message at 4,095 bytes.
TEST(ReplPty, PasteOf6000BytesArrivesWhole) {
  std::string text;
  while (text.size() < 6000) text += "The quick brown fox jumps over the lazy dog. ";
  text.resize(6000);
  ASSERT_NE(text.back(), ' ');
  Pty t;
  ASSERT_TRUE(t.start(args({"-n", "1"})));
  ASSERT_TRUE(t.wait_for("> ")) << t.out;
  // As a message: all of it is prefilled (about 1,300 tokens; 4,095 bytes
  // would be about 900).
  ASSERT_TRUE(t.send(text + "\r"));
  // Typed ahead while the reply is prefilled: waits in the terminal, uncut.
  ASSERT_TRUE(t.send("/system " + text + "\r"));
  ASSERT_TRUE(t.wait_for(" prompt tokens", 180)) << t.since_mark().substr(0, 2000);
  const size_t line = t.out.rfind('[', t.mark);
  ASSERT_NE(line, std::string::npos);
  const int tokens = std::atoi(t.out.c_str() + line + 1);
  EXPECT_GT(tokens, 1200) << t.out.substr(line, 200);
  EXPECT_FALSE(has(t.out, "message too long")) << t.since_mark();
  // The line typed ahead, as a system prompt: every byte arrived.
  ASSERT_TRUE(t.wait_for("[system prompt set")) << t.since_mark().substr(0, 2000);
  ASSERT_TRUE(t.send("/system\r"));
  ASSERT_TRUE(t.wait_for("set by --system or /system, 6000 bytes")) << t.since_mark().substr(0, 2000);
  ASSERT_TRUE(t.send("\x04"));
  EXPECT_EQ(t.wait_exit(), 0);
}

// --- through a pipe ---

using Result = testing::CommandResult;
Result chat_with(const std::string& input, const std::string& flags) {
  static int n = 0;
  const std::string in = std::string(::testing::TempDir()) + "/repl_pipe_" + std::to_string(getpid()) + "_" +
                         std::to_string(n++) + ".txt";
  {
    std::ofstream f(in, std::ios::binary);
    f << input;
  }
  return testing::run_command(chat_bin() + " --model " + blob() + " --temp 0 --threads 1 " + flags + " < " + in);
}

// Issue 18 item 2, the reproduction from the issue.
TEST(ReplPipe, ReplyCutOffAtNIsClosed) {
  const Result r = chat_with("Tell me a story about a cat.\nWhat was the cat called?\n", "-n 8");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_FALSE(has(r.out, "<|im_start|>")) << r.out;
  EXPECT_FALSE(has(r.out, "<|im_end|>")) << r.out;
  EXPECT_EQ(count(r.out, "cut off at -n 8, turn closed"), 2u) << r.out;
}

TEST(ReplPipe, TripleQuoteBlocksAndContinuations) {
  const Result r = chat_with("\"\"\"\nWhat is\n/quit\n2+2?\"\"\"\nAnd 3+3?\\\nAnswer briefly.\n/stats\n", "-n 4");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(count(r.out, "prompt tokens"), 2u) << r.out;
  EXPECT_TRUE(has(r.out, "turns: 2 ")) << r.out;
}

// Issue 18 item 6: every message after a full context was "too long: ... 0 tokens left".
TEST(ReplPipe, FullContextIsSaidWithReset) {
  std::string in;
  for (int i = 0; i < 8; ++i) in += "Tell me about dragons.\n";
  in += "/reset\nHi.\n";
  const Result r = chat_with(in, "-n 40 --max-context 128");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(has(r.out, "the context is full")) << r.out;
  EXPECT_TRUE(has(r.out, "/reset starts over")) << r.out;
  EXPECT_FALSE(has(r.out, "0 tokens left")) << r.out;
  EXPECT_FALSE(has(r.out, "message too long")) << r.out;
}

// Issue 18 item 9: --context-shift drops the oldest turns instead.
TEST(ReplPipe, ContextShiftKeepsTheConversationGoing) {
  std::string in;
  for (int i = 0; i < 8; ++i) in += "Tell me about dragon number " + std::to_string(i) + ".\n";
  const Result r = chat_with(in, "-n 24 --max-context 128 --context-shift");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(has(r.out, "[context shift: dropped the")) << r.out;
  EXPECT_FALSE(has(r.out, "context is full")) << r.out;
  EXPECT_EQ(count(r.out, "prompt tokens"), 8u) << r.out;
}

TEST(ReplPipe, InvalidUtf8GetsANote) {
  const Result r = chat_with("bad \xff utf8 \xc3\n", "-n 2");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(has(r.out, "[invalid UTF-8 in the message: 2 sequences replaced by U+FFFD]")) << r.out;
  EXPECT_TRUE(has(r.out, "prompt tokens")) << r.out;
}

TEST(ReplPipe, SystemPromptAndSeedInStats) {
  Result r = chat_with("/stats\n", "-n 2");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(has(r.out, "system prompt (the chat template's default")) << r.out;
  EXPECT_TRUE(has(r.out, "sampling: greedy")) << r.out;
  r = testing::run_command(chat_bin() + " --model " + blob() + " --temp 0.7 -n 2 --system 'Be brief.' < /dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(has(r.out, "seed ")) << r.out;
  EXPECT_TRUE(has(r.out, "(random; --seed repeats it)")) << r.out;
  r = chat_with("/stats\n", "--temp 0.7 --seed 42 --system 'Be brief.'");
  EXPECT_TRUE(has(r.out, "sampling: temperature 0.7, seed 42\n")) << r.out;
  EXPECT_TRUE(has(r.out, "(set by --system or /system, 9 bytes")) << r.out;
}

// Issue 18 items 8 and 13.
TEST(ReplPipe, HelpVersionAndUnknownArguments) {
  Result r = testing::run_command(chat_bin() + " --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* s : {"-n N", "(default 256)", "--system TEXT", "--context-shift", "--special", "--version",
                        "--model", "--temp", "\"\"\"", "Ctrl-C", "/system"}) {
    EXPECT_TRUE(has(r.out, s)) << s << "\n" << r.out;
  }
  r = testing::run_command(chat_bin() + " --version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(has(r.out, "tern")) << r.out;
  r = testing::run_command(chat_bin() + " --model " + blob() + " --bogus");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.out, "unknown argument '--bogus'")) << r.out;
  EXPECT_EQ(count(r.out, "\n"), 1u) << "one line, not the whole usage:\n" << r.out;
  r = testing::run_command(chat_bin() + " --model " + blob() + " -n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(count(r.out, "\n"), 1u) << r.out;
}

}  // namespace
}  // namespace tern
