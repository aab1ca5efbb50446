// Fuzz target: the packer's GGUF parser (tools/pack/gguf_reader.h) and what
// the packer does with a parsed file. GgufFile::parse must turn any input
// into a parsed file or a kBadGguf / kUnsupported error; when it parses, the
// typed metadata accessors and dequantize_rows over every tensor (first and
// last row) must stay inside the buffer, and pack_gguf must either produce a
// blob the runtime's own validator accepts or fail with a message.
#include <cstring>
#include <vector>

#include "runtime/model_file.h"
#include "tests/fuzz/fuzz_support.h"
#include "tools/pack/gguf_reader.h"
#include "tools/pack/packer.h"

using namespace tern;
using namespace tern::pack;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  GgufFile g;
  const Status s = GgufFile::parse(std::vector<uint8_t>(data, data + size), &g);
  if (!s.is_ok()) {
    FUZZ_CHECK(s.message()[0] != '\0', "parse error without a message");
    return 0;
  }
  for (size_t j = 0; j < g.kv_count(); ++j) {
    const std::string key(g.key(j));
    uint32_t u;
    float f;
    bool b;
    std::string str;
    (void)g.get_u32(key, &u);
    (void)g.get_f32(key, &f);
    (void)g.get_bool(key, &b);
    (void)g.get_string(key, &str);
    FUZZ_CHECK(g.find(key) == &g.value(j), "metadata key not findable");
    const GgufValue& v = g.value(j);
    if (v.type == GgufType::kArray) {
      const GgufArray* arr = nullptr;
      if (g.get_array(key, v.elem_type, &arr).is_ok()) {
        FUZZ_CHECK(arr->size() == v.count, "array count differs");
        if (arr->size() > 0) {
          (void)(*arr)[0];
          (void)(*arr)[arr->size() - 1];
        }
      }
    }
  }
  std::vector<float> row;
  for (const GgufTensor& t : g.tensors()) {
    FUZZ_CHECK(g.find_tensor(t.name) != nullptr, "tensor %s not findable", t.name.c_str());
    if (t.cols() == 0 || t.rows() == 0 || t.cols() > (1u << 16)) continue;
    row.resize(t.cols());
    (void)dequantize_rows(t, 0, 1, row.data());
    (void)dequantize_rows(t, t.rows() - 1, 1, row.data());
  }
  PackOptions opt;
  opt.limits.max_context = 64;
  opt.limits.prefill_chunk = 8;
  std::vector<uint8_t> blob;
  PackSummary sum;
  const Status ps = pack_gguf(g, opt, &blob, &sum);
  if (ps.is_ok()) {
    // Whatever the packer writes, the runtime must accept.
    void* mem = nullptr;
    if (posix_memalign(&mem, 64, blob.size() ? blob.size() : 1) != 0) std::abort();
    std::memcpy(mem, blob.data(), blob.size());
    ModelFile f;
    const Status os = open_model_file(static_cast<uint8_t*>(mem), blob.size(), &f);
    FUZZ_CHECK(os.is_ok(), "packer wrote a blob the runtime rejects: %s", os.message());
    std::free(mem);
  } else {
    FUZZ_CHECK(ps.message()[0] != '\0', "pack error without a message");
  }
  return 0;
}
