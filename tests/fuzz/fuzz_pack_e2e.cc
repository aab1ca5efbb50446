// Fuzz target: the packer end to end. GGUF bytes in (seeds are small valid
// llama GGUFs), GgufFile::parse, pack_gguf to blob bytes in memory, then the
// blob opened by a fresh Engine exactly as tern-run opens a file (its own OS
// arena, the blob's default limits, the weights' CRC verified), and read by
// the strict spec reader (tools/pack/blob_inspect.h).
// The invariant: the packer either refuses with a message (and returns no
// blob) or returns a blob the engine opens — never a blob the engine refuses.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "port/blob_map.h"
#include "runtime/engine.h"
#include "tests/fuzz/fuzz_support.h"
#include "tools/pack/blob_inspect.h"
#include "tools/pack/gguf_reader.h"
#include "tools/pack/packer.h"

using namespace tern;
using namespace tern::pack;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (size_t(4) << 20)) return 0;  // tiny models only: keeps execs fast
  GgufFile g;
  const Status s = GgufFile::parse(std::vector<uint8_t>(data, data + size), &g);
  if (!s.is_ok()) {
    FUZZ_CHECK(s.message()[0] != '\0', "parse error without a message");
    return 0;
  }
  PackOptions opt;
  opt.limits.max_context = 64;
  opt.limits.prefill_chunk = 8;
  std::vector<uint8_t> blob;
  PackSummary sum;
  const Status ps = pack_gguf(g, opt, &blob, &sum);
  if (!ps.is_ok()) {
    FUZZ_CHECK(ps.message()[0] != '\0', "pack error without a message");
    FUZZ_CHECK(blob.empty(), "pack failed (%s) but returned %zu blob bytes", ps.message(), blob.size());
    return 0;
  }
  FUZZ_CHECK(sum.blob_bytes == blob.size(), "summary says %llu bytes, blob has %zu",
             (unsigned long long)sum.blob_bytes, blob.size());

  // Page-aligned, as a mapped file is.
  void* mem = os_reserve_arena(blob.size());
  FUZZ_CHECK(mem != nullptr, "no memory for a %zu-byte blob", blob.size());
  std::memcpy(mem, blob.data(), blob.size());
  {
    Engine e;
    EngineOptions o;
    o.blob_data = mem;
    o.blob_size = blob.size();
    o.verify_weights = true;
    const Status os = e.open(o);
    FUZZ_CHECK(os.is_ok(), "packer wrote a blob the engine refuses: %s", os.message());
    FUZZ_CHECK(e.hparams().vocab == sum.hparams.vocab, "vocab %u != packed %u", e.hparams().vocab, sum.hparams.vocab);
  }
  BlobView v;
  const Status is = inspect_blob(static_cast<const uint8_t*>(mem), blob.size(), true, &v);
  FUZZ_CHECK(is.is_ok(), "packer wrote a blob the strict reader refuses: %s", is.message());
  os_release_arena(mem, blob.size());
  return 0;
}
