// Fuzz target: the blob loader and validator, through the front door the
// runtime uses: Engine::open on the input as an in-memory blob (header,
// section table, hyperparameters, memory plan, tensor directory, tokenizer
// section, chat template, weight binding, tensor-data CRC), then - if it
// opened - a short prefill and decode step, one sample and one tokenizer
// encode, so anything the validator let through is also exercised by the
// code that trusts it (ASan then catches any read outside the blob).
//
// Checksums would stop a mutating fuzzer at the header: each input is opened
// twice, once as given (the checksums must reject corruption) and once with
// every CRC the format has recomputed, so mutations reach the parsers behind
// the checksums.
//
// Speed (10^7 execs is the bar): the harness's own work is FUZZ_NO_COVERAGE
// (fuzz_support.h), fuzz builds compile blob::crc32 without coverage
// (runtime/CMakeLists.txt), and the input copy and the engine's arena are
// buffers reused across execs (see ReusedBuffer).
#include <cstdlib>
#include <cstring>

#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif
#if defined(FUZZ_ASAN)
#include <sanitizer/asan_interface.h>
#endif

#include "runtime/blob_format.h"
#include "runtime/engine.h"
#include "runtime/memory_plan.h"
#include "runtime/model_file.h"
#include "tests/fuzz/fuzz_support.h"

using namespace tern;

namespace {

// Recompute section CRCs, the section table CRC and the header CRC where the
// header says they are (only what lies inside the input). False if nothing changed.
FUZZ_NO_COVERAGE bool fix_checksums(uint8_t* d, size_t size) {
  namespace hdr = blob::hdr;
  if (size < blob::kHeaderBytes) return false;
  bool changed = false;
  auto put = [&](uint8_t* p, uint32_t v) {
    if (blob::load_u32(p) != v) {
      for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
      changed = true;
    }
  };
  const uint32_t count = blob::load_u32(d + hdr::kSectionCount);
  const uint64_t table = blob::load_u64(d + hdr::kSectionTable);
  if (count <= blob::kMaxSections && table <= size && uint64_t(count) * blob::kSectionEntryBytes <= size - table) {
    for (uint32_t i = 0; i < count; ++i) {
      uint8_t* e = d + table + size_t(i) * blob::kSectionEntryBytes;
      const uint64_t off = blob::load_u64(e + 8), bytes = blob::load_u64(e + 16);
      if (off <= size && bytes <= size - off) put(e + 24, blob::crc32(d + off, size_t(bytes)));
    }
    put(d + hdr::kSectionTableCrc, blob::crc32(d + table, size_t(count) * blob::kSectionEntryBytes));
  }
  put(d + hdr::kHeaderCrc, blob::crc32(d, hdr::kHeaderCrc));
  return changed;
}

// A buffer kept across execs that ASan still sees as exactly `bytes` long:
// prepare() hands out [0, bytes) and poisons the rest of it, release()
// poisons all of it until the next prepare() (the allocation's own redzones
// guard both ends). It replaces two per-exec allocations:
//  - the input copy the runtime reads as its blob (was posix_memalign + free);
//  - the engine's arena (EngineOptions::arena_buffer). Left to itself,
//    Engine::open maps a fresh arena and close() unmaps it: page faults and
//    kernel zeroing on every exec. A fresh mapping is zeroed, so the caller
//    zeroes [0, bytes) and no exec depends on the one before; accesses past
//    the plan are now caught to the byte (a mapping only faulted past its
//    last page), and a use after close() still is (then: an unmapped arena).
class ReusedBuffer {
 public:
  FUZZ_NO_COVERAGE uint8_t* prepare(size_t bytes) {
    if (base_ == nullptr || bytes > cap_) {
      set_poisoned(base_, cap_, false);
      std::free(base_);
      cap_ = bytes ? (bytes + 4095) & ~size_t(4095) : 4096;
      void* p = nullptr;
      if (posix_memalign(&p, 4096, cap_) != 0) std::abort();  // page-aligned, like a mapping
      base_ = static_cast<uint8_t*>(p);
    }
    set_poisoned(base_, bytes, false);
    set_poisoned(base_ + bytes, cap_ - bytes, true);
    return base_;
  }
  FUZZ_NO_COVERAGE void release() { set_poisoned(base_, cap_, true); }

 private:
  // ASan's view of [p, p + n): unreadable (poisoned) or readable.
  static void set_poisoned(const void* p, size_t n, bool poisoned) {
#if defined(FUZZ_ASAN)
    if (n == 0) return;
    if (poisoned) {
      ASAN_POISON_MEMORY_REGION(p, n);
    } else {
      ASAN_UNPOISON_MEMORY_REGION(p, n);
    }
#else
    (void)p, (void)n, (void)poisoned;
#endif
  }
  uint8_t* base_ = nullptr;
  size_t cap_ = 0;
};

void exercise(const uint8_t* blob, size_t size) {
  // A cheap pre-check so a blob claiming a multi-gigabyte model does not make
  // the fuzzer reserve (and model init touch) gigabytes: the runtime itself
  // would do exactly this work; the fuzzer only skips it.
  ModelFile f;
  if (!open_model_file(blob, size, &f).is_ok()) return;
  EngineOptions o;
  o.blob_data = blob;
  o.blob_size = size;
  o.limits.max_context = 16;
  o.limits.max_sequences = 1;
  o.limits.prefill_chunk = 4;
  o.verify_weights = true;
  // Exactly the plan Engine::open will make (same limits, same defaults).
  MemoryPlan plan;
  const char* why = nullptr;
  const bool planned = plan_memory(f.shape(), resolve_run_limits(o, f.default_limits), &plan, &why);
  if (planned && plan.total > (size_t(64) << 20)) return;

  static Engine engine;
  static ReusedBuffer arena;
  if (planned) {  // else open fails on the limits before it wants an arena
    o.arena_buffer = arena.prepare(plan.total);
    o.arena_bytes = plan.total;
    std::memset(o.arena_buffer, 0, plan.total);
  }
  const Status s = engine.open(o);
  if (s.is_ok()) {
    KvSequence* seq = engine.sequence(0);
    const uint32_t vocab = engine.hparams().vocab;
    int32_t ids[5] = {0, int32_t(vocab - 1), int32_t(vocab / 2), 1 % int32_t(vocab), 0};
    if (engine.prefill(seq, ids, 5).is_ok()) {
      const int32_t next = engine.sample(ids, 5);
      FUZZ_CHECK(next >= 0 && uint32_t(next) < vocab, "sampled %d of %u", next, vocab);
      (void)engine.decode(seq, next);
    }
    static const char kText[] = "Hi <|im_start|>user\n 12345 héllo\xff\xfe wörld!!\n";
    int32_t out[64];
    size_t n = 0;
    (void)engine.tokenizer().encode(kText, sizeof(kText) - 1, true, out, 64, &n);
    for (size_t i = 0; i < n; ++i) {
      const char* b;
      size_t bl;
      FUZZ_CHECK(engine.tokenizer().token_bytes(out[i], &b, &bl), "encode produced invalid id %d", out[i]);
    }
  } else {
    FUZZ_CHECK(s.message() != nullptr && s.message()[0] != '\0', "error %s without a message",
               status_code_name(s.code()));
  }
  engine.close();
  arena.release();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A page-aligned copy (the runtime expects a mapping) that ASan sees as
  // exactly `size` bytes, so the first byte past the end is a finding.
  static ReusedBuffer copy;
  uint8_t* blob = copy.prepare(size);
  if (size) std::memcpy(blob, data, size);
  exercise(blob, size);
  if (fix_checksums(blob, size)) exercise(blob, size);
  copy.release();
  return 0;
}
