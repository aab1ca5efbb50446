// tern-perplexity on tiny models built by the real tools (make-tiny-gguf,
// tern-pack): the perplexity equals exp(mean NLL) computed independently
// with score_tokens over each whole window; the window scheme picks the
// positions worked out by hand; a saved reference compared with the same
// configuration gives a KL divergence inside the quantization bound and 100%
// same top; another ISA or thread count stays close; every corrupt,
// truncated or mismatched reference file is refused with its own error and
// never crashes; the CLI's --json object parses and has its keys.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "runtime/blob_format.h"
#include "runtime/engine.h"
#include "runtime/score.h"
#include "tests/support/run_command.h"
#include "tools/cli/logprob_file.h"
#include "tools/cli/perplexity.h"

namespace tern {
namespace {

using testing::run_command;
using testing::tool_path;

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/tern_perplexity_XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Enough text for several windows of the tiny models' contexts.
std::string sample_text() {
  std::string t;
  const char* lines[] = {"The chance of anything coming from Mars is a million to one, he said.\n",
                         "But still they come, the men of the hill, with their engines and their fire.\n",
                         "hello the world, then the thing that was there went on through the night.\n"};
  for (int i = 0; i < 12; ++i) t += lines[i % 3];
  return t;
}

class Perplexity : public ::testing::Test {
 protected:
  // One tiny blob per tokenizer: "bpe" (no BOS, as SmolLM2) and "spm" (BOS
  // added, as Gemma), so both window-start rules run.
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    for (const char* kind : {"bpe", "spm"}) {
      const std::string gguf = dir_->path + "/" + kind + ".gguf";
      auto r = run_command(tool_path("make-tiny-gguf") + " " + gguf + " --tokenizer " + kind);
      ASSERT_EQ(r.exit_code, 0) << r.out;
      r = run_command(tool_path("tern-pack") + " " + gguf + " -o " + blob(kind) + " --weights int8 --max-context 256");
      ASSERT_EQ(r.exit_code, 0) << r.out;
    }
    write_file(text_path(), sample_text());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string blob(const char* kind) { return dir_->path + "/" + kind + ".tern"; }
  static std::string text_path() { return dir_->path + "/text.txt"; }
  static std::string path(const char* name) { return dir_->path + "/" + name; }

  // An engine as tern-perplexity opens it: one sequence of `ctx`, a logits
  // row per chunk position.
  static void open(Engine* e, const char* kind, uint32_t ctx, const char* isa = nullptr, uint32_t threads = 1,
                   uint32_t chunk = 16) {
    EngineOptions o;
    const std::string p = blob(kind);
    o.model_path = p.c_str();
    o.limits.max_context = ctx;
    o.limits.max_sequences = 1;
    o.limits.prefill_chunk = chunk;
    o.limits.logit_rows = chunk;
    o.isa = isa;
    o.threads = threads;
    const Status s = e->open(o);
    ASSERT_TRUE(s.is_ok()) << s.message();
  }
  static std::vector<int32_t> tokens(Engine* e) {
    std::vector<int32_t> ids;
    const Status s = ppl::tokenize_text(e->file(), sample_text(), &ids);
    EXPECT_TRUE(s.is_ok()) << s.message();
    return ids;
  }
  static ppl::Result run(Engine* e, const std::vector<int32_t>& ids, ppl::Options o, StatusCode want = StatusCode::kOk,
                         const char* want_text = nullptr) {
    o.progress = false;
    ppl::Result r;
    const Status s = ppl::run(e, ids, o, &r);
    EXPECT_EQ(s.code(), want) << s.message();
    if (want_text) {
      EXPECT_NE(std::strstr(s.message(), want_text), nullptr) << s.message();
    }
    return r;
  }
  static TempDir* dir_;
};
TempDir* Perplexity::dir_ = nullptr;

// Log-probs of the targets at window positions [from, ctx) (each predicted by
// the row before it), each window scored whole by score_tokens.
struct Collect {
  size_t from;
  std::vector<double>* out;
};
bool collect(void* p, const ScorePosition& sp) {
  Collect* c = static_cast<Collect*>(p);
  if (sp.pos + 1 >= c->from) c->out->push_back(sp.logprob);
  return true;
}
std::vector<double> independent_logprobs(Engine* e, const std::vector<int32_t>& ids, uint32_t ctx,
                                         const std::vector<size_t>& starts, size_t first_target) {
  std::vector<double> lp;
  for (size_t start : starts) {
    std::vector<int32_t> win(ids.begin() + long(start), ids.begin() + long(start + ctx));
    if (e->tokenizer().prompt_bos() >= 0) win[0] = e->tokenizer().prompt_bos();
    e->reset(e->sequence(0));
    Collect c{first_target, &lp};
    ScoreSummary sum;
    const Status s = score_tokens(e, e->sequence(0), win.data(), win.size(), collect, &c, &sum);
    EXPECT_TRUE(s.is_ok()) << s.message();
  }
  e->reset(e->sequence(0));
  return lp;
}

TEST_F(Perplexity, EqualsExpOfMeanNllFromScoreTokens) {
  for (const char* kind : {"bpe", "spm"}) {
    SCOPED_TRACE(kind);
    Engine e;
    open(&e, kind, 64);
    const std::vector<int32_t> ids = tokens(&e);
    ASSERT_GE(ids.size(), 3 * 64u) << "the sample text must hold several windows";
    if (std::string(kind) == "spm") {
      EXPECT_EQ(ids[0], e.tokenizer().prompt_bos()) << "BOS first";
    }
    ppl::Options o;
    o.ctx = 64;
    const ppl::Result r = run(&e, ids, o);
    // Windows of 64 every 64 tokens, targets at window positions 33..63.
    const size_t windows = ids.size() / 64;
    ASSERT_EQ(r.plan.windows, windows);
    std::vector<size_t> starts;
    for (size_t k = 0; k < windows; ++k) starts.push_back(k * 64);
    const std::vector<double> lp = independent_logprobs(&e, ids, 64, starts, 33);
    ASSERT_EQ(r.nll.n, lp.size());
    ASSERT_EQ(lp.size(), windows * 31);
    double sum = 0, sum2 = 0;
    for (double v : lp) {
      sum += -v;
      sum2 += v * v;
    }
    const double mean = sum / double(lp.size());
    // Prefilling the unscored half without logits rows runs the same chunks
    // as scoring it: the same numbers, up to the order of the sums.
    EXPECT_NEAR(r.s.ppl, std::exp(mean), 1e-9 * std::exp(mean));
    const double sd = std::sqrt((sum2 / double(lp.size()) - mean * mean) / double(lp.size() - 1));
    EXPECT_NEAR(r.s.ppl_stderr, std::exp(mean) * sd, 1e-6 * std::exp(mean) * sd);
    EXPECT_FALSE(r.compared);
  }
}

TEST_F(Perplexity, WindowsAndStrideByHand) {
  ppl::WindowPlan w;
  // 20 tokens, ctx 8, stride 3: windows start at 0, 3, 6, 9, 12 (the last
  // ends at 20); score_from = max(8/2, 8-3) = 5: rows 5 and 6 of each window,
  // predicting window positions 6 and 7: tokens 6,7 9,10 12,13 15,16 18,19.
  ASSERT_TRUE(ppl::plan_windows(20, 8, 3, 0, &w).is_ok());
  EXPECT_EQ(w.windows, 5u);
  EXPECT_EQ(w.score_from, 5u);
  EXPECT_EQ(w.rows_per_window(), 2u);
  EXPECT_EQ(w.start(4), 12u);
  // The default stride is ctx: llama.cpp's non-overlapping windows, second half.
  ASSERT_TRUE(ppl::plan_windows(20, 8, 0, 0, &w).is_ok());
  EXPECT_EQ(w.windows, 2u);
  EXPECT_EQ(w.stride, 8u);
  EXPECT_EQ(w.score_from, 4u);
  EXPECT_EQ(w.rows_per_window(), 3u);
  ASSERT_TRUE(ppl::plan_windows(20, 8, 0, 1, &w).is_ok());
  EXPECT_EQ(w.windows, 1u) << "--chunks 1";
  EXPECT_EQ(ppl::plan_windows(7, 8, 0, 0, &w).code(), StatusCode::kInvalidArgument) << "shorter than a window";
  EXPECT_EQ(ppl::plan_windows(20, 3, 0, 0, &w).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ppl::plan_windows(20, 8, 1, 0, &w).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ppl::plan_windows(20, 8, 9, 0, &w).code(), StatusCode::kInvalidArgument);

  // The same scheme on the model: ctx 40, stride 12 scores rows [28, 39)
  // (targets 29..39) of windows starting every 12 tokens.
  Engine e;
  open(&e, "spm", 64);
  const std::vector<int32_t> ids = tokens(&e);
  ppl::Options o;
  o.ctx = 40;
  o.stride = 12;
  o.max_windows = 4;
  const ppl::Result r = run(&e, ids, o);
  ASSERT_EQ(r.plan.windows, 4u);
  EXPECT_EQ(r.plan.score_from, 28u);
  const std::vector<double> lp = independent_logprobs(&e, ids, 40, {0, 12, 24, 36}, 29);
  ASSERT_EQ(lp.size(), 4u * 11);
  ASSERT_EQ(r.nll.n, lp.size());
  double sum = 0;
  for (double v : lp) sum -= v;
  EXPECT_NEAR(r.nll.sum, sum, 1e-9 * std::fabs(sum));
}

// The largest quantization error of a file: half the largest row step.
double max_half_step(const std::string& file) {
  ppl::LogprobReader rd;
  EXPECT_TRUE(rd.open(file).is_ok());
  double m = 0;
  for (uint64_t i = 0; i < rd.header().rows(); ++i) {
    ppl::RefRow row;
    EXPECT_TRUE(rd.read_row(&row).is_ok());
    m = std::max(m, row.step / 2);
  }
  return m;
}

TEST_F(Perplexity, SaveThenCompareSameConfigIsZeroWithinQuantization) {
  for (const char* kind : {"bpe", "spm"}) {
    SCOPED_TRACE(kind);
    Engine e;
    open(&e, kind, 64);
    const std::vector<int32_t> ids = tokens(&e);
    ppl::Options o;
    o.ctx = 64;
    o.stride = 48;
    o.save_path = path("same.logp");
    const ppl::Result saved = run(&e, ids, o);
    const double delta = max_half_step(o.save_path);
    // At most the full 16-nat range over 65534 steps.
    EXPECT_LE(delta, 16.0 / 65534 / 2 * 1.0001);
    o.save_path.clear();
    o.compare_path = path("same.logp");
    const ppl::Result r = run(&e, ids, o);
    ASSERT_TRUE(r.compared);
    // Each decoded reference log-prob is within delta of the exact one, so
    // KL(ref~ || p) = sum p~ (lp~ - lp) is within delta * sum p~ <= delta e^delta.
    const double bound = delta * std::exp(delta) + 1e-9;
    EXPECT_LE(std::fabs(r.s.kld_mean), bound);
    EXPECT_LE(r.s.kld_max, bound);
    EXPECT_GE(r.kld.kld.front(), -bound);
    EXPECT_EQ(r.s.same_top_pct, 100.0);
    EXPECT_EQ(r.kld.n, saved.nll.n);
    // p(next) and the reference perplexity come from the exact log-prob,
    // stored as a float.
    EXPECT_NEAR(r.s.ref_ppl, saved.s.ppl, 1e-6 * saved.s.ppl);
    EXPECT_NEAR(r.s.ppl_ratio, 1.0, 1e-6);
    EXPECT_LT(r.s.rms_dp_pct, 1e-4);
  }
}

TEST_F(Perplexity, OtherIsaAndThreadCountStayClose) {
  Engine ref;
  open(&ref, "bpe", 64, "scalar", 1);
  const std::vector<int32_t> ids = tokens(&ref);
  ppl::Options o;
  o.ctx = 64;
  o.save_path = path("scalar.logp");
  const ppl::Result saved = run(&ref, ids, o);
  ref.close();
  o.save_path.clear();
  o.compare_path = path("scalar.logp");
  size_t n_variants = 0;
  const KernelVariant* variants = kernel_variants(&n_variants);
  for (uint32_t threads : {1u, 2u}) {
    for (size_t i = 0; i < n_variants; ++i) {
      if ((host_isa_bits() & variants[i].required_isa) != variants[i].required_isa) continue;
      SCOPED_TRACE(std::string(variants[i].name) + ", threads " + std::to_string(threads));
      Engine e;
      open(&e, "bpe", 64, variants[i].name, threads);
      const ppl::Result r = run(&e, ids, o);
      // Kernels differ only in the order of exact int32 sums and float
      // rounding: distributions agree to a small fraction of a nat.
      EXPECT_LT(r.s.kld_mean, 1e-4);
      EXPECT_LT(r.s.kld_p999, 1e-3);
      EXPECT_GE(r.s.same_top_pct, 97.0);
      EXPECT_NEAR(r.s.ppl, saved.s.ppl, 1e-2 * saved.s.ppl);
    }
  }
}

TEST_F(Perplexity, BadReferenceFilesGetClearErrors) {
  Engine e;
  open(&e, "bpe", 64);
  const std::vector<int32_t> ids = tokens(&e);
  ppl::Options o;
  o.ctx = 64;
  o.save_path = path("good.logp");
  run(&e, ids, o);
  const std::string good = read_file(o.save_path);
  ASSERT_GT(good.size(), 1000u);
  o.save_path.clear();
  o.compare_path = path("bad.logp");
  auto with = [&](const std::string& bytes, StatusCode code, const char* text) {
    write_file(o.compare_path, bytes);
    run(&e, ids, o, code, text);
  };
  with(good.substr(0, good.size() - 10), StatusCode::kTruncated, "truncated");
  with(good.substr(0, 30), StatusCode::kTruncated, "truncated");
  with(good + "xx", StatusCode::kBadLayout, "after its last row");
  with("", StatusCode::kBadMagic, "not a tern log-prob file");
  with("hello world, not logits\n", StatusCode::kBadMagic, "not a tern log-prob file");
  {
    std::string b = good;
    b[8] = 2;  // version 2, header CRC made valid again
    const uint32_t crc = blob::crc32(b.data(), 60);
    for (int i = 0; i < 4; ++i) b[60 + i] = char(crc >> (8 * i));
    with(b, StatusCode::kBadVersion, "version 2");
  }
  {
    std::string b = good;
    b[20] ^= 1;  // ctx, CRC not fixed
    with(b, StatusCode::kBadChecksum, "header checksum");
  }
  {
    std::string b = good;
    b[good.size() / 2] ^= 0x10;  // inside a row
    with(b, StatusCode::kBadChecksum, "checksum mismatch");
  }
  // Every single-bit flip of the header and truncation inside it: an error
  // each time, before any window runs.
  for (size_t bit = 0; bit < 64 * 8; ++bit) {
    std::string b = good;
    b[bit / 8] ^= char(1 << (bit % 8));
    write_file(o.compare_path, b);
    ppl::Result r;
    o.progress = false;
    EXPECT_FALSE(ppl::run(&e, ids, o, &r).is_ok()) << "bit " << bit;
  }
  for (size_t cut = 0; cut < good.size(); cut += good.size() / 37 + 1) {
    write_file(o.compare_path, good.substr(0, cut));
    ppl::Result r;
    EXPECT_FALSE(ppl::run(&e, ids, o, &r).is_ok()) << "cut at " << cut;
  }
  // Mismatched runs against the good file.
  o.compare_path = path("good.logp");
  o.stride = 32;
  run(&e, ids, o, StatusCode::kInvalidArgument, "--stride");
  o.stride = 0;
  std::vector<int32_t> other = ids;
  size_t at = 100;
  while (other[at] == other[at + 1]) ++at;
  std::swap(other[at], other[at + 1]);
  run(&e, other, o, StatusCode::kInvalidArgument, "other tokens");
  other.push_back(other.back());
  run(&e, other, o, StatusCode::kInvalidArgument, "a text of tokens");
  o.max_windows = 1;
  run(&e, ids, o, StatusCode::kInvalidArgument, "windows");
  o.max_windows = 0;
  {
    Engine e64;
    open(&e64, "bpe", 128);
    ppl::Options o2 = o;
    o2.ctx = 128;
    run(&e64, ids, o2, StatusCode::kInvalidArgument, "--ctx");
  }
  {
    // Another model: the spm vocabulary has BOS and other ids.
    Engine spm;
    open(&spm, "spm", 64);
    run(&spm, tokens(&spm), o, StatusCode::kInvalidArgument, nullptr);
  }
}

// A flat JSON object's members: "key" -> raw value text (numbers, strings,
// true/false). Fails the test on anything else.
std::map<std::string, std::string> parse_flat_json(const std::string& line) {
  std::map<std::string, std::string> m;
  size_t i = 0;
  auto ws = [&] { while (i < line.size() && std::isspace(uint8_t(line[i]))) ++i; };
  auto str = [&]() -> std::string {
    EXPECT_EQ(line[i], '"') << line;
    size_t j = i + 1;
    while (j < line.size() && line[j] != '"') j += line[j] == '\\' ? 2 : 1;
    std::string s = line.substr(i + 1, j - i - 1);
    i = j + 1;
    return s;
  };
  ws();
  if (i >= line.size() || line[i] != '{') {
    ADD_FAILURE() << "not an object: " << line;
    return m;
  }
  ++i;
  while (true) {
    ws();
    const std::string key = str();
    ws();
    if (line[i] != ':') {
      ADD_FAILURE() << "no ':' after " << key;
      return m;
    }
    ++i;
    ws();
    if (line[i] == '"') {
      m[key] = str();
    } else {
      const size_t j = line.find_first_of(",}", i);
      const std::string v = line.substr(i, j - i);
      char* end = nullptr;
      std::strtod(v.c_str(), &end);
      EXPECT_TRUE(v == "true" || v == "false" || (!v.empty() && *end == '\0')) << key << " = " << v;
      m[key] = v;
      i = j;
    }
    ws();
    if (line[i] == '}') return m;
    if (line[i] != ',') {
      ADD_FAILURE() << "bad separator in " << line;
      return m;
    }
    ++i;
  }
}

std::string last_line(const std::string& out) {
  size_t end = out.find_last_not_of('\n');
  if (end == std::string::npos) return "";
  const size_t start = out.rfind('\n', end);
  return out.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
}

TEST_F(Perplexity, CliJsonHasTheKeys) {
  const std::string tool = tool_path("tern-perplexity");
  const std::string base = tool + " -m " + blob("bpe") + " -f " + text_path() + " --ctx 64 --quiet";
  const std::string ref = path("cli.logp");
  auto r = run_command(base + " --save-logits " + ref + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto m = parse_flat_json(last_line(r.out));
  for (const char* k : {"ppl", "ppl_stderr", "tokens_scored", "ctx", "stride"}) EXPECT_TRUE(m.count(k)) << k;
  EXPECT_EQ(m["ctx"], "64");
  EXPECT_EQ(m["stride"], "64");
  EXPECT_EQ(m.count("kld_mean"), 0u);
  r = run_command(base + " --kl-divergence " + ref + " --json --isa scalar");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  m = parse_flat_json(last_line(r.out));
  for (const char* k : {"ppl", "ppl_stderr", "tokens_scored", "ctx", "stride", "kld_mean", "kld_p99", "kld_p999",
                        "same_top_pct", "rms_dp", "ref_ppl", "ppl_ratio"}) {
    EXPECT_TRUE(m.count(k)) << k << "\n" << r.out;
  }
  EXPECT_LT(std::atof(m["kld_mean"].c_str()), 1e-3);
  // Text output names the figures.
  r = run_command(base + " --kl-divergence " + ref);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* k : {"perplexity:", "mean KLD:", "99.9%", "same top:", "RMS dp:"}) {
    EXPECT_NE(r.out.find(k), std::string::npos) << k << "\n" << r.out;
  }
}

TEST_F(Perplexity, CliRefusesWhatItCannotDo) {
  const std::string tool = tool_path("tern-perplexity");
  const std::string base = tool + " -m " + blob("bpe") + " -f " + text_path() + " --ctx 64 --quiet";
  auto r = run_command(base + " --kv int8 --json");  // the int8 KV cache (issue 17)
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("\"kv\":\"int8\""), std::string::npos) << r.out;
  r = run_command(base + " --kv f16");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  r = run_command(base + " --kv q4");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("f16 or int8"), std::string::npos) << r.out;
  r = run_command(tool + " -m " + blob("bpe") + " -f " + text_path());
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("--ctx is required"), std::string::npos) << r.out;
  r = run_command(base + " --temp 0.7");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  r = run_command(base + " --bogus");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  r = run_command(tool + " --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--kl-divergence"), std::string::npos);
  // Never writes over an input.
  const std::string before = read_file(text_path());
  r = run_command(base + " --save-logits " + text_path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("is an input"), std::string::npos) << r.out;
  EXPECT_EQ(read_file(text_path()), before);
  // Nor through a link left at PATH.partial, nor onto a device.
  const std::string target = path("target.txt");
  write_file(target, "keep");
  ASSERT_EQ(::symlink(target.c_str(), (path("out.logp") + ".partial").c_str()), 0);
  r = run_command(base + " --save-logits " + path("out.logp"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("not a regular file"), std::string::npos) << r.out;
  EXPECT_EQ(read_file(target), "keep");
  r = run_command(base + " --save-logits /dev/null");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("not a regular file"), std::string::npos) << r.out;
  // A complete run leaves PATH and no PATH.partial.
  r = run_command(base + " --save-logits " + path("whole.logp"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_FALSE(read_file(path("whole.logp")).empty());
  EXPECT_NE(::access((path("whole.logp") + ".partial").c_str(), F_OK), 0);
  // A text shorter than one window.
  r = run_command(tool + " -m " + blob("bpe") + " -f " + text_path() + " --ctx 4000");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("fewer than one window"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tern
