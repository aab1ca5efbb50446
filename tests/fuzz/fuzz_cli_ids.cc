// Fuzz target: token ids typed by a user, from the command line to the model.
// The input is the text of a --prompt-ids argument: parsed with the tools'
// parser (tools/cli/token_ids.h), then whatever ids came out go, unfiltered,
// through every runtime entry point that takes ids, on the tiny llama model
// (tests/support/tiny_model.h, vocabulary 262, built in-process once):
//   - score_tokens (teacher forcing, the path of tern-run --score) with one
//     and with four logits rows per chunk;
//   - Engine::prefill, Engine::decode, and generate() over a history holding them.
// Invariants: ids inside the vocabulary are accepted, any id outside gives
// kInvalidToken and leaves the sequence where it was (n_past, KV blocks);
// ASan catches any read of a logits row or embedding past its end (issue 19:
// `--prompt-ids 1,2000000000 --score --prefill-chunk 1` read row[2e9]).
// The input text is also encoded as a prompt (as tern-run --prompt does) and
// every id the tokenizer produces must be inside the vocabulary.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/generate.h"
#include "runtime/score.h"
#include "runtime/utf8.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/support/tiny_model.h"
#include "tools/cli/token_ids.h"

using namespace tern;

namespace {

constexpr uint32_t kContext = 16;
constexpr size_t kMaxInput = 512;  // bytes of id text looked at per exec

struct Engines {
  std::vector<uint8_t> blob;
  Engine chunk1, chunk4;  // prefill chunk (= logit rows) 1 and 4
  bool ok = false;
};

FUZZ_NO_COVERAGE Engines* engines() {
  static Engines* e = [] {
    Engines* x = new Engines;
    if (!testing::tiny_blob(&x->blob).is_ok()) std::abort();
    for (uint32_t chunk : {1u, 4u}) {
      EngineOptions o;
      o.blob_data = x->blob.data();
      o.blob_size = x->blob.size();
      o.limits.max_context = kContext;
      o.limits.max_sequences = 1;
      o.limits.prefill_chunk = chunk;
      o.limits.logit_rows = chunk;
      o.limits.kv_block_tokens = 4;
      Engine& en = chunk == 1 ? x->chunk1 : x->chunk4;
      const Status s = en.open(o);
      FUZZ_CHECK(s.is_ok(), "tiny engine: %s", s.message());
    }
    x->ok = true;
    return x;
  }();
  return e;
}

bool all_in_vocab(const int32_t* ids, size_t n, uint32_t vocab) {
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || uint32_t(ids[i]) >= vocab) return false;
  }
  return true;
}

struct Seen {
  size_t positions = 0;
  uint32_t vocab = 0;
};

// A position is only ever reported for a next token inside the vocabulary:
// its log-prob was read from logits row[next] (issue 19 printed one for 60000).
bool count_position(void* ctx, const ScorePosition& p) {
  Seen* seen = static_cast<Seen*>(ctx);
  ++seen->positions;
  FUZZ_CHECK(p.next >= 0 && uint32_t(p.next) < seen->vocab, "position %zu scored next id %d outside the vocabulary",
             p.pos, p.next);
  FUZZ_CHECK(std::isfinite(p.logprob) && p.logprob <= 1e-6, "log-prob %f at %zu", p.logprob, p.pos);
  return true;
}

void check_engine(Engine& e, const int32_t* ids, size_t n) {
  const uint32_t vocab = e.hparams().vocab;
  const bool valid = all_in_vocab(ids, n, vocab);
  KvSequence* seq = e.sequence(0);
  e.reset(seq);
  const uint32_t used0 = e.model().kv().used_blocks();

  // Scoring.
  ScoreSummary sum;
  Seen seen;
  seen.vocab = vocab;
  Status s = score_tokens(&e, seq, ids, n, count_position, &seen, &sum);
  if (n < 2) {
    FUZZ_CHECK(s.code() == StatusCode::kInvalidArgument, "score of %zu ids: %s", n, s.message());
  } else if (!valid) {
    FUZZ_CHECK(s.code() == StatusCode::kInvalidToken, "score of bad ids: %s", s.message());
  } else if (n > kContext) {
    FUZZ_CHECK(s.code() == StatusCode::kPromptTooLong, "score of %zu ids: %s", n, s.message());
  } else {
    FUZZ_CHECK(s.is_ok(), "score of %zu valid ids: %s", n, s.message());
    FUZZ_CHECK(seen.positions == n - 1 && sum.positions == n - 1, "%zu positions scored of %zu", seen.positions,
               n - 1);
  }
  if (!s.is_ok()) {
    FUZZ_CHECK(seq->n_past == 0 && e.model().kv().used_blocks() == used0, "failed score moved the sequence to %u",
               seq->n_past);
  }
  e.reset(seq);

  // Prefill, then one decode step with each id.
  s = e.prefill(seq, ids, n);
  if (!valid) {
    FUZZ_CHECK(s.code() == StatusCode::kInvalidToken, "prefill of bad ids: %s", s.message());
    FUZZ_CHECK(seq->n_past == 0, "failed prefill left n_past %u", seq->n_past);
  } else if (n > kContext) {
    FUZZ_CHECK(s.code() == StatusCode::kPromptTooLong, "prefill of %zu ids: %s", n, s.message());
  } else {
    FUZZ_CHECK(s.is_ok(), "prefill of %zu valid ids: %s", n, s.message());
    FUZZ_CHECK(seq->n_past == n, "n_past %u after %zu ids", seq->n_past, n);
  }
  e.reset(seq);
  for (size_t i = 0; i < n && i < 4; ++i) {
    const uint32_t before = seq->n_past;
    s = e.decode(seq, ids[i]);
    const bool ok_id = ids[i] >= 0 && uint32_t(ids[i]) < vocab;
    FUZZ_CHECK(s.is_ok() == ok_id, "decode of id %d: %s", ids[i], s.message());
    if (!ok_id) FUZZ_CHECK(seq->n_past == before, "failed decode moved n_past %u -> %u", before, seq->n_past);
  }
  e.reset(seq);

  // generate() over a history holding the ids.
  if (n >= 1 && n < kContext) {
    TokenHistory h{e.history(0), uint32_t(n), kContext};
    std::memcpy(h.ids, ids, n * sizeof(int32_t));
    GenerateRequest req;
    req.max_new_tokens = 2;
    GenerateStats st;
    s = generate(&e, seq, &h, req, &st);
    if (valid) {
      // Two tokens after n: the context (16) may fill first.
      const bool full = s.code() == StatusCode::kContextFull && st.finish == FinishReason::kContext;
      FUZZ_CHECK(s.is_ok() || full, "generate over %zu valid ids: %s", n, s.message());
    } else {
      FUZZ_CHECK(s.code() == StatusCode::kInvalidToken, "generate over bad ids: %s", s.message());
    }
    if (!valid) FUZZ_CHECK(seq->n_past == 0 && h.n == n, "failed generate moved the sequence");
    e.reset(seq);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Engines* en = engines();
  const char* text = reinterpret_cast<const char*>(data);
  const size_t len = size < kMaxInput ? size : kMaxInput;

  static std::vector<int32_t> ids;
  ids.clear();
  std::string err;
  const bool parsed = tern::cli::parse_token_ids(text, len, &ids, &err, 64);
  if (!parsed) {
    FUZZ_CHECK(ids.empty() && !err.empty(), "failed parse kept %zu ids or gave no message", ids.size());
  } else {
    FUZZ_CHECK(!ids.empty() && ids.size() <= 64, "parse gave %zu ids", ids.size());
    const size_t n = ids.size() < kContext + 2 ? ids.size() : kContext + 2;  // a few past the context too
    check_engine(en->chunk1, ids.data(), n);
    check_engine(en->chunk4, ids.data(), n);
  }

  // The same bytes as prompt text: the tokenizer only produces ids in range.
  static char clean[3 * kMaxInput + 8];
  const size_t clen = utf8_sanitize(text, len, clean, sizeof(clean));
  static int32_t out[3 * kMaxInput + 8];
  size_t got = 0;
  Engine& e = en->chunk4;
  if (e.tokenizer().encode(clean, clen, (size & 1) != 0, out, sizeof(out) / sizeof(out[0]), &got).is_ok()) {
    FUZZ_CHECK(all_in_vocab(out, got, e.hparams().vocab), "the tokenizer produced an id outside the vocabulary");
  }
  return 0;
}
