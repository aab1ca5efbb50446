// Parallelism for the runtime: split [0, n) into contiguous ranges, run fn on
// each (one range per thread, the caller included), then wait. Static
// partitioning, no allocation, no thread creation per call. SerialPool runs
// everything on the calling thread (the single-threaded and bare-metal
// builds); PthreadPool keeps workers parked between calls.
#pragma once
#include <cstdint>

namespace tern {

using RangeFn = void (*)(void* ctx, uint32_t begin, uint32_t end, uint32_t worker);

class ThreadPool {
 public:
  virtual uint32_t size() const = 0;  // threads including the caller
  // Run fn over [0, n) split into size() ranges aligned to `grain`.
  virtual void parallel_for(uint32_t n, uint32_t grain, RangeFn fn, void* ctx) = 0;

 protected:
  ~ThreadPool() = default;
};

// The calling thread only.
class SerialPool final : public ThreadPool {
 public:
  uint32_t size() const override { return 1; }
  void parallel_for(uint32_t n, uint32_t, RangeFn fn, void* ctx) override {
    if (n) fn(ctx, 0, n, 0);
  }
};

// Workers created once at init; parallel_for wakes them by bumping a
// generation counter they spin on (then sleep on a condition variable when
// idle for a while, so an idle REPL burns no CPU).
class PthreadPool final : public ThreadPool {
 public:
  static constexpr uint32_t kMaxThreads = 64;
  PthreadPool() = default;
  PthreadPool(const PthreadPool&) = delete;
  PthreadPool& operator=(const PthreadPool&) = delete;
  ~PthreadPool();

  // Start threads - 1 workers (threads in [1, kMaxThreads]); false if the OS refuses.
  bool start(uint32_t threads);
  void stop();
  uint32_t size() const override { return n_threads_; }
  void parallel_for(uint32_t n, uint32_t grain, RangeFn fn, void* ctx) override;

  struct Shared;  // port-private state

 private:
  uint32_t n_threads_ = 1;
  Shared* shared_ = nullptr;
};

// The range of worker `w` of `workers` when [0, n) is split in grain-aligned parts.
inline void split_range(uint32_t n, uint32_t grain, uint32_t workers, uint32_t w, uint32_t* begin, uint32_t* end) {
  if (grain == 0) grain = 1;
  const uint32_t units = (n + grain - 1) / grain;
  const uint32_t per = units / workers, extra = units % workers;
  const uint32_t u0 = w * per + (w < extra ? w : extra);
  const uint32_t u1 = u0 + per + (w < extra ? 1 : 0);
  *begin = u0 * grain < n ? u0 * grain : n;
  *end = u1 * grain < n ? u1 * grain : n;
}

}  // namespace tern
