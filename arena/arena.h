// The arena: one caller-supplied buffer that every byte of working memory
// comes from. Persistent allocations (KV pool, model state, tokenizer tables)
// are taken once at init; nothing is ever freed individually. Scratch that
// only lives during one call can be taken with a Mark and released by
// rewinding to it. The arena records named regions and its high-water mark,
// so a run can report exactly where its memory went.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tern {

class Arena {
 public:
  static constexpr size_t kMaxRegions = 32;
  static constexpr size_t kDefaultAlign = 64;  // cache line; SIMD loads never split lines

  struct Region {
    const char* name;  // static string
    size_t bytes;      // bytes requested under this name (alignment padding excluded)
  };

  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Use [base, base + capacity) as the arena. The buffer stays owned by the caller.
  void init(void* base, size_t capacity);

  // Aligned allocation of `bytes` attributed to region `region` (a static string).
  // Returns nullptr when the arena is exhausted; never touches the heap.
  void* allocate(size_t bytes, const char* region, size_t align = kDefaultAlign);

  template <typename T>
  T* allocate_array(size_t count, const char* region, size_t align = kDefaultAlign) {
    if (count != 0 && count > SIZE_MAX / sizeof(T)) return nullptr;
    return static_cast<T*>(allocate(count * sizeof(T), region, align));
  }

  // Scratch: remember the top, allocate, then rewind. Region accounting keeps
  // the peak of each region, the high-water mark keeps the peak of the arena.
  struct Mark { size_t used; };
  Mark mark() const { return Mark{used_}; }
  void rewind(Mark m);

  size_t capacity() const { return capacity_; }
  size_t used() const { return used_; }
  size_t high_water() const { return high_water_; }
  size_t region_count() const { return region_count_; }
  const Region& region(size_t i) const { return regions_[i]; }
  // Bytes recorded under `name`, 0 if none.
  size_t region_bytes(const char* name) const;

 private:
  uint8_t* base_ = nullptr;
  size_t capacity_ = 0;
  size_t used_ = 0;
  size_t high_water_ = 0;
  Region regions_[kMaxRegions] = {};
  size_t region_count_ = 0;
};

// Bytes needed to place `bytes` at alignment `align` after `offset` bytes: the
// same arithmetic the arena uses, for planners that size an arena in advance.
inline size_t arena_align_up(size_t offset, size_t align) {
  return (offset + align - 1) & ~(align - 1);
}

}  // namespace tern
