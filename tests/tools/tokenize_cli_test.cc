// tern-run --tokenize end to end on tiny models built by the real tools:
// make-tiny-gguf --tokenizer spm|bpe, tern-pack, tern-run. The ids it prints
// equal the engine's own encoding (the BOS rule and the chat format
// included); --json gives ids and pieces; the prompt comes from -p, -f FILE
// or -f -; --prompt-ids reads the printed list back.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/chat_format.h"
#include "runtime/engine.h"
#include "tests/support/run_command.h"

namespace tern {
namespace {

using testing::run_command;
using testing::tool_path;

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/tern_tokenize_cli_XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

// One tiny blob per tokenizer scheme, built once.
class TokenizeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    for (const char* kind : {"spm", "bpe"}) {
      const std::string gguf = dir_->path + "/" + kind + ".gguf", blob = dir_->path + "/" + kind + ".tern";
      auto r = run_command(tool_path("make-tiny-gguf") + " " + gguf + " --tokenizer " + kind);
      ASSERT_EQ(r.exit_code, 0) << r.out;
      r = run_command(tool_path("tern-pack") + " " + gguf + " -o " + blob + " --weights int8 --max-context 256");
      ASSERT_EQ(r.exit_code, 0) << r.out;
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string blob(const char* kind) { return dir_->path + "/" + kind + ".tern"; }
  static std::string run(const std::string& args, int want_exit = 0) {
    const auto r = run_command(tool_path("tern-run") + " " + args);
    EXPECT_EQ(r.exit_code, want_exit) << args << "\n" << r.out;
    return r.out;
  }
  // The engine's ids for a plain prompt (or a chat turn), as "[a, b, c]\n".
  static std::string engine_ids(const char* kind, const std::string& text, bool bos, bool chat) {
    Engine e;
    EngineOptions o;
    const std::string path = blob(kind);
    o.model_path = path.c_str();
    const Status st = e.open(o);
    EXPECT_TRUE(st.is_ok()) << st.message();
    std::vector<int32_t> ids(text.size() + 64);
    size_t n = 0;
    Status s;
    if (chat) {
      ChatFormat fmt = e.chat();
      if (!bos) fmt.bos = -1;
      s = chat_encode_user_turn(&e.tokenizer(), fmt, true, false, text.data(), text.size(), ids.data(), ids.size(), &n);
    } else {
      s = e.tokenizer().encode_prompt(text.data(), text.size(), false, bos, ids.data(), ids.size(), &n);
    }
    EXPECT_TRUE(s.is_ok()) << s.message();
    std::string out = "[";
    for (size_t i = 0; i < n; ++i) out += (i ? ", " : "") + std::to_string(ids[i]);
    return out + "]\n";
  }
  static TempDir* dir_;
};
TempDir* TokenizeCli::dir_ = nullptr;

TEST_F(TokenizeCli, PrintsTheEnginesIdsOnOneLine) {
  const std::string text = "hello the world";
  const std::string out = run("-m " + blob("spm") + " -p '" + text + "' --tokenize");
  EXPECT_EQ(out, engine_ids("spm", text, true, false));
  EXPECT_EQ(out.rfind("[2, ", 0), 0u) << "Gemma-style vocabulary: BOS 2 first\n" << out;
  EXPECT_EQ(run("-m " + blob("spm") + " -p '" + text + "' --tokenize --no-bos"), engine_ids("spm", text, false, false));
  // Byte-level BPE: no BOS (add_bos_token false).
  EXPECT_EQ(run("-m " + blob("bpe") + " -p '" + text + "' --tokenize"), engine_ids("bpe", text, true, false));
  // The chat formats: Gemma from the vocabulary, ChatML from the template.
  const std::string chat = run("-m " + blob("spm") + " -p '" + text + "' --tokenize --chat");
  EXPECT_EQ(chat, engine_ids("spm", text, true, true));
  EXPECT_EQ(chat.rfind("[2, 4, ", 0), 0u) << "<bos><start_of_turn>\n" << chat;
  EXPECT_NE(chat.find(", 5, "), std::string::npos) << "<end_of_turn>\n" << chat;
  EXPECT_EQ(run("-m " + blob("spm") + " -p '" + text + "' --tokenize --chat --no-bos").rfind("[4, ", 0), 0u);
  const std::string chatml = run("-m " + blob("bpe") + " -p '" + text + "' --tokenize --chat");
  EXPECT_EQ(chatml, engine_ids("bpe", text, true, true));
  EXPECT_NE(chatml.find("[1, "), std::string::npos) << "<|im_start|> (id 1) first\n" << chatml;
}

TEST_F(TokenizeCli, PromptFromFileAndStandardInput) {
  const std::string file = dir_->path + "/prompt.txt";
  std::ofstream(file) << "hello the world\n";  // one trailing newline is dropped, as llama.cpp's -f does
  const std::string want = engine_ids("spm", "hello the world", true, false);
  EXPECT_EQ(run("-m " + blob("spm") + " -f " + file + " --tokenize"), want);
  const auto r = run_command("printf 'hello the world' | " + tool_path("tern-run") + " -m " + blob("spm") +
                             " -f - --tokenize");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, want);
}

TEST_F(TokenizeCli, JsonHasIdsAndPieces) {
  // "é" has no token in this vocabulary: byte fallback, two byte tokens whose
  // pieces are not UTF-8 alone ({"hex":..}).
  const std::string out = run("-m " + blob("spm") + " -p 'hello é\n<end_of_turn>' --tokenize --json");
  EXPECT_EQ(out.rfind("{\"ids\":[2,", 0), 0u) << out;
  EXPECT_NE(out.find("\"pieces\":[\"<bos>\",\"he"), std::string::npos) << out;
  EXPECT_NE(out.find("{\"hex\":\"c3\"},{\"hex\":\"a9\"}"), std::string::npos) << out;
  EXPECT_NE(out.find("\"\\n\""), std::string::npos) << "the newline piece, escaped\n" << out;
  EXPECT_NE(out.find("\"n_tokens\":"), std::string::npos) << out;
  // Without --special the typed <end_of_turn> is text; with it, one token.
  EXPECT_EQ(out.find(",5,"), std::string::npos) << out;
  const std::string sp = run("-m " + blob("spm") + " -p 'hello<end_of_turn>' --tokenize --json --special");
  EXPECT_NE(sp.find(",5]"), std::string::npos) << sp;
  EXPECT_NE(sp.find("\"<end_of_turn>\""), std::string::npos) << sp;
}

TEST_F(TokenizeCli, PromptIdsReadTheListBack) {
  const std::string ids = run("-m " + blob("spm") + " -p 'hello the world' --tokenize");
  const std::string list = ids.substr(0, ids.size() - 1);
  const std::string out = run("-m " + blob("spm") + " --prompt-ids '" + list + "' -n 0 --json");
  EXPECT_NE(out.find("\"prompt_tokens\":" + std::to_string(std::count(list.begin(), list.end(), ',') + 1)),
            std::string::npos) << out;
  EXPECT_NE(run("-m " + blob("spm") + " --prompt-ids '[2, 3' -n 0", 1).find("']'"), std::string::npos);
}

TEST_F(TokenizeCli, UsageAndErrors) {
  const std::string help = run("--help");
  for (const char* flag : {"--tokenize", "--no-bos", "\"hex\""}) EXPECT_NE(help.find(flag), std::string::npos) << flag;
  EXPECT_NE(run("-m " + blob("spm") + " --prompt-ids 1,2 --tokenize", 2).find("--tokenize"), std::string::npos);
  EXPECT_NE(run("-m " + blob("spm") + " -p x --tokenize --score", 2).find("--tokenize"), std::string::npos);
  EXPECT_NE(run("-m " + dir_->path + "/missing.tern -p x --tokenize", 1).find("cannot open"), std::string::npos);
  const std::string j = run("-m " + dir_->path + "/missing.tern -p x --tokenize --json", 1);
  EXPECT_NE(j.find("\"status\":\"io_error\""), std::string::npos) << j;
}

}  // namespace
}  // namespace tern
