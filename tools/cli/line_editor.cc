#include "tools/cli/line_editor.h"

#include <cstdio>
#include <cstring>

#include "runtime/utf8.h"

namespace tern::cli {

int codepoint_columns(uint32_t cp) {
  struct Range {
    uint32_t lo, hi;
  };
  // Combining marks and zero-width characters.
  static const Range kZero[] = {{0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A},
                                {0x064B, 0x065F}, {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF}, {0x200B, 0x200F},
                                {0x20D0, 0x20FF}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}, {0xE0100, 0xE01EF}};
  // East Asian wide / fullwidth, and the emoji blocks terminals draw wide.
  static const Range kWide[] = {{0x1100, 0x115F},   {0x2E80, 0x303E},   {0x3041, 0x33FF},   {0x3400, 0x4DBF},
                                {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},
                                {0xFE30, 0xFE4F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x1F300, 0x1F64F},
                                {0x1F680, 0x1F6FF}, {0x1F900, 0x1F9FF}, {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD}};
  if (cp == kUtf8Invalid) return 1;  // drawn as U+FFFD
  for (const Range& r : kZero) {
    if (cp >= r.lo && cp <= r.hi) return 0;
  }
  for (const Range& r : kWide) {
    if (cp >= r.lo && cp <= r.hi) return 2;
  }
  return 1;
}

namespace {

bool word_char(char c) { return c != ' ' && c != '\t'; }

// One unit at s[0, n): its code point and byte length.
size_t unit(const char* s, size_t n, uint32_t* cp) {
  return utf8_decode(reinterpret_cast<const uint8_t*>(s), n, cp);
}

}  // namespace

void LineEditor::init(char* line, char* stash, size_t cap, char* history, size_t history_cap) {
  line_ = line;
  stash_ = stash;
  cap_ = cap;
  hist_ = history;
  hist_cap_ = history_cap;
  hist_used_ = 0;
  n_hist_ = 0;
  after_cr_ = false;
  begin();
}

void LineEditor::begin() {
  len_ = 0;
  cursor_ = 0;
  stash_len_ = 0;
  overflow_ = false;
  esc_ = Esc::kNone;
  csi_len_ = 0;
  scroll_ = 0;
  hist_pos_ = n_hist_;
  // after_cr_ stays: the LF of a CR LF may arrive after the CR ended the line.
}

size_t LineEditor::feed(const char* in, size_t n, Event* event) {
  *event = Event::kNone;
  size_t i = 0;
  while (i < n) {
    const uint8_t c = uint8_t(in[i]);
    if (esc_ == Esc::kNone && c >= 0x20 && c != 0x7F) {
      // A run of text (typed or pasted) goes in with one insert.
      size_t j = i + 1;
      while (j < n && uint8_t(in[j]) >= 0x20 && uint8_t(in[j]) != 0x7F) ++j;
      after_cr_ = false;
      insert(in + i, j - i);
      i = j;
      continue;
    }
    ++i;
    const Event e = key(c);
    if (e != Event::kNone) {
      *event = e;
      return i;
    }
  }
  return n;
}

LineEditor::Event LineEditor::key(uint8_t c) {
  const bool was_cr = after_cr_;
  after_cr_ = false;
  switch (esc_) {
    case Esc::kNone: break;
    case Esc::kEsc:
      esc_ = Esc::kNone;
      if (c == '[') {
        esc_ = Esc::kCsi;
        csi_len_ = 0;
      } else if (c == 'O') {
        esc_ = Esc::kSs3;
      } else if (c == 'b' || c == 'B') {
        cursor_ = prev_word(cursor_);
      } else if (c == 'f' || c == 'F') {
        cursor_ = next_word(cursor_);
      } else if (c == 'd') {
        erase(cursor_, next_word(cursor_));
      } else if (c == 0x7F || c == 8) {
        erase(prev_word(cursor_), cursor_);
      }
      return Event::kNone;
    case Esc::kCsi:
      if (c >= 0x30 && c <= 0x3F) {
        if (csi_len_ < sizeof(csi_params_) - 1) csi_params_[csi_len_++] = char(c);
      } else if (c >= 0x40 && c <= 0x7E) {
        esc_ = Esc::kNone;
        csi_params_[csi_len_] = 0;
        csi(c);
      } else if (c < 0x20 || c > 0x7E) {
        esc_ = Esc::kNone;  // not a CSI sequence after all
      }
      return Event::kNone;
    case Esc::kSs3:
      esc_ = Esc::kNone;
      csi_len_ = 0;
      csi_params_[0] = 0;
      if (c >= 0x40 && c <= 0x7E) csi(c);
      return Event::kNone;
  }
  switch (c) {
    case 1: cursor_ = 0; break;                                   // Ctrl-A
    case 2: cursor_ = prev_char(cursor_); break;                  // Ctrl-B
    case 3: return Event::kInterrupt;                             // Ctrl-C
    case 4:                                                       // Ctrl-D
      if (len_ == 0) return Event::kEof;
      erase(cursor_, next_char(cursor_));
      break;
    case 5: cursor_ = len_; break;                                // Ctrl-E
    case 6: cursor_ = next_char(cursor_); break;                  // Ctrl-F
    case 8: case 0x7F: erase(prev_char(cursor_), cursor_); break; // Ctrl-H, Backspace
    case 9: insert("\t", 1); break;                               // Tab: text
    case 10:                                                      // LF
      if (was_cr) break;                                          // the LF of CR LF
      return Event::kEnter;
    case 11: erase(cursor_, len_); break;                         // Ctrl-K
    case 12: clear_screen_ = true; break;                         // Ctrl-L
    case 13: after_cr_ = true; return Event::kEnter;              // CR
    case 14: if (hist_pos_ < n_hist_) show_history(hist_pos_ + 1); break;  // Ctrl-N
    case 16: if (hist_pos_ > 0) show_history(hist_pos_ - 1); break;        // Ctrl-P
    case 21: erase(0, cursor_); break;                            // Ctrl-U
    case 23: erase(prev_word(cursor_), cursor_); break;           // Ctrl-W
    case 27: esc_ = Esc::kEsc; break;
    default: break;  // other control bytes
  }
  return Event::kNone;
}

void LineEditor::csi(uint8_t f) {
  // Parameters "P1;P2": P2 is the modifier (5 Ctrl, 3 Alt) of a cursor key.
  unsigned p[2] = {0, 0};
  unsigned k = 0;
  for (uint8_t i = 0; i < csi_len_; ++i) {
    const char ch = csi_params_[i];
    if (ch >= '0' && ch <= '9') {
      if (p[k] < 100000) p[k] = p[k] * 10 + unsigned(ch - '0');
    } else if (ch == ';') {
      if (++k == 2) break;
    } else {
      return;  // private sequences ('?', '<', ...) are not keys
    }
  }
  const bool word = p[1] == 5 || p[1] == 3;
  switch (f) {
    case 'A': if (hist_pos_ > 0) show_history(hist_pos_ - 1); break;
    case 'B': if (hist_pos_ < n_hist_) show_history(hist_pos_ + 1); break;
    case 'C': cursor_ = word ? next_word(cursor_) : next_char(cursor_); break;
    case 'D': cursor_ = word ? prev_word(cursor_) : prev_char(cursor_); break;
    case 'H': cursor_ = 0; break;
    case 'F': cursor_ = len_; break;
    case '~':
      if (p[0] == 1 || p[0] == 7) cursor_ = 0;
      else if (p[0] == 4 || p[0] == 8) cursor_ = len_;
      else if (p[0] == 3) erase(cursor_, next_char(cursor_));
      break;  // 200~ / 201~ (bracketed paste) and the rest: nothing
    default: break;
  }
}

void LineEditor::insert(const char* s, size_t n) {
  if (n > cap_ - len_) {
    overflow_ = true;
    n = cap_ - len_;
  }
  if (n == 0) return;
  std::memmove(line_ + cursor_ + n, line_ + cursor_, len_ - cursor_);
  std::memcpy(line_ + cursor_, s, n);
  len_ += n;
  cursor_ += n;
}

void LineEditor::erase(size_t from, size_t to) {
  if (from >= to || to > len_) return;
  std::memmove(line_ + from, line_ + to, len_ - to);
  len_ -= to - from;
  cursor_ = from;
}

size_t LineEditor::prev_char(size_t pos) const {
  for (;;) {
    if (pos == 0) return 0;
    // The unit ending at pos: the longest k whose decode from pos - k is k bytes.
    size_t p = pos - 1;
    for (size_t k = 4; k >= 2; --k) {
      if (pos >= k) {
        uint32_t cp;
        if (unit(line_ + pos - k, len_ - (pos - k), &cp) == k) {
          p = pos - k;
          break;
        }
      }
    }
    uint32_t cp;
    unit(line_ + p, len_ - p, &cp);
    pos = p;
    if (codepoint_columns(cp) != 0) return pos;  // combining marks go with their base
  }
}

size_t LineEditor::next_char(size_t pos) const {
  if (pos >= len_) return len_;
  uint32_t cp;
  pos += unit(line_ + pos, len_ - pos, &cp);
  while (pos < len_) {
    const size_t u = unit(line_ + pos, len_ - pos, &cp);
    if (codepoint_columns(cp) != 0) break;
    pos += u;
  }
  return pos;
}

size_t LineEditor::prev_word(size_t pos) const {
  while (pos > 0 && !word_char(line_[pos - 1])) --pos;
  while (pos > 0 && word_char(line_[pos - 1])) --pos;
  return pos;
}

size_t LineEditor::next_word(size_t pos) const {
  while (pos < len_ && !word_char(line_[pos])) ++pos;
  while (pos < len_ && word_char(line_[pos])) ++pos;
  return pos;
}

const char* LineEditor::hist_entry(uint32_t i, size_t* n) const {
  size_t off = 0;
  for (uint32_t k = 0; k < i; ++k) off += hist_len_[k];
  *n = hist_len_[i];
  return hist_ + off;
}

void LineEditor::show_history(uint32_t index) {
  if (hist_pos_ == n_hist_) {  // leaving the line being typed: keep it
    std::memcpy(stash_, line_, len_);
    stash_len_ = len_;
  }
  hist_pos_ = index;
  const char* src = stash_;
  size_t n = stash_len_;
  if (index < n_hist_) src = hist_entry(index, &n);
  if (n > cap_) n = cap_;
  std::memmove(line_, src, n);
  len_ = n;
  cursor_ = n;
  overflow_ = false;
}

void LineEditor::history_add(const char* s, size_t n) {
  if (n == 0 || n > hist_cap_ || n > UINT32_MAX) return;
  if (n_hist_ > 0) {
    size_t last_n = 0;
    const char* last = hist_entry(n_hist_ - 1, &last_n);
    if (last_n == n && std::memcmp(last, s, n) == 0) return;
  }
  while (n_hist_ == kMaxHistory || hist_used_ + n > hist_cap_) {
    const size_t drop = hist_len_[0];
    std::memmove(hist_, hist_ + drop, hist_used_ - drop);
    hist_used_ -= drop;
    std::memmove(hist_len_, hist_len_ + 1, (n_hist_ - 1) * sizeof(hist_len_[0]));
    --n_hist_;
  }
  std::memcpy(hist_ + hist_used_, s, n);
  hist_used_ += n;
  hist_len_[n_hist_++] = uint32_t(n);
  hist_pos_ = n_hist_;
}

size_t LineEditor::render(const char* prompt, size_t prompt_len, unsigned columns, char* out, size_t cap) {
  size_t o = 0;
  auto put = [&](const char* s, size_t n) {
    if (n <= cap - o) {
      std::memcpy(out + o, s, n);
      o += n;
    }
  };
  if (clear_screen_) {
    put("\x1b[H\x1b[2J", 7);
    clear_screen_ = false;
  }
  put("\r", 1);
  put(prompt, prompt_len);
  size_t prompt_cols = 0;
  for (size_t i = 0; i < prompt_len; ++i) prompt_cols += (uint8_t(prompt[i]) & 0xC0) != 0x80;
  if (columns == 0) columns = 80;
  if (columns > kMaxColumns) columns = kMaxColumns;
  // Leave the last column free: writing there makes some terminals wrap.
  const size_t avail = columns > prompt_cols + 2 ? columns - prompt_cols - 1 : 1;

  size_t cur_col = 0, total = 0;
  for (size_t i = 0; i < len_;) {
    uint32_t cp;
    const size_t u = unit(line_ + i, len_ - i, &cp);
    if (i < cursor_) cur_col += size_t(codepoint_columns(cp));
    total += size_t(codepoint_columns(cp));
    i += u;
  }
  if (total <= avail) scroll_ = 0;
  if (cur_col < scroll_) scroll_ = cur_col;
  if (cur_col > scroll_ + avail) scroll_ = cur_col - avail;

  size_t col = 0, start = scroll_, shown_bytes = 0;
  bool first = true;
  for (size_t i = 0; i < len_;) {
    uint32_t cp;
    const size_t u = unit(line_ + i, len_ - i, &cp);
    const size_t w = size_t(codepoint_columns(cp));
    if (col < scroll_) {  // hidden on the left (a wide character across the edge too)
      col += w;
      i += u;
      continue;
    }
    if (first) {
      start = col;
      first = false;
    }
    if (col + w - start > avail) break;
    char buf[4];
    const char* s = line_ + i;
    size_t sn = u;
    if (cp == kUtf8Invalid) {
      s = "\xEF\xBF\xBD";
      sn = 3;
    } else if (cp < 0x20 || cp == 0x7F) {
      buf[0] = cp == '\t' ? ' ' : '?';
      s = buf;
      sn = 1;
    }
    if (shown_bytes + sn > 4 * kMaxColumns) break;  // a run of zero-width marks is bounded too
    put(s, sn);
    shown_bytes += sn;
    col += w;
    i += u;
  }
  put("\x1b[0K\r", 5);
  const size_t cursor_col = prompt_cols + (cur_col >= start ? cur_col - start : 0);
  if (cursor_col > 0) {
    char move[24];
    const int m = std::snprintf(move, sizeof(move), "\x1b[%zuC", cursor_col);
    if (m > 0) put(move, size_t(m));
  }
  return o;
}

}  // namespace tern::cli
