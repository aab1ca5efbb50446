// Where an encoder writes token ids: a caller buffer of `cap` ids. put()
// stops at the first id past capacity and remembers it (full), so encoders
// can report kPromptTooLong without writing past the buffer.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tern {

struct TokenSink {
  int32_t* out;
  size_t cap;
  size_t n = 0;
  bool full = false;
  bool put(int32_t id) {
    if (n == cap) {
      full = true;
      return false;
    }
    out[n++] = id;
    return true;
  }
};

}  // namespace tern
