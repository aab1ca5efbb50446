#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

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

namespace {

// The whole pages inside [begin, end) as [*lo, *hi); false if there are none.
bool whole_pages(uintptr_t begin, uintptr_t end, uintptr_t* lo, uintptr_t* hi) {
  const long page = ::sysconf(_SC_PAGESIZE);
  if (page <= 0) return false;
  *lo = (begin + uintptr_t(page) - 1) / uintptr_t(page) * uintptr_t(page);
  *hi = end / uintptr_t(page) * uintptr_t(page);
  return *hi > *lo;
}

}  // namespace

void blob_release_pages(const BlobMap& map, size_t offset, size_t bytes) {
  if (map.handle == nullptr || offset >= map.size) return;
  if (bytes > map.size - offset) bytes = map.size - offset;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(map.data) + offset;
  uintptr_t lo, hi;
  // Advice only: a refusal leaves the pages resident, which is harmless.
  if (whole_pages(begin, begin + bytes, &lo, &hi)) (void)::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

void os_discard_pages(void* p, size_t bytes) {
  if (p == nullptr || bytes == 0) return;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p), end = begin + bytes;
  uintptr_t lo, hi;
  // MADV_DONTNEED on private memory: the next read gives zeros. No whole page,
  // or the call refused: clear everything by hand.
  if (!whole_pages(begin, end, &lo, &hi) || ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED) != 0) {
    lo = hi = begin;
  }
  std::memset(p, 0, lo - begin);
  std::memset(reinterpret_cast<void*>(hi), 0, end - hi);
}

void* os_reserve_arena(size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void os_release_arena(void* p, size_t bytes) {
  if (p) ::munmap(p, bytes);
}

}  // namespace tern
