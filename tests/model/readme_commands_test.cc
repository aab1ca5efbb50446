// The README's tool commands, run as written: every line of a ```sh block
// that starts with build/release/bin/<tool> for the cheap tools (tern-pack,
// tern-run, tern-chat, tern-info, and --help of the others) runs against the
// real model with its placeholders filled in (MODEL.gguf, MODEL.tern, BLOB;
// the first of `a|b` alternatives; [optional] parts dropped, so the bare form
// runs) and must exit 0. A README example that drifts from the tools fails
// here.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/goldens.h"
#include "tests/support/run_command.h"

namespace tern {
namespace {

// Lines of ```sh blocks, with backslash continuations joined.
std::vector<std::string> readme_sh_lines() {
  std::ifstream in(std::string(TERN_SOURCE_DIR) + "/README.md");
  std::vector<std::string> out;
  std::string line, joined;
  bool in_sh = false;
  while (std::getline(in, line)) {
    if (!in_sh) {
      in_sh = line == "```sh";
      continue;
    }
    if (line.rfind("```", 0) == 0) {
      in_sh = false;
      continue;
    }
    if (!line.empty() && line.back() == '\\') {
      joined += line.substr(0, line.size() - 1);
      continue;
    }
    out.push_back(joined + line);
    joined.clear();
  }
  return out;
}

void replace_all(std::string* s, const std::string& from, const std::string& to) {
  for (size_t at = s->find(from); at != std::string::npos; at = s->find(from, at + to.size())) s->replace(at, from.size(), to);
}

// Drop "[...]" groups (nested brackets included) and a trailing "# comment".
std::string drop_optional(const std::string& s) {
  std::string out;
  int depth = 0;
  for (char c : s) {
    if (c == '[') ++depth;
    else if (c == ']' && depth > 0) --depth;
    else if (depth == 0) out += c;
  }
  const size_t hash = out.find(" #");
  if (hash != std::string::npos) out.resize(hash);
  return out;
}

// "int4|int8" -> "int4": the first alternative of every a|b word.
std::string first_alternative(const std::string& s) {
  std::istringstream words(s);
  std::string w, out;
  while (words >> w) {
    const size_t bar = w.find('|');
    if (bar != std::string::npos && w.find('"') == std::string::npos && w.find('\'') == std::string::npos) w.resize(bar);
    out += (out.empty() ? "" : " ") + w;
  }
  return out;
}

TEST(ReadmeCommands, ToolLinesRunAsWritten) {
  const std::string bin = std::string(TERN_BIN_DIR) + "/";
  const std::string blob = testing::model_path("smollm2-135m-int4.tern");
  const std::string gguf = testing::model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
  const std::string out_blob = ::testing::TempDir() + "readme_model.tern";
  // The file the --prompts-file line reads: two questions, one per line.
  const std::string questions = ::testing::TempDir() + "readme_questions.txt";
  {
    std::FILE* f = std::fopen(questions.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("What is 2+2?\nName a color.\n", f);
    std::fclose(f);
  }
  const std::vector<std::string> cheap = {"tern-pack", "tern-run", "tern-chat", "tern-info"};
  size_t ran = 0;
  for (const std::string& raw : readme_sh_lines()) {
    const std::string prefix = "build/release/bin/";
    if (raw.rfind(prefix, 0) != 0) continue;
    const std::string tool = raw.substr(prefix.size(), raw.find(' ') == std::string::npos ? std::string::npos
                                                                                           : raw.find(' ') - prefix.size());
    bool is_cheap = false;
    for (const std::string& c : cheap) is_cheap |= tool == c;
    std::string cmd = raw;
    if (!is_cheap) cmd = prefix + tool + " --help";  // the expensive tools: their usage must at least parse
    cmd = first_alternative(drop_optional(cmd));
    replace_all(&cmd, prefix, bin);
    replace_all(&cmd, "-o MODEL.tern", "-o " + out_blob);
    replace_all(&cmd, "MODEL.gguf", gguf);
    replace_all(&cmd, "MODEL.tern", blob);
    replace_all(&cmd, "BLOB", blob);
    replace_all(&cmd, "questions.txt", questions);
    if (tool == "tern-run" && cmd.find(" -n ") == std::string::npos) cmd += " -n 8";
    if (tool == "tern-chat") cmd += " -n 8 < /dev/null";
    const testing::CommandResult r = testing::run_command(cmd);
    EXPECT_EQ(r.exit_code, 0) << "README line: " << raw << "\nran: " << cmd << "\n" << r.out;
    ++ran;
  }
  // The Tools section shows tern-pack, tern-run (4), tern-chat, tern-info,
  // tern-bench (3) and kernel-bench: if the extraction breaks, fail loudly.
  EXPECT_GE(ran, 8u);
  std::remove(out_blob.c_str());
  std::remove(questions.c_str());
}

}  // namespace
}  // namespace tern
