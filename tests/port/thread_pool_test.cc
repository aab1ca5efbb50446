// The worker pool (port/thread_pool.h): split_range partitions exactly,
// parallel_for runs every index once on every thread count, the pool can be
// stopped and started again without a stale job running, and the engine
// with --threads 2 gives the single-threaded result on the real model.
// The ThreadSanitizer build (preset tsan, scripts/sanitize_test.sh) runs this
// file to check the pool's publication and completion are race-free.
#include "port/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "runtime/engine.h"

namespace tern {
namespace {

TEST(SplitRange, CoversEveryIndexOnceInGrainAlignedParts) {
  for (uint32_t n : {0u, 1u, 7u, 64u, 65u, 1000u, 4097u}) {
    for (uint32_t grain : {0u, 1u, 3u, 16u, 64u}) {
      for (uint32_t workers = 1; workers <= 9; ++workers) {
        uint32_t next = 0;
        for (uint32_t w = 0; w < workers; ++w) {
          uint32_t b, e;
          split_range(n, grain, workers, w, &b, &e);
          ASSERT_EQ(b, next) << "n=" << n << " grain=" << grain << " w=" << w;
          ASSERT_LE(b, e);
          if (grain > 1 && e < n) {
            ASSERT_EQ(e % grain, 0u);
          }
          next = e;
        }
        ASSERT_EQ(next, n);
      }
    }
  }
}

struct Job {
  std::vector<uint32_t> hits;     // plain writes: TSan flags any overlap
  std::vector<uint32_t> by;       // worker that wrote each index
  std::atomic<uint32_t> calls{0};
  uint32_t pool_size = 1;
};

void count_range(void* ctx, uint32_t b, uint32_t e, uint32_t worker) {
  Job* j = static_cast<Job*>(ctx);
  j->calls.fetch_add(1, std::memory_order_relaxed);
  for (uint32_t i = b; i < e; ++i) {
    j->hits[i] += 1;
    j->by[i] = worker;
  }
}

TEST(PthreadPool, EveryIndexOnceAcrossThreadCountsAndManyCalls) {
  // More threads than cores on purpose (CI has 2): workers get preempted
  // mid-job. Call counts stay modest: under ThreadSanitizer every spin of an
  // oversubscribed worker is slow.
  for (uint32_t threads : {1u, 2u, 3u, 4u}) {
    PthreadPool pool;
    ASSERT_TRUE(pool.start(threads));
    ASSERT_EQ(pool.size(), threads);
    Job job;
    for (uint32_t call = 0; call < 400; ++call) {
      const uint32_t n = (call * 37) % 700;  // includes n = 0 and n <= grain
      const uint32_t grain = 1 + call % 17;
      job.hits.assign(n, 0);
      job.by.assign(n, 99);
      pool.parallel_for(n, grain, count_range, &job);
      // The caller reads results right after parallel_for returns: completion
      // must be a happens-before edge, not just "all workers are done".
      for (uint32_t i = 0; i < n; ++i) {
        ASSERT_EQ(job.hits[i], 1u) << "threads=" << threads << " call=" << call << " i=" << i;
        ASSERT_LT(job.by[i], threads);
      }
    }
    pool.stop();
  }
}

TEST(PthreadPool, OnePoolPerProcessAndRestartRunsNoStaleJob) {
  PthreadPool a, b;
  ASSERT_TRUE(a.start(3));
  EXPECT_FALSE(b.start(2)) << "the port keeps one pool's state; a second must be refused";
  EXPECT_FALSE(a.start(2)) << "starting a running pool";
  Job first;
  first.hits.assign(300, 0);
  first.by.assign(300, 0);
  a.parallel_for(300, 1, count_range, &first);
  const uint32_t first_calls = first.calls.load();
  a.stop();
  // Restart (what Engine::close + Engine::open with threads > 1 does). The new
  // workers must wait for the next job, not replay the last one published.
  ASSERT_TRUE(a.start(3));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(first.calls.load(), first_calls) << "a restarted worker ran the previous pool's job";
  for (uint32_t i = 0; i < 300; ++i) ASSERT_EQ(first.hits[i], 1u);
  Job second;
  for (int round = 0; round < 50; ++round) {
    second.hits.assign(1000, 0);
    second.by.assign(1000, 0);
    a.parallel_for(1000, 8, count_range, &second);
    for (uint32_t i = 0; i < 1000; ++i) ASSERT_EQ(second.hits[i], 1u) << "round " << round;
  }
  a.stop();
  EXPECT_TRUE(b.start(2)) << "after stop the port state is free again";
  b.stop();
  EXPECT_FALSE(a.start(0));
  EXPECT_FALSE(a.start(PthreadPool::kMaxThreads + 1));
}

// Greedy tokens of `prompt` plus `steps` decode steps with `threads` workers.
std::vector<int32_t> greedy(const std::string& blob, uint32_t threads, uint32_t steps) {
  static Engine engine;
  EngineOptions o;
  o.model_path = blob.c_str();
  o.threads = threads;
  o.limits.max_context = 64;
  o.limits.prefill_chunk = 8;
  o.sampling.temperature = 0.0f;
  std::vector<int32_t> out;
  Status s = engine.open(o);
  EXPECT_TRUE(s.is_ok()) << s.message();
  if (!s.is_ok()) return out;
  EXPECT_EQ(engine.threads(), threads);
  const char text[] = "The capital of France is";
  int32_t ids[32];
  size_t n = 0;
  EXPECT_TRUE(engine.tokenizer().encode(text, sizeof(text) - 1, false, ids, 32, &n).is_ok());
  KvSequence* seq = engine.sequence(0);
  EXPECT_TRUE(engine.prefill(seq, ids, n).is_ok());
  for (uint32_t i = 0; i < steps; ++i) {
    const float* l = engine.logits();
    int32_t best = 0;
    for (uint32_t v = 1; v < engine.hparams().vocab; ++v) if (l[v] > l[best]) best = int32_t(v);
    out.push_back(best);
    if (!engine.decode(seq, best).is_ok()) break;
  }
  engine.close();
  return out;
}

TEST(PthreadPool, EngineWithTwoThreadsMatchesOneThread) {
  const std::string blob = std::string(TERN_MODEL_DIR) + "/smollm2-135m-int4.tern";
  if (FILE* f = std::fopen(blob.c_str(), "rb")) {
    std::fclose(f);
  } else {
    GTEST_SKIP() << "no packed model at " << blob << " (scripts/fetch_model.sh, then ctest packs it)";
  }
  const std::vector<int32_t> one = greedy(blob, 1, 4);
  const std::vector<int32_t> two = greedy(blob, 2, 4);
  ASSERT_EQ(one.size(), 4u);
  EXPECT_EQ(one, two);
  const std::vector<int32_t> again = greedy(blob, 2, 4);  // second open: pool restarted
  EXPECT_EQ(one, again);
}

}  // namespace
}  // namespace tern
