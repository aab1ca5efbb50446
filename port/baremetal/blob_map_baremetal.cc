// Bare metal has no files: the blob is a constant array linked into the image
// (tools/firmware/blob.S.in), wrapped with blob_map_memory. There is no OS
// to ask for an arena either: the application passes a static array as
// EngineOptions::arena_buffer.
#include <cerrno>

#include "port/blob_map.h"

namespace tern {

int blob_map_file(const char*, BlobMap* out) {
  *out = BlobMap{};
  return ENOSYS;  // "cannot open blob '...': Function not implemented"
}

BlobMap blob_map_memory(const void* data, size_t size) {
  BlobMap m;
  m.data = static_cast<const uint8_t*>(data);
  m.size = size;
  return m;
}

void blob_unmap(BlobMap* map) { *map = BlobMap{}; }

void* os_reserve_arena(size_t) { return nullptr; }  // Engine reports "the OS refused an arena"
void os_release_arena(void*, size_t) {}

}  // namespace tern
