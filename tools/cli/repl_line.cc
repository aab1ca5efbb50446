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

namespace {

bool blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool starts_with_quotes(const char* s, size_t n) { return n >= 3 && std::memcmp(s, "\"\"\"", 3) == 0; }
bool ends_with_quotes(const char* s, size_t n) { return n >= 3 && std::memcmp(s + n - 3, "\"\"\"", 3) == 0; }

size_t trim_end(const char* s, size_t n) {
  while (n > 0 && blank(s[n - 1])) --n;
  return n;
}

}  // namespace

void MessageJoiner::init(char* buf, size_t cap) {
  buf_ = buf;
  cap_ = cap;
  cancel();
}

void MessageJoiner::cancel() {
  len_ = 0;
  mode_ = Mode::kIdle;
  overflow_ = false;
  was_block_ = false;
}

void MessageJoiner::append(const char* s, size_t n) {
  if (overflow_ || n > cap_ - len_) {
    overflow_ = true;
    return;
  }
  std::memcpy(buf_ + len_, s, n);
  len_ += n;
}

MessageJoiner::Step MessageJoiner::finish(bool block) {
  mode_ = Mode::kIdle;
  was_block_ = block;
  if (overflow_) {
    len_ = 0;
    overflow_ = false;
    return Step::kTooLong;
  }
  return Step::kDone;
}

MessageJoiner::Step MessageJoiner::add(const char* line, size_t len) {
  switch (mode_) {
    case Mode::kIdle: {
      len_ = 0;
      overflow_ = false;
      was_block_ = false;
      size_t b = 0;
      while (b < len && blank(line[b])) ++b;
      if (starts_with_quotes(line + b, len - b)) {
        const char* rest = line + b + 3;
        const size_t rest_len = trim_end(rest, len - b - 3);
        if (ends_with_quotes(rest, rest_len)) {  // """text""" on one line
          append(rest, rest_len - 3);
          return finish(true);
        }
        append(rest, len - b - 3);
        mode_ = Mode::kBlock;
        return Step::kMore;
      }
      const size_t e = trim_end(line, len);
      if (e > 0 && line[e - 1] == '\\') {
        append(line, e - 1);
        append("\n", 1);
        mode_ = Mode::kContinue;
        return Step::kMore;
      }
      append(line, len);
      return finish(false);
    }
    case Mode::kBlock: {
      append("\n", 1);
      const size_t e = trim_end(line, len);
      if (ends_with_quotes(line, e)) {
        append(line, e - 3);
        return finish(true);
      }
      append(line, len);
      return Step::kMore;
    }
    case Mode::kContinue: {
      const size_t e = trim_end(line, len);
      if (e > 0 && line[e - 1] == '\\') {
        append(line, e - 1);
        append("\n", 1);
        return Step::kMore;
      }
      append(line, len);
      return finish(false);
    }
  }
  return Step::kMore;
}

static bool is_command(const char* s, size_t n, const char* cmd) {
  const size_t c = std::strlen(cmd);
  return n == c && std::memcmp(s, cmd, c) == 0;
}

ReplInput parse_repl_line(const char* line, size_t len, char* clean, size_t clean_cap, bool always_message) {
  ReplInput r;
  // Invalid UTF-8 (truncated, overlong, surrogates, 0xFF) becomes U+FFFD.
  const size_t n = utf8_sanitize(line, len, clean, clean_cap);
  if (!utf8_valid(line, len)) {
    // Count the units replaced: the U+FFFDs the output has beyond the input's.
    size_t in_fffd = 0, out_fffd = 0;
    for (size_t i = 0; i + 3 <= len; ++i) in_fffd += std::memcmp(line + i, "\xEF\xBF\xBD", 3) == 0;
    for (size_t i = 0; i + 3 <= n; ++i) out_fffd += std::memcmp(clean + i, "\xEF\xBF\xBD", 3) == 0;
    r.replaced = out_fffd > in_fffd ? out_fffd - in_fffd : 1;
  }
  size_t b = 0, e = n;
  while (b < e && blank(clean[b])) ++b;
  while (e > b && blank(clean[e - 1])) --e;
  const char* msg = clean + b;
  const size_t msg_len = e - b;
  if (msg_len == 0) return ReplInput{};
  if (msg[0] == '/' && !always_message) {
    if (is_command(msg, msg_len, "/quit") || is_command(msg, msg_len, "/exit")) r.kind = ReplInputKind::kQuit;
    else if (is_command(msg, msg_len, "/help")) r.kind = ReplInputKind::kHelp;
    else if (is_command(msg, msg_len, "/reset")) r.kind = ReplInputKind::kReset;
    else if (is_command(msg, msg_len, "/stats")) r.kind = ReplInputKind::kStats;
    else if (msg_len >= 7 && std::memcmp(msg, "/system", 7) == 0 && (msg_len == 7 || blank(msg[7]))) {
      r.kind = ReplInputKind::kSystem;
      size_t a = 7;
      while (a < msg_len && blank(msg[a])) ++a;
      r.text = msg + a;
      r.len = msg_len - a;
    } else {
      r.kind = ReplInputKind::kUnknownCommand;
    }
    return r;
  }
  r.kind = ReplInputKind::kMessage;
  r.text = msg;
  r.len = msg_len;
  return r;
}

}  // namespace tern::cli
