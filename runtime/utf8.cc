#include "runtime/utf8.h"

#include <cstring>

namespace tern {

namespace {

// Valid range of the second byte for each lead (Unicode Table 3-7); the later
// continuation bytes are always 80..BF.
struct LeadInfo {
  uint8_t len;   // total sequence length, 0 = invalid lead
  uint8_t lo2;   // second byte range
  uint8_t hi2;
};

LeadInfo lead_info(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};  // continuation byte or overlong C0/C1
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};  // no overlong
  if (b == 0xED) return {3, 0x80, 0x9F};  // no surrogates
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};  // no overlong
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};  // <= U+10FFFF
  return {0, 0, 0};                       // F5..FF
}

constexpr uint8_t kReplacementUtf8[3] = {0xEF, 0xBF, 0xBD};

}  // namespace

size_t utf8_decode(const uint8_t* s, size_t n, uint32_t* cp, bool* incomplete) {
  if (incomplete) *incomplete = false;
  const uint8_t b0 = s[0];
  const LeadInfo li = lead_info(b0);
  if (li.len == 1) {
    *cp = b0;
    return 1;
  }
  if (li.len == 0) {
    *cp = kUtf8Invalid;
    return 1;
  }
  uint32_t v = b0 & (0x7F >> li.len);
  for (size_t k = 1; k < li.len; ++k) {
    if (k >= n) {  // valid so far, cut short by the buffer
      if (incomplete) *incomplete = true;
      *cp = kUtf8Invalid;
      return k;
    }
    const uint8_t b = s[k];
    const uint8_t lo = k == 1 ? li.lo2 : 0x80;
    const uint8_t hi = k == 1 ? li.hi2 : 0xBF;
    if (b < lo || b > hi) {  // maximal subpart s[0, k) is one invalid unit
      *cp = kUtf8Invalid;
      return k;
    }
    v = (v << 6) | (b & 0x3F);
  }
  *cp = v;
  return li.len;
}

size_t utf8_encode(uint32_t cp, uint8_t out[4]) {
  if (cp < 0x80) {
    out[0] = uint8_t(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = uint8_t(0xC0 | (cp >> 6));
    out[1] = uint8_t(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = uint8_t(0xE0 | (cp >> 12));
    out[1] = uint8_t(0x80 | ((cp >> 6) & 0x3F));
    out[2] = uint8_t(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = uint8_t(0xF0 | (cp >> 18));
  out[1] = uint8_t(0x80 | ((cp >> 12) & 0x3F));
  out[2] = uint8_t(0x80 | ((cp >> 6) & 0x3F));
  out[3] = uint8_t(0x80 | (cp & 0x3F));
  return 4;
}

bool utf8_valid(const char* s, size_t n) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(s);
  size_t i = 0;
  while (i < n) {
    uint32_t cp;
    i += utf8_decode(p + i, n - i, &cp);
    if (cp == kUtf8Invalid) return false;
  }
  return true;
}

size_t utf8_sanitize(const char* in, size_t n, char* out, size_t cap) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(in);
  size_t i = 0, w = 0;
  while (i < n) {
    uint32_t cp;
    const size_t len = utf8_decode(p + i, n - i, &cp);
    if (cp == kUtf8Invalid) {
      if (cap - w < 3) break;
      std::memcpy(out + w, kReplacementUtf8, 3);
      w += 3;
    } else {
      if (cap - w < len) break;
      std::memcpy(out + w, p + i, len);
      w += len;
    }
    i += len;
  }
  return w;
}

bool Utf8Stream::feed(const char* in, size_t n, char* out, size_t cap, size_t* out_len) {
  *out_len = 0;
  if (cap < max_output(n)) return false;
  size_t w = 0;
  const uint8_t* p = reinterpret_cast<const uint8_t*>(in);
  size_t i = 0;
  // First finish the pending prefix with bytes from this piece. The pending
  // bytes are a valid prefix; join them with up to 3 new bytes and decode.
  while (pending_len > 0 && i < n) {
    uint8_t joined[4];
    std::memcpy(joined, pending, pending_len);
    size_t take = 0;
    while (pending_len + take < 4 && i + take < n) {
      joined[pending_len + take] = p[i + take];
      ++take;
    }
    const size_t have = pending_len + take;
    uint32_t cp;
    bool incomplete;
    const size_t len = utf8_decode(joined, have, &cp, &incomplete);
    if (incomplete) {  // still unfinished: every new byte extended the prefix
      std::memcpy(pending, joined, have);
      pending_len = uint8_t(have);
      i += take;
      break;
    }
    if (cp == kUtf8Invalid) {
      std::memcpy(out + w, kReplacementUtf8, 3);
      w += 3;
    } else {
      std::memcpy(out + w, joined, len);
      w += len;
    }
    // len >= pending_len always (the pending bytes were a valid prefix), so
    // the unit ends inside the new bytes; continue after it.
    i += len - pending_len;
    pending_len = 0;
  }
  while (i < n) {
    uint32_t cp;
    bool incomplete;
    const size_t len = utf8_decode(p + i, n - i, &cp, &incomplete);
    if (incomplete) {
      std::memcpy(pending, p + i, len);
      pending_len = uint8_t(len);
      i += len;
      break;
    }
    if (cp == kUtf8Invalid) {
      std::memcpy(out + w, kReplacementUtf8, 3);
      w += 3;
    } else {
      std::memcpy(out + w, p + i, len);
      w += len;
    }
    i += len;
  }
  *out_len = w;
  return true;
}

size_t Utf8Stream::finish(char* out, size_t cap) {
  if (pending_len == 0 || cap < 3) return 0;
  pending_len = 0;
  std::memcpy(out, kReplacementUtf8, 3);
  return 3;
}

}  // namespace tern
