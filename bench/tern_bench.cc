// tern-bench: whole-model speed and footprint of one blob, in C++ only, so it
// runs on a device without Python. Everything goes through the public runtime
// API (Engine::open, generate) exactly as tern-run uses it.
//
// One process measures, per repetition (after `--warmup` untimed rounds):
//   ttft/pp   for each prompt length in --prompts (default 16,128,512): a fresh
//             sequence, prefill the prompt, sample the first token. TTFT is
//             prefill + first sample; prefill tok/s is prompt tokens / prefill time.
//   tg        for each context in --contexts (default 0,512,1024,2048,4096),
//             ascending in one sequence: prefill up to that many tokens, then
//             decode --tg tokens (contexts 0 and 1024) or --tg-ctx tokens (the
//             others) greedily; decode tok/s and per-token latency p50/p95/p99.
// Once per process: time from main() to a ready engine (`ready_ms`, and the
// CLOCK_MONOTONIC stamp `ready_mono_ns` so a driver can add exec time), the
// footprint (peak RSS, arena capacity and high-water, blob bytes), the bytes a
// decode step streams (weights + KV), and with --bw the read bandwidth of this
// machine (1 thread and --threads threads; the best of trials and access
// patterns, taken before and after the rounds), giving the fraction of the
// bandwidth roofline decode reaches.
//
// --sequences N instead runs N requests at once through the continuous-
// batching scheduler (bench/sequences_bench.h): aggregate and per-sequence
// decode tok/s, time to first token and inter-token latency percentiles under
// a seeded arrival schedule, KV blocks used.
//
// Token ids come from --ids-file (comma/space separated) or, by default, a
// built-in English text tokenized by the blob's tokenizer and repeated.
// --print-ids N prints the first N of those ids (so another system can be fed
// the very same tokens) and exits.
//
//   tern-bench --model m.tern [--threads 2] [--reps 5] [--bw] [--json]
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "port/clock.h"
#include "port/process_stats.h"
#include "runtime/engine.h"
#include "runtime/generate.h"
#include "tools/cli/cli_common.h"
#include "bench/sequences_bench.h"
#include "bench/stream_sum.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

using namespace tern;
using bench::stream_sum;

const uint64_t g_main_ns = now_ns();  // as close to process start as C++ gets

void usage(FILE* f) {
  std::fprintf(f,
               "usage: tern-bench -m BLOB [options]   (or: tern-bench --bw-only [--threads N])\n"
               "  --reps N                timed repetitions in this process (default 5)\n"
               "  --warmup N              untimed rounds first (default 1)\n"
               "  --prompts L,L,..        prompt lengths for TTFT / prefill tok/s (default 16,128,512)\n"
               "  --contexts C,C,..       decode contexts (default 0,512,1024,2048,4096)\n"
               "  --tg N                  tokens decoded at contexts 0 and 1024 (default 128)\n"
               "  --tg-ctx N              tokens decoded at the other contexts (default 64)\n"
               "  --bw                    measure read bandwidth (1 and --threads threads) before and after the\n"
               "                          rounds for the roofline: the best of trials and access patterns\n"
               "  --bw-only               only measure the read bandwidth (no model needed) and print it\n"
               "  --ids-file PATH         token ids to use (comma/space separated) instead of the built-in text\n"
               "  --print-ids N           print the first N benchmark token ids and exit\n"
               "  --json                  one JSON object per repetition, then a summary object\n"
               "  --sequences N           N requests at once through the scheduler (continuous batching):\n"
               "                          aggregate decode tok/s, TTFT and inter-token latency percentiles\n"
               "  --seq-prompt L          prompt tokens per request (default 64)\n"
               "  --seq-gen N             tokens each request generates (default 64)\n"
               "  --arrival-ms M          mean gap between arrivals, exponential (default 0: all at once)\n"
               "  --arrival-seed S        seed of the arrival schedule (default 1)\n"
               "  --budget N              scheduler rows per step (default: the prefill chunk)\n"
               "  --shared-prefix L       every request's prompt starts with the same L tokens (prefix cache)\n"
               "%s"
               "max context defaults to the largest context + decode tokens + 16.\n",
               cli::common_flags_help());
}

bool parse_list(const char* s, std::vector<uint32_t>* out) {
  out->clear();
  std::stringstream ss(s ? s : "");
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end || v < 0 || v > 1000000) return false;
    out->push_back(uint32_t(v));
  }
  return !out->empty();
}

bool parse_count(const char* s, uint32_t* out) {
  if (!s) return false;
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (!*s || *end || v < 0 || v > 1000000) return false;
  *out = uint32_t(v);
  return true;
}

int fail(const Status& s) {
  std::fprintf(stderr, "tern-bench: error [%s]: %s\n", status_code_name(s.code()), s.message());
  return 1;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  // Nearest rank: the smallest value with at least p% of samples at or below it.
  size_t rank = size_t(p / 100.0 * double(v.size()) + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > v.size()) rank = v.size();
  return v[rank - 1];
}
double median(const std::vector<double>& v) {
  if (v.empty()) return 0;
  std::vector<double> s = v;
  std::sort(s.begin(), s.end());
  const size_t n = s.size();
  return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

// ---- read bandwidth: streaming sums over a buffer far larger than the caches ----

// The roofline's denominator must bound what decode streams, so it is the
// best, not the median: `trials` trials, each every access pattern of
// bench/stream_sum.h once, `threads` threads each reading its own slice of
// one buffer of 4x the last-level cache (at least 256 MiB, at most 1 GiB),
// wall clock; GB/s = 1e9 bytes. The caller takes it in the same time window
// as the throughput it judges (--bw: before and after the repetitions;
// bench/peer/bench.py: --bw-only right before and right after each run).
constexpr int kBwTrials = 5;
size_t bw_buffer_bytes() { return bench::probe_bytes(bench::llc_bytes(), bench::kProbeFloor, bench::kProbeCap); }

double read_bandwidth_gbs(uint32_t threads, int trials) {
  const size_t bytes = bw_buffer_bytes();
  uint8_t* buf = static_cast<uint8_t*>(std::aligned_alloc(64, bytes));
  if (!buf) return 0;
  std::memset(buf, 1, bytes);  // fault the pages in
  const size_t slice = bytes / threads / bench::kStreamUnit * bench::kStreamUnit;  // whole lines per stream
  double best = 0;
  std::atomic<uint64_t> sink{0};
  for (int r = 0; r < trials; ++r) {
    for (const bench::ReadPattern& pat : bench::kReadPatterns) {
      std::vector<std::thread> pool;
      const uint64_t t0 = now_ns();
      for (uint32_t t = 1; t < threads; ++t)
        pool.emplace_back([&, t] { sink += stream_sum(buf + t * slice, slice, pat); });
      sink += stream_sum(buf, slice, pat);
      for (std::thread& th : pool) th.join();
      const uint64_t t1 = now_ns();
      best = std::max(best, double(slice * threads) / double(t1 - t0));
    }
  }
  std::free(buf);
  return best;
}

// What the figure is, for the text output.
void print_bw_method(FILE* f) {
  std::fprintf(f, "read bandwidth: best of %d trials x %d access patterns (bench/stream_sum.h) over a %zu MiB buffer, "
               "wall clock\n", kBwTrials, bench::kReadPatternCount, bw_buffer_bytes() >> 20);
}

// ---- bytes a decode step reads ------------------------------------------------

uint64_t matrix_bytes(const WeightMatrix& w) { return weight_bytes(w.type, w.rows, w.cols); }

// Weight bytes one decode token streams: every layer matrix and norm, the
// output norm and head (the head reads the whole [vocab, dim] matrix even when
// tied to the embedding), plus one embedding row.
uint64_t decode_weight_bytes(const Engine& e) {
  const ModelFile& f = e.file();
  const Hparams& hp = f.hp;
  uint64_t b = 0;
  for (uint32_t l = 0; l < hp.layers; ++l) {
    const LayerWeights& L = f.layers[l];
    b += matrix_bytes(L.wq) + matrix_bytes(L.wk) + matrix_bytes(L.wv) + matrix_bytes(L.wo);
    b += matrix_bytes(L.gate) + matrix_bytes(L.up) + matrix_bytes(L.down);
    b += 2ull * hp.dim * 4;  // attention and FFN norm weights
    if (L.q_norm) b += 2ull * hp.head_dim * 4;  // QK-norm (q and k)
    if (L.attn_post_norm) b += 2ull * hp.dim * 4;
    if (L.q_bias) b += (uint64_t(hp.q_dim()) + 2ull * hp.kv_dim()) * 4;
  }
  b += uint64_t(hp.dim) * 4 + matrix_bytes(f.output);
  b += matrix_bytes(f.token_embd) / hp.vocab;
  return b;
}

// KV bytes one decode token reads at `context` tokens of context: K and V
// (f16, or int8 values and their f32 scales) of every cached position in a
// global layer, at most the window in a sliding-window layer (the pools'
// bytes_per_token() count only their own layers).
uint64_t decode_kv_bytes(const Engine& e, uint32_t context) {
  const ModelFile& f = e.file();
  const uint64_t per_head = e.limits().kv_type == KvType::kInt8 ? f.hp.head_dim + 4ull : f.hp.head_dim * 2ull;
  const uint64_t per_layer = 2ull * f.hp.kv_heads * per_head;
  uint64_t b = 0;
  for (uint32_t l = 0; l < f.hp.layers; ++l) {
    const bool sliding = f.layer_configs && f.layer_config(l).sliding;
    b += per_layer * (sliding ? std::min(context, f.layer_config(l).window) : context);
  }
  return b;
}

// Parameters in the weight tensors (the embedding once when tied).
uint64_t parameter_count(const Engine& e) {
  const ModelFile& f = e.file();
  const Hparams& hp = f.hp;
  auto n = [](const WeightMatrix& w) { return uint64_t(w.rows) * w.cols; };
  uint64_t p = n(f.token_embd) + hp.dim;
  if (!hp.tied_embeddings) p += n(f.output);
  for (uint32_t l = 0; l < hp.layers; ++l) {
    const LayerWeights& L = f.layers[l];
    p += n(L.wq) + n(L.wk) + n(L.wv) + n(L.wo) + n(L.gate) + n(L.up) + n(L.down) + 2ull * hp.dim;
    if (L.q_norm) p += 2ull * hp.head_dim;
    if (L.attn_post_norm) p += 2ull * hp.dim;
    if (L.q_bias) p += uint64_t(hp.q_dim()) + 2ull * hp.kv_dim();
  }
  return p;
}

// ---- token material -------------------------------------------------------------

const char kText[] =
    "The history of computing is a story of machines that became smaller, cheaper and closer to the people who "
    "use them. Mainframes filled rooms and served whole institutions; minicomputers brought computing to "
    "departments; personal computers put it on every desk; phones put it in every pocket. Each step moved the "
    "work nearer to the data and the person, and each step was made possible by engineers who fit more useful "
    "work into less memory, less energy and less money. Language models are following the same path today. "
    "A small model that runs on a cheap board cannot know everything, but it can summarize a note, answer a "
    "question about a manual, or turn a spoken command into an action without sending anything over a network. "
    "Doing that well means caring about every byte that moves between memory and the processor, because on "
    "such devices the speed of generating text is set almost entirely by how fast the weights can be read.";

bool load_ids(const char* path, std::vector<int32_t>* ids) {
  std::ifstream in(path);
  if (!in) return false;
  std::string tok;
  char c;
  auto flush = [&]() {
    if (tok.empty()) return true;
    char* end = nullptr;
    const long v = std::strtol(tok.c_str(), &end, 10);
    tok.clear();
    if (*end || v < 0 || v > INT32_MAX) return false;
    ids->push_back(int32_t(v));
    return true;
  };
  while (in.get(c)) {
    if (c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      if (!flush()) return false;
    } else {
      tok += c;
    }
  }
  return flush() && !ids->empty();
}

// `need` ids: the file's, or the built-in text's, repeated (after a BOS if the
// model wants one) until long enough.
Status make_ids(Engine& e, const char* ids_file, size_t need, std::vector<int32_t>* out) {
  std::vector<int32_t> base;
  if (ids_file) {
    if (!load_ids(ids_file, &base))
      return Status::error(StatusCode::kInvalidArgument, "cannot read token ids from '%s'", ids_file);
    for (int32_t id : base)
      if (uint32_t(id) >= e.hparams().vocab)
        return Status::error(StatusCode::kInvalidToken, "token id %d in '%s' is outside the vocabulary", id, ids_file);
  } else {
    base.resize(sizeof(kText));
    size_t n = 0;
    TERN_RETURN_IF_ERROR(e.tokenizer().encode(kText, sizeof(kText) - 1, false, base.data(), base.size(), &n));
    base.resize(n);
  }
  out->clear();
  const int32_t bos = e.tokenizer().prompt_bos();  // the prompt rule (runtime/text_tokenizer.h)
  if (!ids_file && bos >= 0) out->push_back(bos);
  while (out->size() < need) {
    for (size_t i = 0; i < base.size() && out->size() < need; ++i) out->push_back(base[i]);
  }
  return Status::ok();
}

// ---- the measurements ---------------------------------------------------------------

struct PromptResult {
  uint32_t tokens;
  double ttft_ms, prefill_tok_s;
};
struct DecodeResult {
  uint32_t context, tokens;
  double tok_s, p50_ms, p95_ms, p99_ms;
  std::vector<double> token_ms;
};
struct Rep {
  std::vector<PromptResult> prompts;
  std::vector<DecodeResult> decodes;
};

struct Bench {
  Engine* e;
  const std::vector<int32_t>* ids;
  std::vector<uint64_t> token_ns;

  // Fresh sequence; prefill ids[0, len) and sample the first token.
  Status prompt(uint32_t len, PromptResult* r) {
    KvSequence* seq = e->sequence(0);
    e->reset(seq);
    TokenHistory h{e->history(0), 0, e->limits().max_context};
    for (uint32_t i = 0; i < len; ++i) h.ids[h.n++] = (*ids)[i];
    GenerateRequest req;
    req.max_new_tokens = 1;
    GenerateStats st;
    TERN_RETURN_IF_ERROR(generate(e, seq, &h, req, &st));
    *r = PromptResult{len, ns_to_ms(st.ttft_ns), st.prefill_tok_s()};
    return Status::ok();
  }

  // One sequence grown through the contexts in ascending order. At each: fill
  // the history with benchmark ids up to `context` tokens (context 0 = one
  // token, the first id), then decode.
  Status decode_sweep(const std::vector<uint32_t>& contexts, uint32_t tg, uint32_t tg_ctx,
                      std::vector<DecodeResult>* out) {
    KvSequence* seq = e->sequence(0);
    e->reset(seq);
    TokenHistory h{e->history(0), 0, e->limits().max_context};
    for (uint32_t c : contexts) {
      const uint32_t target = c ? c : 1;
      if (h.n > target) return Status::error(StatusCode::kInvalidArgument, "contexts must ascend with room for decoding");
      while (h.n < target) {
        h.ids[h.n] = (*ids)[h.n];
        ++h.n;
      }
      const uint32_t n = (c == 0 || c == 1024) ? tg : tg_ctx;
      // One more than n: the first sampled token comes from the prefill.
      GenerateRequest req;
      req.max_new_tokens = n + 1;
      token_ns.assign(n + 1, 0);
      req.token_ns = token_ns.data();
      GenerateStats st;
      TERN_RETURN_IF_ERROR(generate(e, seq, &h, req, &st));
      DecodeResult d;
      d.context = c;
      d.tokens = st.generated - 1;
      d.tok_s = st.decode_tok_s();
      for (uint32_t i = 1; i < st.generated; ++i) d.token_ms.push_back(ns_to_ms(token_ns[i]));
      d.p50_ms = percentile(d.token_ms, 50);
      d.p95_ms = percentile(d.token_ms, 95);
      d.p99_ms = percentile(d.token_ms, 99);
      out->push_back(std::move(d));
    }
    return Status::ok();
  }

  Status rep(const std::vector<uint32_t>& prompts, const std::vector<uint32_t>& contexts, uint32_t tg,
             uint32_t tg_ctx, Rep* r) {
    for (uint32_t len : prompts) {
      PromptResult p;
      TERN_RETURN_IF_ERROR(prompt(len, &p));
      r->prompts.push_back(p);
    }
    return decode_sweep(contexts, tg, tg_ctx, &r->decodes);
  }
};

void print_rep_json(const Rep& r, int index) {
  std::printf("{\"rep\":%d,\"prompts\":[", index);
  for (size_t i = 0; i < r.prompts.size(); ++i)
    std::printf("%s{\"tokens\":%u,\"ttft_ms\":%.3f,\"prefill_tok_s\":%.2f}", i ? "," : "", r.prompts[i].tokens,
                r.prompts[i].ttft_ms, r.prompts[i].prefill_tok_s);
  std::printf("],\"decodes\":[");
  for (size_t i = 0; i < r.decodes.size(); ++i) {
    const DecodeResult& d = r.decodes[i];
    std::printf("%s{\"context\":%u,\"tokens\":%u,\"tok_s\":%.2f,\"p50_ms\":%.4f,\"p95_ms\":%.4f,\"p99_ms\":%.4f,"
                "\"token_ms\":[",
                i ? "," : "", d.context, d.tokens, d.tok_s, d.p50_ms, d.p95_ms, d.p99_ms);
    for (size_t k = 0; k < d.token_ms.size(); ++k) std::printf("%s%.4f", k ? "," : "", d.token_ms[k]);
    std::printf("]}");
  }
  std::printf("]}\n");
}

// --sequences: the scheduler's limits, warm-up, repetitions, medians.
int run_sequences_mode(EngineOptions opt, bench::SequencesOptions so, const char* ids_file, uint32_t reps,
                       uint32_t warmup, bool json) {
  const uint32_t n = so.sequences;
  if (!opt.limits.max_sequences) opt.limits.max_sequences = n;
  if (opt.limits.max_sequences < n) {
    std::fprintf(stderr, "tern-bench: --max-sequences %u is below --sequences %u\n", opt.limits.max_sequences, n);
    return 2;
  }
  if (!opt.limits.prefill_chunk) opt.limits.prefill_chunk = std::max<uint32_t>(64, n);
  opt.limits.logit_rows = std::min(n, opt.limits.prefill_chunk);
  const uint32_t need = so.prompt + so.generate + 16;
  if (!opt.limits.max_context) opt.limits.max_context = (need + 15) / 16 * 16;
  static Engine engine;
  if (Status s = engine.open(opt); !s.is_ok()) return fail(s);
  std::vector<int32_t> ids;
  if (Status s = make_ids(engine, ids_file, size_t(so.prompt) + size_t(n) * 7, &ids); !s.is_ok()) return fail(s);
  bench::SequencesResult r;
  for (uint32_t w = 0; w < warmup; ++w) {
    bench::SequencesOptions quick = so;
    quick.generate = std::min<uint32_t>(so.generate, 8);
    quick.arrival_ms = 0;
    if (Status s = bench::run_sequences(&engine, quick, ids, &r); !s.is_ok()) return fail(s);
  }
  std::vector<bench::SequencesResult> all(reps);
  for (uint32_t i = 0; i < reps; ++i) {
    if (Status s = bench::run_sequences(&engine, so, ids, &all[i]); !s.is_ok()) return fail(s);
    if (json) bench::print_sequences_json(all[i], int(i));
  }
  auto med = [&](auto field) {
    std::vector<double> v;
    for (const auto& x : all) v.push_back(double(field(x)));
    return median(v);
  };
  const double agg = med([](const auto& x) { return x.aggregate_decode_tok_s; });
  const double overall = med([](const auto& x) { return x.overall_tok_s; });
  const double per_seq = med([](const auto& x) { return x.per_seq_tok_s; });
  double ttft[3], itl[3];
  for (int k = 0; k < 3; ++k) {
    ttft[k] = med([k](const auto& x) { return x.ttft_ms[k]; });
    itl[k] = med([k](const auto& x) { return x.itl_ms[k]; });
  }
  const double blocks = med([](const auto& x) { return x.kv_blocks_max; });
  const double pre = med([](const auto& x) { return x.preemptions; });
  const double hits = med([](const auto& x) { return x.prefix_hit_tokens; });
  if (json) {
    std::printf("{\"summary\":true,\"sequences\":%u,\"prompt\":%u,\"generate\":%u,\"arrival_ms\":%.3f,"
                "\"arrival_seed\":%llu,\"threads\":%u,\"isa\":\"%s\",\"reps\":%u,"
                "\"aggregate_decode_tok_s\":%.2f,\"overall_tok_s\":%.2f,\"per_seq_tok_s\":%.2f,"
                "\"ttft_ms\":{\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f},\"itl_ms\":{\"p50\":%.3f,\"p95\":%.3f,"
                "\"p99\":%.3f},\"kv_blocks_max\":%.0f,\"kv_blocks_total\":%u,\"preemptions\":%.0f,"
                "\"prefix_hit_tokens\":%.0f,\"shared_prefix\":%u}\n",
                n, so.prompt, so.generate, so.arrival_ms, (unsigned long long)so.seed, engine.threads(),
                engine.isa_name(), reps, agg, overall, per_seq, ttft[0], ttft[1], ttft[2], itl[0], itl[1], itl[2],
                blocks, engine.model().kv().shape().n_blocks, pre, hits, so.shared_prefix);
    return 0;
  }
  std::printf("tern-bench --sequences %u: %s, %s, %u thread(s), %u reps (medians); prompts %u tokens, %u generated "
              "each, arrivals %s\n",
              n, opt.model_path, engine.isa_name(), engine.threads(), reps, so.prompt, so.generate,
              so.arrival_ms > 0 ? "exponential" : "all at once");
  std::printf("| aggregate decode tok/s | overall tok/s | per-sequence tok/s | TTFT p50/p95/p99 ms | ITL p50/p95/p99 ms "
              "| KV blocks (max/pool) | preemptions | prefix-cache hits |\n|---:|---:|---:|---|---|---|---:|---:|\n");
  std::printf("| %.1f | %.1f | %.1f | %.1f / %.1f / %.1f | %.2f / %.2f / %.2f | %.0f / %u | %.0f | %.0f tokens |\n",
              agg, overall, per_seq, ttft[0], ttft[1], ttft[2], itl[0], itl[1], itl[2], blocks,
              engine.model().kv().shape().n_blocks, pre, hits);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  EngineOptions opt;
  cli::CommonFlagsSeen seen;
  std::vector<uint32_t> prompts{16, 128, 512}, contexts{0, 512, 1024, 2048, 4096};
  uint32_t reps = 5, warmup = 1, tg = 128, tg_ctx = 64, print_ids = 0;
  bool json = false, bw = false, bw_only = false;
  const char* ids_file = nullptr;
  bench::SequencesOptions seqs;
  seqs.sequences = 0;  // 0: the single-sequence measurements
  for (int i = 1; i < argc; ++i) {
    std::string err;
    const int r = cli::parse_common_flag(argc, argv, &i, &opt, &err, &seen);
    if (r < 0) {
      std::fprintf(stderr, "tern-bench: %s (tern-bench --help lists the options)\n", err.c_str());
      return 2;
    }
    if (r > 0) continue;
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    auto bad = [&](const char* what) {
      std::fprintf(stderr, "tern-bench: %s needs %s (tern-bench --help lists the options)\n", a.c_str(), what);
      return 2;
    };
    if (a == "-h" || a == "--help") { usage(stdout); return 0; }
    else if (a == "--version") { std::printf("tern-bench (%s)\n", cli::version()); return 0; }
    else if (a == "--json") json = true;
    else if (a == "--bw") bw = true;
    else if (a == "--bw-only") bw_only = true;
    else if (a == "--reps") { if (!parse_count(v, &reps) || !reps) return bad("a positive count"); ++i; }
    else if (a == "--warmup") { if (!parse_count(v, &warmup)) return bad("a count"); ++i; }
    else if (a == "--tg") { if (!parse_count(v, &tg) || !tg) return bad("a positive count"); ++i; }
    else if (a == "--tg-ctx") { if (!parse_count(v, &tg_ctx) || !tg_ctx) return bad("a positive count"); ++i; }
    else if (a == "--print-ids") { if (!parse_count(v, &print_ids) || !print_ids) return bad("a positive count"); ++i; }
    else if (a == "--prompts") { if (!parse_list(v, &prompts)) return bad("comma-separated lengths"); ++i; }
    else if (a == "--contexts") { if (!parse_list(v, &contexts)) return bad("comma-separated contexts"); ++i; }
    else if (a == "--ids-file") { if (!v) return bad("a path"); ids_file = v; ++i; }
    else if (a == "--sequences") { if (!parse_count(v, &seqs.sequences) || !seqs.sequences || seqs.sequences > 256) return bad("a count in 1..256"); ++i; }
    else if (a == "--seq-prompt") { if (!parse_count(v, &seqs.prompt) || !seqs.prompt) return bad("a positive count"); ++i; }
    else if (a == "--seq-gen") { if (!parse_count(v, &seqs.generate) || !seqs.generate) return bad("a positive count"); ++i; }
    else if (a == "--budget") { if (!parse_count(v, &seqs.budget)) return bad("a count"); ++i; }
    else if (a == "--shared-prefix") { if (!parse_count(v, &seqs.shared_prefix)) return bad("a count"); ++i; }
    else if (a == "--arrival-ms") {
      char* end = nullptr;
      seqs.arrival_ms = v ? std::strtod(v, &end) : -1;
      if (!v || *end || !(seqs.arrival_ms >= 0 && seqs.arrival_ms < 1e6)) return bad("milliseconds >= 0");
      ++i;
    }
    else if (a == "--arrival-seed") { uint32_t sd = 0; if (!parse_count(v, &sd)) return bad("a count"); seqs.seed = sd; ++i; }
    else return cli::unknown_argument("tern-bench", argv[i]);
  }
  {
    std::string env_err;
    if (!cli::finish_common_flags("tern-bench", &opt, seen, nullptr, &env_err)) {
      std::fprintf(stderr, "tern-bench: %s\n", env_err.c_str());
      return 2;
    }
  }
  if (bw_only) {
    // Its own process, so the probe buffer stays out of the model runs' peak RSS.
    const double bw1 = read_bandwidth_gbs(1, kBwTrials);
    const double bwt = opt.threads > 1 ? read_bandwidth_gbs(opt.threads, kBwTrials) : bw1;
    if (json) {
      std::printf("{\"read_bw_gbs_1t\":%.3f,\"read_bw_gbs\":%.3f,\"threads\":%u,\"read_bw_buffer_bytes\":%zu,"
                  "\"llc_bytes\":%zu,\"read_bw_method\":\"best of %d trials x %d patterns\"}\n",
                  bw1, bwt, opt.threads, bw_buffer_bytes(), bench::llc_bytes(), kBwTrials, bench::kReadPatternCount);
    } else {
      print_bw_method(stdout);
      std::printf("%.2f GB/s (1 thread), %.2f GB/s (%u threads)\n", bw1, bwt, opt.threads);
    }
    return 0;
  }
  if (!opt.model_path) {
    std::fprintf(stderr, "tern-bench: --model is required (tern-bench --help lists the options)\n");
    return 2;
  }
  for (uint32_t p : prompts)
    if (!p) { std::fprintf(stderr, "tern-bench: prompt lengths must be positive\n"); return 2; }
  std::sort(contexts.begin(), contexts.end());
  contexts.erase(std::unique(contexts.begin(), contexts.end()), contexts.end());

  // Room for the longest prompt, and for the last context plus its decode.
  uint32_t need = 16;
  for (uint32_t p : prompts) need = std::max(need, p + 1);
  for (size_t i = 0; i < contexts.size(); ++i) {
    const uint32_t n = (contexts[i] == 0 || contexts[i] == 1024) ? tg : tg_ctx;
    need = std::max(need, std::max(contexts[i], 1u) + n + 1);
    if (i + 1 < contexts.size() && std::max(contexts[i], 1u) + n + 1 > contexts[i + 1]) {
      std::fprintf(stderr, "tern-bench: context %u plus %u decoded tokens overlaps the next context %u\n", contexts[i],
                   n, contexts[i + 1]);
      return 2;
    }
  }
  if (!opt.limits.max_context) opt.limits.max_context = (std::max(need, print_ids) + 15) / 16 * 16;
  if (opt.limits.max_context < need && !print_ids) {
    std::fprintf(stderr, "tern-bench: --max-context %u is smaller than the %u tokens this run needs\n",
                 opt.limits.max_context, need);
    return 2;
  }

  if (seqs.sequences) return run_sequences_mode(opt, seqs, ids_file, reps, warmup, json);

  static Engine engine;  // static: large, and lives for the whole run
  const uint64_t t_open = now_ns();
  if (Status s = engine.open(opt); !s.is_ok()) return fail(s);
  const uint64_t t_ready = now_ns();
  if (json) {
    // Flushed at once, so a driver reading the pipe can stamp the moment too.
    std::printf("{\"event\":\"ready\",\"ready_mono_ns\":%llu}\n", (unsigned long long)t_ready);
    std::fflush(stdout);
  }

  std::vector<int32_t> ids;
  if (Status s = make_ids(engine, ids_file, std::max<size_t>(need, print_ids), &ids); !s.is_ok()) return fail(s);
  if (print_ids) {
    for (uint32_t i = 0; i < print_ids; ++i) std::printf("%s%d", i ? "," : "", ids[i]);
    std::printf("\n");
    return 0;
  }

  // --bw: the read bandwidth before the timed rounds and after them, the
  // best of both (the window of the measurements it judges).
  double bw1 = 0, bwt = 0;
  auto measure_bw = [&] {
    bw1 = std::max(bw1, read_bandwidth_gbs(1, kBwTrials));
    bwt = std::max(bwt, engine.threads() > 1 ? read_bandwidth_gbs(engine.threads(), kBwTrials) : bw1);
  };
  if (bw) measure_bw();

  Bench b{&engine, &ids, {}};
  for (uint32_t w = 0; w < warmup; ++w) {
    // A short untimed round: pages the weights in and warms caches and workers.
    PromptResult p;
    std::vector<DecodeResult> d;
    if (Status s = b.prompt(std::min<uint32_t>(64, need - 1), &p); !s.is_ok()) return fail(s);
    if (Status s = b.decode_sweep({0}, 16, 16, &d); !s.is_ok()) return fail(s);
  }
  std::vector<Rep> all(reps);
  for (uint32_t r = 0; r < reps; ++r) {
    if (Status s = b.rep(prompts, contexts, tg, tg_ctx, &all[r]); !s.is_ok()) return fail(s);
    if (json) print_rep_json(all[r], int(r));
  }

  if (bw) measure_bw();

  // Medians over repetitions.
  const uint64_t wbytes = decode_weight_bytes(engine);
  const size_t kv_bpt = decode_kv_bytes(engine, 1);  // all layers, one position (below any window)
  uint32_t sliding_layers = 0;
  for (uint32_t l = 0; l < engine.hparams().layers && engine.file().layer_configs; ++l)
    sliding_layers += engine.file().layer_config(l).sliding ? 1 : 0;
  const uint64_t params = parameter_count(engine);
  const double weight_bytes_total = double(engine.file().bytes_f32 + engine.file().bytes_int8 + engine.file().bytes_int4 +
                                         engine.file().bytes_int5);
  const double bpw = 8.0 * weight_bytes_total / double(params);
  std::vector<double> ttft[16], pp[16];
  std::vector<double> tok_s[16], p50[16], p95[16], p99[16];
  for (const Rep& r : all) {
    for (size_t i = 0; i < r.prompts.size() && i < 16; ++i) {
      ttft[i].push_back(r.prompts[i].ttft_ms);
      pp[i].push_back(r.prompts[i].prefill_tok_s);
    }
    for (size_t i = 0; i < r.decodes.size() && i < 16; ++i) {
      tok_s[i].push_back(r.decodes[i].tok_s);
      p50[i].push_back(r.decodes[i].p50_ms);
      p95[i].push_back(r.decodes[i].p95_ms);
      p99[i].push_back(r.decodes[i].p99_ms);
    }
  }
  const double ready_ms = ns_to_ms(t_ready - g_main_ns), open_ms = ns_to_ms(t_ready - t_open);
  const double roof_bw = bwt;
  if (json) {
    std::printf("{\"summary\":true,\"reps\":%u,\"ready_ms\":%.3f,\"open_ms\":%.3f,\"weight_bytes\":%.0f,"
                "\"parameters\":%llu,\"bits_per_weight\":%.3f,\"decode_weight_bytes_per_token\":%llu,"
                "\"kv_read_bytes_per_token\":%zu,\"sliding_layers\":%u,\"read_bw_gbs_1t\":%.3f,"
                "\"read_bw_gbs\":%.3f,\"prompts\":[",
                reps, ready_ms, open_ms, weight_bytes_total, (unsigned long long)params, bpw,
                (unsigned long long)wbytes, kv_bpt, sliding_layers, bw1, bwt);
    for (size_t i = 0; i < prompts.size() && i < 16; ++i)
      std::printf("%s{\"tokens\":%u,\"ttft_ms\":%.3f,\"prefill_tok_s\":%.2f}", i ? "," : "", prompts[i],
                  median(ttft[i]), median(pp[i]));
    std::printf("],\"decodes\":[");
    for (size_t i = 0; i < contexts.size() && i < 16; ++i) {
      const double bytes = double(wbytes) + double(decode_kv_bytes(engine, contexts[i]));
      const double gbs = bytes * median(tok_s[i]) / 1e9;
      std::printf("%s{\"context\":%u,\"tok_s\":%.2f,\"p50_ms\":%.4f,\"p95_ms\":%.4f,\"p99_ms\":%.4f,"
                  "\"bytes_per_token\":%.0f,\"stream_gbs\":%.3f,\"roofline_fraction\":%.4f}",
                  i ? "," : "", contexts[i], median(tok_s[i]), median(p50[i]), median(p95[i]), median(p99[i]), bytes,
                  gbs, roof_bw > 0 ? gbs / roof_bw : 0.0);
    }
    std::printf("],");
    cli::json_memory_fields(stdout, engine);
    std::printf("}\n");
    return 0;
  }

  std::printf("tern-bench: %s, %s, %u thread(s), %u reps (medians), max context %u\n", opt.model_path,
              engine.isa_name(), engine.threads(), reps, engine.limits().max_context);
  std::printf("weights: %llu parameters, %.2f MiB, %.2f bits/weight; decode streams %.2f MiB/token + %zu B/token of "
              "context (%s KV%s)\n",
              (unsigned long long)params, weight_bytes_total / 1048576.0, bpw, wbytes / 1048576.0, kv_bpt,
              kv_type_name(engine.limits().kv_type),
              sliding_layers ? "; sliding-window layers read at most their window" : "");
  std::printf("ready: %.1f ms from main() (engine open %.1f ms)\n\n", ready_ms, open_ms);
  std::printf("| prompt tokens | TTFT ms | prefill tok/s |\n|---:|---:|---:|\n");
  for (size_t i = 0; i < prompts.size() && i < 16; ++i)
    std::printf("| %u | %.2f | %.1f |\n", prompts[i], median(ttft[i]), median(pp[i]));
  std::printf("\n| context | decode tok/s | p50 ms | p95 ms | p99 ms | GB/s streamed |%s\n|---:|---:|---:|---:|---:|---:|%s\n",
              roof_bw > 0 ? " % of read BW |" : "", roof_bw > 0 ? "---:|" : "");
  for (size_t i = 0; i < contexts.size() && i < 16; ++i) {
    const double gbs = (double(wbytes) + double(decode_kv_bytes(engine, contexts[i]))) * median(tok_s[i]) / 1e9;
    std::printf("| %u | %.1f | %.3f | %.3f | %.3f | %.2f |", contexts[i], median(tok_s[i]), median(p50[i]),
                median(p95[i]), median(p99[i]), gbs);
    if (roof_bw > 0) std::printf(" %.0f%% |", 100 * gbs / roof_bw);
    std::printf("\n");
  }
  if (bw) {
    std::printf("\n");
    print_bw_method(stdout);
    std::printf("taken before and after the repetitions: %.2f GB/s (1 thread), %.2f GB/s (%u threads)\n", bw1, bwt,
                engine.threads());
  }
  std::printf("\n");
  cli::print_memory_report(stdout, engine);
  return 0;
}
