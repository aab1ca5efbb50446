// tern-perplexity: perplexity of a blob over a text file in windows, and
// the KL divergence of its distributions against a saved reference run.
//
//   tern-perplexity -m ref.tern -f text.txt --ctx 2048 --save-logits ref.logp
//   tern-perplexity -m test.tern -f text.txt --ctx 2048 --kl-divergence ref.logp [--json]
//
// main() = parse, read and tokenize the text, open the engine, run
// (tools/cli/perplexity.h has the window scheme and the statistics), report.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>

#include "port/clock.h"
#include "runtime/engine.h"
#include "tools/cli/cli_common.h"
#include "tools/cli/perplexity.h"

namespace {

using namespace tern;

constexpr const char* kTool = "tern-perplexity";

void usage(FILE* f) {
  std::fprintf(f,
               "usage: tern-perplexity -m BLOB -f TEXT --ctx N [options]\n"
               "  -f, --file PATH         the text (UTF-8; one trailing newline is dropped, as llama.cpp's -f does),\n"
               "                          tokenized whole with the blob's tokenizer (BOS first if the model adds one)\n"
               "  -c, --ctx N             tokens per window (required); every window starts on an empty KV cache,\n"
               "                          its first token replaced by BOS when the model uses one\n"
               "  --stride S              tokens from one window's start to the next (default: N, windows do not\n"
               "                          overlap). Scored: the logits rows at window positions\n"
               "                          [max(N/2, N-S), N-1), each predicting the next token; with the default\n"
               "                          stride that is llama.cpp's llama-perplexity scheme (the second half)\n"
               "  --chunks K              at most K windows (default: as many whole windows as the text holds)\n"
               "  --save-logits PATH      write the reference log-probabilities of every scored position (a\n"
               "                          TERNLOGP file: uint16 log-probs per vocabulary entry, ~2 bytes x vocab per\n"
               "                          scored token; written as PATH.partial, renamed when complete)\n"
               "  --kl-divergence PATH    compare against a --save-logits file made on the same text, --ctx and\n"
               "                          --stride: mean KL divergence (+/- stderr), its 99th and 99.9th\n"
               "                          percentiles, same top-1 %%, mean and RMS of the change in p(next token),\n"
               "                          and both perplexities with their ratio\n"
               "  --kv TYPE               KV cache type: f16 (default) or int8 (one scale per token and KV head)\n"
               "  --json                  one final JSON object on stdout: ppl, ppl_stderr, tokens_scored, ctx,\n"
               "                          stride, tokens_hash (of the text's ids, as bench/peer/perplexity_peer.py\n"
               "                          prints it), ... and with --kl-divergence kld_mean, kld_p99, kld_p999,\n"
               "                          same_top_pct, rms_dp (percent, as llama.cpp prints), ...\n"
               "  --quiet                 no per-window progress lines on stderr\n"
               "  -m, --model BLOB        tern blob made by tern-pack (required)\n"
               "  -t, --threads N         worker threads (default 1; env TERN_THREADS; the flag wins)\n"
               "  --isa NAME              kernel variant: %s\n"
               "                          (default auto: the best this CPU runs; env TERN_ISA; the flag wins)\n"
               "  --prefill-chunk N       tokens per batched forward call, also the logits rows kept (default:\n"
               "                          the blob's plan)\n"
               "  --kv-block N            tokens per KV block, a power of two (default: the blob's plan)\n"
               "  --verify                check the CRC of all weights at load\n"
               "  -h, --help              this help;  --version: the version\n",
               cli::isa_choices());
}

struct Args {
  EngineOptions opt;
  cli::CommonFlagsSeen seen;
  const char* file = nullptr;
  const char* kv = "f16";
  ppl::Options run;
  bool json = false;
};

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "%s: %s (%s --help lists the options)\n", kTool, msg.c_str(), kTool);
  return 2;
}

bool parse_count(const char* v, uint32_t* out) {
  if (!v || !*v) return false;
  char* end = nullptr;
  const long long n = std::strtoll(v, &end, 10);
  if (*end || n < 1 || n > 0x7fffffffLL) return false;
  *out = uint32_t(n);
  return true;
}

// Returns -1 to go on, else the exit code.
int parse_args(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    const char* v = nullptr;
    auto need = [&]() -> bool {
      if (i + 1 >= argc) return false;
      v = argv[++i];
      return true;
    };
    if (f == "-h" || f == "--help") {
      usage(stdout);
      return 0;
    } else if (f == "--version") {
      std::printf("%s (%s)\n", kTool, cli::version());
      return 0;
    } else if (f == "-f" || f == "--file") {
      if (!need()) return usage_error("missing value for " + f);
      a->file = v;
    } else if (f == "-c" || f == "--ctx" || f == "--stride" || f == "--chunks") {
      // -c is llama-perplexity's context flag, so it means --ctx here (not
      // the other tools' --max-context: the engine's context is the window).
      uint32_t n = 0;
      if (!need() || !parse_count(v, &n)) return usage_error(f + " needs a positive integer");
      (f == "--stride" ? a->run.stride : f == "--chunks" ? a->run.max_windows : a->run.ctx) = n;
    } else if (f == "--save-logits" || f == "--kl-divergence" || f == "--kv") {
      if (!need()) return usage_error("missing value for " + f);
      if (f == "--kv") a->kv = v;
      else (f == "--save-logits" ? a->run.save_path : a->run.compare_path) = v;
    } else if (f == "--json") {
      a->json = true;
    } else if (f == "--quiet") {
      a->run.progress = false;
    } else if (f == "--max-context" || f == "--max-sequences" || f == "--kv-pool-blocks" || f == "--temp" ||
               f == "--top-k" || f == "--top-p" || f == "--min-p" || f == "--repeat-penalty" ||
               f == "--repeat-last-n" || f == "-s" || f == "--seed") {
      // Common to the other tools, meaningless here: scoring never samples,
      // and the windows set the context and the one sequence.
      return usage_error(f + " does not apply to perplexity (--ctx sets the context; nothing is sampled)");
    } else {
      std::string err;
      const int r = cli::parse_common_flag(argc, argv, &i, &a->opt, &err, &a->seen);
      if (r < 0) return usage_error(err);
      if (r == 0) return cli::unknown_argument(kTool, argv[i]);
    }
  }
  if (!a->opt.model_path) return usage_error("--model is required");
  if (!a->file) return usage_error("--file is required");
  if (!a->run.ctx) return usage_error("--ctx is required");
  return -1;
}

// Files the run writes must not be ones it reads: the text, the blob or the
// reference (also through another name for the same file).
bool same_file(const char* a, const char* b) {
  struct stat sa, sb;
  return ::stat(a, &sa) == 0 && ::stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

Status read_text(const char* path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error(StatusCode::kIoError, "cannot read text file '%s'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  if (!out->empty() && out->back() == '\n') out->pop_back();
  return Status::ok();
}

void print_text(const ppl::Result& r, const Engine& e) {
  const ppl::WindowPlan& w = r.plan;
  const ppl::Summary& s = r.s;
  std::printf("text: %zu tokens; %u windows of %u (stride %u), scoring positions [%u, %u): %llu tokens scored\n",
              r.text_tokens, w.windows, w.ctx, w.stride, w.score_from, w.ctx - 1, (unsigned long long)r.nll.n);
  std::printf("[%s, %u thread%s] %.1f s, %.1f tok/s\n", e.isa_name(), e.threads(), e.threads() == 1 ? "" : "s",
              r.seconds, double(w.windows) * w.ctx / (r.seconds > 0 ? r.seconds : 1e-9));
  std::printf("perplexity: %.4f +/- %.4f\n", s.ppl, s.ppl_stderr);
  if (!r.compared) return;
  std::printf("reference perplexity: %.4f +/- %.4f\n", s.ref_ppl, s.ref_ppl_stderr);
  std::printf("ppl / ppl_ref: %.6f +/- %.6f  (ln ratio %.6f +/- %.6f)\n", s.ppl_ratio, s.ppl_ratio_stderr, s.ln_ratio,
              s.ln_ratio_stderr);
  std::printf("mean KLD: %.6f +/- %.6f\n", s.kld_mean, s.kld_stderr);
  std::printf("KLD median %.6f, 99%% %.6f, 99.9%% %.6f, max %.6f\n", s.kld_median, s.kld_p99, s.kld_p999, s.kld_max);
  std::printf("same top: %.3f +/- %.3f %%\n", s.same_top_pct, s.same_top_stderr);
  std::printf("mean dp: %.4f +/- %.4f %%   RMS dp: %.4f +/- %.4f %%\n", s.mean_dp_pct, s.mean_dp_stderr, s.rms_dp_pct,
              s.rms_dp_stderr);
}

void print_json(const ppl::Result& r, const Engine& e, const char* kv) {
  const ppl::WindowPlan& w = r.plan;
  const ppl::Summary& s = r.s;
  std::printf("{\"done\":true,\"status\":\"ok\",\"ppl\":%.6f,\"ppl_stderr\":%.6f,\"tokens_scored\":%llu,"
              "\"text_tokens\":%zu,\"tokens_hash\":\"%016llx\",\"windows\":%u,\"ctx\":%u,\"stride\":%u,\"score_from\":%u,\"kv\":\"%s\","
              "\"isa\":\"%s\",\"threads\":%u,\"seconds\":%.3f,\"tok_s\":%.2f",
              s.ppl, s.ppl_stderr, (unsigned long long)r.nll.n, r.text_tokens,
              (unsigned long long)r.tokens_hash, w.windows, w.ctx, w.stride, w.score_from,
              kv, e.isa_name(), e.threads(), r.seconds, double(w.windows) * w.ctx / (r.seconds > 0 ? r.seconds : 1e-9));
  if (r.compared) {
    std::printf(",\"ref_ppl\":%.6f,\"ref_ppl_stderr\":%.6f,\"ppl_ratio\":%.6f,\"ppl_ratio_stderr\":%.6f,"
                "\"ln_ppl_ratio\":%.6f,\"ln_ppl_ratio_stderr\":%.6f,\"kld_mean\":%.8f,\"kld_stderr\":%.8f,"
                "\"kld_median\":%.8f,\"kld_p99\":%.8f,\"kld_p999\":%.8f,\"kld_max\":%.8f,\"same_top_pct\":%.4f,"
                "\"same_top_stderr\":%.4f,\"mean_dp\":%.6f,\"mean_dp_stderr\":%.6f,\"rms_dp\":%.6f,"
                "\"rms_dp_stderr\":%.6f",
                s.ref_ppl, s.ref_ppl_stderr, s.ppl_ratio, s.ppl_ratio_stderr, s.ln_ratio, s.ln_ratio_stderr, s.kld_mean,
                s.kld_stderr, s.kld_median, s.kld_p99, s.kld_p999, s.kld_max, s.same_top_pct, s.same_top_stderr,
                s.mean_dp_pct, s.mean_dp_stderr, s.rms_dp_pct, s.rms_dp_stderr);
  }
  std::printf("}\n");
}

}  // namespace

int main(int argc, char** argv) {
  static Args a;  // static: EngineOptions and the strings live for the whole run
  if (const int rc = parse_args(argc, argv, &a); rc >= 0) return rc;
  auto fail = [&](const Status& s) { return cli::report_error(kTool, s, a.json); };
  {
    std::string err;
    if (!cli::finish_common_flags(kTool, &a.opt, a.seen, nullptr, &err)) {
      return fail(Status::error(StatusCode::kInvalidArgument, "%s", err.c_str()));
    }
  }
  if (Status s = ppl::select_kv_type(a.kv, &a.opt); !s.is_ok()) return fail(s);
  if (const std::string& out = a.run.save_path; !out.empty()) {
    for (const char* in : {a.file, a.opt.model_path, a.run.compare_path.c_str()}) {
      if (same_file(out.c_str(), in)) {
        return fail(Status::error(StatusCode::kInvalidArgument, "--save-logits '%s' is an input of this run", out.c_str()));
      }
    }
  }
  std::string text;
  if (Status s = read_text(a.file, &text); !s.is_ok()) return fail(s);

  // One sequence whose context is the window, and a logits row per position
  // of a forward chunk (score_tokens scores min(logit_rows, prefill_chunk)
  // positions per call).
  a.opt.limits.max_context = a.run.ctx;
  a.opt.limits.max_sequences = 1;
  if (!a.opt.limits.prefill_chunk) a.opt.limits.prefill_chunk = 64;
  a.opt.limits.logit_rows = a.opt.limits.prefill_chunk;
  const uint64_t t0 = now_ns();
  static Engine engine;  // static: large, and lives for the whole run
  if (Status s = engine.open(a.opt); !s.is_ok()) return fail(s);
  const double load_ms = ns_to_ms(now_ns() - t0);

  std::vector<int32_t> tokens;
  if (Status s = ppl::tokenize_text(engine.file(), text, &tokens); !s.is_ok()) return fail(s);
  if (a.run.progress) {
    std::fprintf(stderr, "%s: %zu tokens, load %.1f ms, %s, %u thread%s\n", kTool, tokens.size(), load_ms,
                 engine.isa_name(), engine.threads(), engine.threads() == 1 ? "" : "s");
  }
  ppl::Result r;
  if (Status s = ppl::run(&engine, tokens, a.run, &r); !s.is_ok()) return fail(s);
  if (a.json) print_json(r, engine, a.kv);
  else print_text(r, engine);
  std::fflush(stdout);
  return 0;
}
