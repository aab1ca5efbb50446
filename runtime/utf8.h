// UTF-8 decoding, sanitizing and streaming, without allocation.
//
// Invalid input is handled by the "maximal subpart" rule (Unicode ch. 3,
// U+FFFD substitution; the same as Python's bytes.decode('utf-8', 'replace')
// and the WHATWG encoding standard): a lead byte followed by a valid but
// truncated continuation prefix is one invalid unit; every other bad byte is
// its own unit. Invalid: stray continuation bytes, C0/C1 and F5..FF leads,
// overlong forms (E0 80.., F0 80..), surrogates (ED A0..), > U+10FFFF (F4 90..),
// and sequences cut short. NUL (U+0000) is valid UTF-8 and is kept as is.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tern {

constexpr uint32_t kUtf8Invalid = 0xFFFFFFFFu;  // code point of an invalid unit
constexpr uint32_t kReplacementChar = 0xFFFD;

// Decode one unit at s[0, n), n >= 1. Sets *cp to the code point, or to
// kUtf8Invalid for an invalid unit. Returns the bytes consumed (1..4, <= n).
// If `incomplete` is non-null it is set when the unit is a valid prefix cut
// short by the end of the buffer (more bytes could complete it).
size_t utf8_decode(const uint8_t* s, size_t n, uint32_t* cp, bool* incomplete = nullptr);

// Encode a code point (<= 0x10FFFF) to out[0..4). Returns the byte count.
size_t utf8_encode(uint32_t cp, uint8_t out[4]);

// True if s[0, n) is entirely valid UTF-8.
bool utf8_valid(const char* s, size_t n);

// Bytes utf8_sanitize needs for n input bytes in the worst case (each byte -> U+FFFD).
constexpr size_t utf8_sanitized_max(size_t n) { return 3 * n; }

// Copy in[0, n) to out, replacing every invalid unit with U+FFFD (EF BF BD).
// Returns the bytes written. If cap is too small the output stops at the last
// whole character that fits (never a partial character) and the return value
// is the bytes written so far; pass cap >= utf8_sanitized_max(n) to get all.
size_t utf8_sanitize(const char* in, size_t n, char* out, size_t cap);

// Incremental UTF-8 for streaming token bytes to a terminal: feed pieces, get
// back only complete characters. A valid but unfinished sequence at the end of
// a piece waits (at most 3 bytes) for the next piece; invalid units become U+FFFD.
struct Utf8Stream {
  // Output bytes one feed() of n bytes can produce in the worst case.
  static constexpr size_t max_output(size_t n) { return 3 * (n + 3); }

  // Consume in[0, n) and write complete characters to out. Returns false and
  // consumes nothing if cap < max_output(n). *out_len = bytes written.
  bool feed(const char* in, size_t n, char* out, size_t cap, size_t* out_len);
  // End of stream: a pending unfinished sequence becomes one U+FFFD. out needs 3 bytes.
  size_t finish(char* out, size_t cap);
  void reset() { pending_len = 0; }

  uint8_t pending[4] = {0, 0, 0, 0};  // an unfinished valid prefix, <= 3 bytes
  uint8_t pending_len = 0;
};

}  // namespace tern
