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
// Waiting. An idle worker spins on the job counter for up to kWorkerSpinNs
// (decode issues ~150 jobs per token, microseconds apart, so workers stay hot
// while tokens are generated), then blocks on a futex (a condition variable
// off Linux). The caller, once no chunk is left to claim, spins the same way
// for the chunks in progress, then blocks. Every spin calls sched_yield every
// few microseconds: with a core to itself that returns at once, but a
// runnable thread of another program, or a preempted worker holding a chunk,
// gets the core. A spinner that finds it was off its core for a long time
// (kDescheduledNs) marks the cores contended, and nobody spins for the next
// kQuietJobs jobs. Threads beyond the CPUs the process may use only park:
// 4 threads on 2 CPUs run as 2 do.
//
// Measured on 2 vCPUs (bench/results/thread_contention.md): a 5 us spin, or
// counting 50-100 us gaps as contention (a virtual CPU sees such gaps without
// any competitor), cost a third of 2-thread decode with the cores free.
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

// Tuning. Spin budgets: long enough to cover the gap between tokens, short
// enough that an idle REPL sleeps. Chunks per thread: enough that whoever runs
// can take a stalled thread's share, few enough that claiming (one atomic add
// each) stays cheap next to a chunk.
constexpr uint64_t kWorkerSpinNs = 1'000'000;
constexpr uint64_t kCallerSpinNs = 1'000'000;
constexpr uint32_t kChunksPerThread = 2;
// A gap this long between two clock reads of a spin loop (normally a few us
// apart) means the spinner lost its core to another thread for more than a
// scheduler tick: the cores are contended.
constexpr uint64_t kDescheduledNs = 10'000'000;
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
// read. Every few microseconds the spinner calls sched_yield: with the core to
// itself that returns at once, but a runnable thread of another program (or a
// preempted worker holding a chunk) gets the core. *descheduled is set when
// the spinner was off its core for a while (a yield that was taken, or a
// preemption): the cores are contended.
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
      if ((i & 255) == 0) {
        sched_yield();
        last = mono_ns();
      } else {
        last = now;
      }
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
  // Workers 1..n_active take jobs: one thread per usable CPU, the caller
  // included. With more threads than CPUs the others only park (on `park`)
  // until stop: a thread with no core of its own can only delay a chunk, so
  // 4 threads on 2 CPUs run as 2 do. size() still reports what was asked for.
  uint32_t n_active = 0;
  std::atomic<uint32_t> park{0};
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
  if (arg->index > s->n_active) {  // beyond the usable CPUs: park until stop
    while (s->park.load(std::memory_order_seq_cst) == 0) block_on(&s->park, 0);
    return nullptr;
  }
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
  s->n_active = (threads <= cpus ? threads : cpus) - 1;
  s->park.store(0, std::memory_order_relaxed);
  const bool fits = s->n_active + 1 <= cpus;
  s->fits = fits;
  s->spin_from.store(s->epoch.load(std::memory_order_relaxed), std::memory_order_relaxed);
  s->wake_max = s->n_active == 0 ? 1 : s->n_active;
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
  shared_->park.store(1, std::memory_order_seq_cst);
  wake(&shared_->park, kMaxThreads);
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
  if (s == nullptr || s->n_workers == 0 || s->n_active == 0 || units <= 1) {
    fn(ctx, 0, n, 0);
    return;
  }
  uint32_t chunks = (s->n_active + 1) * kChunksPerThread;
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
    bool descheduled = false;
    const uint64_t t_wait = mono_ns();
    for (;;) {
      // Spin (yielding now and then, see spin_while_equal) on the done count.
      d = spin_while_equal(s->done, d, kCallerSpinNs, &descheduled);
      if (d == chunks) return;
      if (descheduled) {
        note_contention(s, epoch);
        break;
      }
      if (mono_ns() - t_wait > kCallerSpinNs) break;
    }
  }
  s->caller_blocked.store(1, std::memory_order_seq_cst);
  while ((d = s->done.load(std::memory_order_seq_cst)) != chunks) block_on(&s->done, d);
}

}  // namespace tern
