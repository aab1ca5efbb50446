// No process, no resident set: every byte the runtime touches is the linked
// image plus the static arena, both known at link time. 0 means "unknown" to
// the callers (port/process_stats.h).
#include "port/process_stats.h"

namespace tern {
size_t peak_rss_bytes() { return 0; }
size_t current_rss_bytes() { return 0; }
size_t current_anon_rss_bytes() { return 0; }
}  // namespace tern
