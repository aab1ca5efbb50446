// Zero heap after init, proven from outside the process: the real tern-run and
// tern-chat binaries run under an LD_PRELOAD allocation counter
// (tests/alloc_counter/), and the number of malloc-family calls must not
// depend on how much work happens after init. Generating 16 or 512 tokens, a
// 1-turn or a 5-turn chat with /stats, /reset, an overlong line, invalid
// UTF-8, a prompt too long for the context and a KV-full reply: every pair
// makes exactly the same number of calls. Anything on the decode path, the
// sampler, the tokenizer, the chat format or an error path that allocated
// would make the longer run's count larger.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/goldens.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TERN_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TERN_UNDER_SANITIZER 1
#endif
#endif

namespace tern {
namespace {

std::string bin(const char* name) { return std::string(TERN_BIN_DIR) + "/" + name; }
std::string counter_lib() { return std::string(TERN_BIN_DIR) + "/../lib/tern_alloc_counter.so"; }
std::string blob() { return testing::model_path("smollm2-135m-int4.tern"); }

struct Counted {
  int exit_code = -1;
  long long allocs = -1;
  long long frees = -1;
  std::string out;
};

std::string temp_path(const char* tag) {
  return "/tmp/tern_alloc_" + std::to_string(getpid()) + "_" + tag;
}

// Run `args` (a shell command line after the binary) under the counter.
Counted run_counted(const std::string& binary, const std::string& args, const std::string& stdin_file = "") {
  Counted c;
  const std::string count_file = temp_path("count");
  std::remove(count_file.c_str());
  std::string cmd = "LD_PRELOAD=" + counter_lib() + " TERN_ALLOC_COUNT_FILE=" + count_file + " " + bin(binary.c_str()) +
                    " " + args;
  if (!stdin_file.empty()) cmd += " < " + stdin_file;
  cmd += " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return c;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) c.out.append(buf, n);
  const int st = pclose(p);
  c.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream in(count_file);
  std::string word;
  in >> word >> c.allocs >> word >> c.frees;
  std::remove(count_file.c_str());
  return c;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

class ExternalAlloc : public ::testing::Test {
 protected:
  void SetUp() override {
#if defined(TERN_UNDER_SANITIZER)
    GTEST_SKIP() << "sanitizer builds interpose the allocator themselves";
#endif
    if (access(counter_lib().c_str(), R_OK) != 0) GTEST_FAIL() << "missing " << counter_lib();
  }
};

TEST_F(ExternalAlloc, CounterSeesTheProcessAllocations) {
  // Before init, tern-run parses --prompt-ids into a std::vector with
  // push_back: 100 ids reallocate it several more times than 3 ids. Seeing
  // that difference proves operator new reaches the interposed malloc.
  std::string many = "504";
  for (int i = 1; i < 100; ++i) many += ",504";
  const Counted a = run_counted("tern-run", "--model " + blob() + " --prompt-ids 504,3575,282 -n 0");
  const Counted b = run_counted("tern-run", "--model " + blob() + " --prompt-ids " + many + " -n 0");
  ASSERT_EQ(a.exit_code, 0) << a.out;
  ASSERT_EQ(b.exit_code, 0) << b.out;
  EXPECT_GT(a.allocs, 0) << a.out;
  EXPECT_GT(a.frees, 0) << a.out;
  EXPECT_GT(b.allocs, a.allocs + 3) << "3 ids: " << a.allocs << ", 100 ids: " << b.allocs;
}

TEST_F(ExternalAlloc, TernRun16And512TokensAllocateTheSame) {
  // Sampling with every filter on (temperature, top-k, top-p, min-p, penalty)
  // and --json, so the sampler and the JSON writer run every token.
  const std::string common = "--model " + blob() + " --isa avx2 --max-context 600 --prompt 'Once upon a time' --ignore-eos"
                             " --json --temp 0.8 --top-k 40 --top-p 0.95 --min-p 0.02 --repeat-penalty 1.1 --seed 7";
  const Counted a = run_counted("tern-run", common + " -n 16");
  const Counted b = run_counted("tern-run", common + " -n 512");
  ASSERT_EQ(a.exit_code, 0) << a.out;
  ASSERT_EQ(b.exit_code, 0) << b.out;
  EXPECT_EQ(count(a.out, "{\"id\":"), 16u);
  EXPECT_EQ(count(b.out, "{\"id\":"), 512u);
  ASSERT_GT(a.allocs, 0);
  EXPECT_EQ(a.allocs, b.allocs) << "16 tokens: " << a.allocs << " allocations, 512 tokens: " << b.allocs;
  EXPECT_EQ(a.frees, b.frees);
  std::printf("tern-run allocations: %lld for 16 tokens, %lld for 512 tokens\n", a.allocs, b.allocs);
}

TEST_F(ExternalAlloc, TernRunContextFullAllocatesNothing) {
  // Greedy text output; the second run runs into the end of a 64-token context
  // (a clear stop with exit 0: the user only asked for more than fits).
  const std::string common = "--model " + blob() + " --isa avx2 --max-context 64 --prompt 'Once upon a time' --ignore-eos";
  const Counted a = run_counted("tern-run", common + " -n 16");
  const Counted b = run_counted("tern-run", common + " -n 512");
  ASSERT_EQ(a.exit_code, 0) << a.out;
  ASSERT_EQ(b.exit_code, 0) << b.out;
  EXPECT_NE(b.out.find("context full"), std::string::npos) << b.out;
  ASSERT_GT(a.allocs, 0);
  EXPECT_EQ(a.allocs, b.allocs) << "16 tokens: " << a.allocs << ", context full: " << b.allocs;
  std::printf("tern-run allocations: %lld for 16 tokens, %lld for a context-full run\n", a.allocs, b.allocs);
}

TEST_F(ExternalAlloc, TernChatOneAndFiveTurnsAllocateTheSame) {
  const std::string one = temp_path("one.txt"), five = temp_path("five.txt");
  {
    std::ofstream f(one, std::ios::binary);
    f << "Hello!\n";
  }
  {
    std::ofstream f(five, std::ios::binary);
    f << "Hello!\n";
    f << "/stats\n";
    f << "Tell me a short story about a cat.\n";
    f << "What is 2+2?\n";
    f << std::string(300 * 1024, 'x') << "\n";               // over the 256 KiB line limit
    f << "caf\xc3\xa9 \xff\xfe broken \xe2\x82 utf-8\n";       // invalid UTF-8 becomes U+FFFD
    std::string long_msg;                                      // fits a line, not the context
    for (int i = 0; i < 400; ++i) long_msg += "word ";
    f << long_msg << "\n";
    f << "Name three colors.\n";                               // the pool runs out: kv_full
    f << "/reset\n";
    f << "Thanks, bye.\n";
    f << "/unknown\n/help\n/stats\n";
  }
  // 256-token context but a KV pool of 10 blocks (160 tokens): a long
  // enough conversation hits the documented kv_full error.
  const std::string args = "--model " + blob() + " --isa avx2 --max-context 256 --kv-pool-blocks 10 -n 48";
  const Counted a = run_counted("tern-chat", args, one);
  const Counted b = run_counted("tern-chat", args, five);
  std::remove(one.c_str());
  std::remove(five.c_str());
  ASSERT_EQ(a.exit_code, 0) << a.out;
  ASSERT_EQ(b.exit_code, 0) << b.out;
  EXPECT_NE(b.out.find("message too long"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("kv_full"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("conversation reset"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("high-water"), std::string::npos) << b.out;
  ASSERT_GT(a.allocs, 0);
  EXPECT_EQ(a.allocs, b.allocs) << "1 turn: " << a.allocs << ", 5+ turns: " << b.allocs << "\n" << b.out;
  std::printf("tern-chat allocations: %lld for 1 turn, %lld for the long session\n", a.allocs, b.allocs);
}

}  // namespace
}  // namespace tern
