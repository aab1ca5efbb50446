#include "tools/cli/perplexity.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "port/clock.h"
#include "runtime/score.h"
#include "runtime/spm_tokenizer.h"
#include "runtime/utf8.h"
#include "tools/cli/cli_common.h"

namespace tern::ppl {

namespace {

// Standard error of a mean from the sums of x and x^2 over n values: the
// spread (population variance) over n - 1, as llama.cpp computes it.
double stderr_of(double sum, double sum2, uint64_t n) {
  if (n < 2) return 0;
  const double m = sum / double(n);
  const double var = sum2 / double(n) - m * m;
  return var > 0 ? std::sqrt(var / double(n - 1)) : 0;
}

struct WindowCtx {
  Result* r;
  LogprobWriter* writer;  // null unless saving
  LogprobReader* reader;  // null unless comparing
  uint32_t vocab;
  Status status;          // the first error of a callback (it stops the window)
};

bool on_position(void* p, const ScorePosition& sp) {
  WindowCtx* c = static_cast<WindowCtx*>(p);
  Result* r = c->r;
  r->nll.add(-sp.logprob);
  // log(sum exp(row)), from what score_tokens computed: logprob = row[next] - lse.
  const double lse = double(sp.logits[sp.next]) - sp.logprob;
  if (c->writer) {
    c->status = c->writer->write_row(sp.logits, uint32_t(sp.top1), lse, sp.next);
    if (!c->status.is_ok()) return false;
  }
  if (c->reader) {
    RefRow ref;
    c->status = c->reader->read_row(&ref);
    if (!c->status.is_ok()) return false;
    KldStats& k = r->kld;
    const double kld = kl_divergence(ref, sp.logits, c->vocab, lse);
    ++k.n;
    k.sum_kld += kld;
    k.sum_kld2 += kld * kld;
    k.kld.push_back(float(kld));
    k.same_top += ref.top1 == uint32_t(sp.top1);
    const double dp = std::exp(sp.logprob) - std::exp(ref.logprob_next);
    k.sum_dp += dp;
    k.sum_dp2 += dp * dp;
    k.sum_dp4 += dp * dp * dp * dp;
    const double d = -sp.logprob + ref.logprob_next;
    k.sum_d += d;
    k.sum_d2 += d * d;
    r->ref_nll.add(-ref.logprob_next);
  }
  return true;
}

}  // namespace

Status plan_windows(size_t n_tokens, uint32_t ctx, uint32_t stride, uint32_t max_windows, WindowPlan* out) {
  *out = WindowPlan{};
  if (ctx < 4) return Status::error(StatusCode::kInvalidArgument, "--ctx must be at least 4, got %u", ctx);
  if (stride == 0) stride = ctx;
  if (stride < 2 || stride > ctx) {
    return Status::error(StatusCode::kInvalidArgument, "--stride must be in [2, ctx = %u], got %u", ctx, stride);
  }
  if (n_tokens < ctx) {
    return Status::error(StatusCode::kInvalidArgument, "the text has %zu tokens, fewer than one window of --ctx %u",
                         n_tokens, ctx);
  }
  const uint64_t windows = (uint64_t(n_tokens) - ctx) / stride + 1;
  out->ctx = ctx;
  out->stride = stride;
  out->score_from = std::max(ctx / 2, ctx - stride);
  out->windows = uint32_t(std::min<uint64_t>(windows, max_windows ? max_windows : UINT32_MAX));
  return Status::ok();
}

double NllStats::stderr_mean() const { return stderr_of(sum, sum2, n); }
double NllStats::ppl() const { return n ? std::exp(mean()) : 0; }

double kl_divergence(const RefRow& ref, const float* logits, uint32_t vocab, double lse) {
  double sum = 0;
  for (uint32_t v = 0; v < vocab; ++v) {
    if (ref.q[v] == 0) continue;
    const double lp_ref = ref.logprob(v);
    sum += std::exp(lp_ref) * (lp_ref - (double(logits[v]) - lse));
  }
  return sum;
}

double percentile(const std::vector<float>& sorted, double fraction) {
  if (sorted.empty()) return 0;
  const double x = fraction * double(sorted.size() - 1);
  const size_t lo = size_t(x);
  if (lo + 1 >= sorted.size()) return sorted.back();
  const double t = x - double(lo);
  return double(sorted[lo]) * (1 - t) + double(sorted[lo + 1]) * t;
}

void summarize(Result* r) {
  Summary& s = r->s;
  s = Summary{};
  s.ppl = r->nll.ppl();
  s.ppl_stderr = r->nll.ppl_stderr();
  if (!r->compared) return;
  KldStats& k = r->kld;
  const uint64_t n = k.n;
  if (n == 0) return;
  std::sort(k.kld.begin(), k.kld.end());
  s.kld_mean = k.sum_kld / double(n);
  s.kld_stderr = stderr_of(k.sum_kld, k.sum_kld2, n);
  s.kld_median = percentile(k.kld, 0.5);
  s.kld_p99 = percentile(k.kld, 0.99);
  s.kld_p999 = percentile(k.kld, 0.999);
  s.kld_max = k.kld.back();
  const double p = double(k.same_top) / double(n);
  s.same_top_pct = 100 * p;
  s.same_top_stderr = n > 1 ? 100 * std::sqrt(p * (1 - p) / double(n - 1)) : 0;
  s.mean_dp_pct = 100 * k.sum_dp / double(n);
  s.mean_dp_stderr = 100 * stderr_of(k.sum_dp, k.sum_dp2, n);
  const double ms = k.sum_dp2 / double(n);
  s.rms_dp_pct = 100 * std::sqrt(ms);
  // d(sqrt(x)) = dx / (2 sqrt(x)): the error of the mean of dp^2, carried over.
  s.rms_dp_stderr = ms > 0 ? 100 * stderr_of(k.sum_dp2, k.sum_dp4, n) / (2 * std::sqrt(ms)) : 0;
  s.ref_ppl = r->ref_nll.ppl();
  s.ref_ppl_stderr = r->ref_nll.ppl_stderr();
  s.ln_ratio = k.sum_d / double(n);
  s.ln_ratio_stderr = stderr_of(k.sum_d, k.sum_d2, n);
  s.ppl_ratio = std::exp(s.ln_ratio);
  s.ppl_ratio_stderr = s.ppl_ratio * s.ln_ratio_stderr;
}

Status tokenize_text(const ModelFile& file, const std::string& text, std::vector<int32_t>* ids) {
  // SentencePiece encodes at most this much in one call (its scratch is ~80
  // bytes per text byte); byte-level BPE has no limit, but the same cap keeps
  // the ids buffer and the run bounded for either.
  constexpr size_t kMaxText = SpmTokenizer::kMaxTextBytes;
  if (text.empty()) return Status::error(StatusCode::kInvalidArgument, "the text file is empty");
  if (text.size() > kMaxText) {
    return Status::error(StatusCode::kInvalidArgument, "the text has %zu bytes; at most %zu are read", text.size(),
                         kMaxText);
  }
  // Invalid UTF-8 becomes U+FFFD, as tern-run does with prompts.
  std::string clean(utf8_sanitized_max(text.size()), '\0');
  clean.resize(utf8_sanitize(text.data(), text.size(), &clean[0], clean.size()));
  if (clean != text) std::fprintf(stderr, "tern-perplexity: invalid UTF-8 in the text replaced by U+FFFD\n");
  std::vector<uint8_t> mem;
  std::unique_ptr<TextTokenizer> tok(new TextTokenizer);
  ChatFormat chat;
  const size_t max_text = std::min(clean.size() + 16, kMaxText);
  TERN_RETURN_IF_ERROR(cli::open_tokenizer(file, max_text, &mem, tok.get(), &chat));
  // At most one token per byte (BPE merges only shrink; SentencePiece falls
  // back to byte tokens), plus the BOS.
  ids->assign(clean.size() + 2, 0);
  size_t n = 0;
  TERN_RETURN_IF_ERROR(tok->encode_prompt(clean.data(), clean.size(), false, true, ids->data(), ids->size(), &n));
  ids->resize(n);
  return Status::ok();
}

Status run(Engine* engine, const std::vector<int32_t>& tokens, const Options& o, Result* r) {
  *r = Result{};
  TERN_RETURN_IF_ERROR(plan_windows(tokens.size(), o.ctx, o.stride, o.max_windows, &r->plan));
  const WindowPlan& w = r->plan;
  r->text_tokens = tokens.size();
  if (engine->limits().max_context < w.ctx) {
    return Status::error(StatusCode::kInvalidArgument, "the engine's context %u is shorter than --ctx %u",
                         engine->limits().max_context, w.ctx);
  }
  TERN_RETURN_IF_ERROR(engine->check_tokens(tokens.data(), tokens.size()));
  const uint32_t vocab = engine->hparams().vocab;
  const int32_t bos = engine->tokenizer().prompt_bos();
  LogprobHeader h;
  h.vocab = vocab;
  h.ctx = w.ctx;
  h.stride = w.stride;
  h.score_from = w.score_from;
  h.windows = w.windows;
  h.text_tokens = tokens.size();
  h.bos = bos >= 0 ? uint32_t(bos) : kNoBos;
  h.tokens_hash = tokens_hash(tokens.data(), tokens.size(), h.bos);
  r->tokens_hash = h.tokens_hash;

  // Both files are checked before the first window, so a mismatch costs no
  // model time.
  std::unique_ptr<LogprobReader> reader;
  if (!o.compare_path.empty()) {
    reader.reset(new LogprobReader);
    TERN_RETURN_IF_ERROR(reader->open(o.compare_path));
    TERN_RETURN_IF_ERROR(reader->check_matches(h));
    r->compared = true;
    r->kld.kld.reserve(size_t(w.rows()));
  }
  std::unique_ptr<LogprobWriter> writer;
  if (!o.save_path.empty()) {
    writer.reset(new LogprobWriter);
    TERN_RETURN_IF_ERROR(writer->open(o.save_path, h));
  }

  KvSequence* seq = engine->sequence(0);
  std::vector<int32_t> win(w.ctx);
  WindowCtx c{r, writer.get(), reader.get(), vocab, Status::ok()};
  const uint64_t t0 = now_ns();
  for (uint32_t k = 0; k < w.windows; ++k) {
    std::copy(tokens.begin() + long(w.start(k)), tokens.begin() + long(w.start(k) + w.ctx), win.begin());
    if (bos >= 0) win[0] = bos;
    engine->reset(seq);
    // The unscored head without logits rows (the output head is a large
    // share of a small model's work), then the scored rest row by row.
    TERN_RETURN_IF_ERROR(engine->prefill(seq, win.data(), w.score_from));
    ScoreSummary sum;
    TERN_RETURN_IF_ERROR(score_tokens(engine, seq, win.data() + w.score_from, w.ctx - w.score_from, on_position, &c,
                                      &sum));
    TERN_RETURN_IF_ERROR(c.status);
    if (o.progress) {
      const double secs = ns_to_ms(now_ns() - t0) / 1000.0;
      std::fprintf(stderr, "[%u/%u] ppl %.4f, %.1f s, %.1f tok/s\n", k + 1, w.windows, r->nll.ppl(), secs,
                   double(k + 1) * w.ctx / (secs > 0 ? secs : 1e-9));
    }
  }
  engine->reset(seq);
  r->seconds = ns_to_ms(now_ns() - t0) / 1000.0;
  if (writer) TERN_RETURN_IF_ERROR(writer->finish());
  summarize(r);
  return Status::ok();
}

Status select_kv_type(const char* name, EngineOptions* opt) {
  if (std::strcmp(name, "f16") == 0) {
    opt->kv_type = int32_t(KvType::kF16);
    return Status::ok();
  }
  if (std::strcmp(name, "int8") == 0) {
    opt->kv_type = int32_t(KvType::kInt8);
    return Status::ok();
  }
  return Status::error(StatusCode::kInvalidArgument, "--kv takes f16 or int8, got '%s'", name);
}

}  // namespace tern::ppl
