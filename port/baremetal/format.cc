// vsnprintf / snprintf for the bare-metal port. Debian's newlib (full and
// nano) is built without C99 printf formats: "%zu" prints "zu" and leaves
// its argument on the list, so every following conversion reads the wrong
// one (a "%s" after a "%zu" dereferences a size). The runtime's status
// messages use %zu throughout, so the port supplies the formatter, and with
// it newlib's printf, which reaches for malloc, is never linked.
//
// Supported: flags '-' '0' '+' ' ', width and precision (numbers or '*'),
// length hh h l ll z j t, conversions d i u x X o c s p f e g %. Floating
// point is printed from its double value with up to 17 significant digits
// (enough for status messages; not correctly rounded in the last digit).
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace {

struct Out {
  char* buf;
  size_t cap;
  size_t n = 0;  // characters the full output has (may exceed cap)
  void put(char c) {
    if (n + 1 < cap) buf[n] = c;
    ++n;
  }
  void pad(char c, int count) {
    for (int i = 0; i < count; ++i) put(c);
  }
};

struct Spec {
  bool left = false, zero = false, plus = false, space = false;
  int width = 0, precision = -1;
};

// Emits sign/prefix, then digits padded to width per the flags.
void emit(Out* o, const Spec& sp, const char* prefix, const char* digits, size_t nd) {
  const size_t np = std::strlen(prefix);
  int zeros = sp.precision > int(nd) ? sp.precision - int(nd) : 0;
  int fill = sp.width - int(np + nd) - zeros;
  if (fill < 0) fill = 0;
  if (!sp.left && !(sp.zero && sp.precision < 0)) o->pad(' ', fill);
  for (size_t i = 0; i < np; ++i) o->put(prefix[i]);
  if (!sp.left && sp.zero && sp.precision < 0) o->pad('0', fill);
  o->pad('0', zeros);
  for (size_t i = 0; i < nd; ++i) o->put(digits[i]);
  if (sp.left) o->pad(' ', fill);
}

void integer(Out* o, const Spec& sp, uint64_t v, bool negative, unsigned base, bool upper, const char* prefix0) {
  char tmp[24];
  size_t nd = 0;
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  if (v == 0 && sp.precision != 0) tmp[nd++] = '0';
  while (v) {
    tmp[nd++] = digits[v % base];
    v /= base;
  }
  char rev[24];
  for (size_t i = 0; i < nd; ++i) rev[i] = tmp[nd - 1 - i];
  const char* prefix = negative ? "-" : sp.plus ? "+" : sp.space ? " " : prefix0;
  emit(o, sp, prefix, rev, nd);
}

// %f / %e / %g of a finite or non-finite double.
void floating(Out* o, Spec sp, double v, char conv) {
  const bool negative = v < 0 || (v == 0 && 1 / v < 0);
  if (negative) v = -v;
  const char* prefix = negative ? "-" : sp.plus ? "+" : sp.space ? " " : "";
  if (v != v || v > 1.7976931348623157e308) {
    sp.zero = false;
    sp.precision = -1;
    emit(o, sp, prefix, v != v ? "nan" : "inf", 3);
    return;
  }
  int precision = sp.precision < 0 ? 6 : sp.precision;
  if (precision > 17) precision = 17;
  // Decimal exponent of v: v = m * 10^e10, 1 <= m < 10.
  int e10 = 0;
  double m = v;
  if (m != 0) {
    while (m >= 10) { m /= 10; ++e10; }
    while (m < 1) { m *= 10; --e10; }
  }
  bool sci = conv == 'e';
  if (conv == 'g') {
    if (precision == 0) precision = 1;
    sci = e10 < -4 || e10 >= precision;
    precision = sci ? precision - 1 : precision - 1 - e10;
    if (precision < 0) precision = 0;
  }
  char digits[64];
  size_t nd = 0;
  if (sci) {
    double r = m;
    for (int i = 0; i < precision; ++i) r *= 10;
    uint64_t q = uint64_t(r + 0.5);
    uint64_t limit = 10;
    for (int i = 0; i < precision; ++i) limit *= 10;
    if (q >= limit) { q /= 10; ++e10; }  // 9.99.. rounded up to 10.0
    char t[24];
    size_t k = 0;
    for (int i = 0; i <= precision; ++i) { t[k++] = char('0' + q % 10); q /= 10; }
    digits[nd++] = t[k - 1];
    if (precision > 0) digits[nd++] = '.';
    for (size_t i = k - 1; i-- > 0;) digits[nd++] = t[i];
    if (conv == 'g' && precision > 0) {  // %g drops trailing zeros
      while (digits[nd - 1] == '0') --nd;
      if (digits[nd - 1] == '.') --nd;
    }
    digits[nd++] = 'e';
    digits[nd++] = e10 < 0 ? '-' : '+';
    const int ae = e10 < 0 ? -e10 : e10;
    if (ae >= 100) digits[nd++] = char('0' + ae / 100);
    digits[nd++] = char('0' + ae / 10 % 10);
    digits[nd++] = char('0' + ae % 10);
  } else {
    if (v >= 1e19) {  // beyond uint64_t: print in scientific form instead
      floating(o, sp, negative ? -v : v, 'e');
      return;
    }
    double scale = 1;
    for (int i = 0; i < precision; ++i) scale *= 10;
    const double whole = double(uint64_t(v));
    uint64_t ip = uint64_t(whole);
    uint64_t fp = uint64_t((v - whole) * scale + 0.5);
    if (double(fp) >= scale) { fp = 0; ++ip; }
    char t[24];
    size_t k = 0;
    do { t[k++] = char('0' + ip % 10); ip /= 10; } while (ip);
    while (k) digits[nd++] = t[--k];
    if (precision > 0) {
      digits[nd++] = '.';
      for (int i = precision - 1; i >= 0; --i) { t[i] = char('0' + fp % 10); fp /= 10; }
      for (int i = 0; i < precision; ++i) digits[nd++] = t[i];
      if (conv == 'g') {
        while (digits[nd - 1] == '0') --nd;
        if (digits[nd - 1] == '.') --nd;
      }
    }
  }
  sp.precision = -1;
  emit(o, sp, prefix, digits, nd);
}

}  // namespace

extern "C" int vsnprintf(char* buf, size_t cap, const char* fmt, va_list args) {
  Out o{buf, cap};
  for (const char* p = fmt; *p; ++p) {
    if (*p != '%') { o.put(*p); continue; }
    ++p;
    Spec sp;
    for (;; ++p) {
      if (*p == '-') sp.left = true;
      else if (*p == '0') sp.zero = true;
      else if (*p == '+') sp.plus = true;
      else if (*p == ' ') sp.space = true;
      else if (*p == '#') {}
      else break;
    }
    if (*p == '*') {
      sp.width = va_arg(args, int);
      if (sp.width < 0) { sp.left = true; sp.width = -sp.width; }
      ++p;
    } else {
      while (*p >= '0' && *p <= '9') sp.width = sp.width * 10 + (*p++ - '0');
    }
    if (*p == '.') {
      ++p;
      sp.precision = 0;
      if (*p == '*') {
        sp.precision = va_arg(args, int);
        if (sp.precision < 0) sp.precision = -1;
        ++p;
      } else {
        while (*p >= '0' && *p <= '9') sp.precision = sp.precision * 10 + (*p++ - '0');
      }
    }
    enum { kInt, kChar, kShort, kLong, kLongLong, kSize, kMax, kPtrdiff } len = kInt;
    if (p[0] == 'h' && p[1] == 'h') { len = kChar; p += 2; }
    else if (p[0] == 'h') { len = kShort; ++p; }
    else if (p[0] == 'l' && p[1] == 'l') { len = kLongLong; p += 2; }
    else if (p[0] == 'l') { len = kLong; ++p; }
    else if (p[0] == 'z') { len = kSize; ++p; }
    else if (p[0] == 'j') { len = kMax; ++p; }
    else if (p[0] == 't') { len = kPtrdiff; ++p; }
    else if (p[0] == 'L') { ++p; }
    const char c = *p;
    if (c == '\0') break;
    switch (c) {
      case 'd': case 'i': {
        int64_t v;
        switch (len) {
          case kLong: v = va_arg(args, long); break;
          case kLongLong: v = va_arg(args, long long); break;
          case kSize: case kPtrdiff: v = va_arg(args, ptrdiff_t); break;
          case kMax: v = va_arg(args, intmax_t); break;
          case kChar: v = (signed char)va_arg(args, int); break;
          case kShort: v = short(va_arg(args, int)); break;
          default: v = va_arg(args, int); break;
        }
        integer(&o, sp, v < 0 ? uint64_t(0) - uint64_t(v) : uint64_t(v), v < 0, 10, false, "");
        break;
      }
      case 'u': case 'x': case 'X': case 'o': {
        uint64_t v;
        switch (len) {
          case kLong: v = va_arg(args, unsigned long); break;
          case kLongLong: v = va_arg(args, unsigned long long); break;
          case kSize: case kPtrdiff: v = va_arg(args, size_t); break;
          case kMax: v = va_arg(args, uintmax_t); break;
          case kChar: v = (unsigned char)va_arg(args, unsigned); break;
          case kShort: v = (unsigned short)va_arg(args, unsigned); break;
          default: v = va_arg(args, unsigned); break;
        }
        Spec us = sp;
        us.plus = us.space = false;
        integer(&o, us, v, false, c == 'o' ? 8 : c == 'u' ? 10 : 16, c == 'X', "");
        break;
      }
      case 'p': {
        Spec ps = sp;
        ps.plus = ps.space = false;
        integer(&o, ps, uintptr_t(va_arg(args, void*)), false, 16, false, "0x");
        break;
      }
      case 'c': {
        const char ch = char(va_arg(args, int));
        Spec cs = sp;
        cs.precision = -1;
        cs.zero = false;
        emit(&o, cs, "", &ch, 1);
        break;
      }
      case 's': {
        const char* s = va_arg(args, const char*);
        if (s == nullptr) s = "(null)";
        size_t n = 0;
        while (s[n] && (sp.precision < 0 || n < size_t(sp.precision))) ++n;
        Spec ss = sp;
        ss.precision = -1;
        ss.zero = false;
        emit(&o, ss, "", s, n);
        break;
      }
      case 'f': case 'F': case 'e': case 'E': case 'g': case 'G':
        floating(&o, sp, va_arg(args, double), char(c | 0x20));
        break;
      case '%': o.put('%'); break;
      default:  // unknown conversion: show it rather than guess at its argument
        o.put('%');
        o.put(c);
        break;
    }
  }
  if (cap) buf[o.n < cap ? o.n : cap - 1] = '\0';
  return int(o.n);
}

extern "C" int snprintf(char* buf, size_t cap, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  const int n = vsnprintf(buf, cap, fmt, args);
  va_end(args);
  return n;
}
