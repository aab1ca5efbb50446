// The arena plan: what plan_memory computes by category, that the packer
// stores exactly that plan in the blob and the runtime checks it, that a
// caller's arena is refused at init with the shortfall named (and accepted at
// exactly the planned size, even unaligned), and that after init the only way
// to run out of memory is the documented KV-full / context-full error. Uses
// the tiny packed model (tests/support/tiny_model.h), so it needs no download.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "arena/arena.h"
#include "runtime/blob_format.h"
#include "runtime/engine.h"
#include "runtime/generate.h"
#include "runtime/kv_pages.h"
#include "runtime/memory_plan.h"
#include "tests/support/tiny_model.h"

namespace tern {
namespace {

ModelShape smol_shape() {  // SmolLM2-135M
  ModelShape s;
  s.layers = 30;
  s.dim = 576;
  s.heads = 9;
  s.kv_heads = 3;
  s.head_dim = 64;
  s.ffn = 1536;
  s.vocab = 49152;
  s.rope_dim = 64;
  s.n_tokens = 49152;
  s.n_merges = 48900;
  return s;
}

ModelShape gemma3_shape() {  // Gemma 3 270M: 15 sliding layers (window 512), 3 global
  ModelShape s;
  s.layers = 18;
  s.dim = 640;
  s.heads = 4;
  s.kv_heads = 1;
  s.head_dim = 256;
  s.ffn = 2048;
  s.vocab = 262144;
  s.rope_dim = 256;
  s.n_tokens = 262144;
  s.tokenizer_model = 2;
  s.token_text_bytes = 2400000;
  s.rope_tables = 2;
  s.sliding_layers = 15;
  s.window = 512;
  return s;
}

MemoryPlan plan_or_die(const ModelShape& s, const RunLimits& l) {
  MemoryPlan p;
  const char* why = "";
  EXPECT_TRUE(plan_memory(s, l, &p, &why)) << why;
  return p;
}

TEST(MemoryPlan, TotalIsTheSumOfCategoriesPlusSlack) {
  const MemoryPlan p = plan_or_die(smol_shape(), RunLimits{});
  EXPECT_EQ(p.total, p.activations + p.kv_blocks + p.logits + p.tokenizer + p.sampler + Arena::kDefaultAlign);
  EXPECT_EQ(p.kv_bytes_per_token, size_t(30) * 2 * 3 * 64 * 2);  // f16 K and V per layer
  EXPECT_EQ(p.kv_block_count, 2048u / 16u);
  EXPECT_GE(p.kv_blocks, size_t(p.kv_block_count) * 16 * p.kv_bytes_per_token);
  EXPECT_EQ(p.logits, size_t(49152) * 4);
}

// int8 KV (issue 17): per (token, KV head) head_dim int8 values + one f32
// scale, for K and for V; the pool is exactly blocks x block bytes (plus the
// same block tables and prefix cache as f16); only the KV category changes.
TEST(MemoryPlan, Int8KvIsCountedExactly) {
  RunLimits f16, i8;
  i8.kv_type = KvType::kInt8;
  const MemoryPlan a = plan_or_die(smol_shape(), f16), b = plan_or_die(smol_shape(), i8);
  EXPECT_EQ(b.kv_bytes_per_token, size_t(2) * 30 * 3 * (64 + 4));  // 12,240 bytes vs 23,040
  EXPECT_EQ(a.kv_bytes_per_token - b.kv_bytes_per_token, size_t(2) * 30 * 3 * (64 - 4));
  EXPECT_EQ(a.kv_blocks - b.kv_blocks, size_t(128) * 16 * (a.kv_bytes_per_token - b.kv_bytes_per_token));
  EXPECT_EQ(a.activations, b.activations);
  EXPECT_EQ(b.total, b.activations + b.kv_blocks + b.logits + b.tokenizer + b.sampler + Arena::kDefaultAlign);
  // Gemma 3: the global layers' bytes per token and the window pool both shrink.
  const MemoryPlan g16 = plan_or_die(gemma3_shape(), f16), g8 = plan_or_die(gemma3_shape(), i8);
  EXPECT_EQ(g8.kv_bytes_per_token, size_t(3) * 2 * (256 + 4));
  EXPECT_EQ(g8.window_kv_block_count, g16.window_kv_block_count);
  EXPECT_LT(g8.window_kv_bytes, g16.window_kv_bytes);
}

TEST(MemoryPlan, Int8KvRefusesShapesItCannotRun) {
  RunLimits l;
  l.kv_type = KvType::kInt8;
  MemoryPlan p;
  const char* why = "";
  ModelShape s = smol_shape();
  s.head_dim = 72;  // not a multiple of 16
  EXPECT_FALSE(plan_memory(s, l, &p, &why));
  EXPECT_NE(std::string(why).find("multiple of 16"), std::string::npos) << why;
  l.kv_block_tokens = 8;
  EXPECT_FALSE(plan_memory(smol_shape(), l, &p, &why));
  EXPECT_NE(std::string(why).find("kv_block_tokens of at least 16"), std::string::npos) << why;
  l.kv_block_tokens = 16;
  l.kv_type = KvType(7);
  EXPECT_FALSE(plan_memory(smol_shape(), l, &p, &why));
  EXPECT_NE(std::string(why).find("unknown KV type"), std::string::npos) << why;
}

TEST(MemoryPlan, CategoriesScaleWithTheirOwnLimits) {
  const ModelShape s = smol_shape();
  RunLimits a;
  a.max_context = 1024;
  RunLimits b = a;
  b.max_context = 2048;
  const MemoryPlan pa = plan_or_die(s, a), pb = plan_or_die(s, b);
  // Twice the context: exactly 64 more blocks of 16 tokens in the KV pool.
  EXPECT_GE(pb.kv_blocks - pa.kv_blocks, size_t(64) * 16 * pa.kv_bytes_per_token);
  EXPECT_EQ(pb.logits, pa.logits);
  EXPECT_EQ(pb.sampler, pa.sampler);
  // Attention scores [threads, max_context] grow with the context and threads.
  RunLimits t = a;
  t.threads = 4;
  const MemoryPlan pt = plan_or_die(s, t);
  EXPECT_EQ(pt.activations - pa.activations, arena_align_up(4 * 1024 * 4, 64) - arena_align_up(1024 * 4, 64));
  EXPECT_EQ(pt.kv_blocks, pa.kv_blocks);
  // Scoring keeps a logits row per prefill token.
  RunLimits r = a;
  r.logit_rows = r.prefill_chunk;
  EXPECT_EQ(plan_or_die(s, r).logits, size_t(r.prefill_chunk) * 49152 * 4);
  // Two sequences: twice the KV pool and twice the token histories.
  RunLimits m = a;
  m.max_sequences = 2;
  const MemoryPlan pm = plan_or_die(s, m);
  EXPECT_EQ(pm.kv_block_count, 2 * pa.kv_block_count);
  EXPECT_EQ(pm.tokenizer - pa.tokenizer, size_t(1024) * 4);
  // An over-committed pool is smaller.
  RunLimits o = m;
  o.kv_blocks = 40;
  EXPECT_LT(plan_or_die(s, o).kv_blocks, pm.kv_blocks);
}

TEST(MemoryPlan, RejectsLimitsItCannotPlanWithAReason) {
  const ModelShape s = smol_shape();
  MemoryPlan p;
  const char* why = nullptr;
  RunLimits l;
  l.max_context = 0;
  EXPECT_FALSE(plan_memory(s, l, &p, &why));
  EXPECT_NE(std::string(why).find("max_context"), std::string::npos);
  l = RunLimits{};
  l.kv_block_tokens = 12;
  EXPECT_FALSE(plan_memory(s, l, &p, &why));
  EXPECT_NE(std::string(why).find("power of two"), std::string::npos);
  l = RunLimits{};
  l.kv_blocks = 1000;
  EXPECT_FALSE(plan_memory(s, l, &p, &why));
  EXPECT_NE(std::string(why).find("kv_blocks"), std::string::npos);
  l = RunLimits{};
  l.logit_rows = l.prefill_chunk + 1;
  EXPECT_FALSE(plan_memory(s, l, &p, &why));
}

// The KV pool's block limit is one constant (kMaxKvBlocks) for the planner
// and KvPool::init: a plan --print-plan reports is one the engine opens.
TEST(MemoryPlan, KvBlockLimitIsThePools) {
  const ModelShape s = smol_shape();
  MemoryPlan p;
  const char* why = nullptr;
  RunLimits l;
  l.max_context = 1u << 20;
  l.max_sequences = 256;
  l.kv_block_tokens = 1;  // 2^28 blocks: refused (was planned, then refused by KvPool::init)
  EXPECT_FALSE(plan_memory(s, l, &p, &why));
  EXPECT_NE(std::string(why).find("2^24 - 1 blocks"), std::string::npos) << why;
  l.max_sequences = 16;
  l.kv_blocks = kMaxKvBlocks;
  if (sizeof(size_t) >= 8) {
    EXPECT_TRUE(plan_memory(s, l, &p, &why)) << why;
    EXPECT_EQ(p.kv_block_count, kMaxKvBlocks);
  } else {  // 2^24 blocks of 23 KB do not fit a 32-bit address space: refused, not wrapped
    EXPECT_FALSE(plan_memory(s, l, &p, &why));
    EXPECT_NE(std::string(why).find("address space"), std::string::npos) << why;
  }
  l.kv_blocks = kMaxKvBlocks + 1;
  EXPECT_FALSE(plan_memory(s, l, &p, &why));
}

// The largest shape and limits the loader allows: a KV pool of 2^55 bytes.
// Every size is computed without overflow: exact where size_t holds it (64-bit
// hosts), refused with a reason where it does not (32-bit devices).
TEST(MemoryPlan, HugePlansAreExactOrRefusedNeverWrapped) {
  ModelShape s = smol_shape();
  s.layers = 512;
  s.kv_heads = 512;
  s.heads = 512;
  s.head_dim = 128;  // kv_dim 65536
  s.dim = 65536;
  s.ffn = 262144;
  RunLimits l;
  l.max_context = 1u << 20;
  l.max_sequences = 256;
  l.kv_block_tokens = 1024;
  l.prefill_chunk = 4096;
  MemoryPlan p;
  const char* why = nullptr;
  const bool ok = plan_memory(s, l, &p, &why);
  if (sizeof(size_t) == 8) {
    ASSERT_TRUE(ok) << why;
    const uint64_t kv_pool = 512ull * 2 * (256ull * 1024) * 1024 * 65536 * 2;  // 2^55
    EXPECT_GE(uint64_t(p.kv_blocks), kv_pool);
    // Besides the pool: block tables, free list, refcounts, and the prefix
    // cache's per-block hashes, links and token ids (4 bytes per token) and
    // its hash table (at most 4 slots of 4 bytes per block).
    const uint64_t blocks = 256ull * 1024;
    EXPECT_LT(uint64_t(p.kv_blocks), kv_pool + blocks * (4 * 1024 + 64) + (64ull << 20));
    EXPECT_GT(p.total, p.kv_blocks);
  } else {
    EXPECT_FALSE(ok);
    EXPECT_NE(std::string(why).find("address space"), std::string::npos) << why;
  }
}

// ---- Against a packed (tiny) blob -------------------------------------------

constexpr uint32_t kPackContext = 64;

std::vector<uint8_t> tiny_packed() {
  pack::GgufFile g;
  EXPECT_TRUE(pack::GgufFile::parse(testing::tiny_llama_gguf(3).bytes(), &g).is_ok());
  pack::PackOptions opt;
  opt.limits.max_context = kPackContext;
  opt.limits.max_sequences = 2;
  opt.limits.prefill_chunk = 8;
  opt.limits.kv_block_tokens = 16;
  pack::PackSummary sum;
  std::vector<uint8_t> blob;
  EXPECT_TRUE(pack::pack_gguf(g, opt, &blob, &sum).is_ok());
  return blob;
}

const std::vector<uint8_t>& tiny() {
  static const std::vector<uint8_t> b = tiny_packed();
  return b;
}

EngineOptions tiny_options() {
  EngineOptions o;
  o.blob_data = tiny().data();
  o.blob_size = tiny().size();
  return o;
}

TEST(StoredPlan, TheBlobStoresThePlanByCategory) {
  ModelFile f;
  ASSERT_TRUE(open_model_file(tiny().data(), tiny().size(), &f).is_ok());
  const MemoryPlan p = plan_or_die(f.shape(), f.default_limits);
  const MemoryPlan& s = f.stored_plan;
  EXPECT_GT(s.activations, 0u);
  EXPECT_EQ(s.activations, p.activations);
  EXPECT_EQ(s.kv_blocks, p.kv_blocks);
  EXPECT_EQ(s.logits, p.logits);
  EXPECT_EQ(s.tokenizer, p.tokenizer);
  EXPECT_EQ(s.sampler, p.sampler);
  EXPECT_EQ(s.total, p.total);
  EXPECT_TRUE(check_stored_plan(f, f.default_limits, p).is_ok());
}

TEST(StoredPlan, AMismatchAtTheBlobsLimitsIsRefused) {
  ModelFile f;
  ASSERT_TRUE(open_model_file(tiny().data(), tiny().size(), &f).is_ok());
  const MemoryPlan p = plan_or_die(f.shape(), f.default_limits);
  // A planner that disagrees with the packer's by one KV byte.
  ModelFile changed = f;
  changed.stored_plan.kv_blocks += 1;
  const Status s = check_stored_plan(changed, f.default_limits, p);
  EXPECT_EQ(s.code(), StatusCode::kBadLayout);
  EXPECT_NE(std::string(s.message()).find("repack"), std::string::npos) << s.message();
  EXPECT_NE(std::string(s.message()).find("kv_blocks"), std::string::npos) << s.message();
  // Other limits have nothing stored to compare with.
  RunLimits other = f.default_limits;
  other.max_context = 32;
  EXPECT_TRUE(check_stored_plan(changed, other, plan_or_die(f.shape(), other)).is_ok());
  RunLimits threads = f.default_limits;
  threads.threads = 2;
  EXPECT_TRUE(check_stored_plan(changed, threads, plan_or_die(f.shape(), threads)).is_ok());
}

TEST(StoredPlan, TheEngineUsesTheBlobsPlanAsItsDefault) {
  auto e = std::make_unique<Engine>();
  ASSERT_TRUE(e->open(tiny_options()).is_ok());
  EXPECT_EQ(e->limits().max_context, kPackContext);
  EXPECT_EQ(e->limits().max_sequences, 2u);
  EXPECT_EQ(e->plan().total, e->file().stored_plan.total);
  EXPECT_EQ(e->arena().capacity(), e->plan().total);
}

// ---- Caller arenas ----------------------------------------------------------

size_t planned_total(const EngineOptions& o) {
  auto e = std::make_unique<Engine>();
  EXPECT_TRUE(e->open(o).is_ok());
  return e->plan().total;
}

TEST(CallerArena, TooSmallIsRefusedNamingTheShortfall) {
  EngineOptions o = tiny_options();
  const size_t need = planned_total(o);
  std::vector<uint8_t> buf(need);
  for (size_t shortfall : {size_t(1), size_t(64), size_t(4096), need / 2}) {
    o.arena_buffer = buf.data();
    o.arena_bytes = need - shortfall;
    auto e = std::make_unique<Engine>();
    const Status s = e->open(o);
    EXPECT_EQ(s.code(), StatusCode::kArenaTooSmall);
    const std::string msg = s.message();
    EXPECT_NE(msg.find(std::to_string(shortfall) + " bytes short"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::to_string(need)), std::string::npos) << msg;
  }
}

TEST(CallerArena, ExactlyThePlannedSizeWorksEvenUnaligned) {
  EngineOptions o = tiny_options();
  const size_t need = planned_total(o);
  std::vector<uint8_t> buf(need + 128);
  uint8_t* base = buf.data();
  while (reinterpret_cast<uintptr_t>(base) % 64 != 0) ++base;  // at most 63 of the 128 spare bytes
  for (size_t misalign : {size_t(0), size_t(1), size_t(13), size_t(63)}) {
    o.arena_buffer = base + misalign;
    o.arena_bytes = need;
    auto e = std::make_unique<Engine>();
    const Status s = e->open(o);
    ASSERT_TRUE(s.is_ok()) << "misaligned by " << misalign << ": " << s.message();
    EXPECT_LE(e->arena().high_water(), need);
  }
}

// After init, running out of memory is only ever the documented error: fill
// both sequences' contexts and an over-committed KV pool, and the arena does
// not move while generation fails with kContextFull or kKvFull.
TEST(CallerArena, AfterInitOnlyKvFullOrContextFullEverFail) {
  EngineOptions o = tiny_options();
  o.limits.kv_blocks = 5;  // two sequences of 64 tokens would want 8 blocks of 16
  const size_t need = planned_total(o);
  std::vector<uint8_t> buf(need);
  o.arena_buffer = buf.data();
  o.arena_bytes = need;
  auto e = std::make_unique<Engine>();
  ASSERT_TRUE(e->open(o).is_ok());
  const size_t used = e->arena().used();
  const size_t high = e->arena().high_water();

  int32_t prompt[4] = {1, 2, 3, 4};
  auto run = [&](uint32_t seq_index) {
    TokenHistory h;
    h.ids = e->history(seq_index);
    h.cap = e->limits().max_context;
    std::memcpy(h.ids, prompt, sizeof(prompt));
    h.n = 4;
    GenerateRequest req;
    req.max_new_tokens = 1000;  // more than fits: generation must end in an error
    GenerateStats st;
    return generate(e.get(), e->sequence(seq_index), &h, req, &st);
  };
  const Status a = run(0);  // 64-token context fits the 5-block pool: context_full
  EXPECT_EQ(a.code(), StatusCode::kContextFull) << a.message();
  const Status b = run(1);  // 1 block left for the second sequence: kv_full
  EXPECT_EQ(b.code(), StatusCode::kKvFull) << b.message();
  EXPECT_EQ(e->arena().used(), used);
  EXPECT_EQ(e->arena().high_water(), high);
  // Resetting a sequence gives its blocks back; the second can then continue.
  e->reset(e->sequence(0));
  EXPECT_EQ(e->model().kv().used_blocks(), 1u);
  e->reset(e->sequence(1));
  EXPECT_EQ(e->model().kv().used_blocks(), 0u);
  EXPECT_EQ(run(1).code(), StatusCode::kContextFull);
  EXPECT_EQ(e->arena().high_water(), high);
}

// Issue 14: sliding-window layers keep only their window. Gemma 3 270M at
// 32,768 tokens of context needs at most a fifth of the KV bytes of an
// all-global cache, and the window pool's size does not depend on the context.
TEST(MemoryPlan, SlidingWindowPoolIsBoundedByTheWindow) {
  RunLimits l;
  l.max_context = 32768;
  const ModelShape g = gemma3_shape();
  ModelShape all_global = g;
  all_global.sliding_layers = 0;
  const MemoryPlan p = plan_or_die(g, l), full = plan_or_die(all_global, l);
  std::printf("Gemma 3 270M at 32768 tokens: KV %zu bytes (window pool %zu), all-global %zu: %.3f\n", p.kv_blocks,
              p.window_kv_bytes, full.kv_blocks, double(p.kv_blocks) / double(full.kv_blocks));
  EXPECT_LE(p.kv_blocks * 5, full.kv_blocks);
  EXPECT_EQ(p.window_layers, 15u);
  EXPECT_EQ(p.window_kv_block_count, KvPool::window_blocks(512, l.prefill_chunk, l.kv_block_tokens));
  EXPECT_EQ(p.window_kv_block_count, 37u);  // ceil((512 + 64 - 1) / 16) + 1
  EXPECT_EQ(p.kv_bytes_per_token, size_t(3) * 2 * 256 * 2);  // only the 3 global layers grow with the context
  // Exactly the pools' arena bytes: global pool for 3 layers plus the window
  // pool, both with the prefix cache's tables.
  KvPoolShape gs{3, 1, 256, 16, 32768 / 16, true}, ws{15, 1, 256, 16, 37, true};
  EXPECT_EQ(p.kv_blocks, KvPool::arena_bytes(gs, 1, 2048) + KvPool::arena_bytes(ws, 1, 2048));
  // The window pool does not grow with the context; the global one does.
  l.max_context = 8192;
  const MemoryPlan q = plan_or_die(g, l);
  EXPECT_EQ(q.window_kv_block_count, p.window_kv_block_count);
  EXPECT_LT(q.kv_blocks, p.kv_blocks);
  // A window as long as the context: no separate pool (nothing to save).
  l.max_context = 512;
  const MemoryPlan r = plan_or_die(g, l);
  EXPECT_EQ(r.window_layers, 0u);
  EXPECT_EQ(r.kv_bytes_per_token, size_t(18) * 2 * 256 * 2);
  // Sequences each get their own ring.
  l.max_context = 4096;
  l.max_sequences = 4;
  EXPECT_EQ(plan_or_die(g, l).window_kv_block_count, 4u * 37u);
}

}  // namespace
}  // namespace tern
