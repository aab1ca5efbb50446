#include "tools/cli/token_ids.h"

namespace tern::cli {

namespace {
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
}  // namespace

bool parse_token_ids(const char* text, size_t len, std::vector<int32_t>* out, std::string* err, size_t max_ids) {
  // A list in brackets, as tern-run --tokenize (and llama-tokenize --ids) print it.
  size_t lo = 0, hi = len;
  while (lo < hi && is_space(text[lo])) ++lo;
  if (lo < hi && text[lo] == '[') {
    while (hi > lo && is_space(text[hi - 1])) --hi;
    if (hi == lo + 1 || text[hi - 1] != ']') {
      *err = "--prompt-ids: '[' without a closing ']'";
      return false;
    }
    text += lo + 1;
    len = hi - lo - 2;
  }
  const size_t first = out->size();
  size_t i = 0;
  size_t item = 0;  // index of the item being read
  bool need_item = false;  // after a comma, another id must follow
  auto fail = [&](const std::string& what) {
    *err = "--prompt-ids: item " + std::to_string(item) + ": " + what;
    out->resize(first);
    return false;
  };
  for (;;) {
    while (i < len && is_space(text[i])) ++i;
    if (i == len) {
      if (need_item) return fail("missing after the last comma");
      break;
    }
    if (text[i] == ',') return fail("empty (two separators in a row, or a leading comma)");
    // One integer: optional sign, then digits.
    const size_t start = i;
    bool neg = false;
    if (text[i] == '+' || text[i] == '-') neg = text[i++] == '-';
    if (i == len || !is_digit(text[i])) {
      size_t end = start;
      while (end < len && !is_space(text[end]) && text[end] != ',' && end - start < 24) ++end;
      return fail("'" + std::string(text + start, end - start) + "' is not an integer");
    }
    int64_t v = 0;
    bool too_big = false;
    while (i < len && is_digit(text[i])) {
      if (!too_big) {
        v = v * 10 + (text[i] - '0');
        if (v > int64_t(INT32_MAX) + 1) too_big = true;
      }
      ++i;
    }
    if (neg) v = -v;
    if (i < len && !is_space(text[i]) && text[i] != ',') {
      size_t end = i;
      while (end < len && !is_space(text[end]) && text[end] != ',' && end - start < 24) ++end;
      return fail("'" + std::string(text + start, end - start) + "' is not an integer");
    }
    if (too_big || v < INT32_MIN || v > INT32_MAX) {
      return fail("'" + std::string(text + start, i - start < 24 ? i - start : 24) + "' is out of range");
    }
    if (out->size() - first >= max_ids) return fail("more than " + std::to_string(max_ids) + " ids");
    out->push_back(int32_t(v));
    ++item;
    need_item = false;
    while (i < len && is_space(text[i])) ++i;
    if (i < len && text[i] == ',') {
      ++i;
      need_item = true;
    }
  }
  if (out->size() == first) {
    *err = "--prompt-ids: no ids given";
    return false;
  }
  return true;
}

}  // namespace tern::cli
