// Bare metal has no files: the blob is a constant array linked into the image
// (tools/firmware/blob.S.in), wrapped with blob_map_memory. There is no OS
// to ask for an arena either: the application passes a static array as
// EngineOptions::arena_buffer.
#include <cerrno>
#include <cstring>

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

void blob_release_pages(const BlobMap&, size_t, size_t) {}  // the blob is in flash: nothing resident to give back
void os_discard_pages(void* p, size_t bytes) {  // static RAM: nothing to give back, only clear
  if (p != nullptr) std::memset(p, 0, bytes);
}
void* os_reserve_arena(size_t) { return nullptr; }  // Engine reports "the OS refused an arena"
void os_release_arena(void*, size_t) {}

}  // namespace tern
