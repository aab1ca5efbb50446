// The REPL's input handling, as functions the fuzzer and tests can call:
// reading one line from a stream into a fixed buffer, joining lines into one
// message (`"""` blocks, a trailing `\`), and turning the text into a command
// or a message (invalid UTF-8 replaced, surrounding blanks trimmed).
// tern-chat is a loop over these; nothing here allocates.
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

// Joins input lines into one message, as Ollama does: a line starting with
// `"""` opens a block that runs through the next line ending in `"""` (text
// after the opening and before the closing quotes included; lines joined
// with '\n'; `"""text"""` on one line is a block too). Outside a block a
// line ending in `\` continues on the next line (the `\` becomes '\n').
// A block is always a message, even if it starts with '/'.
class MessageJoiner {
 public:
  enum class Step {
    kMore,     // more lines needed (show a continuation prompt)
    kDone,     // text()[0, len()) is the message
    kTooLong,  // the message ended but did not fit in cap bytes; it was dropped
  };
  void init(char* buf, size_t cap);
  Step add(const char* line, size_t len);
  // A block or continuation is open.
  bool pending() const { return mode_ != Mode::kIdle; }
  bool in_block() const { return mode_ == Mode::kBlock; }
  // Drop what is pending (Ctrl-C at a continuation prompt).
  void cancel();
  const char* text() const { return buf_; }
  size_t len() const { return len_; }
  // The finished message came from a `"""` block.
  bool was_block() const { return was_block_; }

 private:
  enum class Mode { kIdle, kBlock, kContinue };
  void append(const char* s, size_t n);
  Step finish(bool block);
  char* buf_ = nullptr;
  size_t cap_ = 0, len_ = 0;
  Mode mode_ = Mode::kIdle;
  bool overflow_ = false, was_block_ = false;
};

enum class ReplInputKind { kEmpty, kMessage, kQuit, kHelp, kReset, kStats, kSystem, kUnknownCommand };

struct ReplInput {
  ReplInputKind kind = ReplInputKind::kEmpty;
  // kMessage: the message (inside `clean`), valid UTF-8, non-empty.
  // kSystem: the text after "/system" (trimmed; may be empty: show it).
  const char* text = nullptr;
  size_t len = 0;
  size_t replaced = 0;  // invalid UTF-8 units replaced by U+FFFD
};

// Bytes `clean` needs for a line of n bytes.
constexpr size_t repl_clean_bytes(size_t n) { return 3 * n; }

// Classify line[0, len): invalid UTF-8 becomes U+FFFD (written to clean,
// clean_cap >= repl_clean_bytes(len)), blanks (space, tab, newline, CR)
// around it are trimmed; blank -> kEmpty; "/quit" "/exit" "/help" "/reset"
// "/stats" -> commands; "/system" alone or followed by a blank and text ->
// kSystem; any other text starting with '/' -> kUnknownCommand; else kMessage.
// With `always_message` (a `"""` block), non-blank text is always kMessage.
ReplInput parse_repl_line(const char* line, size_t len, char* clean, size_t clean_cap, bool always_message = false);

}  // namespace tern::cli
