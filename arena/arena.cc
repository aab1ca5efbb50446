#include "arena/arena.h"

#include <cstring>

namespace tern {

void Arena::init(void* base, size_t capacity) {
  base_ = static_cast<uint8_t*>(base);
  capacity_ = base ? capacity : 0;
  used_ = 0;
  high_water_ = 0;
  region_count_ = 0;
}

void* Arena::allocate(size_t bytes, const char* region, size_t align) {
  if (align == 0 || (align & (align - 1)) != 0) return nullptr;
  // Align the absolute address, so a caller buffer that is not itself aligned still works.
  const uintptr_t here = reinterpret_cast<uintptr_t>(base_) + used_;
  const uintptr_t aligned = (here + align - 1) & ~uintptr_t(align - 1);
  const size_t start = used_ + size_t(aligned - here);
  if (start > capacity_ || bytes > capacity_ - start) return nullptr;
  used_ = start + bytes;
  if (used_ > high_water_) high_water_ = used_;

  // Attribute the bytes to the region (static strings: compare by content so
  // two call sites naming the same region share one line in the report).
  size_t i = 0;
  for (; i < region_count_; ++i) {
    if (regions_[i].name == region || std::strcmp(regions_[i].name, region) == 0) break;
  }
  if (i == region_count_) {
    if (region_count_ < kMaxRegions) {
      regions_[region_count_++] = Region{region, 0};
    } else {
      i = kMaxRegions - 1;  // fold overflow into the last region rather than fail
    }
  }
  regions_[i].bytes += bytes;
  return base_ + start;
}

void Arena::rewind(Mark m) {
  if (m.used <= used_) used_ = m.used;
}

size_t Arena::region_bytes(const char* name) const {
  for (size_t i = 0; i < region_count_; ++i) {
    if (std::strcmp(regions_[i].name, name) == 0) return regions_[i].bytes;
  }
  return 0;
}

}  // namespace tern
