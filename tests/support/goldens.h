// Readers for the committed reference goldens (tests/goldens/README.md has
// the formats). Test-only code: standard containers are fine here.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "runtime/engine.h"  // host_isa_bits

namespace tern::testing {

inline std::string golden_path(const char* name) { return std::string(TERN_SOURCE_DIR) + "/tests/goldens/" + name; }
inline std::string model_path(const char* name) { return std::string(TERN_MODEL_DIR) + "/" + name; }

inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::stringstream ss(s);
  while (std::getline(ss, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

inline std::string unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(char(std::strtoul(h.substr(i, 2).c_str(), nullptr, 16)));
  return out;
}

template <typename T>
std::vector<T> numbers(const std::string& s, char sep = ' ') {
  std::vector<T> out;
  for (const std::string& f : split(s, sep)) {
    if (!f.empty()) out.push_back(T(std::strtod(f.c_str(), nullptr)));
  }
  return out;
}

// TERN_GOLDEN_PROMPTS=name,name,...: run the model goldens on those prompts
// only (e.g. the short ones under qemu, where the ~500-token prompts cost
// minutes); unset or empty: every prompt.
inline bool prompt_selected(const std::string& name) {
  const char* env = std::getenv("TERN_GOLDEN_PROMPTS");
  if (env == nullptr || *env == '\0') return true;
  for (const std::string& n : split(env, ',')) {
    if (n == name) return true;
  }
  return false;
}

struct GreedyGolden {
  std::string name, kind, prompt;
  std::vector<int32_t> prompt_ids, gen_ids;
  std::vector<double> gen_gaps, gen_logps;
};

struct ForcedGolden {
  std::string name;
  uint32_t pos;
  int32_t token, next, top1;
  double logp_next, gap;
};

// prefix: "model" (SmolLM2, make_goldens.py) or "gemma3" (make_gemma3_goldens.py).
inline std::vector<GreedyGolden> read_greedy(const std::string& prefix = "model") {
  std::vector<GreedyGolden> out;
  std::ifstream in(golden_path((prefix + "_greedy.tsv").c_str()));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto f = split(line, '\t');
    if (f.size() < 9) continue;
    GreedyGolden g;
    g.name = f[0];
    g.kind = f[1];
    g.prompt = unhex(f[2]);
    g.prompt_ids = numbers<int32_t>(f[4]);
    g.gen_ids = numbers<int32_t>(f[6]);
    g.gen_gaps = numbers<double>(f[7]);
    g.gen_logps = numbers<double>(f[8]);
    out.push_back(g);
  }
  return out;
}

inline std::vector<ForcedGolden> read_forced(const std::string& prefix = "model") {
  std::vector<ForcedGolden> out;
  std::ifstream in(golden_path((prefix + "_teacher_forced.tsv").c_str()));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto f = split(line, '\t');
    if (f.size() < 7) continue;
    ForcedGolden g;
    g.name = f[0];
    g.pos = uint32_t(std::stoul(f[1]));
    g.token = std::stoi(f[2]);
    g.next = std::stoi(f[3]);
    g.top1 = std::stoi(f[4]);
    g.logp_next = std::stod(f[5]);
    g.gap = std::stod(f[6]);
    out.push_back(g);
  }
  return out;
}

// The SIMD variants compiled in that this CPU runs, best first; with
// `report`, the others are named on stdout as not compared.
inline std::vector<std::string> host_simd_variants(bool report = true) {
  std::vector<std::string> out;
  size_t n = 0;
  const KernelVariant* v = kernel_variants(&n);
  for (size_t i = 0; i < n; ++i) {
    if (v[i].table == &scalar_kernels()) continue;
    if ((v[i].required_isa & ~host_isa_bits()) != 0) {
      if (report) std::printf("variant %s: CPU lacks it, not compared\n", v[i].name);
      continue;
    }
    out.push_back(v[i].name);
  }
  return out;
}

// True when some non-scalar variant of the real kernel table runs on this
// CPU (the golden tests then let the slow scalar variant do less).
inline bool host_runs_simd_variant() { return !host_simd_variants(false).empty(); }

// The ids of `text` with the model's BOS rule (at most the engine's context);
// empty if the tokenizer refuses it (callers' size checks then fail).
inline std::vector<int32_t> encode_text(Engine* e, const std::string& text) {
  std::vector<int32_t> ids(e->limits().max_context);
  size_t n = 0;
  if (!e->tokenizer().encode(text.data(), text.size(), true, ids.data(), ids.size(), &n).is_ok()) n = 0;
  ids.resize(n);
  return ids;
}

}  // namespace tern::testing
