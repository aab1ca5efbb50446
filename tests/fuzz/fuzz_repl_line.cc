// Fuzz target: the REPL's input handling (tools/cli/repl_line.h), exactly as
// tern-chat runs it: the input is a stdin stream read line by line into a
// fixed buffer, each line classified. Checked against an independent split
// of the input on '\n': same lines, same too-long verdicts, same bytes, and
// every message handed to the model is non-empty, trimmed, valid UTF-8 and
// (when the line was valid UTF-8) exactly the trimmed line. The lines also go
// through the message joiner (""" blocks, \ continuations), and the raw bytes
// through the terminal line editor (tools/cli/line_editor.h) as keystrokes:
// its buffer, cursor and redraw output stay in bounds.
#include <cstdio>
#include <cstring>
#include <vector>

#include "runtime/utf8.h"
#include "tests/fuzz/fuzz_support.h"
#include "tools/cli/line_editor.h"
#include "tools/cli/repl_line.h"

using namespace tern;
using namespace tern::cli;

namespace {
bool blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
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
  std::vector<char> joined(cap), joined_clean(repl_clean_bytes(cap));
  MessageJoiner joiner;
  joiner.init(joined.data(), cap);

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
      } else if (r.kind == ReplInputKind::kSystem) {
        FUZZ_CHECK(r.text >= clean.data() && r.text + r.len <= clean.data() + clean.size(),
                   "system text outside the clean buffer");
        FUZZ_CHECK(r.len == 0 || (!blank(r.text[0]) && !blank(r.text[r.len - 1])), "system text not trimmed");
      } else {
        FUZZ_CHECK(r.text == nullptr && r.len == 0, "non-message carries text");
        if (r.kind == ReplInputKind::kEmpty) {
          for (size_t i = 0; i < len; ++i) FUZZ_CHECK(blank(line[i]), "non-blank line classified empty");
        }
      }
    }
    if (!too_long) {
      const MessageJoiner::Step step = joiner.add(line.data(), len);
      FUZZ_CHECK(joiner.len() <= cap, "joined message over its buffer");
      if (step == MessageJoiner::Step::kDone) {
        const ReplInput r = parse_repl_line(joiner.text(), joiner.len(), joined_clean.data(), joined_clean.size(),
                                            joiner.was_block());
        FUZZ_CHECK(r.kind != ReplInputKind::kMessage || utf8_valid(r.text, r.len), "joined message not UTF-8");
        if (joiner.was_block()) {
          FUZZ_CHECK(r.kind == ReplInputKind::kMessage || r.kind == ReplInputKind::kEmpty, "a block ran a command");
        }
      }
    }
    pos = nl ? end + 1 : size;
  }
  std::fclose(in);

  // The same bytes as keystrokes, fed in pieces of up to 7 bytes.
  std::vector<char> ed_line(cap), ed_stash(cap), ed_hist(64);
  std::vector<char> out(LineEditor::render_max(2));
  LineEditor ed;
  ed.init(ed_line.data(), ed_stash.data(), cap, ed_hist.data(), ed_hist.size());
  for (size_t at = 0; at < size;) {
    const size_t piece = size - at < 7 ? size - at : 7;
    LineEditor::Event ev;
    const size_t used = ed.feed(reinterpret_cast<const char*>(data) + at, piece, &ev);
    FUZZ_CHECK(used >= 1 && used <= piece, "feed consumed %zu of %zu", used, piece);
    at += used;
    FUZZ_CHECK(ed.len() <= cap && ed.cursor() <= ed.len(), "editor state out of bounds");
    const size_t n = ed.render("> ", 2, unsigned(data[at - 1]) + 1, out.data(), out.size());
    FUZZ_CHECK(n <= out.size(), "render overran");
    if (ev == LineEditor::Event::kEnter) ed.history_add(ed.line(), ed.len());
    if (ev != LineEditor::Event::kNone) ed.begin();
  }
  return 0;
}
