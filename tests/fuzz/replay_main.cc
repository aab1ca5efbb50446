// Replays fuzz inputs without libFuzzer: every file named on the command line,
// or inside a folder named there, goes through LLVMFuzzerTestOneInput once.
// This is how the committed seed corpus and tests/fuzz/regressions/ run in the
// ordinary (and sanitizer) CTest suite with any compiler. A harness signals a
// finding by aborting (or a sanitizer report), so reaching the end is a pass.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fs = std::filesystem;

static bool replay(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "replay: cannot read %s\n", p.c_str());
    return false;
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // A heap copy of exactly the input size, so ASan sees reads past the end.
  uint8_t* copy = new uint8_t[bytes.size() ? bytes.size() : 1];
  std::copy(bytes.begin(), bytes.end(), copy);
  LLVMFuzzerTestOneInput(copy, bytes.size());
  delete[] copy;
  return true;
}

int main(int argc, char** argv) {
  size_t n = 0;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg(argv[i]);
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      std::vector<fs::path> files;
      for (const auto& e : fs::recursive_directory_iterator(arg)) {
        if (e.is_regular_file() && e.path().filename() != "README.md") files.push_back(e.path());
      }
      std::sort(files.begin(), files.end());
      for (const auto& p : files) ok &= replay(p), ++n;
    } else if (fs::exists(arg, ec)) {
      ok &= replay(arg), ++n;
    }  // a missing folder (no regressions yet) is not an error
  }
  std::printf("replayed %zu inputs\n", n);
  return ok ? 0 : 1;
}
