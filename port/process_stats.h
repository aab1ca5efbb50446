// Process-level figures for reports: peak and current resident memory.
#pragma once
#include <cstddef>

namespace tern {
size_t peak_rss_bytes();     // high-water resident set size, 0 if unknown
size_t current_rss_bytes();  // resident set size now, 0 if unknown
// Anonymous (not file-backed) resident bytes now, 0 if unknown: the heap, the
// arena, stacks. A leak grows this; first touches of the mapped blob do not.
size_t current_anon_rss_bytes();
// CPUs this process may run on now (its affinity mask), at least 1.
unsigned online_cpu_count();
}  // namespace tern
