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
#include <cstdlib>
#include <cstring>

#include "runtime/blob_format.h"
#include "runtime/engine.h"
#include "runtime/memory_plan.h"
#include "runtime/model_file.h"
#include "tests/fuzz/fuzz_support.h"

using namespace tern;

namespace {

// Recompute section CRCs, the section table CRC and the header CRC where the
// header says they are (only what lies inside the input). False if nothing changed.
bool fix_checksums(uint8_t* d, size_t size) {
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

void exercise(const uint8_t* blob, size_t size) {
  // A cheap pre-check so a blob claiming a multi-gigabyte model does not make
  // the fuzzer reserve (and model init touch) gigabytes: the runtime itself
  // would do exactly this work; the fuzzer only skips it.
  ModelFile f;
  if (!open_model_file(blob, size, &f).is_ok()) return;
  RunLimits lim = f.default_limits;
  lim.max_context = 16;
  lim.max_sequences = 1;
  lim.prefill_chunk = 4;
  MemoryPlan plan;
  const char* why = nullptr;
  if (plan_memory(f.shape(), lim, &plan, &why) && plan.total > (size_t(64) << 20)) return;

  static Engine engine;
  EngineOptions o;
  o.blob_data = blob;
  o.blob_size = size;
  o.limits.max_context = lim.max_context;
  o.limits.max_sequences = 1;
  o.limits.prefill_chunk = lim.prefill_chunk;
  o.verify_weights = true;
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
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exactly-sized, 64-byte-aligned copy: the mapping the runtime expects
  // is page-aligned, and ASan must see the first byte past the end.
  void* mem = nullptr;
  if (posix_memalign(&mem, 64, size ? size : 1) != 0) std::abort();
  uint8_t* blob = static_cast<uint8_t*>(mem);
  if (size) std::memcpy(blob, data, size);
  exercise(blob, size);
  if (fix_checksums(blob, size)) exercise(blob, size);
  std::free(mem);
  return 0;
}
