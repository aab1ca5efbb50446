// The pthread worker pool (port/thread_pool.h).
//
// Scheduling. parallel_for cuts [0, n) into grain-aligned chunks (several per
// thread) and publishes a claim word; every thread, the caller included,
// claims the next chunk with one atomic add until none is left. A worker that
// lost its core claims nothing, so its share is taken by whoever runs: the
// caller waits only for chunks already in progress, never for a preempted or
// sleeping thread's unstarted share. What a chunk computes depends only on its
// range (`worker` only selects per-thread scratch), so results are the same
// for any thread count and any timing.
//
// Waiting. An idle worker spins for a short, bounded time on the job counter
// (decode issues ~150 jobs per token, most under 2 us apart), then blocks
// on a futex (a condition variable off Linux). The caller, once no chunk is
// left to claim, spins briefly for the chunks in progress, then blocks. A
// blocked thread leaves its core to whoever can use it: a preempted thread
// holding the last chunk, the caller itself, or another program. Nobody spins
// when the pool has more threads than the CPUs it may run on, nor for the
// next kQuietJobs jobs after a sign that the cores are contended: a spinner
// that finds it was descheduled mid-spin, or a caller that waited far longer
// for a chunk in progress than its own chunks took.
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "port/thread_pool.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

namespace tern {

namespace {

// Tuning, for a pool that fits the CPUs it may run on. An idle worker spins
// this long for the next job before it blocks: it covers ~97% of the gaps
// between a decode step's jobs (most are under 2 us), not the gap between
// tokens. The caller spins at least kCallerSpinNs, and about one of its own
// chunk times, for chunks in progress before it blocks. Spins are short on
// purpose: with one core taken by another program, a 10 us worker spin made
// 2-thread decode 10-20% slower than 2-5 us did (bench/thread_contention.sh;
// likely because spinning is CPU time the scheduler charges to the spinner,
// which then loses its core more often, chunk in hand). Chunks per thread: enough that
// whoever runs can take a stalled thread's share, few enough that claiming
// (one atomic add each) stays cheap next to a chunk.
constexpr uint64_t kWorkerSpinNs = 5'000;
constexpr uint64_t kCallerSpinNs = 2'000;
constexpr uint32_t kChunksPerThread = 4;
// A gap this long between two clock reads of a spin loop (normally ~1 us
// apart) means the spinner lost its core: the cores are contended.
constexpr uint64_t kDescheduledNs = 100'000;
// Jobs without spinning after a sign of contention (decode: ~150 per token).
constexpr uint32_t kQuietJobs = 1024;
constexpr uint32_t kMaxChunks = 4096;  // the claim word's 16-bit fields, with room for late adds

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ volatile("yield");
#endif
}

inline uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

// Spin until word != value or `budget_ns` passes; returns the last value
// read. *descheduled is set when the spinner was off its core mid-spin.
inline uint32_t spin_while_equal(const std::atomic<uint32_t>& word, uint32_t value, uint64_t budget_ns,
                                 bool* descheduled) {
  uint32_t v = word.load(std::memory_order_acquire);
  if (v != value || budget_ns == 0) return v;
  const uint64_t t0 = mono_ns();
  uint64_t last = t0;
  for (uint32_t i = 1;; ++i) {
    cpu_relax();
    v = word.load(std::memory_order_acquire);
    if (v != value) return v;
    if ((i & 31) == 0) {
      const uint64_t now = mono_ns();
      if (now - last > kDescheduledNs) *descheduled = true;
      if (*descheduled || now - t0 > budget_ns) return v;
      last = now;
    }
  }
}

// Block while *word == expected (may return early); wake up to `count` blocked threads.
#if defined(__linux__)
void block_on(std::atomic<uint32_t>* word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}
void wake(std::atomic<uint32_t>* word, uint32_t count) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, int(count), nullptr, nullptr, 0);
}
#else
pthread_mutex_t g_block_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_block_cond = PTHREAD_COND_INITIALIZER;
void block_on(std::atomic<uint32_t>* word, uint32_t expected) {
  pthread_mutex_lock(&g_block_mutex);
  if (word->load(std::memory_order_seq_cst) == expected) pthread_cond_wait(&g_block_cond, &g_block_mutex);
  pthread_mutex_unlock(&g_block_mutex);
}
void wake(std::atomic<uint32_t>*, uint32_t) {
  pthread_mutex_lock(&g_block_mutex);
  pthread_cond_broadcast(&g_block_cond);
  pthread_mutex_unlock(&g_block_mutex);
}
#endif

// CPUs this process may run on (its affinity mask), at least 1.
uint32_t usable_cpus() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return uint32_t(n);
  }
#endif
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? uint32_t(n) : 1;
}

}  // namespace

struct PthreadPool::Shared {
  pthread_t threads[kMaxThreads];
  uint32_t n_workers = 0;         // threads besides the caller
  bool fits = false;              // threads <= usable CPUs: spinning may pay
  uint32_t wake_max = 1;          // workers the caller wakes per job at most
  // The job. Written by the caller before it stores `claim`; read only by a
  // thread holding a claimed chunk, which keeps the job from completing (and
  // so from being overwritten) until that thread reports its chunks done.
  RangeFn fn = nullptr;
  void* ctx = nullptr;
  uint32_t n = 0, grain = 1;
  // (chunks << 16) | next unclaimed chunk, taken by fetch_add. An add that
  // returns a chunk at or past `chunks` finds the job drained; each thread
  // makes at most one such add per job it sees, so the low half never
  // carries into the high half.
  alignas(64) std::atomic<uint32_t> claim{0};
  // Chunks of the current job reported done; the caller returns at `chunks`.
  alignas(64) std::atomic<uint32_t> done{0};
  std::atomic<uint32_t> caller_blocked{0};
  // Bumped once per job (and by stop); idle workers wait for it to change.
  alignas(64) std::atomic<uint32_t> epoch{0};
  std::atomic<uint32_t> sleepers{0};  // workers blocked (or about to block) on `epoch`
  std::atomic<bool> quit{false};
  // Spinning pays only from this epoch on (see kQuietJobs); written on
  // contention, read before each spin.
  std::atomic<uint32_t> spin_from{0};
};

namespace {

bool may_spin(const PthreadPool::Shared* s, uint32_t epoch) {
  return s->fits && int32_t(epoch - s->spin_from.load(std::memory_order_relaxed)) >= 0;
}

void note_contention(PthreadPool::Shared* s, uint32_t epoch) {
  s->spin_from.store(epoch + kQuietJobs, std::memory_order_relaxed);
}

struct WorkerArg {
  PthreadPool::Shared* shared;
  uint32_t index;       // 1..n_workers (0 is the caller)
  uint32_t first_seen;  // epoch at start: a restarted pool must not replay the last job
};
WorkerArg g_args[PthreadPool::kMaxThreads];  // static: no heap for thread arguments

// Claim and run chunks of the current job until none is left. Returns how
// many this thread ran; *chunks_out is the job's chunk count. All chunks one
// call claims belong to one job: a job cannot end while a thread holds chunks
// it has not reported to `done`.
uint32_t drain(PthreadPool::Shared* s, uint32_t worker, uint32_t* chunks_out) {
  uint32_t mine = 0, chunks = 0;
  for (;;) {
    const uint32_t w = s->claim.fetch_add(1, std::memory_order_acq_rel);
    chunks = w >> 16;
    const uint32_t c = w & 0xffffu;
    if (c >= chunks) break;
    // A worker that finds more than its own chunk left wakes one more
    // sleeper: the wake-up spreads only as far as there is work for it.
    if (mine == 0 && worker != 0 && c + 2 < chunks && s->sleepers.load(std::memory_order_relaxed) != 0) {
      wake(&s->epoch, 1);
    }
    uint32_t b, e;
    split_range(s->n, s->grain, chunks, c, &b, &e);
    s->fn(s->ctx, b, e, worker);
    ++mine;
  }
  *chunks_out = chunks;
  return mine;
}

// Wait until `epoch` differs from `seen`: a bounded spin, then block.
uint32_t wait_for_job(PthreadPool::Shared* s, uint32_t seen) {
  bool descheduled = false;
  uint32_t e = spin_while_equal(s->epoch, seen, may_spin(s, seen) ? kWorkerSpinNs : 0, &descheduled);
  if (descheduled) note_contention(s, seen);
  if (e != seen) return e;
  // Announce, then re-check (seq_cst on both sides: either the publisher sees
  // this sleeper or this load sees the new epoch), then block.
  s->sleepers.fetch_add(1, std::memory_order_seq_cst);
  while ((e = s->epoch.load(std::memory_order_seq_cst)) == seen) block_on(&s->epoch, seen);
  s->sleepers.fetch_sub(1, std::memory_order_relaxed);
  return e;
}

void* worker_main(void* p) {
  WorkerArg* arg = static_cast<WorkerArg*>(p);
  PthreadPool::Shared* s = arg->shared;
  uint32_t seen = arg->first_seen;
  for (;;) {
    seen = wait_for_job(s, seen);
    if (s->quit.load(std::memory_order_acquire)) return nullptr;
    uint32_t chunks = 0;
    const uint32_t mine = drain(s, arg->index, &chunks);
    if (mine == 0) continue;
    const uint32_t d = s->done.fetch_add(mine, std::memory_order_seq_cst) + mine;
    if (d == chunks && s->caller_blocked.load(std::memory_order_seq_cst) != 0) wake(&s->done, 1);
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
  Shared* s = shared_;
  const uint32_t cpus = usable_cpus();
  const bool fits = threads <= cpus;
  s->fits = fits;
  s->spin_from.store(s->epoch.load(std::memory_order_relaxed), std::memory_order_relaxed);
  s->wake_max = (fits ? threads : cpus) - 1;
  if (s->wake_max == 0) s->wake_max = 1;
  s->quit.store(false);
  s->n_workers = 0;
  for (uint32_t i = 1; i < threads; ++i) {
    g_args[i] = WorkerArg{s, i, s->epoch.load(std::memory_order_acquire)};
    if (pthread_create(&s->threads[i - 1], nullptr, worker_main, &g_args[i]) != 0) {
      stop();
      return false;
    }
    ++s->n_workers;
  }
  return true;
}

void PthreadPool::stop() {
  if (shared_ == nullptr) return;
  shared_->quit.store(true, std::memory_order_release);
  shared_->epoch.fetch_add(1, std::memory_order_seq_cst);
  wake(&shared_->epoch, kMaxThreads);
  for (uint32_t i = 0; i < shared_->n_workers; ++i) pthread_join(shared_->threads[i], nullptr);
  shared_->n_workers = 0;
  shared_ = nullptr;
  g_shared_in_use = false;
  n_threads_ = 1;
}

PthreadPool::~PthreadPool() { stop(); }

void PthreadPool::parallel_for(uint32_t n, uint32_t grain, RangeFn fn, void* ctx) {
  if (n == 0) return;
  if (grain == 0) grain = 1;
  Shared* s = shared_;
  const uint32_t units = n / grain + (n % grain != 0);
  if (s == nullptr || s->n_workers == 0 || units <= 1) {
    fn(ctx, 0, n, 0);
    return;
  }
  uint32_t chunks = n_threads_ * kChunksPerThread;
  if (chunks > kMaxChunks) chunks = kMaxChunks;
  if (chunks > units) chunks = units;

  // Publish: the job, then the claim word (release: a claim that reads it
  // sees the job), then the epoch idle workers watch.
  s->fn = fn;
  s->ctx = ctx;
  s->n = n;
  s->grain = grain;
  s->done.store(0, std::memory_order_relaxed);
  s->caller_blocked.store(0, std::memory_order_relaxed);
  s->claim.store(chunks << 16, std::memory_order_release);
  const uint32_t epoch = s->epoch.fetch_add(1, std::memory_order_seq_cst) + 1;
  const uint32_t sleepers = s->sleepers.load(std::memory_order_seq_cst);
  if (sleepers != 0) {
    uint32_t k = sleepers < s->wake_max ? sleepers : s->wake_max;
    if (k > chunks - 1) k = chunks - 1;
    wake(&s->epoch, k);
  }

  const bool spin = may_spin(s, epoch);
  const uint64_t t0 = spin ? mono_ns() : 0;
  uint32_t ignored = 0;
  const uint32_t mine = drain(s, 0, &ignored);
  uint32_t d = mine == 0 ? s->done.load(std::memory_order_acquire)
                         : s->done.fetch_add(mine, std::memory_order_acq_rel) + mine;
  if (d == chunks) return;
  // Chunks still running on other threads. They normally end within about
  // one chunk time: spin that long (at least kCallerSpinNs), then block. A
  // wait longer than that, with every worker awake at the start, means a
  // chunk holder lost its core: stop spinning for a while.
  if (spin) {
    const uint64_t t1 = mono_ns();
    uint64_t budget = mine != 0 ? 2 * (t1 - t0) / mine : 0;
    if (budget < kCallerSpinNs) budget = kCallerSpinNs;
    uint64_t last = t1;
    for (uint32_t i = 1;; ++i) {
      cpu_relax();
      if (s->done.load(std::memory_order_acquire) == chunks) return;
      if ((i & 31) == 0) {
        const uint64_t now = mono_ns();
        if (now - last > kDescheduledNs || now - t1 > budget) {
          if (sleepers == 0) note_contention(s, epoch);
          break;
        }
        last = now;
      }
    }
  }
  s->caller_blocked.store(1, std::memory_order_seq_cst);
  while ((d = s->done.load(std::memory_order_seq_cst)) != chunks) block_on(&s->done, d);
}

}  // namespace tern
