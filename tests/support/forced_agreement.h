// Teacher-forced agreement of a tern engine with the float32 reference's
// goldens (tests/goldens/PREFIX_*), shared by the golden tests.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/score.h"
#include "tests/support/goldens.h"

namespace tern {
namespace testing {

// Teacher-forced scoring of every selected golden prompt + continuation
// through the runtime's one scoring loop (runtime/score.h, as tern-run
// --score runs it), against the reference's top-1 and log-prob at each
// golden position.
struct ForcedAgreement {
  size_t agree = 0, total = 0, prompts = 0;
  size_t longest = 0;                      // tokens of the longest prompt + continuation
  size_t beyond = 0, agree_beyond = 0;     // positions >= the `beyond_pos` argument
  std::vector<std::string> misses_not_near_tie;  // top-1 differs where the reference's top-2 gap >= 0.1
  double mean_abs = 0, max_abs = 0;  // |delta log-prob of the reference's next token|
  double agreement() const { return total == 0 ? 0.0 : double(agree) / double(total); }
  double agreement_beyond() const { return beyond == 0 ? 0.0 : double(agree_beyond) / double(beyond); }
};

template <class Selected>
ForcedAgreement score_goldens(Engine* engine, const std::string& prefix, Selected selected,
                              size_t beyond_pos = SIZE_MAX) {
  ForcedAgreement r;
  const auto greedy = read_greedy(prefix);
  const auto forced = read_forced(prefix);
  EXPECT_GE(forced.size(), 1000u) << prefix;
  std::map<std::string, std::vector<int32_t>> seqs;
  for (const GreedyGolden& g : greedy) {
    if (!selected(g.name)) continue;
    std::vector<int32_t> all = g.prompt_ids;
    all.insert(all.end(), g.gen_ids.begin(), g.gen_ids.end());
    seqs[g.name] = all;
  }
  std::map<std::string, std::vector<double>> logp;  // name -> logp of next at pos
  std::map<std::string, std::vector<int32_t>> top1;
  struct Collect {
    std::vector<double>* lp;
    std::vector<int32_t>* t1;
  };
  for (const auto& [name, ids] : seqs) {
    r.longest = std::max(r.longest, ids.size());
    KvSequence* seq = engine->sequence(0);
    engine->reset(seq);
    Collect c{&logp[name], &top1[name]};
    ScoreSummary sum;
    Status s = score_tokens(
        engine, seq, ids.data(), ids.size(),
        [](void* ctx, const ScorePosition& p) {
          Collect* c = static_cast<Collect*>(ctx);
          c->lp->push_back(p.logprob);
          c->t1->push_back(p.top1);
          return true;
        },
        &c, &sum);
    EXPECT_TRUE(s.is_ok()) << name << ": " << s.message();
    if (!s.is_ok()) return r;
  }
  r.prompts = seqs.size();
  double sum_abs = 0;
  for (const ForcedGolden& f : forced) {
    if (!selected(f.name)) continue;
    if (!logp.count(f.name) || f.pos >= logp[f.name].size() || seqs[f.name][f.pos + 1] != f.next) {
      ADD_FAILURE() << f.name << " pos " << f.pos << ": golden position not scored or next token differs";
      return r;
    }
    const bool same = top1[f.name][f.pos] == f.top1;
    r.agree += same;
    if (!same && f.gap >= 0.1) {
      r.misses_not_near_tie.push_back(f.name + " pos " + std::to_string(f.pos) + " (reference gap " +
                                      std::to_string(f.gap) + ")");
    }
    if (f.pos >= beyond_pos) {
      ++r.beyond;
      r.agree_beyond += same;
    }
    const double d = std::fabs(logp[f.name][f.pos] - f.logp_next);
    sum_abs += d;
    r.max_abs = std::max(r.max_abs, d);
    ++r.total;
  }
  r.mean_abs = r.total == 0 ? 0.0 : sum_abs / double(r.total);
  return r;
}

}  // namespace testing
}  // namespace tern
