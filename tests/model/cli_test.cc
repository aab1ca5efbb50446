// The command-line tools on the real model, run as a user would: tern-run
// (text, --json, --score, errors) and the tern-chat REPL fed through a pipe.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <sys/wait.h>

#include "tests/support/goldens.h"
#include "tests/support/run_command.h"

namespace tern {
namespace {

using Result = testing::CommandResult;
Result run(const std::string& cmd) { return testing::run_command(cmd); }
std::string bin(const char* name) { return testing::tool_path(name); }
std::string blob() { return testing::model_path("smollm2-135m-int4.tern"); }

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

TEST(TernRun, GreedyChatAnswersTheQuestion) {
  const Result r = run(bin("tern-run") + " --model " + blob() + " --chat --prompt 'What is the capital of France?' -n 16");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("decode"), std::string::npos) << r.out;
}

TEST(TernRun, JsonHasOneObjectPerTokenAndTimings) {
  const Result r = run(bin("tern-run") + " --model " + blob() + " --prompt 'The capital of France is' -n 8 --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(count(r.out, "{\"id\":"), 8u) << r.out;
  EXPECT_NE(r.out.find("\"text\":\" Paris\""), std::string::npos) << r.out;
  for (const char* key : {"\"load_ms\":", "\"ttft_ms\":", "\"prefill_tok_s\":", "\"decode_tok_s\":", "\"isa\":",
                          "\"arena_bytes\":", "\"kv_bytes_per_token\":", "\"peak_rss_bytes\":"}) {
    EXPECT_NE(r.out.find(key), std::string::npos) << key << "\n" << r.out;
  }
}

TEST(TernRun, ScorePrintsEveryPosition) {
  const Result r = run(bin("tern-run") + " --model " + blob() + " --prompt-ids 504,3575,282,4649,314,7042 --score");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(count(r.out, "\n"), 6u) << r.out;  // 5 positions + the summary line
  EXPECT_NE(r.out.find("4\t7042\t7042\t"), std::string::npos) << "top-1 after 'is' is ' Paris'\n" << r.out;
}

TEST(TernRun, ErrorsAreClear) {
  Result r = run(bin("tern-run") + " --model " + blob() + " --prompt-ids 1,2,99999999 -n 2");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("invalid_token"), std::string::npos) << r.out;
  r = run(bin("tern-run") + " --model " + blob() + " --prompt 'hi' --temp -1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("temperature"), std::string::npos) << r.out;
  r = run(bin("tern-run") + " --model " + blob() + " --prompt 'hi' --top-p 1.5");
  EXPECT_NE(r.out.find("top_p"), std::string::npos) << r.out;
  r = run(bin("tern-run") + " --model " + blob() + " --max-context 16 --prompt 'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("prompt_too_long"), std::string::npos) << r.out;
  r = run(bin("tern-run") + " --model " + blob() + " --prompt ''");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("empty"), std::string::npos) << r.out;
  r = run(bin("tern-run") + " --model " + testing::model_path("SmolLM2-135M-Instruct.Q4_1.gguf") + " --prompt hi");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("bad_magic"), std::string::npos) << r.out;
  r = run(bin("tern-run") + " --model " + blob() + " --prompt hi --isa nonsense");
  EXPECT_NE(r.out.find("unknown ISA"), std::string::npos) << r.out;
}

TEST(TernChat, ReplHandlesCommandsAndBadInput) {
  const std::string in = std::string(::testing::TempDir()) + "/repl_input.txt";
  {
    std::ofstream f(in, std::ios::binary);
    f << "/help\n";
    f << "What is the capital of France?\n";
    f << "And of Italy?\n";
    f << "/stats\n";
    f << "bad \xff\xfe utf8 \xc3\n";
    f << std::string(300 * 1024, 'a') << "\n";  // a line over the REPL's 256 KiB limit
    f << std::string(2000, 'b') << " " << std::string(2000, 'c') << "\n";  // fits the line, not the context
    f << "/reset\n";
    f << "/bogus\n";
    f << "Hello!\n";
    // no /quit: end of input ends the session
  }
  const Result r = run(bin("tern-chat") + " --model " + blob() + " -n 12 --max-context 512 < " + in);
  ASSERT_EQ(r.exit_code, 0) << r.out.substr(0, 4000);
  EXPECT_NE(r.out.find("/reset"), std::string::npos);               // help text
  EXPECT_GE(count(r.out, "TTFT"), 4u) << r.out.substr(0, 4000);    // one stats line per answered turn
  EXPECT_NE(r.out.find("kv:"), std::string::npos);                  // /stats
  EXPECT_NE(r.out.find("message too long"), std::string::npos);
  EXPECT_NE(r.out.find("conversation reset"), std::string::npos);
  EXPECT_NE(r.out.find("unknown command"), std::string::npos);
}

TEST(TernChat, FullContextIsReported) {
  const std::string in = std::string(::testing::TempDir()) + "/repl_full.txt";
  {
    std::ofstream f(in);
    for (int i = 0; i < 12; ++i) f << "Tell me a long story about a dragon number " << i << ".\n";
  }
  const Result r = run(bin("tern-chat") + " --model " + blob() + " -n 64 --max-context 160 < " + in);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const bool full = r.out.find("context_full") != std::string::npos || r.out.find("message too long") != std::string::npos;
  EXPECT_TRUE(full) << r.out;
}

}  // namespace
}  // namespace tern
