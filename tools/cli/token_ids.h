// Token-id lists typed on a command line (tern-run --prompt-ids): decimal
// integers separated by commas and/or whitespace ("1,2,3", "1, 2, 3",
// "1 2 3"), optionally in brackets ("[1, 2, 3]": what tern-run --tokenize
// prints). Range against the vocabulary is the runtime's check
// (Engine::check_tokens); this only parses.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tern::cli {

// Appends the ids of text[0, len) to *out. False, with *err naming the
// 0-based position of the offending item and what is wrong, on an empty item
// ("1,,2", a leading or trailing comma), a non-number, or a value outside
// int32; an input with no ids at all is an error too. At most `max_ids` ids
// (more: an error), so the memory used is bounded by the caller.
bool parse_token_ids(const char* text, size_t len, std::vector<int32_t>* out, std::string* err,
                     size_t max_ids = size_t(1) << 24);

}  // namespace tern::cli
