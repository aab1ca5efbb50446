// The token sampler: turns one row of logits [vocab] into the next token id.
//
// Order of operations (llama.cpp's common default chain, minus the samplers
// tern does not have):
//   1. repetition penalty  CTRL-style on each distinct token of the last
//                          repeat_last_n entries of `recent`:
//                          logit > 0 ? logit / penalty : logit * penalty
//   2. sanitize            NaN -> -inf, +inf -> FLT_MAX (so softmax stays finite)
//   3. greedy              temperature == 0: argmax, ties -> lowest id; stop here
//   4. top-k               keep the k largest logits (ties -> lower id first)
//   5. softmax             probabilities at temperature 1 over the survivors
//   6. top-p               keep the smallest prefix (by probability, descending)
//                          whose mass reaches top_p
//   7. min-p               keep tokens with p >= min_p * p_max, tested as
//                          exp(logit - max_logit) >= min_p (normalization-free)
//   8. temperature         logits / temperature on the survivors
//   9. renormalize + draw  softmax over the survivors, one uniform double in
//                          [0, 1) from the seeded PCG32 (runtime/rng.h, two
//                          outputs per token), inverse-CDF walk
// Filters 4, 6 and 7 always keep at least the top token.
//
// Cost: no step sorts the vocabulary. A histogram of gap = max_logit - logit
// (kHistBins bins of 1/16 logit, one overflow bin) finds the bin where the
// top-k count or the top-p mass is reached; only tokens at or above it are
// collected, and only what must be ordered is sorted (top-k: nth_element + sort
// of ~k; top-p: the boundary bin alone). The draw sums weights in blocks of 64
// and walks block sums, then one block. Row loops vectorize. Rows whose logits
// all sit in one bin (or beyond kHistRange) still give exact results, only
// with larger sorts.
//
// Reproducibility: the exponential is tern's own (exp_nonpos in sampler.cc,
// plain float arithmetic, <= ~1.3 ulp), sums are in fixed order, and the
// only libm call (log, in the min-p prefilter) is followed by an exact test,
// so one seed gives the same token stream on every platform and compiler
// (checked: x86-64 GCC and clang, aarch64 GCC under qemu).
//
// Edge cases, by design:
//   * temperature == 0 ignores top_k/top_p/min_p (they cannot change the argmax)
//     and does not advance the RNG.
//   * Every logit -inf or NaN: returns token 0, deterministically, without
//     drawing from the RNG.
//   * top_k >= vocab behaves as top_k = 0 (off).
//   * Several +inf logits tie at FLT_MAX: greedy takes the lowest id, sampling
//     splits the mass between them.
//   * repeat_last_n == 0 or repetition_penalty == 1 turns the penalty off;
//     ids in `recent` outside [0, vocab) are ignored; a token repeated in the
//     window is penalized once.
//   * The logits row is the sampler's to modify: on return it holds the
//     penalized, sanitized logits (temperature is applied to the survivors in
//     the sampler's own scratch, not to the whole row).
//
// Memory: all scratch is taken from the arena at init (see arena_bytes);
// sample() never allocates and never fails.
#pragma once
#include <cstddef>
#include <cstdint>

#include "arena/arena.h"
#include "runtime/rng.h"
#include "runtime/status.h"

namespace tern {

struct SamplerParams {
  float temperature = 0.0f;         // 0 => greedy (argmax; ties -> lowest id); finite, >= 0
  int32_t top_k = 0;                // 0 => off; >= 0
  float top_p = 1.0f;               // 1 => off; (0, 1]
  float min_p = 0.0f;               // 0 => off; [0, 1]
  float repetition_penalty = 1.0f;  // 1 => off; finite, > 0
  uint32_t repeat_last_n = 64;      // window for the penalty; 0 => off
  uint64_t seed = 0;
};

// kInvalidArgument, with a message naming the parameter and its allowed range,
// for: temperature < 0 or not finite, top_k < 0, top_p outside (0, 1],
// min_p outside [0, 1], repetition_penalty <= 0 or not finite, NaN anywhere.
Status validate(const SamplerParams& p);

// One sequence's sampling: its parameters and its own random stream. The
// scheduler keeps one per sequence (so a sequence's seeded tokens do not
// depend on the others'); the sampler's scratch is shared.
struct SamplingState {
  SamplerParams params;
  Pcg32 rng;
  void reset(const SamplerParams& p) {
    params = p;
    rng.seed(p.seed);
  }
};

class Sampler {
 public:
  // Histogram bins over (max_logit - logit) in [0, kHistRange); one more bin
  // catches everything further below the max.
  static constexpr uint32_t kHistBins = 1024;
  static constexpr float kHistRange = 64.0f;

  // Arena bytes init() takes for a vocabulary of `vocab` tokens, including
  // worst-case alignment padding.
  static size_t arena_bytes(uint32_t vocab);

  // Validates p, takes scratch from the arena, seeds the RNG with p.seed.
  // kInvalidArgument for bad params, vocab == 0 or > INT32_MAX, or a null
  // arena; kArenaTooSmall when the arena cannot hold arena_bytes(vocab).
  Status init(const SamplerParams& p, uint32_t vocab, Arena* arena);

  // Restart the random stream (and record the seed in params()).
  void reseed(uint64_t seed);

  // Choose the next token from logits [vocab] (modified in place, see above).
  // recent: the sequence's last tokens [n_recent] (may be null when
  // n_recent == 0); only the last repeat_last_n of them count.
  // Before a successful init, returns 0.
  int32_t sample(float* logits, const int32_t* recent, uint32_t n_recent);
  // The same with a sequence's own parameters and random stream (advanced in
  // *state); the sampler's own are untouched. state->params must be valid.
  int32_t sample(float* logits, const int32_t* recent, uint32_t n_recent, SamplingState* state);

  const SamplerParams& params() const { return params_; }

 private:
  struct Candidate {
    float logit;
    int32_t id;
  };

  void apply_penalty(float* logits, const int32_t* recent, uint32_t n_recent);
  // bin_[i] = histogram bin of token i below max_logit (kNoBin for -inf);
  // hist_count_ = tokens per bin.
  void bin_tokens(const float* logits, float max_logit);
  // Top-k survivors, sorted (logit desc, id asc), into cand_; returns their count.
  uint32_t select_top_k(const float* logits, float max_logit, uint32_t k);
  // Top-p survivors over the whole vocabulary into cand_ (the tokens of all
  // but the boundary bin unsorted, then the boundary bin sorted); returns their count.
  uint32_t select_top_p(const float* logits, float max_logit, float top_p);
  // Without top-k/top-p and min_p > 0: the tokens passing min-p, in id order,
  // into cand_; returns their count.
  uint32_t select_min_p(const float* logits, float max_logit, float min_p);
  // Cut the sorted candidates [n] to the top-p prefix, given the softmax
  // denominator `total` (relative to max_logit); returns the new count.
  uint32_t cut_top_p(uint32_t n, float top_p, double total, float max_logit) const;
  // Keep the candidates [n] with p / p_max >= min_p (order kept); returns the new count.
  uint32_t filter_min_p(uint32_t n, float max_logit, float min_p);
  // weight_[i] = exp((cand_[i].logit - max) / T), then one seeded draw.
  int32_t draw_candidates(uint32_t n, float max_logit);
  // One seeded draw of an index in [0, n) with probability weight_[i] / sum;
  // weight_[0..n) must hold at least one positive value.
  uint32_t draw_index(uint32_t n);

  static constexpr uint16_t kNoBin = kHistBins + 1;  // -inf tokens: never candidates
  static constexpr uint32_t kDrawBlock = 64;         // draw walks block sums first

  SamplerParams params_;
  uint32_t vocab_ = 0;
  Pcg32 rng_;
  Candidate* cand_ = nullptr;       // [vocab]
  float* weight_ = nullptr;         // [vocab] softmax numerators (per token or per candidate)
  uint16_t* bin_ = nullptr;         // [vocab] histogram bin per token
  double* block_sum_ = nullptr;     // [ceil(vocab / kDrawBlock)] weight sums for the draw
  uint64_t* seen_ = nullptr;        // [ceil(vocab / 64)] penalty dedup bitmap, all zero between calls
  uint32_t* hist_count_ = nullptr;  // [kHistBins + 2]
  double* hist_mass_ = nullptr;     // [kHistBins + 2]
};

}  // namespace tern
