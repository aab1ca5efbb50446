// The command-line tools on the real model, run as a user would: tern-run
// (text, --json, --score, errors) and the tern-chat REPL fed through a pipe.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>
#include <sys/wait.h>

#include "runtime/blob_format.h"
#include "tests/support/goldens.h"
#include "tests/support/run_command.h"

#if defined(__SANITIZE_ADDRESS__)
#define TERN_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TERN_TEST_UNDER_ASAN 1
#endif
#endif

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
                          "\"arena_bytes\":", "\"kv_bytes_per_token\":", "\"peak_rss_bytes\":",
                          "\"kv_window_layers\":0,", "\"kv_window_bytes_per_token\":0,"}) {
    EXPECT_NE(r.out.find(key), std::string::npos) << key << "\n" << r.out;
  }
}

// Gemma 3: the 3 global layers' KV grows with the context, the 15 sliding
// layers' sits in the window pool; --json reports the two apart.
TEST(TernRun, JsonReportsTheSlidingWindowPoolApart) {
  const Result r = run(bin("tern-run") + " --model " + testing::model_path("gemma3-270m-int4.tern") +
                       " --prompt 'The capital of France is' -n 2 --json --max-context 2048");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* key : {"\"kv_bytes_per_token\":3072,", "\"kv_window_layers\":15,",
                          "\"kv_window_bytes_per_token\":15360,", "\"kv_window_blocks_used\":1"}) {
    EXPECT_NE(r.out.find(key), std::string::npos) << key << "\n" << r.out;
  }
}

// --prompts-file (issue 16): every line its own sequence, run together
// through the scheduler. On the scalar kernels (batch-invariant) each line's
// tokens are exactly those of the line run alone with --prompt; --json
// objects carry the line's index as "seq"; an empty line is refused by number.
std::vector<std::string> ids_of(const std::string& json, int seq) {
  std::vector<std::string> ids;
  const std::string key = seq < 0 ? "{\"id\":" : "{\"seq\":" + std::to_string(seq) + ",\"id\":";
  for (size_t at = json.find(key); at != std::string::npos; at = json.find(key, at + 1)) {
    const size_t b = at + key.size();
    ids.push_back(json.substr(b, json.find(',', b) - b));
  }
  return ids;
}

TEST(TernRun, PromptsFileRunsEveryLineAsItsOwnSequence) {
  const char* lines[3] = {"What is the capital of France?", "Name three colors.", "Write a haiku about the sea."};
  const std::string path = ::testing::TempDir() + "/tern_prompts.txt";
  {
    std::ofstream f(path);
    for (const char* l : lines) f << l << "\n";
  }
  const std::string common = " --model " + blob() + " --isa scalar --chat -n 10 --json";
  const Result all = run(bin("tern-run") + common + " --prompts-file " + path);
  ASSERT_EQ(all.exit_code, 0) << all.out;
  EXPECT_NE(all.out.find("\"sequences\":3,\"failed\":0"), std::string::npos) << all.out;
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(all.out.find("{\"seq\":" + std::to_string(i) + ",\"done\":true,\"status\":\"ok\""),
              std::string::npos)
        << all.out;
    const Result one = run(bin("tern-run") + common + " --prompt '" + lines[i] + "'");
    ASSERT_EQ(one.exit_code, 0) << one.out;
    const std::vector<std::string> alone = ids_of(one.out, -1);
    EXPECT_FALSE(alone.empty());
    EXPECT_EQ(ids_of(all.out, i), alone) << "line " << i;
  }
  {
    std::ofstream f(path);
    f << "one\n\nthree\n";
  }
  const Result bad = run(bin("tern-run") + " --model " + blob() + " --prompts-file " + path);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("line 2 of the prompts file is empty"), std::string::npos) << bad.out;
}

// Every storage type is counted: Gemma's Q5_0 tensors are int5 (a reader that
// knew only three types once left them out of the parameter count).
TEST(TernInfo, CountsEveryStorageType) {
  const Result r = run(bin("tern-info") + " " + testing::model_path("gemma3-270m-int4.tern") + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* key : {"\"parameters\":268098176", "\"int5_g32\":{", "\"int4_g32\":{", "\"int8_g32\":{"}) {
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

// The last line of the output that starts with '{' (the final JSON object).
std::string last_json(const std::string& out) {
  size_t end = out.size();
  while (end > 0) {
    size_t start = out.rfind('\n', end - 1);
    start = start == std::string::npos ? 0 : start + 1;
    if (out.compare(start, 1, "{") == 0) return out.substr(start, end - start);
    if (start == 0) break;
    end = start - 1;
  }
  return "";
}

std::string stdout_only(const std::string& cmd) { return run("(" + cmd + " 2>/dev/null)").out; }

TEST(TernRun, ExplicitThreadsFlagBeatsTheEnvironment) {
  // Issue 18 item 4: TERN_THREADS=2 with --threads 1 runs one thread.
  Result r = run("TERN_THREADS=2 " + bin("tern-run") + " -m " + blob() + " -p hi -n 1 --json --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("\"threads\":1,"), std::string::npos) << r.out;
  r = run("TERN_THREADS=2 " + bin("tern-run") + " -m " + blob() + " -p hi -n 1 --json -t 1");
  EXPECT_NE(r.out.find("\"threads\":1,"), std::string::npos) << r.out;
  r = run("TERN_THREADS=2 " + bin("tern-run") + " -m " + blob() + " -p hi -n 1 --json");
  EXPECT_NE(r.out.find("\"threads\":2,"), std::string::npos) << "the environment applies without the flag\n" << r.out;
  // A malformed TERN_THREADS is an error, not silently one thread.
  for (const char* bad : {"x", "0", "-2", "2x"}) {
    r = run(std::string("TERN_THREADS=") + bad + " " + bin("tern-run") + " -m " + blob() + " -p hi -n 1 --json");
    EXPECT_NE(r.exit_code, 0) << bad << "\n" << r.out;
    EXPECT_NE(r.out.find("TERN_THREADS"), std::string::npos) << r.out;
    EXPECT_NE(last_json(r.out).find("\"status\":\"invalid_argument\""), std::string::npos) << r.out;
  }
}

TEST(TernRun, PrefillOnlyReportsThePrompt) {
  // Issue 18 item 5: -n 0 said "prompt 0 tok" although the prompt was prefilled.
  Result r = run(bin("tern-run") + " -m " + blob() + " -p 'The capital of France is' -n 0");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("prompt 5 tok"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("prompt 0 tok"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\n\n"), std::string::npos) << "no blank line\n" << r.out;
  EXPECT_EQ(stdout_only(bin("tern-run") + " -m " + blob() + " -p 'The capital of France is' -n 0"), "");
  r = run(bin("tern-run") + " -m " + blob() + " -p 'The capital of France is' -n 0 --json");
  const std::string j = last_json(r.out);
  EXPECT_NE(j.find("\"prompt_tokens\":5,"), std::string::npos) << j;
  EXPECT_EQ(j.find("\"prefill_tok_s\":0.00,"), std::string::npos) << j;
}

TEST(TernRun, JsonEndsWithOneObjectOnEveryPath) {
  // Issue 18 item 7: every error after parsing ends with {"status","error"}.
  struct Case {
    std::string args, status;
  } cases[] = {
      {"-m " + blob() + " --max-context 16 -p 'one two three four five six seven eight nine ten eleven twelve "
       "thirteen fourteen fifteen sixteen seventeen'", "prompt_too_long"},
      {"-m " + blob() + " --prompt-ids 1,2,99999999 -n 2", "invalid_token"},
      {"-m " + blob() + " --prompt-ids 1,2000000000 --score --prefill-chunk 1", "invalid_token"},
      {"-m " + blob() + " --prompt-ids 1,,2", "invalid_argument"},
      {"-m " + blob() + " -p ''", "invalid_argument"},
      {"-m " + blob() + " -p hi --temp -1", "invalid_argument"},
      {"-m " + blob() + " -p hi --isa nonsense", "unsupported_isa"},
      {"-m " + testing::model_path("SmolLM2-135M-Instruct.Q4_1.gguf") + " -p hi", "bad_magic"},
      {"-m /nonexistent.tern -p hi", "io_error"},
      {"-m /nonexistent.tern --print-plan", "io_error"},
      {"-m " + blob() + " -f /nonexistent.txt", "io_error"},
  };
  for (const Case& c : cases) {
    const std::string out = stdout_only(bin("tern-run") + " " + c.args + " --json");
    const std::string j = last_json(out);
    EXPECT_NE(j.find("\"status\":\"" + c.status + "\""), std::string::npos) << c.args << "\n" << out;
    EXPECT_NE(j.find("\"error\":\""), std::string::npos) << c.args << "\n" << out;
    EXPECT_EQ(out.find("\"prompt_tokens\":0"), std::string::npos) << "no zeroed stats\n" << out;
  }
  // Text mode: the error line alone, no zeroed stats line or blank line before it.
  const Result r = run(bin("tern-run") + " -m " + blob() + " --max-context 16 -p '" + std::string(200, 'a') + " b'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count(r.out, "\n"), 1u) << r.out;
  EXPECT_NE(r.out.find("prompt_too_long"), std::string::npos) << r.out;
}

TEST(TernRun, ScoreJsonEndsWithASummary) {
  const std::string out =
      stdout_only(bin("tern-run") + " -m " + blob() + " --prompt-ids 504,3575,282,4649,314,7042 --score --json");
  EXPECT_EQ(count(out, "{\"pos\":"), 5u) << out;
  const std::string j = last_json(out);
  for (const char* key : {"\"status\":\"ok\"", "\"positions\":5,", "\"mean_logprob\":", "\"perplexity\":"}) {
    EXPECT_NE(j.find(key), std::string::npos) << key << "\n" << out;
  }
}

TEST(TernRun, StatsLineIsNotGluedToTheOutput) {
  // stdout and stderr in one pipe: the text ends with a newline before the
  // stats line, and stdout is flushed first.
  for (const char* stop : {"", " --stop answer"}) {
    const Result r = run(bin("tern-run") + " -m " + blob() + " -p 'The capital of France is' -n 8" + stop);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const size_t at = r.out.find("[" );
    ASSERT_NE(at, std::string::npos) << r.out;
    ASSERT_GT(at, 0u);
    EXPECT_EQ(r.out[at - 1], '\n') << r.out;
  }
}

TEST(TernRun, RandomSeedIsPrintedAndRepeats) {
  const std::string cmd = bin("tern-run") + " -m " + blob() + " -p 'Once upon a time' -n 12 --temp 0.9";
  const Result a = run(cmd);
  ASSERT_EQ(a.exit_code, 0) << a.out;
  const size_t at = a.out.find("seed ");
  ASSERT_NE(at, std::string::npos) << a.out;
  const std::string seed = a.out.substr(at + 5, a.out.find_first_not_of("0123456789", at + 5) - (at + 5));
  ASSERT_FALSE(seed.empty()) << a.out;
  const std::string text_a = stdout_only(cmd + " --seed " + seed);
  const std::string text_b = stdout_only(cmd + " -s " + seed);
  EXPECT_EQ(text_a, text_b);
  EXPECT_NE(a.out.find(text_a), std::string::npos) << "the printed seed repeats the run\n" << a.out << "\n" << text_a;
  const std::string j = last_json(stdout_only(cmd + " --json --seed " + seed));
  EXPECT_NE(j.find("\"seed\":" + seed + ","), std::string::npos) << j;
}

TEST(TernRun, StopStringsEndGenerationAndAreNotPrinted) {
  // Greedy: " Paris.\n\nThe answer is:" (tokens " Paris", ".", "\n\n", ...).
  const std::string cmd = bin("tern-run") + " -m " + blob() + " -p 'The capital of France is' -n 30";
  EXPECT_EQ(stdout_only(cmd + " --stop answer"), " Paris.\n\nThe \n");
  // A stop string across token boundaries ("s" ends " Paris", "." is the next token).
  EXPECT_EQ(stdout_only(cmd + " --stop s."), " Pari\n");
  // Several: the first in the text wins.
  EXPECT_EQ(stdout_only(cmd + " --stop answer --stop ."), " Paris\n");
  const std::string out = stdout_only(cmd + " --stop s. --json");
  EXPECT_NE(last_json(out).find("\"finish_reason\":\"stop_string\",\"stop_string\":\"s.\""), std::string::npos) << out;
  std::string text;  // the visible text is the concatenation of the token objects' text
  for (size_t at = out.find("\"text\":\""); at != std::string::npos; at = out.find("\"text\":\"", at + 1)) {
    text += out.substr(at + 8, out.find('"', at + 8) - (at + 8));
  }
  EXPECT_EQ(text, " Pari") << out;
  // Usage errors: too long, empty.
  EXPECT_EQ(run(cmd + " --stop ''").exit_code, 2);
  EXPECT_EQ(run(cmd + " --stop " + std::string(65, 'x')).exit_code, 2);
}

TEST(TernRun, FinishReasons) {
  const std::string cmd = bin("tern-run") + " -m " + blob() + " -p 'The capital of France is' --json";
  EXPECT_NE(last_json(stdout_only(cmd + " -n 3")).find("\"finish_reason\":\"length\""), std::string::npos);
  const std::string chat = stdout_only(bin("tern-run") + " -m " + blob() + " --chat -p 'Say hi.' -n 200 --json");
  EXPECT_NE(last_json(chat).find("\"finish_reason\":\"stop\""), std::string::npos) << chat;
  // More tokens than the context holds: a clear reason and exit 0.
  const Result r = run(bin("tern-run") + " -m " + blob() + " -p 'The capital of France is' -n 100 -c 12");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("context full"), std::string::npos) << r.out;
  const std::string j = last_json(stdout_only(cmd + " -n 100 -c 12"));
  EXPECT_NE(j.find("\"status\":\"ok\",\"finish_reason\":\"context\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"generated_tokens\":7,"), std::string::npos) << j;
}

TEST(TernRun, PromptInputs) {
  const std::string dir = ::testing::TempDir();
  {
    std::ofstream(dir + "/prompt_nl.txt", std::ios::binary) << "The capital of France is\n";
  }
  const std::string base = bin("tern-run") + " -m " + blob() + " -n 2 --json";
  const std::string want = last_json(stdout_only(base + " -p 'The capital of France is'"));
  auto tokens = [](const std::string& j) { return j.substr(j.find("\"prompt_tokens\":"), 20); };
  // One trailing newline of a prompt file is dropped; '-' is standard input.
  EXPECT_EQ(tokens(last_json(stdout_only(base + " -f " + dir + "/prompt_nl.txt"))), tokens(want));
  EXPECT_EQ(tokens(last_json(stdout_only(base + " --prompt-file - < " + dir + "/prompt_nl.txt"))), tokens(want));
  EXPECT_NE(stdout_only(bin("tern-run") + " -m " + blob() + " -n 2 -f - < " + dir + "/prompt_nl.txt").find(" Paris"),
            std::string::npos);
  // --prompt-ids with commas, commas and spaces, or spaces.
  const std::string ids = "504,3575,282,4649,314";
  const std::string by_commas = stdout_only(base + " --prompt-ids " + ids);
  EXPECT_NE(by_commas.find("\"text\":\" Paris\""), std::string::npos) << by_commas;
  for (const char* form : {"'504, 3575, 282, 4649, 314'", "'504 3575 282 4649 314'", "' 504,3575 ,282,4649,314 '"}) {
    const std::string out = stdout_only(base + " --prompt-ids " + form);
    EXPECT_EQ(out.substr(0, out.find("\"load_ms\"")), by_commas.substr(0, by_commas.find("\"load_ms\""))) << form;
  }
  // Short flags -m -p -n -t -c -s.
  const Result r = run(bin("tern-run") + " -m " + blob() + " -p 'The capital of France is' -n 2 -t 1 -c 64 -s 3");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(" Paris"), std::string::npos) << r.out;
}

TEST(TernRun, OutOfVocabularyIdsAreRejectedOnEveryPath) {
  // Issue 19 item 1: --score read row[ids[pos + 1]] before checking the id
  // (SIGSEGV for 2000000000 with one row per chunk, a bogus log-prob for 60000).
  const std::string base = bin("tern-run") + " -m " + blob();
  for (const std::string& args : {std::string(" --prompt-ids 1,2000000000 --score --prefill-chunk 1"),
                                  std::string(" --prompt-ids 1,60000 --score"),
                                  std::string(" --prompt-ids 1,-5 --score"),
                                  std::string(" --prompt-ids 1,49152 -n 2"),
                                  std::string(" --prompt-ids 1,2000000000 -n 0")}) {
    const Result r = run(base + args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.out;  // an error, not a crash (-1)
    EXPECT_NE(r.out.find("invalid_token"), std::string::npos) << args << "\n" << r.out;
    EXPECT_NE(r.out.find("position 1"), std::string::npos) << args << "\n" << r.out;
    EXPECT_EQ(r.out.find("\t"), std::string::npos) << "no position scored\n" << r.out;
  }
  const Result r = run(base + " --prompt-ids 99999999999 --score");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("out of range"), std::string::npos) << r.out;
}

TEST(TernRun, ArenaTheOsRefusesSuggestsASmallerContext) {
#if defined(TERN_TEST_UNDER_ASAN)
  GTEST_SKIP() << "ASan reserves terabytes of shadow memory at start, which ulimit -v forbids";
#endif
  // ulimit -v: the address space is 1 GiB, the arena for a 2^20-token
  // context is ~23 GiB, so the OS refuses the mapping.
  const Result r = run("ulimit -v 1048576; " + bin("tern-run") + " -m " + blob() + " -p hi -c 1048576 --json");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("arena_too_small"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("lower --max-context"), std::string::npos) << r.out;
}

TEST(Tools, HelpVersionAndUnknownArguments) {
  // Issue 18 item 8: every tool answers --help and --version and refuses an
  // unknown argument with one line that points at --help.
  for (const char* tool :
       {"tern-run", "tern-bench", "kernel-bench", "int4-ceiling", "make-tiny-gguf", "tern-info", "tern-perplexity"}) {
    Result r = run(bin(tool) + " --help");
    EXPECT_EQ(r.exit_code, 0) << tool << "\n" << r.out;
    EXPECT_NE(r.out.find("usage: "), std::string::npos) << tool << "\n" << r.out;
    EXPECT_EQ(r.out.find("GB/s |"), std::string::npos) << tool << " --help ran the benchmark\n" << r.out;
    r = run(bin(tool) + " --version");
    EXPECT_EQ(r.exit_code, 0) << tool;
    EXPECT_NE(r.out.find(std::string(tool) + " (tern "), std::string::npos) << r.out;
    r = run(bin(tool) + " --no-such-flag");
    EXPECT_EQ(r.exit_code, 2) << tool;
    EXPECT_EQ(count(r.out, "\n"), 1u) << tool << "\n" << r.out;
    EXPECT_NE(r.out.find("--help"), std::string::npos) << tool << "\n" << r.out;
  }
  // --isa lists what this build compiled.
  const Result r = run(bin("tern-run") + " --help");
  EXPECT_NE(r.out.find("auto, "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("scalar"), std::string::npos) << r.out;
#if defined(__x86_64__)
  EXPECT_NE(r.out.find("avx2"), std::string::npos) << r.out;
#endif
  for (const char* flag : {"--prompt-file", "--ignore-eos", "--stop", "-f, --prompt-file"}) {
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  }
}

TEST(TernInfo, DescribesTheBlob) {
  Result r = run(bin("tern-info") + " " + blob());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* what : {"llama, 30 layers", "parameters:    134515008", "5.74 bits per weight", "49152 tokens",
                           "48900 merges", "ChatML", "trained 8192", "planned 2048", "arena total", "layers:        30 global; SiLU gate",
                           "f16 KV, 23040 bytes per token",
                           "header and section CRCs verified", "weights CRC not checked"}) {
    EXPECT_NE(r.out.find(what), std::string::npos) << what << "\n" << r.out;
  }
  const std::string version = "format version " + std::to_string(blob::kFormatVersion);  // the packer writes the newest
  EXPECT_NE(r.out.find(version), std::string::npos) << version << "\n" << r.out;
  // int8 KV: 30 layers x K and V x 3 KV heads x (64 values + one f32 scale).
  r = run(bin("tern-info") + " " + blob() + " --kv int8");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("int8 KV, 12240 bytes per token"), std::string::npos) << r.out;
  EXPECT_EQ(30 * 2 * 3 * (64 + 4), 12240);
  r = run(bin("tern-info") + " " + blob() + " --kv int4");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("bad value for --kv: expected f16 or int8"), std::string::npos) << r.out;
  r = run(bin("tern-info") + " " + blob() + " --json --verify --max-context 512");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(count(r.out, "\n"), 1u) << r.out;
  for (const char* what : {"\"weights\":\"verified\"", "\"parameters\":134515008", "\"int4_g32\":{", "\"chat_format\":\"chatml\"",
                           "\"trained_context\":8192", "\"max_context\":512", "\"arena_bytes\":"}) {
    EXPECT_NE(r.out.find(what), std::string::npos) << what << "\n" << r.out;
  }
  r = run(bin("tern-info") + " /nonexistent.tern --json");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("\"status\":\"io_error\""), std::string::npos) << r.out;
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
