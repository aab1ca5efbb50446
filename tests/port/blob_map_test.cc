// port/blob_map.h's page hand-back: os_discard_pages makes a range read as
// zeros and leaves its whole pages non-resident; blob_release_pages drops a
// file mapping's resident pages and the bytes still read back the same.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "port/blob_map.h"

namespace tern {
namespace {

size_t page_size() { return size_t(::sysconf(_SC_PAGESIZE)); }

// Resident pages of [p, p + bytes) (whole pages), by mincore: for private
// anonymous memory, the pages this process has made resident.
size_t resident_pages(const void* p, size_t bytes) {
  const size_t page = page_size();
  const uintptr_t lo = reinterpret_cast<uintptr_t>(p) / page * page;
  const size_t n = (reinterpret_cast<uintptr_t>(p) + bytes - lo + page - 1) / page;
  std::vector<unsigned char> v(n);
  if (::mincore(reinterpret_cast<void*>(lo), n * page, v.data()) != 0) return SIZE_MAX;
  size_t k = 0;
  for (unsigned char c : v) k += c & 1;
  return k;
}

// Rss of the mapping that holds `p`, from /proc/self/smaps (kB), or -1.
long mapping_rss_kb(const void* p) {
  FILE* f = std::fopen("/proc/self/smaps", "r");
  if (f == nullptr) return -1;
  char line[512];
  bool in = false;
  long rss = -1;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  while (std::fgets(line, sizeof(line), f)) {
    unsigned long lo, hi;
    if (std::sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && std::strchr(line, ':') != nullptr &&
        std::strncmp(line, "Rss:", 4) != 0) {
      in = a >= lo && a < hi;
      continue;
    }
    if (in && std::sscanf(line, "Rss: %ld kB", &rss) == 1) break;
  }
  std::fclose(f);
  return rss;
}

TEST(OsDiscardPages, RangeReadsZeroAndWholePagesLeaveTheResidentSet) {
  const size_t page = page_size();
  const size_t bytes = 64 * page;
  void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  uint8_t* p = static_cast<uint8_t*>(m);
  std::memset(p, 0xA5, bytes);
  ASSERT_EQ(resident_pages(p, bytes), 64u);
  // An unaligned range: 100 bytes into page 3 to 7 bytes into page 41.
  const size_t begin = 3 * page + 100, end = 41 * page + 7;
  os_discard_pages(p + begin, end - begin);
  // Pages 4..40 are wholly inside: given back (checked before anything reads
  // them). Pages 3 and 41 were cleared by hand and stay.
  EXPECT_EQ(resident_pages(p + 4 * page, 37 * page), 0u);
  EXPECT_EQ(resident_pages(p, 4 * page), 4u);
  EXPECT_EQ(resident_pages(p + 41 * page, 23 * page), 23u);
  for (size_t i = 0; i < bytes; ++i) {
    const uint8_t want = (i >= begin && i < end) ? 0 : 0xA5;
    ASSERT_EQ(p[i], want) << "byte " << i;
  }
  // Less than a page, and nothing at all: cleared / untouched, no crash.
  std::memset(p, 0xA5, bytes);
  os_discard_pages(p + 10, 20);
  EXPECT_EQ(p[9], 0xA5);
  EXPECT_EQ(p[10], 0);
  EXPECT_EQ(p[29], 0);
  EXPECT_EQ(p[30], 0xA5);
  os_discard_pages(p + 5, 0);
  os_discard_pages(nullptr, 100);
  EXPECT_EQ(p[5], 0xA5);
  ::munmap(m, bytes);
}

TEST(BlobReleasePages, ResidentPagesDropAndTheBytesReadBackTheSame) {
  const size_t page = page_size();
  const size_t bytes = 256 * page + 123;
  const std::string path = std::string(::testing::TempDir()) + "/tern_blob_release_test.bin";
  std::vector<uint8_t> data(bytes);
  for (size_t i = 0; i < bytes; ++i) data[i] = uint8_t(i * 131 + (i >> 12));
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(data.data(), 1, bytes, f), bytes);
    std::fclose(f);
  }
  BlobMap map;
  ASSERT_EQ(blob_map_file(path.c_str(), &map), 0);
  uint64_t sum = 0;
  for (size_t i = 0; i < bytes; ++i) sum += map.data[i];  // every page resident
  ASSERT_GT(sum, 0u);
  const long before = mapping_rss_kb(map.data);
  if (before < 0) GTEST_SKIP() << "no /proc/self/smaps";
  EXPECT_GE(size_t(before) * 1024, 256 * page);
  blob_release_pages(map, 10 * page + 1, 200 * page);  // pages 11..209 wholly inside
  const long after = mapping_rss_kb(map.data);
  EXPECT_LE(size_t(before - after) * 1024, 199 * page);
  EXPECT_GE(size_t(before - after) * 1024, 199 * page) << "the released pages are still resident";
  EXPECT_EQ(std::memcmp(map.data, data.data(), bytes), 0) << "the bytes read back differently";
  // Out of range and past the end: clipped, no crash.
  blob_release_pages(map, bytes + 5, 10);
  blob_release_pages(map, 100 * page, SIZE_MAX);
  EXPECT_EQ(std::memcmp(map.data, data.data(), bytes), 0);
  // A memory-wrapped blob: nothing to give back.
  const BlobMap mem = blob_map_memory(data.data(), bytes);
  blob_release_pages(mem, 0, bytes);
  EXPECT_EQ(data[1000], uint8_t(1000 * 131));
  blob_unmap(&map);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace tern
