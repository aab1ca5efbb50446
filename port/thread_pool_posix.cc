#include <pthread.h>

#include <atomic>

#include "port/thread_pool.h"

namespace tern {

struct PthreadPool::Shared {
  pthread_t threads[kMaxThreads];
  uint32_t n_workers = 0;  // threads besides the caller
  // The job, published by bumping `generation` (release) after writing it.
  RangeFn fn = nullptr;
  void* ctx = nullptr;
  uint32_t n = 0, grain = 1;
  std::atomic<uint32_t> generation{0};
  std::atomic<uint32_t> pending{0};
  std::atomic<bool> quit{false};
  pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
};

namespace {

struct WorkerArg {
  PthreadPool::Shared* shared;
  uint32_t index;  // 1..n_workers (0 is the caller)
  uint32_t first_seen;  // generation at start: a restarted pool must not replay the last job
};
WorkerArg g_args[PthreadPool::kMaxThreads];  // static: no heap for thread arguments

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ volatile("yield");
#endif
}

void* worker_main(void* p) {
  WorkerArg* arg = static_cast<WorkerArg*>(p);
  PthreadPool::Shared* s = arg->shared;
  uint32_t seen = arg->first_seen;
  for (;;) {
    // Spin briefly (decode issues hundreds of jobs per token), then sleep.
    uint32_t gen = s->generation.load(std::memory_order_acquire);
    for (int spin = 0; gen == seen && spin < 20000; ++spin) {
      cpu_relax();
      gen = s->generation.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      pthread_mutex_lock(&s->mutex);
      while ((gen = s->generation.load(std::memory_order_acquire)) == seen && !s->quit.load()) {
        pthread_cond_wait(&s->wake, &s->mutex);
      }
      pthread_mutex_unlock(&s->mutex);
    }
    if (s->quit.load(std::memory_order_acquire)) return nullptr;
    seen = gen;
    uint32_t b, e;
    split_range(s->n, s->grain, s->n_workers + 1, arg->index, &b, &e);
    if (b < e) s->fn(s->ctx, b, e, arg->index);
    s->pending.fetch_sub(1, std::memory_order_acq_rel);
  }
}

PthreadPool::Shared g_shared_storage;  // one pool per process is all the runtime needs
bool g_shared_in_use = false;

}  // namespace

bool PthreadPool::start(uint32_t threads) {
  if (threads == 0 || threads > kMaxThreads || shared_ != nullptr || g_shared_in_use) return false;
  n_threads_ = threads;
  if (threads == 1) return true;
  g_shared_in_use = true;
  shared_ = &g_shared_storage;
  shared_->quit.store(false);
  shared_->n_workers = 0;
  for (uint32_t i = 1; i < threads; ++i) {
    g_args[i] = WorkerArg{shared_, i, shared_->generation.load(std::memory_order_acquire)};
    if (pthread_create(&shared_->threads[i - 1], nullptr, worker_main, &g_args[i]) != 0) {
      stop();
      return false;
    }
    ++shared_->n_workers;
  }
  return true;
}

void PthreadPool::stop() {
  if (shared_ == nullptr) return;
  pthread_mutex_lock(&shared_->mutex);
  shared_->quit.store(true, std::memory_order_release);
  shared_->generation.fetch_add(1, std::memory_order_acq_rel);
  pthread_cond_broadcast(&shared_->wake);
  pthread_mutex_unlock(&shared_->mutex);
  for (uint32_t i = 0; i < shared_->n_workers; ++i) pthread_join(shared_->threads[i], nullptr);
  shared_->n_workers = 0;
  shared_ = nullptr;
  g_shared_in_use = false;
  n_threads_ = 1;
}

PthreadPool::~PthreadPool() { stop(); }

void PthreadPool::parallel_for(uint32_t n, uint32_t grain, RangeFn fn, void* ctx) {
  if (n == 0) return;
  Shared* s = shared_;
  if (s == nullptr || s->n_workers == 0 || n <= grain) {
    fn(ctx, 0, n, 0);
    return;
  }
  s->fn = fn;
  s->ctx = ctx;
  s->n = n;
  s->grain = grain;
  s->pending.store(s->n_workers, std::memory_order_relaxed);
  pthread_mutex_lock(&s->mutex);
  s->generation.fetch_add(1, std::memory_order_acq_rel);
  pthread_cond_broadcast(&s->wake);
  pthread_mutex_unlock(&s->mutex);
  uint32_t b, e;
  split_range(n, grain, s->n_workers + 1, 0, &b, &e);
  if (b < e) fn(ctx, b, e, 0);
  while (s->pending.load(std::memory_order_acquire) != 0) cpu_relax();
}

}  // namespace tern
