// The REPL's input handling, as functions the fuzzer and tests can call:
// reading one line from a stream into a fixed buffer, and turning a raw line
// into a command or a message (invalid UTF-8 replaced, surrounding blanks
// trimmed). tern-chat is a loop over these two; nothing here allocates.
#pragma once
#include <cstddef>
#include <cstdio>

namespace tern::cli {

enum class LineRead {
  kLine,     // buf[0, *len) holds the line, without its '\n' (and a '\r' before it)
  kTooLong,  // the line did not fit in cap bytes; it was read through its '\n' and dropped
  kEnd,      // end of input, nothing read
};

// Read one line of `in`. Every byte except '\n' is line content, NUL included
// (a NUL neither ends the line nor merges it with the next one). The last line
// may lack its '\n'.
LineRead read_repl_line(FILE* in, char* buf, size_t cap, size_t* len);

enum class ReplInputKind { kEmpty, kMessage, kQuit, kHelp, kReset, kStats, kUnknownCommand };

struct ReplInput {
  ReplInputKind kind = ReplInputKind::kEmpty;
  const char* text = nullptr;  // kMessage: the message (inside `clean`), valid UTF-8
  size_t len = 0;
};

// Bytes `clean` needs for a line of n bytes.
constexpr size_t repl_clean_bytes(size_t n) { return 3 * n; }

// Classify line[0, len): invalid UTF-8 becomes U+FFFD (written to clean,
// clean_cap >= repl_clean_bytes(len)), spaces and tabs around it are trimmed;
// blank -> kEmpty; "/quit" "/exit" "/help" "/reset" "/stats" -> commands;
// any other text starting with '/' -> kUnknownCommand; else kMessage.
ReplInput parse_repl_line(const char* line, size_t len, char* clean, size_t clean_cap);

}  // namespace tern::cli
