#include "tools/cli/cli_common.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include <random>

#include "kernels/dispatch.h"
#include "port/process_stats.h"
#include "runtime/utf8.h"

namespace tern::cli {

namespace {

bool parse_u32(const char* s, uint32_t* out) {
  if (!s || !*s) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s, &end, 10);
  if (errno || *end || v < 0 || v > 0xffffffffLL) return false;
  *out = uint32_t(v);
  return true;
}
bool parse_i32(const char* s, int32_t* out) {
  if (!s || !*s) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s, &end, 10);
  if (errno || *end || v < INT32_MIN || v > INT32_MAX) return false;
  *out = int32_t(v);
  return true;
}
bool parse_f32(const char* s, float* out) {
  if (!s || !*s) return false;
  errno = 0;
  char* end = nullptr;
  const float v = std::strtof(s, &end);
  if (errno || *end) return false;
  *out = v;
  return true;
}
bool parse_u64(const char* s, uint64_t* out) {
  if (!s || !*s || *s == '-') return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno || *end) return false;
  *out = v;
  return true;
}

}  // namespace

const char* isa_choices() {
  static std::string list;
  if (list.empty()) {
    list = "auto";
    size_t n = 0;
    const KernelVariant* v = kernel_variants(&n);
    for (size_t i = 0; i < n; ++i) list += std::string(", ") + v[i].name;
  }
  return list.c_str();
}

const char* common_flags_help() {
  static std::string help;
  if (help.empty()) {
    help = std::string(
               "  -m, --model BLOB        tern blob made by tern-pack (required)\n"
               "  -t, --threads N         worker threads (default 1; env TERN_THREADS; the flag wins)\n"
               "  --isa NAME              kernel variant: ") +
           isa_choices() +
           "\n"
           "                          (default auto: the best this CPU runs; env TERN_ISA; the flag wins)\n"
           "  -c, --max-context N     tokens per sequence (default: the blob's plan)\n"
           "  --prefill-chunk N       tokens per batched prefill call (default: the blob's plan)\n"
           "  --kv-block N            tokens per KV block, a power of two (default: the blob's plan)\n"
           "  --max-sequences N       sequences sharing the KV pool (default: the blob's plan)\n"
           "  --kv-pool-blocks N      KV pool size in blocks (default: every sequence's full context)\n"
           "  --kv f16|int8           KV cache type (default: the blob's plan); int8: half the bytes per\n"
           "                          token plus one f32 scale per token and KV head, integer attention\n"
           "  --verify                check the CRC of all weights at load\n"
           "  --temp T                sampling temperature, 0 = greedy (default 0)\n"
           "  --top-k K               keep the K most likely tokens (0 = off)\n"
           "  --top-p P               nucleus sampling mass in (0, 1] (1 = off)\n"
           "  --min-p P               drop tokens below P * p(max) (0 = off)\n"
           "  --repeat-penalty R      penalty for recent tokens (1 = off)\n"
           "  --repeat-last-n N       window of the penalty (default 64)\n"
           "  -s, --seed S            sampling seed (default: a random one, printed as 'seed N' so the\n"
           "                          run can be repeated with --seed N)\n"
           "  -h, --help              this help;  --version: the version\n";
  }
  return help.c_str();
}

const char* version() { return "tern " TERN_VERSION_STRING; }

int unknown_argument(const char* tool, const char* arg) {
  std::fprintf(stderr, "%s: unknown argument '%s' (%s --help lists the options)\n", tool, arg, tool);
  return 2;
}

int parse_common_flag(int argc, char** argv, int* i, EngineOptions* opt, std::string* err, CommonFlagsSeen* seen) {
  const char* flag = argv[*i];
  // The short forms llama.cpp users type.
  static const char* const kShort[][2] = {{"-m", "--model"}, {"-t", "--threads"}, {"-c", "--max-context"},
                                          {"-s", "--seed"}};
  for (const auto& s : kShort) {
    if (!std::strcmp(flag, s[0])) flag = s[1];
  }
  auto value = [&]() -> const char* {
    if (*i + 1 >= argc) return nullptr;
    return argv[++*i];
  };
  auto bad = [&](const char* what) {
    *err = std::string("bad value for ") + flag + ": expected " + what;
    return -1;
  };
  if (!std::strcmp(flag, "--verify")) {
    opt->verify_weights = true;
    return 1;
  }
  static const char* with_value[] = {"--model", "--threads", "--isa", "--max-context", "--prefill-chunk",
                                     "--kv-block", "--max-sequences", "--kv-pool-blocks", "--kv", "--temp", "--top-k", "--top-p", "--min-p",
                                     "--repeat-penalty", "--repeat-last-n", "--seed"};
  bool known = false;
  for (const char* w : with_value) known |= !std::strcmp(flag, w);
  if (!known) return 0;
  const char* v = value();
  if (!v) {
    *err = std::string("missing value for ") + flag;
    return -1;
  }
  CommonFlagsSeen ignored;
  if (!seen) seen = &ignored;
  if (!std::strcmp(flag, "--threads")) seen->threads = true;
  else if (!std::strcmp(flag, "--isa")) seen->isa = true;
  else if (!std::strcmp(flag, "--seed")) seen->seed = true;
  else if (!std::strcmp(flag, "--temp")) seen->temp = true;
  else if (!std::strcmp(flag, "--top-k") || !std::strcmp(flag, "--top-p") || !std::strcmp(flag, "--min-p") ||
           !std::strcmp(flag, "--repeat-penalty") || !std::strcmp(flag, "--repeat-last-n")) seen->sampling = true;
  if (!std::strcmp(flag, "--model")) opt->model_path = v;
  else if (!std::strcmp(flag, "--isa")) opt->isa = v;
  else if (!std::strcmp(flag, "--threads")) { if (!parse_u32(v, &opt->threads) || opt->threads == 0) return bad("a positive integer"); }
  else if (!std::strcmp(flag, "--max-context")) { if (!parse_u32(v, &opt->limits.max_context) || !opt->limits.max_context) return bad("a positive integer"); }
  else if (!std::strcmp(flag, "--prefill-chunk")) { if (!parse_u32(v, &opt->limits.prefill_chunk) || !opt->limits.prefill_chunk) return bad("a positive integer"); }
  else if (!std::strcmp(flag, "--kv-block")) { if (!parse_u32(v, &opt->limits.kv_block_tokens) || !opt->limits.kv_block_tokens) return bad("a positive power of two"); }
  else if (!std::strcmp(flag, "--max-sequences")) { if (!parse_u32(v, &opt->limits.max_sequences) || !opt->limits.max_sequences) return bad("a positive integer"); }
  else if (!std::strcmp(flag, "--kv-pool-blocks")) { if (!parse_u32(v, &opt->limits.kv_blocks)) return bad("a non-negative integer"); }
  else if (!std::strcmp(flag, "--kv")) {
    if (!std::strcmp(v, "f16")) opt->kv_type = int32_t(KvType::kF16);
    else if (!std::strcmp(v, "int8")) opt->kv_type = int32_t(KvType::kInt8);
    else return bad("f16 or int8");
  }
  else if (!std::strcmp(flag, "--temp")) { if (!parse_f32(v, &opt->sampling.temperature)) return bad("a number"); }
  else if (!std::strcmp(flag, "--top-k")) { if (!parse_i32(v, &opt->sampling.top_k)) return bad("an integer"); }
  else if (!std::strcmp(flag, "--top-p")) { if (!parse_f32(v, &opt->sampling.top_p)) return bad("a number"); }
  else if (!std::strcmp(flag, "--min-p")) { if (!parse_f32(v, &opt->sampling.min_p)) return bad("a number"); }
  else if (!std::strcmp(flag, "--repeat-penalty")) { if (!parse_f32(v, &opt->sampling.repetition_penalty)) return bad("a number"); }
  else if (!std::strcmp(flag, "--repeat-last-n")) { if (!parse_u32(v, &opt->sampling.repeat_last_n)) return bad("a non-negative integer"); }
  else if (!std::strcmp(flag, "--seed")) { if (!parse_u64(v, &opt->sampling.seed)) return bad("a non-negative integer"); }
  return 1;
}

bool finish_common_flags(const char* tool, EngineOptions* opt, const CommonFlagsSeen& seen, bool* seed_random,
                         std::string* err) {
  if (!seen.isa && opt->isa == nullptr) {
    const char* isa = std::getenv("TERN_ISA");
    if (isa && *isa) opt->isa = isa;
  }
  if (!seen.threads) {
    const char* th = std::getenv("TERN_THREADS");
    if (th && *th) {
      uint32_t n = 0;
      if (!parse_u32(th, &n) || n == 0) {
        *err = std::string("TERN_THREADS='") + th + "' is not a positive integer";
        return false;
      }
      opt->threads = n;
    }
  }
  const unsigned cpus = online_cpu_count();
  if (opt->threads > cpus) {
    std::fprintf(stderr, "%s: warning: %u threads on %u online CPU%s; the threads beyond them are parked (they cannot run at the same time)\n",
                 tool, opt->threads, cpus, cpus == 1 ? "" : "s");
  }
  if (seed_random) *seed_random = false;
  if (opt->sampling.temperature > 0 && !seen.seed) {
    std::random_device rd;
    opt->sampling.seed = (uint64_t(rd()) << 32) ^ rd();
    if (seed_random) *seed_random = true;
  }
  if (opt->sampling.temperature == 0 && (seen.sampling || seen.seed)) {
    std::fprintf(stderr, "%s: warning: --temp 0 always picks the most likely token; the sampling flags given have no effect\n", tool);
  }
  return true;
}

void json_string(FILE* f, const char* s, size_t n) {
  std::fputc('"', f);
  size_t i = 0;
  while (i < n) {
    uint32_t cp = 0;
    bool incomplete = false;
    const size_t len = utf8_decode(reinterpret_cast<const uint8_t*>(s + i), n - i, &cp, &incomplete);
    if (len == 0 || incomplete) {
      std::fputs("\\ufffd", f);
      i += len ? len : 1;
      continue;
    }
    if (cp == '"') std::fputs("\\\"", f);
    else if (cp == '\\') std::fputs("\\\\", f);
    else if (cp == '\n') std::fputs("\\n", f);
    else if (cp == '\r') std::fputs("\\r", f);
    else if (cp == '\t') std::fputs("\\t", f);
    else if (cp < 0x20) std::fprintf(f, "\\u%04x", cp);
    else std::fwrite(s + i, 1, len, f);
    i += len;
  }
  std::fputc('"', f);
}

void json_memory_fields(FILE* f, const Engine& e) {
  const Arena& a = e.arena();
  const MemoryPlan& p = e.plan();
  std::fprintf(f, "\"isa\":\"%s\",\"threads\":%u,\"blob_bytes\":%zu,\"arena_bytes\":%zu,\"arena_used\":%zu,"
               "\"arena_high_water\":%zu,\"arena_plan\":{\"activations\":%zu,\"kv_blocks\":%zu,\"logits\":%zu,"
               "\"tokenizer\":%zu,\"sampler\":%zu},\"arena_regions\":{",
               e.isa_name(), e.threads(), e.blob_bytes(), a.capacity(), a.used(), a.high_water(), p.activations,
               p.kv_blocks, p.logits, p.tokenizer, p.sampler);
  for (size_t i = 0; i < a.region_count(); ++i) {
    std::fprintf(f, "%s\"%s\":%zu", i ? "," : "", a.region(i).name, a.region(i).bytes);
  }
  const KvPool& kv = const_cast<Engine&>(e).model().kv();
  std::fprintf(f, "},\"kv_type\":\"%s\",\"kv_bytes_per_token\":%zu,\"kv_blocks_total\":%u,\"kv_blocks_used\":%u,\"kv_block_tokens\":%u,"
               "\"max_context\":%u,\"peak_rss_bytes\":%zu",
               kv_type_name(kv.shape().type), kv.bytes_per_token(), kv.shape().n_blocks, kv.used_blocks(),
               kv.shape().block_tokens, e.limits().max_context, peak_rss_bytes());
  // kv_* above: the layers whose cache grows with the context (global
  // attention). Sliding-window layers keep only their window in a pool of
  // their own, reported apart (zeros when the model has none).
  const KvPool* w = const_cast<Engine&>(e).model().window_kv();
  std::fprintf(f, ",\"kv_window_layers\":%u,\"kv_window_bytes_per_token\":%zu,\"kv_window_blocks_total\":%u,"
               "\"kv_window_blocks_used\":%u",
               p.window_layers, w ? w->bytes_per_token() : size_t(0), w ? w->shape().n_blocks : 0u,
               w ? w->used_blocks() : 0u);
}

Status plan_for(const ModelFile& file, size_t blob_bytes, const EngineOptions& opt, PlanReport* out) {
  out->limits = resolve_run_limits(opt, file.default_limits);
  out->blob_bytes = blob_bytes;
  out->plan = MemoryPlan{};
  const char* why = "";
  if (out->limits.max_sequences > Engine::kMaxSequences) {
    return Status::error(StatusCode::kInvalidArgument, "at most %u sequences", Engine::kMaxSequences);
  }
  if (!plan_memory(file.shape(), out->limits, &out->plan, &why)) {
    return Status::error(StatusCode::kInvalidArgument, "run limits rejected: %s", why);
  }
  return check_stored_plan(file, out->limits, out->plan);
}

void json_plan_fields(FILE* f, const PlanReport& r) {
  const RunLimits& l = r.limits;
  const MemoryPlan& p = r.plan;
  std::fprintf(f, "\"max_context\":%u,\"max_sequences\":%u,\"prefill_chunk\":%u,\"kv_block_tokens\":%u,"
               "\"logit_rows\":%u,\"threads\":%u,\"kv_type\":\"%s\",\"kv_blocks_total\":%u,\"kv_bytes_per_token\":%zu,"
               "\"arena_plan\":{\"activations\":%zu,\"kv_blocks\":%zu,\"logits\":%zu,\"tokenizer\":%zu,"
               "\"sampler\":%zu},\"arena_bytes\":%zu,\"blob_bytes\":%zu",
               l.max_context, l.max_sequences, l.prefill_chunk, l.kv_block_tokens, l.logit_rows, l.threads,
               kv_type_name(l.kv_type), p.kv_block_count, p.kv_bytes_per_token, p.activations, p.kv_blocks, p.logits, p.tokenizer, p.sampler,
               p.total, r.blob_bytes);
  std::fprintf(f, ",\"kv_window_layers\":%u,\"kv_window_blocks\":%u,\"kv_window_bytes\":%zu", p.window_layers,
               p.window_kv_block_count, p.window_kv_bytes);
}

void print_plan_text(FILE* f, const PlanReport& r) {
  const RunLimits& l = r.limits;
  const MemoryPlan& p = r.plan;
  std::fprintf(f, "arena plan for max context %u, %u sequence%s, prefill chunk %u, KV blocks of %u tokens, %u thread%s:\n",
               l.max_context, l.max_sequences, l.max_sequences == 1 ? "" : "s", l.prefill_chunk, l.kv_block_tokens,
               l.threads, l.threads == 1 ? "" : "s");
  std::fprintf(f, "  activations  %12zu bytes\n", p.activations);
  std::fprintf(f, "  kv_blocks    %12zu bytes (%u blocks, %s KV, %zu bytes per token)\n", p.kv_blocks,
               p.kv_block_count, kv_type_name(l.kv_type), p.kv_bytes_per_token);
  if (p.window_layers > 0) {
    std::fprintf(f, "               of which %zu bytes: the %u sliding-window layers' pool (%u recycled blocks; "
                 "does not grow with the context)\n", p.window_kv_bytes, p.window_layers, p.window_kv_block_count);
  }
  std::fprintf(f, "  logits       %12zu bytes\n", p.logits);
  std::fprintf(f, "  tokenizer    %12zu bytes\n", p.tokenizer);
  std::fprintf(f, "  sampler      %12zu bytes\n", p.sampler);
  std::fprintf(f, "  arena total  %12zu bytes (%.2f MiB, with %zu bytes alignment slack)\n", p.total,
               p.total / 1048576.0, size_t(Arena::kDefaultAlign));
  std::fprintf(f, "blob %zu bytes (mapped); blob + arena %zu bytes (%.2f MiB)\n", r.blob_bytes, r.blob_bytes + p.total,
               (r.blob_bytes + p.total) / 1048576.0);
}

int report_error(const char* tool, const Status& s, bool json) {
  if (json) {
    std::printf("{\"done\":true,\"status\":\"%s\",\"error\":", status_code_name(s.code()));
    json_string(stdout, s.message(), std::strlen(s.message()));
    std::printf("}\n");
    std::fflush(stdout);
  }
  std::fprintf(stderr, "%s: error [%s]: %s\n", tool, status_code_name(s.code()), s.message());
  return 1;
}

Status open_tokenizer(const ModelFile& file, size_t max_text_bytes, std::vector<uint8_t>* mem, TextTokenizer* tok,
                      ChatFormat* chat) {
  mem->assign(TextTokenizer::arena_bytes(file.shape(), max_text_bytes) + Arena::kDefaultAlign, 0);
  Arena arena;
  arena.init(mem->data(), mem->size());
  TERN_RETURN_IF_ERROR(tok->init(file, max_text_bytes, &arena));
  (void)chat_format_select(file.chat_template, file.chat_template_bytes, file.hp.im_start, file.hp.im_end, *tok, chat);
  return Status::ok();
}

int print_plan(const EngineOptions& opt, bool json, const char* tool) {
  BlobMap map;
  const int err = blob_map_file(opt.model_path, &map);
  if (err != 0) {
    return report_error(tool,
                        Status::error(StatusCode::kIoError, "cannot open blob '%s': %s", opt.model_path,
                                      std::strerror(err)),
                        json);
  }
  ModelFile file;
  PlanReport r;
  Status s = open_model_file(map.data, map.size, &file);
  if (s.is_ok()) s = plan_for(file, map.size, opt, &r);
  blob_unmap(&map);
  if (!s.is_ok()) return report_error(tool, s, json);
  if (json) {
    std::printf("{");
    json_plan_fields(stdout, r);
    std::printf("}\n");
  } else {
    print_plan_text(stdout, r);
  }
  return 0;
}

void print_memory_report(FILE* f, const Engine& e) {
  const Arena& a = e.arena();
  const KvPool& kv = const_cast<Engine&>(e).model().kv();
  std::fprintf(f, "kernels: %s, threads: %u\n", e.isa_name(), e.threads());
  std::fprintf(f, "blob: %.1f MiB (mapped, read-only)\n", e.blob_bytes() / 1048576.0);
  std::fprintf(f, "arena: %.2f MiB, used %.2f MiB, high-water %.2f MiB\n", a.capacity() / 1048576.0,
               a.used() / 1048576.0, a.high_water() / 1048576.0);
  for (size_t i = 0; i < a.region_count(); ++i) {
    std::fprintf(f, "  %-12s %10.2f MiB\n", a.region(i).name, a.region(i).bytes / 1048576.0);
  }
  std::fprintf(f, "kv: %s, %zu bytes/token, blocks %u used of %u (%u tokens each), max context %u\n",
               kv_type_name(kv.shape().type), kv.bytes_per_token(), kv.used_blocks(), kv.shape().n_blocks, kv.shape().block_tokens,
               e.limits().max_context);
  std::fprintf(f, "peak RSS: %.1f MiB\n", peak_rss_bytes() / 1048576.0);
}

}  // namespace tern::cli
