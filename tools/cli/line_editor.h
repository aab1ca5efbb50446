// A line editor as a pure state machine: terminal input bytes in, a line
// buffer, a cursor and the bytes that redraw the line out. No OS calls: the
// REPL reads the terminal (port/terminal.h) and writes what render() gives;
// tests feed bytes and look at the state.
//
// Keys: printable text (UTF-8) inserts at the cursor; Left/Right (also
// Ctrl-B/Ctrl-F) move by character (a base character with its combining
// marks is one), Ctrl-Left/Right and Alt-B/Alt-F by word; Home/End (also
// Ctrl-A/Ctrl-E); Backspace (DEL or Ctrl-H), Delete, Ctrl-D (deletes under the
// cursor; on an empty line it is end of input); Ctrl-K kills to the end,
// Ctrl-U to the start, Ctrl-W the word before the cursor; Up/Down (also
// Ctrl-P/Ctrl-N) walk the history, keeping the line being typed; Ctrl-L
// clears the screen; Enter (CR or LF; CR LF counts once) ends the line;
// Ctrl-C is reported as an interrupt. Other control bytes and unknown escape
// sequences are ignored.
//
// The line shows on one terminal row: a longer one scrolls horizontally so
// the cursor stays visible (as linenoise's single-line mode). Columns count
// wide (CJK, emoji) characters as 2 and combining marks as 0.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tern::cli {

// Terminal columns of a code point: 0 (combining marks, zero-width), 2 (East
// Asian wide and fullwidth, emoji), else 1.
int codepoint_columns(uint32_t cp);

class LineEditor {
 public:
  enum class Event {
    kNone,       // all input consumed, the line goes on
    kEnter,      // the line is done: line()[0, len())
    kEof,        // Ctrl-D on an empty line
    kInterrupt,  // Ctrl-C (the line is left as it was)
  };
  static constexpr uint32_t kMaxHistory = 100;
  static constexpr unsigned kMaxColumns = 512;  // wider terminals are drawn as this wide

  // line, stash: cap bytes each (stash keeps the line being typed while the
  // history is shown); history: history_cap bytes for past lines.
  void init(char* line, char* stash, size_t cap, char* history, size_t history_cap);
  // Start a new, empty line.
  void begin();
  // Consume input bytes up to and including the first one that ends with an
  // event (Enter, end of input, interrupt); returns the bytes consumed and
  // sets *event. Escape sequences may be split across calls.
  size_t feed(const char* in, size_t n, Event* event);

  // Bytes render() writes at most for a prompt of prompt_len bytes.
  static constexpr size_t render_max(size_t prompt_len) { return 32 + prompt_len + 4 * kMaxColumns + 16; }
  // Draw the prompt and the visible part of the line on the current row of a
  // terminal `columns` wide, and put the cursor in place. out needs
  // render_max(prompt_len) bytes; returns the bytes written.
  size_t render(const char* prompt, size_t prompt_len, unsigned columns, char* out, size_t cap);

  const char* line() const { return line_; }
  size_t len() const { return len_; }
  size_t cursor() const { return cursor_; }  // byte offset in line()
  // Input was dropped because the line was full (cap bytes).
  bool overflow() const { return overflow_; }

  // Remember a line (not an empty one, not a repeat of the last); the oldest
  // go when kMaxHistory lines or history_cap bytes are used.
  void history_add(const char* s, size_t n);
  uint32_t history_count() const { return n_hist_; }

 private:
  enum class Esc : uint8_t { kNone, kEsc, kCsi, kSs3 };
  Event key(uint8_t c);
  void csi(uint8_t final_byte);
  void insert(const char* s, size_t n);
  void erase(size_t from, size_t to);
  size_t prev_char(size_t pos) const;
  size_t next_char(size_t pos) const;
  size_t prev_word(size_t pos) const;
  size_t next_word(size_t pos) const;
  void show_history(uint32_t index);
  const char* hist_entry(uint32_t i, size_t* n) const;

  char* line_ = nullptr;
  char* stash_ = nullptr;
  size_t cap_ = 0, len_ = 0, cursor_ = 0, stash_len_ = 0;
  bool overflow_ = false;
  bool after_cr_ = false;
  bool clear_screen_ = false;
  Esc esc_ = Esc::kNone;
  char csi_params_[16] = {};
  uint8_t csi_len_ = 0;
  size_t scroll_ = 0;  // columns of the line hidden on the left

  char* hist_ = nullptr;  // entries back to back, oldest first
  size_t hist_cap_ = 0, hist_used_ = 0;
  uint32_t hist_len_[kMaxHistory] = {};
  uint32_t n_hist_ = 0;
  uint32_t hist_pos_ = 0;  // == n_hist_: the line being typed
};

}  // namespace tern::cli
