#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "port/blob_map.h"

namespace tern {

int blob_map_file(const char* path, BlobMap* out) {
  *out = BlobMap{};
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st;
  int err = 0;
  if (::fstat(fd, &st) != 0) err = errno;
  else if (!S_ISREG(st.st_mode)) err = EINVAL;
  else if (st.st_size <= 0) err = ENODATA;
  if (err != 0) {
    ::close(fd);
    return err;
  }
  const size_t size = size_t(st.st_size);
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  err = (p == MAP_FAILED) ? errno : 0;
  ::close(fd);  // the mapping keeps the file's pages alive, even if it is renamed over
  if (err != 0) return err;
  out->data = static_cast<const uint8_t*>(p);
  out->size = size;
  out->handle = p;
  out->mapped_bytes = size;
  return 0;
}
BlobMap blob_map_memory(const void* data, size_t size) {
  BlobMap m;
  m.data = static_cast<const uint8_t*>(data);
  m.size = size;
  return m;
}

void blob_unmap(BlobMap* map) {
  if (map->handle) ::munmap(map->handle, map->mapped_bytes);
  *map = BlobMap{};
}

void* os_reserve_arena(size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void os_release_arena(void* p, size_t bytes) {
  if (p) ::munmap(p, bytes);
}

}  // namespace tern
