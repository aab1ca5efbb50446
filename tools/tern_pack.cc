// tern-pack: convert a llama-architecture GGUF into a tern weight blob.
//   tern-pack INPUT.gguf -o OUT.tern --weights int4|int8
//             [--max-context N] [--max-sequences N] [--prefill-chunk N] [--kv-block N]
// The blob is written atomically (temporary file + rename) and re-read and
// validated before the summary is printed.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "runtime/model_file.h"
#include "tools/pack/blob_writer.h"
#include "tools/pack/gguf_reader.h"
#include "tools/pack/packer.h"

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: tern-pack INPUT.gguf -o OUT.tern --weights int4|int8\n"
               "                 [--max-context N] [--max-sequences N] [--prefill-chunk N] [--kv-block N]\n"
               "  --weights int4: matrices as int4 (groups of 32, d and m in f16); Q4_1 copied exactly,\n"
               "                  a Q8_0 source (token embedding) kept as int8, copied exactly\n"
               "  --weights int8: matrices as int8 (groups of 32, d in f16); Q8_0 copied exactly\n"
               "  defaults: --max-context 2048 --max-sequences 1 --prefill-chunk 64 --kv-block 16\n");
}

bool parse_u32(const char* s, uint32_t* out) {
  if (!s || !*s) return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v == 0 || v > 0xffffffffull || s[0] == '-') return false;
  *out = uint32_t(v);
  return true;
}

int fail(const tern::Status& st, const char* what) {
  std::fprintf(stderr, "tern-pack: %s: %s (%s)\n", what, st.message(), tern::status_code_name(st.code()));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string input, output, weights;
  tern::pack::PackOptions opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* next = i + 1 < argc ? argv[i + 1] : nullptr;
    uint32_t* limit = nullptr;
    if (a == "-h" || a == "--help") { usage(); return 0; }
    if (a == "-o") { if (!next) { usage(); return 2; } output = next; ++i; continue; }
    if (a == "--weights") { if (!next) { usage(); return 2; } weights = next; ++i; continue; }
    if (a == "--max-context") limit = &opt.limits.max_context;
    else if (a == "--max-sequences") limit = &opt.limits.max_sequences;
    else if (a == "--prefill-chunk") limit = &opt.limits.prefill_chunk;
    else if (a == "--kv-block") limit = &opt.limits.kv_block_tokens;
    if (limit) {
      if (!parse_u32(next, limit)) {
        std::fprintf(stderr, "tern-pack: %s needs a positive integer, got \"%s\"\n", a.c_str(), next ? next : "");
        return 2;
      }
      ++i;
      continue;
    }
    if (!a.empty() && a[0] == '-') { std::fprintf(stderr, "tern-pack: unknown option %s\n", a.c_str()); usage(); return 2; }
    if (!input.empty()) { std::fprintf(stderr, "tern-pack: more than one input (%s)\n", a.c_str()); return 2; }
    input = a;
  }
  if (input.empty() || output.empty() || weights.empty()) { usage(); return 2; }
  if (weights == "int4") opt.weights = tern::blob::WeightKind::kInt4;
  else if (weights == "int8") opt.weights = tern::blob::WeightKind::kInt8;
  else { std::fprintf(stderr, "tern-pack: --weights must be int4 or int8, got \"%s\"\n", weights.c_str()); return 2; }

  const auto t0 = std::chrono::steady_clock::now();
  tern::pack::GgufFile gguf;
  tern::Status st = tern::pack::GgufFile::open(input, &gguf);
  if (!st.is_ok()) return fail(st, input.c_str());

  std::vector<uint8_t> blob;
  tern::pack::PackSummary summary;
  st = tern::pack::pack_gguf(gguf, opt, &blob, &summary);
  if (!st.is_ok()) return fail(st, input.c_str());

  // Read back what we are about to write with the runtime's own loader (and
  // the weights' CRC), so a blob that the runtime would refuse is never written.
  tern::ModelFile check;
  st = tern::open_model_file(blob.data(), blob.size(), &check);
  if (st.is_ok()) st = tern::verify_tensor_data(check);
  if (!st.is_ok()) return fail(st, "self-check of the packed blob with the runtime loader failed");

  st = tern::pack::write_file_atomic(output, blob);
  if (!st.is_ok()) return fail(st, output.c_str());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::printf("tern-pack: %s -> %s (GGUF v%u, %.2f s)\n", input.c_str(), output.c_str(), gguf.version(), secs);
  std::fputs(tern::pack::format_summary(summary).c_str(), stdout);
  return 0;
}
