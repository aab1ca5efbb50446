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

// Whole-process OS allocation for the arena (anonymous mapping), or nullptr.
void* os_reserve_arena(size_t bytes);
void os_release_arena(void* p, size_t bytes);

}  // namespace tern
