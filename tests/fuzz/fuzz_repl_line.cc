// Fuzz target: the REPL's input handling (tools/cli/repl_line.h), exactly as
// tern-chat runs it: the input is a stdin stream read line by line into a
// fixed buffer, each line classified. Checked against an independent split
// of the input on '\n': same lines, same too-long verdicts, same bytes, and
// every message handed to the model is non-empty, trimmed, valid UTF-8 and
// (when the line was valid UTF-8) exactly the trimmed line.
#include <cstdio>
#include <cstring>
#include <vector>

#include "runtime/utf8.h"
#include "tests/fuzz/fuzz_support.h"
#include "tools/cli/repl_line.h"

using namespace tern;
using namespace tern::cli;

namespace {
bool blank(char c) { return c == ' ' || c == '\t'; }
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // First byte picks the line buffer size: small ones reach the too-long path.
  const size_t cap = data[0] < 128 ? size_t(data[0] % 32) + 1 : 4096;
  ++data, --size;
  if (size == 0) return 0;
  FILE* in = fmemopen(const_cast<uint8_t*>(data), size, "rb");
  FUZZ_CHECK(in != nullptr, "fmemopen failed");
  std::vector<char> line(cap), clean(repl_clean_bytes(cap));

  size_t pos = 0;  // the reference split
  for (;;) {
    size_t len = 12345;
    const LineRead got = read_repl_line(in, line.data(), cap, &len);
    if (pos == size) {
      FUZZ_CHECK(got == LineRead::kEnd, "expected end of input at byte %zu", pos);
      break;
    }
    const uint8_t* nl = static_cast<const uint8_t*>(std::memchr(data + pos, '\n', size - pos));
    const size_t end = nl ? size_t(nl - data) : size;
    size_t want = end - pos;
    const bool too_long = want > cap;
    if (!too_long && want > 0 && data[pos + want - 1] == '\r') --want;
    FUZZ_CHECK(got == (too_long ? LineRead::kTooLong : LineRead::kLine), "line at byte %zu: wrong verdict", pos);
    if (!too_long) {
      FUZZ_CHECK(len == want && std::memcmp(line.data(), data + pos, want) == 0, "line at byte %zu differs", pos);
      const ReplInput r = parse_repl_line(line.data(), len, clean.data(), clean.size());
      if (r.kind == ReplInputKind::kMessage) {
        FUZZ_CHECK(r.len > 0 && r.text >= clean.data() && r.text + r.len <= clean.data() + clean.size(),
                   "message outside the clean buffer");
        FUZZ_CHECK(!blank(r.text[0]) && !blank(r.text[r.len - 1]) && r.text[0] != '/', "message not trimmed");
        FUZZ_CHECK(utf8_valid(r.text, r.len), "message is not valid UTF-8");
        if (utf8_valid(line.data(), len)) {
          size_t b = 0, e = len;
          while (b < e && blank(line[b])) ++b;
          while (e > b && blank(line[e - 1])) --e;
          FUZZ_CHECK(r.len == e - b && std::memcmp(r.text, line.data() + b, r.len) == 0,
                     "valid line changed on its way to the model");
        }
      } else {
        FUZZ_CHECK(r.text == nullptr && r.len == 0, "non-message carries text");
        if (r.kind == ReplInputKind::kEmpty) {
          for (size_t i = 0; i < len; ++i) FUZZ_CHECK(blank(line[i]), "non-blank line classified empty");
        }
      }
    }
    pos = nl ? end + 1 : size;
  }
  std::fclose(in);
  return 0;
}
