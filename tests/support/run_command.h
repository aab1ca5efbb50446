// Running the real binaries from tests: a shell command's exit code and its
// stdout + stderr, and the path of a tool in the build's bin/ folder.
#pragma once
#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace tern {
namespace testing {

struct CommandResult {
  int exit_code;    // -1 when the command did not exit normally
  std::string out;  // stdout and stderr, interleaved
};

inline CommandResult run_command(const std::string& cmd) {
  CommandResult r{-1, ""};
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

#ifdef TERN_BIN_DIR
inline std::string tool_path(const char* name) { return std::string(TERN_BIN_DIR) + "/" + name; }
#endif

}  // namespace testing
}  // namespace tern
