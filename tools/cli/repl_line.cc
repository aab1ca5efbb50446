#include "tools/cli/repl_line.h"

#include <cstring>

#include "runtime/utf8.h"

namespace tern::cli {

static_assert(repl_clean_bytes(1) == utf8_sanitized_max(1), "clean buffer sizing must match utf8_sanitize");

LineRead read_repl_line(FILE* in, char* buf, size_t cap, size_t* len) {
  // getc, not fgets: fgets reports no length, so a NUL byte in the input would
  // cut the line short and glue its remainder onto the next line.
  size_t n = 0;
  bool any = false, too_long = false;
  for (;;) {
    const int c = std::getc(in);
    if (c == EOF) break;
    any = true;
    if (c == '\n') break;
    if (n < cap) {
      buf[n++] = char(c);
    } else {
      too_long = true;
    }
  }
  *len = 0;
  if (!any) return LineRead::kEnd;
  if (too_long) return LineRead::kTooLong;
  if (n > 0 && buf[n - 1] == '\r') --n;
  *len = n;
  return LineRead::kLine;
}

static bool is_command(const char* s, size_t n, const char* cmd) {
  const size_t c = std::strlen(cmd);
  return n == c && std::memcmp(s, cmd, c) == 0;
}

ReplInput parse_repl_line(const char* line, size_t len, char* clean, size_t clean_cap) {
  ReplInput r;
  // Invalid UTF-8 (truncated, overlong, surrogates, 0xFF) becomes U+FFFD.
  const size_t n = utf8_sanitize(line, len, clean, clean_cap);
  size_t b = 0, e = n;
  while (b < e && (clean[b] == ' ' || clean[b] == '\t')) ++b;
  while (e > b && (clean[e - 1] == ' ' || clean[e - 1] == '\t')) --e;
  const char* msg = clean + b;
  const size_t msg_len = e - b;
  if (msg_len == 0) return r;
  if (msg[0] == '/') {
    if (is_command(msg, msg_len, "/quit") || is_command(msg, msg_len, "/exit")) r.kind = ReplInputKind::kQuit;
    else if (is_command(msg, msg_len, "/help")) r.kind = ReplInputKind::kHelp;
    else if (is_command(msg, msg_len, "/reset")) r.kind = ReplInputKind::kReset;
    else if (is_command(msg, msg_len, "/stats")) r.kind = ReplInputKind::kStats;
    else r.kind = ReplInputKind::kUnknownCommand;
    return r;
  }
  r.kind = ReplInputKind::kMessage;
  r.text = msg;
  r.len = msg_len;
  return r;
}

}  // namespace tern::cli
