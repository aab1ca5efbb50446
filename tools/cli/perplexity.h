// tern-perplexity's logic, apart from its main so tests can call it:
// windows over a tokenized text, perplexity with its standard error, and the
// comparison against saved reference log-probabilities (KL divergence,
// top-1 agreement, probability differences) as llama.cpp's llama-perplexity
// --kl-divergence reports them.
//
// The window scheme is llama.cpp's: the text is tokenized once (with the BOS
// the model adds); window k holds tokens [k * stride, k * stride + ctx); its
// first token is replaced by BOS when the model uses one (llama.cpp
// overwrites it too, so windows keep their length); each window runs on an
// empty KV cache, and only the logits rows at window positions
// [score_from, ctx - 1) are scored, each predicting the next token, where
// score_from = max(ctx / 2, ctx - stride). With the default stride = ctx
// this is llama.cpp's perplexity exactly: non-overlapping windows, the second
// half scored (ctx / 2 - 1 tokens each), every scored token seeing at least
// ctx / 2 tokens of context. A smaller stride slides the window: every
// scored token sees at least ctx - stride tokens. Windows: as many whole ones
// as the text holds, (tokens - ctx) / stride + 1, or --chunks.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/status.h"
#include "tools/cli/logprob_file.h"

namespace tern::ppl {

struct WindowPlan {
  uint32_t ctx = 0, stride = 0, score_from = 0;
  uint32_t windows = 0;
  uint32_t rows_per_window() const { return ctx - score_from - 1; }
  uint64_t rows() const { return uint64_t(windows) * rows_per_window(); }
  size_t start(uint32_t k) const { return size_t(k) * stride; }
};

// The windows over n_tokens tokens: ctx >= 4, 2 <= stride <= ctx (stride 0
// means ctx), at most max_windows (0 = no limit). kInvalidArgument for bad
// values or a text shorter than one window (naming both counts).
Status plan_windows(size_t n_tokens, uint32_t ctx, uint32_t stride, uint32_t max_windows, WindowPlan* out);

// Mean negative log-likelihood and its square, for a perplexity with the
// standard error of its mean (llama.cpp's "ppl +/- err": ppl times the
// standard error of the mean NLL, the delta method).
struct NllStats {
  uint64_t n = 0;
  double sum = 0, sum2 = 0;
  void add(double nll) {
    ++n;
    sum += nll;
    sum2 += nll * nll;
  }
  double mean() const { return n ? sum / double(n) : 0; }
  double stderr_mean() const;  // 0 for fewer than 2 values
  double ppl() const;
  double ppl_stderr() const { return ppl() * stderr_mean(); }
};

// The comparison's sums and per-position KL values.
struct KldStats {
  uint64_t n = 0;
  double sum_kld = 0, sum_kld2 = 0;
  uint64_t same_top = 0;
  double sum_dp = 0, sum_dp2 = 0, sum_dp4 = 0;  // p(next) - p_ref(next)
  double sum_d = 0, sum_d2 = 0;                 // nll - nll_ref, for ln(ppl / ppl_ref)
  std::vector<float> kld;                       // per position, sorted by summarize()
};

// KL(ref || this) of one position: sum over the reference's kept entries
// (code != 0) of p_ref * (log p_ref - log p), log p the log-softmax of
// `logits`; entries the reference stored as below its floor count as p_ref
// = 0 (llama.cpp likewise skips reference log-probs under -16). lse is
// log(sum exp(logits)) (score_tokens' row has it: logits[next] - logprob).
double kl_divergence(const RefRow& ref, const float* logits, uint32_t vocab, double lse);

struct Options {
  uint32_t ctx = 0;
  uint32_t stride = 0;      // 0: ctx
  uint32_t max_windows = 0; // --chunks; 0 = all
  std::string save_path;    // --save-logits
  std::string compare_path; // --kl-divergence
  bool progress = true;     // a line per window on stderr
};

// The figures a run reports. KLD in nats; same_top and the dp figures in
// percent (percentage points of probability for dp), as llama.cpp prints
// them; the *_stderr fields are standard errors of the figure before them.
struct Summary {
  double ppl = 0, ppl_stderr = 0;
  double kld_mean = 0, kld_stderr = 0, kld_median = 0, kld_p99 = 0, kld_p999 = 0, kld_max = 0;
  double same_top_pct = 0, same_top_stderr = 0;
  double mean_dp_pct = 0, mean_dp_stderr = 0, rms_dp_pct = 0, rms_dp_stderr = 0;
  double ref_ppl = 0, ref_ppl_stderr = 0, ppl_ratio = 0, ppl_ratio_stderr = 0, ln_ratio = 0, ln_ratio_stderr = 0;
};

struct Result {
  WindowPlan plan;
  size_t text_tokens = 0;
  uint64_t tokens_hash = 0;  // of the text's ids and the BOS rule (LogprobHeader::tokens_hash)
  NllStats nll;
  bool compared = false;
  NllStats ref_nll;
  KldStats kld;
  Summary s;  // filled by summarize()
  double seconds = 0;
};

// Value at `fraction` of sorted values (linear interpolation between the two
// nearest ranks; fraction 0.5 is the median).
double percentile(const std::vector<float>& sorted, double fraction);

// Fill r->s from the sums (sorts r->kld.kld).
void summarize(Result* r);

// The text's token ids with the blob's tokenizer, whole (the BOS the model
// adds first), as llama.cpp tokenizes a perplexity file.
Status tokenize_text(const ModelFile& file, const std::string& text, std::vector<int32_t>* ids);

// The run: every window through `engine` (opened with max_context >= ctx,
// one sequence, logit_rows >= 1), saving and/or comparing as asked. `tokens`
// is the whole text. kInvalidArgument / file errors before any window runs
// where they can be known then (the reference header, an unwritable path).
Status run(Engine* engine, const std::vector<int32_t>& tokens, const Options& o, Result* r);

// --kv: the KV cache element type, "f16" (the default) or "int8" (one scale
// per token and KV head), into EngineOptions::kv_type. Anything else is
// kInvalidArgument naming the choices.
Status select_kv_type(const char* name, EngineOptions* opt);

}  // namespace tern::ppl
