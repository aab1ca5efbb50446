// Read-only view of a blob: a file mapping on an OS, a linked-in array on bare
// metal. The runtime only ever sees (data, size).
#pragma once
#include <cstddef>
#include <cstdint>


namespace tern {

struct BlobMap {
  const uint8_t* data = nullptr;
  size_t size = 0;
  // Private to the port: how to release it.
  void* handle = nullptr;
  size_t mapped_bytes = 0;
};

// Map `path` read-only (PROT_READ, MAP_PRIVATE). The mapping survives the file
// being renamed over or unlinked; the file's size is taken once, at open.
// Returns 0, or an errno value (EINVAL: not a regular file, ENODATA: empty file).
int blob_map_file(const char* path, BlobMap* out);
// Wrap memory the caller owns (a linked-in array, a test buffer).
BlobMap blob_map_memory(const void* data, size_t size);
void blob_unmap(BlobMap* map);
// Give back the resident pages wholly inside [offset, offset + bytes) of a
// file mapping. The bytes stay mapped and readable: a later read faults its
// page in again from the file, as after the kernel evicts clean pages under
// memory pressure. For parts read whole at open and only here and there after.
// Nothing for a memory-wrapped blob, or where the OS has no such call.
void blob_release_pages(const BlobMap& map, size_t offset, size_t bytes);

// Make [p, p + bytes) of private writable memory (the arena's) read as zeros,
// giving its whole pages back to the OS where there is one: they are resident
// again only once written. For scratch used once at init, and tables filled
// on demand. Bare metal (static RAM): a plain clear.
void os_discard_pages(void* p, size_t bytes);

// Whole-process OS allocation for the arena (anonymous mapping), or nullptr.
void* os_reserve_arena(size_t bytes);
void os_release_arena(void* p, size_t bytes);

}  // namespace tern
