// Parallelism for the runtime: split [0, n) into contiguous grain-aligned
// ranges, run fn on each (the caller included), then wait. No allocation, no
// thread creation per call. SerialPool runs everything on the calling thread
// (the single-threaded and bare-metal builds); PthreadPool keeps workers
// parked between calls and hands out ranges dynamically.
//
// Contract for fn: the result for an index may depend on the index and ctx
// only, never on which range or which worker ran it. Ranges are not aligned
// to the thread count and a thread may run several ranges of one call.
// `worker` (0 = the caller, < size()) names the executing thread; a worker
// index runs one range at a time, so it can select per-thread scratch.
#pragma once
#include <cstdint>

namespace tern {

using RangeFn = void (*)(void* ctx, uint32_t begin, uint32_t end, uint32_t worker);

class ThreadPool {
 public:
  virtual uint32_t size() const = 0;  // threads including the caller
  // Run fn over [0, n) split into ranges whose bounds are multiples of
  // `grain` (or n); returns when every range has run.
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

// Workers created once at init. parallel_for cuts the range into several
// chunks per thread; every thread, the caller first, claims chunks with one
// atomic add until none is left, so a thread that lost its core holds up
// only a chunk it already started, never an unstarted share. Idle workers
// spin (yielding the core to anyone who wants it) for up to 1 ms, then block
// on a futex (an idle REPL burns no CPU); the caller does the same for chunks
// in progress. Threads beyond the usable CPUs are parked, and nobody spins
// for a while after a sign that the cores are contended.
// port/thread_pool_posix.cc has the details;
// bench/thread_contention.sh measures it.
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

// Part `w` of `workers` when [0, n) is split in grain-aligned parts (the
// pool's chunks are split_range(n, grain, chunks, c)).
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
