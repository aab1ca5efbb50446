#include "runtime/pretokenizer.h"

#include "runtime/utf8.h"

namespace tern {

namespace {
#include "runtime/unicode_tables.inc"

// ASCII classes, the common case, without the table search.
CharClass ascii_class(uint8_t c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return CharClass::kLetter;
  if (c >= '0' && c <= '9') return CharClass::kNumber;
  if (c == ' ' || (c >= 0x09 && c <= 0x0D)) return CharClass::kSpace;
  return CharClass::kOther;
}

// One decoded character: its class and byte length. kEnd marks the end of the
// text and, in smollm mode, a number character (a hard boundary for the
// regex: the text between two numbers is split on its own).
enum : uint8_t { kEnd = 0xFF };

struct Char {
  uint8_t cls;   // CharClass or kEnd
  uint8_t len;   // bytes
};

struct Cursor {
  const uint8_t* text;
  size_t len;
  bool numbers_are_boundaries;

  Char at(size_t pos) const {
    if (pos >= len) return {kEnd, 0};
    const uint8_t b = text[pos];
    if (b < 0x80) {
      const CharClass c = ascii_class(b);
      if (numbers_are_boundaries && c == CharClass::kNumber) return {kEnd, 1};
      return {uint8_t(c), 1};
    }
    uint32_t cp;
    const size_t n = utf8_decode(text + pos, len - pos, &cp);
    const CharClass c = char_class(cp);
    if (numbers_are_boundaries && c == CharClass::kNumber) return {kEnd, uint8_t(n)};
    return {uint8_t(c), uint8_t(n)};
  }

  // End of the run of class `cls` starting at pos.
  size_t run_end(size_t pos, uint8_t cls) const {
    for (;;) {
      const Char c = at(pos);
      if (c.cls != cls) return pos;
      pos += c.len;
    }
  }
};

bool is_ascii(const uint8_t* t, size_t len, size_t pos, char c) { return pos < len && t[pos] == uint8_t(c); }

}  // namespace

CharClass char_class(uint32_t cp) {
  if (cp < 0x80) return ascii_class(uint8_t(cp));
  if (cp == kUtf8Invalid) return CharClass::kOther;
  // Binary search for the last range with lo <= cp.
  size_t lo = 0, hi = kUnicodeRangeCount;
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if ((kUnicodeRanges[mid][0] & 0xFFFFFFu) <= cp) lo = mid + 1; else hi = mid;
  }
  if (lo == 0) return CharClass::kOther;
  const uint32_t* r = kUnicodeRanges[lo - 1];
  if (cp > r[1]) return CharClass::kOther;
  return CharClass(r[0] >> 24);
}

size_t next_piece(const uint8_t* t, size_t len, size_t pos, PreSplit mode) {
  const Cursor cur{t, len, mode == PreSplit::kSmollm};
  const Char c = cur.at(pos);
  if (c.cls == kEnd) return c.len;  // smollm: a number character alone

  const uint8_t kL = uint8_t(CharClass::kLetter), kN = uint8_t(CharClass::kNumber);
  const uint8_t kS = uint8_t(CharClass::kSpace), kO = uint8_t(CharClass::kOther);

  // 's 't 're 've 'm 'll 'd (case-sensitive, as in the GPT-2 pattern)
  if (t[pos] == '\'') {
    if (is_ascii(t, len, pos + 1, 's') || is_ascii(t, len, pos + 1, 't') ||
        is_ascii(t, len, pos + 1, 'm') || is_ascii(t, len, pos + 1, 'd')) {
      return 2;
    }
    if ((is_ascii(t, len, pos + 1, 'r') && is_ascii(t, len, pos + 2, 'e')) ||
        (is_ascii(t, len, pos + 1, 'v') && is_ascii(t, len, pos + 2, 'e')) ||
        (is_ascii(t, len, pos + 1, 'l') && is_ascii(t, len, pos + 2, 'l'))) {
      return 3;
    }
  }

  // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional single ASCII space, then a run.
  size_t start = pos;
  uint8_t cls = c.cls;
  if (t[pos] == ' ') {
    const Char n = cur.at(pos + 1);
    if (n.cls == kL || n.cls == kN || n.cls == kO) {
      start = pos + 1;
      cls = n.cls;
    }
  }
  if (cls == kL || cls == kN || cls == kO) return cur.run_end(start, cls) - pos;

  // White space: '\s+(?!\S)' takes the run but leaves its last character when a
  // non-space follows (that character may start the next piece as ' ?X');
  // a lone space before a non-space is '\s+'.
  const size_t end = cur.run_end(pos, kS);
  const Char after = cur.at(end);
  if (after.cls == kEnd) return end - pos;
  // Step back one character: find the start of the last character of the run.
  size_t last = end - 1;
  while (last > pos && (t[last] & 0xC0) == 0x80) --last;
  if (last > pos) return last - pos;
  return end - pos;
}

}  // namespace tern
