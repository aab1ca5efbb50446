// tern-pack: convert a llama-architecture GGUF into a tern weight blob.
//   tern-pack INPUT.gguf -o OUT.tern --weights int4|int8
//             [--max-context N] [--max-sequences N] [--prefill-chunk N] [--kv-block N] [--kv f16|int8]
// The blob is opened with the runtime's own Engine::open (every init, on a
// scratch arena) before it is written, so a blob the runtime would refuse is
// never written; then it is written atomically (temporary file + rename).
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tools/cli/cli_common.h"
#include "tools/pack/blob_writer.h"
#include "tools/pack/gguf_reader.h"
#include "tools/pack/packer.h"

namespace {

void usage(FILE* f) {
  std::fprintf(f,
               "usage: tern-pack INPUT.gguf -o OUT.tern --weights int4|int8|f32 [--layout rows|r16]\n"
               "                 [--max-context N] [--max-sequences N] [--prefill-chunk N] [--kv-block N] [--kv f16|int8]\n"
               "                 [--verbose]\n"
               "       tern-pack --help | --version\n"
               "\n"
               "Converts a GGUF model into a tern blob (docs/blob_format.md).\n"
               "Accepts today:\n"
               "  architecture: llama (SmolLM2, Llama 2/3 incl. llama3 and linear rope scaling), qwen2 (Q/K/V\n"
               "                bias), qwen3 (QK-norm), gemma3 (sliding-window layers, QK-norm, post-norms,\n"
               "                GELU); others are refused with this list\n"
               "  tokenizer:    byte-level BPE (tokenizer.ggml.model = \"gpt2\") with the \"smollm\" pre-tokenizer\n"
               "                (tokenizer.ggml.pre); SentencePiece-style (\"llama\": scores, byte fallback, e.g.\n"
               "                Gemma 3, Llama 2) with pre \"default\" or none; other models and pre-tokenizers\n"
               "                are refused\n"
               "  tensor types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K (GGUF v2 and v3,\n"
               "                little-endian)\n"
               "\n"
               "  --weights int4: 4-bit and float sources as int4 (groups of 32, d and m in f16): Q4_0, Q4_1\n"
               "                  exact, Q4_K with the same 4-bit values (scales rounded to f16 once);\n"
               "                  5-bit sources as int5 (Q5_0, Q5_1 exact, Q5_K same values, scales to f16);\n"
               "                  6- and 8-bit sources (Q6_K, Q8_0) as int8, never fewer bits\n"
               "  --weights int8: matrices as int8 (groups of 32, d in f16); Q8_0 and Q5_0 exact\n"
               "  --weights f32:  matrices as f32 (exact for float sources; tests, not deployment)\n"
               "                  Other sources are dequantized exactly and quantized again; the summary\n"
               "                  lists each (source, blob type, method) with bytes and bits per weight\n"
               "  --layout rows:  every matrix row-major (default): read natively by every kernel variant\n"
               "  --layout r16:   int8 and int4 matrices (rows a multiple of 16) with 16 rows interleaved, the layout\n"
               "                  the AVX-512 / AMX kernels read without a repack (faster decode and batched\n"
               "                  steps there); other variants read it through a de-interleaving copy,\n"
               "                  slower: pack r16 for AVX-512 machines, rows for the rest\n"
               "  --verbose:      also one summary line per tensor not copied exactly, with its largest error\n"
               "  --max-context N, --max-sequences N, --prefill-chunk N, --kv-block N: the run limits stored\n"
               "                  as the blob's defaults (2048, 1, 64, 16); a max context above the model's\n"
               "                  trained context (<arch>.context_length) is packed with a warning\n"
               "  --kv f16|int8:  the KV cache type stored as the blob's default (f16; int8: half the bytes per\n"
               "                  token plus one f32 scale per token and KV head for K and V; needs a head_dim\n"
               "                  and --kv-block that are multiples of 16); tern-run --kv overrides it\n"
               "  -o OUT.tern:    written atomically (a temporary file in the same directory, then renamed).\n"
               "                  Refused: the input file itself (also through a hard or symbolic link) and an\n"
               "                  existing output that is not a regular file (a device, FIFO, directory).\n"
               "                  A symbolic link is written through: its target is replaced, the link stays;\n"
               "                  a dangling symbolic link is refused.\n"
               "Before writing, the blob is opened exactly as the runtime opens it (every init, the weights'\n"
               "CRC); a blob the runtime would refuse is never written. Progress goes to stderr when it is a\n"
               "terminal. Exit status: 0 written, 1 input or packing error, 2 usage error.\n");
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
  std::string input, output, weights, layout = "rows";
  bool verbose = false;
  tern::pack::PackOptions opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* next = i + 1 < argc ? argv[i + 1] : nullptr;
    uint32_t* limit = nullptr;
    if (a == "-h" || a == "--help") { usage(stdout); return 0; }
    if (a == "--version") { std::printf("%s\n", tern::cli::version()); return 0; }
    if (a == "--verbose") { verbose = true; continue; }
    if (a == "-o" || a == "--weights" || a == "--layout" || a == "--kv") {
      if (!next) {
        std::fprintf(stderr, "tern-pack: %s needs a value (tern-pack --help lists the options)\n", a.c_str());
        return 2;
      }
      if (a == "--kv") {
        if (!std::strcmp(next, "f16")) opt.limits.kv_type = tern::KvType::kF16;
        else if (!std::strcmp(next, "int8")) opt.limits.kv_type = tern::KvType::kInt8;
        else { std::fprintf(stderr, "tern-pack: --kv must be f16 or int8, got \"%s\"\n", next); return 2; }
      } else {
        (a == "-o" ? output : a == "--weights" ? weights : layout) = next;
      }
      ++i;
      continue;
    }
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
    if (!a.empty() && a[0] == '-' && a != "-") return tern::cli::unknown_argument("tern-pack", a.c_str());
    if (!input.empty()) {
      std::fprintf(stderr, "tern-pack: more than one input ('%s' and '%s'; tern-pack --help lists the options)\n",
                   input.c_str(), a.c_str());
      return 2;
    }
    input = a;
  }
  if (input.empty() || output.empty() || weights.empty()) {
    std::fprintf(stderr, "tern-pack: needs INPUT.gguf, -o OUT.tern and --weights int4|int8 (tern-pack --help)\n");
    return 2;
  }
  if (weights == "int4") opt.weights = tern::blob::WeightKind::kInt4;
  else if (weights == "int8") opt.weights = tern::blob::WeightKind::kInt8;
  else if (weights == "f32") opt.weights = tern::blob::WeightKind::kF32;
  else { std::fprintf(stderr, "tern-pack: --weights must be int4, int8 or f32, got \"%s\"\n", weights.c_str()); return 2; }
  if (layout == "rows") opt.layout = tern::pack::RowLayout::kRows;
  else if (layout == "r16") opt.layout = tern::pack::RowLayout::kR16;
  else { std::fprintf(stderr, "tern-pack: --layout must be rows or r16, got \"%s\"\n", layout.c_str()); return 2; }

  // Refuse a bad output before any work (and again when writing).
  std::string target;
  tern::Status st = tern::pack::resolve_output_path(output, input.c_str(), &target);
  if (!st.is_ok()) return fail(st, output.c_str());

  const auto t0 = std::chrono::steady_clock::now();
  tern::pack::GgufFile gguf;
  st = tern::pack::GgufFile::open(input, &gguf);
  if (!st.is_ok()) return fail(st, input.c_str());

  // The model's trained context, for the warning below.
  uint32_t train_context = 0;
  std::string arch;
  if (gguf.get_string("general.architecture", &arch).is_ok())
    (void)gguf.get_u32_opt(arch + ".context_length", &train_context);
  if (train_context != 0 && opt.limits.max_context > train_context)
    std::fprintf(stderr,
                 "tern-pack: warning: --max-context %u exceeds the model's trained context of %u tokens "
                 "(%s.context_length); positions past it are outside what the model was trained on\n",
                 opt.limits.max_context, train_context, arch.c_str());

  const bool tty = ::isatty(STDERR_FILENO) == 1;
  if (tty) {
    opt.progress = [](uint32_t done, uint32_t total, const std::string& name) {
      std::fprintf(stderr, "\r\033[Ktern-pack: tensor %u/%u %.60s", done, total, name.c_str());
      if (done == total) std::fputs("\r\033[Ktern-pack: checking the blob opens in the runtime...", stderr);
      std::fflush(stderr);
    };
  }
  std::vector<uint8_t> blob;
  tern::pack::PackSummary summary;
  st = tern::pack::pack_gguf(gguf, opt, &blob, &summary);
  if (tty) std::fputs("\r\033[K", stderr);
  if (!st.is_ok()) return fail(st, input.c_str());

  st = tern::pack::write_file_atomic(output, blob, input.c_str());
  if (!st.is_ok()) return fail(st, output.c_str());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::printf("tern-pack: %s -> %s (GGUF v%u, %.2f s)\n", input.c_str(), output.c_str(), gguf.version(), secs);
  std::fputs(tern::pack::format_summary(summary, verbose).c_str(), stdout);
  return 0;
}
