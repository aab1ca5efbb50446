// kernel-bench: throughput of the quantized matmul of every kernel variant the
// CPU supports, each beside the bound that judges it, measured in the same run.
//   decode  (n_tokens = 1): GB/s of weight bytes (q plane + f16 scales) streamed,
//           for an L2-resident 576x576 matrix and a DRAM-resident one
//           (int5: nibble + high-bit planes + f16 {d, m}, 24 bytes per 32),
//           beside the read bandwidth (below);
//   prefill (64 tokens x 1536x576): GOP/s, counted as 2 ops (one multiply-add)
//           per weight x token, i.e. 2 * rows * cols * tokens per call,
//           whatever the kernel does inside (the two activation planes make
//           it two integer products per weight x token, not counted twice),
//           beside the peak of the dot-product instruction sequence the
//           variant's prefill runs (bench/peak.h), in the same unit.
// Kernel figures are the median of several repetitions. Single thread. Times
// are this thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so other processes
// sharing the core do not inflate them.
//
// The read bandwidth is the denominator of a roofline, so it must bound what
// any kernel streams: the best of several trials (as STREAM reports) of three
// access patterns (bench/stream_sum.h), over a buffer of 4x the last-level
// cache (sysfs; at least 256 MiB, at most 1 GiB), taken in the same time
// window as the kernel it judges: one trial of every pattern right before the
// kernel's repetitions and one right after, the best of them. The
// DRAM-resident matrices follow the same sizing rule. A median probe taken at
// another time is no bound: on an AMD Zen 4 the int8 decode kernel came out
// at 72% of one and at 107% of another, an hour apart.
//
// The peaks: each instruction sequence in an unrolled asm loop over
// independent accumulators (bench/peak_*.cc, each compiled with its ISA's
// flags), the best of several trials, converted to weight x token products by
// the variant's scheme (stated per line), x 2 ops.
//
//   kernel-bench [--quick]     (--quick: 3 repetitions instead of 7, buffers
//                               capped at 256 MiB instead of 1 GiB)
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "bench/peak.h"
#include "bench/stream_sum.h"
#include "kernels/dispatch.h"
#include "port/clock.h"
#include "runtime/engine.h"  // host_isa_bits

#include <time.h>

#ifndef TERN_VERSION_STRING
#define TERN_VERSION_STRING "unknown"
#endif

namespace {

using namespace tern;
using bench::kReadPatternCount;
using bench::kReadPatterns;
using bench::stream_sum;

// The one mapping of CPU features to kernel ISA bits (runtime/engine.cc).
uint32_t host_isa() { return host_isa_bits(); }

// 64-byte aligned buffer that frees itself.
struct Buffer {
  uint8_t* p = nullptr;
  size_t n = 0;
  explicit Buffer(size_t bytes) : n(bytes) {
    p = static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
  }
  ~Buffer() { std::free(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

uint64_t thread_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// "model name" of /proc/cpuinfo (x86), else the Arm implementer / part ids;
// "(VM guest)" when the CPU reports a hypervisor.
std::string cpu_name() {
  std::string name, implementer, part;
  bool vm = false;
  if (FILE* f = std::fopen("/proc/cpuinfo", "r")) {
    char line[4096];
    while (std::fgets(line, sizeof(line), f)) {
      const std::string_view l(line);
      auto value = [&] {
        const size_t c = l.find(':');
        std::string v(c == std::string_view::npos ? std::string_view() : l.substr(c + 1));
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(v.begin());
        while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
        return v;
      };
      if (name.empty() && l.rfind("model name", 0) == 0) name = value();
      if (implementer.empty() && l.rfind("CPU implementer", 0) == 0) implementer = value();
      if (part.empty() && l.rfind("CPU part", 0) == 0) part = value();
      if (l.rfind("flags", 0) == 0 && l.find(" hypervisor") != std::string_view::npos) vm = true;
    }
    std::fclose(f);
  }
  if (name.empty() && !part.empty()) name = "Arm CPU, implementer " + implementer + ", part " + part;
  if (name.empty()) name = "unknown CPU";
  return vm ? name + " (VM guest)" : name;
}

// ---- single-core read bandwidth --------------------------------------------------

// The probe buffer; per pattern the best GB/s seen over the whole run.
struct ReadProbe {
  Buffer buf;
  explicit ReadProbe(size_t bytes) : buf(bytes) { std::memset(buf.p, 1, bytes); }  // fault the pages in
  // GB/s of one pass of pattern i (CPU time; wall time too when asked).
  double pass(int i, double* wall_gbs = nullptr) {
    static volatile uint64_t sink = 0;
    const uint64_t w0 = now_ns(), t0 = thread_ns();
    sink = sink + stream_sum(buf.p, buf.n, kReadPatterns[i]);
    const uint64_t t1 = thread_ns(), w1 = now_ns();
    if (wall_gbs) *wall_gbs = double(buf.n) / double(w1 - w0);
    return double(buf.n) / double(t1 - t0);
  }
  // One trial: every pattern once; the best GB/s.
  double trial() {
    double best = 0;
    for (int i = 0; i < kReadPatternCount; ++i) best = std::max(best, pass(i));
    return best;
  }
};

// ---- quantized problems ----------------------------------------------------------

// Bytes of one row's q planes: int8 1 per weight, int4 1/2, int5 1/2 + 1/8
// (the high-bit plane follows the nibble plane, kernels/kernels.h).
size_t q_row_bytes(WeightType type, uint32_t cols) {
  switch (type) {
    case WeightType::kInt4G32: case WeightType::kInt4G32R16: return cols / 2;
    case WeightType::kInt5G32: return cols / 2 + cols / 8;
    default: return cols;
  }
}

// splitmix64: fills a 1 GiB matrix in well under a second.
struct FastRng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

bool int8(WeightType t) { return t == WeightType::kInt8G32 || t == WeightType::kInt8G32R16; }

struct QMatrix {
  Buffer q, s;
  WeightMatrix w;
  size_t bytes;  // q planes + scales
  QMatrix(WeightType type, uint32_t rows, uint32_t cols, uint64_t seed)
      : q(size_t(rows) * q_row_bytes(type, cols)),
        s(size_t(rows) * (cols / 32) * (int8(type) ? 2 : 4)),
        w{type, rows, cols, q.p, reinterpret_cast<const uint16_t*>(s.p)},
        bytes(q.n + s.n) {
    FastRng rng{seed};
    for (size_t i = 0; i < q.n; i += 8) {  // int4, int5: any byte
      const uint64_t v = rng.next();
      std::memcpy(q.p + i, &v, std::min<size_t>(8, q.n - i));
    }
    if (int8(type))  // int8: -127..127 (random bytes: any permutation of them is as valid, so r16 too)
      for (size_t i = 0; i < q.n; ++i) q.p[i] = q.p[i] == 0x80 ? 0x81 : q.p[i];
    uint16_t* sc = reinterpret_cast<uint16_t*>(s.p);
    for (size_t i = 0; i < s.n / 2; ++i) sc[i] = f32_to_f16(0.001f + 0.019f * float(rng.next() >> 40) / float(1 << 24));
  }
};

// Two-plane activations (coarse q, residual r; kernels/blocks.h).
struct QActs {
  std::vector<int8_t> q, r;
  std::vector<float> d, s, y;
  ActRowsQ8 x;
  QActs(const KernelTable& k, uint32_t n_tokens, uint32_t cols, uint32_t rows, std::mt19937& rng)
      : q(size_t(n_tokens) * cols), r(q.size()), d(size_t(n_tokens) * cols / 32), s(d.size()),
        y(size_t(n_tokens) * rows) {
    std::vector<float> f(size_t(n_tokens) * cols);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (float& v : f) v = u(rng);
    x = ActRowsQ8{q.data(), r.data(), d.data(), s.data(), cols};
    k.quantize_rows_q8(f.data(), n_tokens, cols, x);
  }
};

// Median and best seconds of one call over `reps` timed repetitions of `inner` calls.
struct Timing {
  double median_s, best_s;
};
template <typename F>
Timing time_call(int reps, int inner, F&& f) {
  f();  // warm up
  std::vector<double> s;
  for (int r = 0; r < reps; ++r) {
    const uint64_t t0 = thread_ns();
    for (int i = 0; i < inner; ++i) f();
    const uint64_t t1 = thread_ns();
    s.push_back(double(t1 - t0) * 1e-9 / inner);
  }
  return Timing{median(s), *std::min_element(s.begin(), s.end())};
}

const char* type_name(WeightType t) {
  switch (t) {
    case WeightType::kInt4G32: return "int4";
    case WeightType::kInt5G32: return "int5";
    case WeightType::kInt8G32R16: return "int8 r16";
    case WeightType::kInt4G32R16: return "int4 r16";
    default: return "int8";
  }
}
// r16: the same weights with rows interleaved by 16 (tern-pack --layout r16).
constexpr WeightType kBenchTypes[] = {WeightType::kInt8G32, WeightType::kInt4G32, WeightType::kInt5G32,
                                      WeightType::kInt8G32R16, WeightType::kInt4G32R16};
constexpr int kBenchTypeCount = int(sizeof(kBenchTypes) / sizeof(kBenchTypes[0]));

// ---- peaks of the dot-product instruction sequences ------------------------------

struct Peak {
  const char* sequence;
  uint64_t (*run)(uint64_t iters);  // returns instructions (sequences) executed
  uint32_t isa;                     // CPU bits it needs
  double int_products;              // integer products per instruction
  double wxt;                       // weight x token products per instruction, the variant's scheme
  const char* conversion;           // how wxt follows from the scheme
  double per_s = 0;                 // measured: instructions per second (best trial)
};

// Every sequence this build compiled; measured only when the CPU has it.
std::vector<Peak> compiled_peaks() {
  std::vector<Peak> p;
#if TERN_BENCH_PEAK_AVX2
  p.push_back({"vpmaddwd+vpaddd ymm", bench::peak_vpmaddwd_vpaddd_ymm, kIsaAvx2, 16, 16,
               "16 int16 products of w16 x x16, x16 = 254q + r exact: 1 product = 1 weight x token"});
#endif
#if TERN_BENCH_PEAK_AVXVNNI
  p.push_back({"vpdpbusd ymm", bench::peak_vpdpbusd_ymm, kIsaAvxVnni, 32, 16,
               "32 u8 x s8 products, x16 split into bytes h, l: 2 products = 1 weight x token"});
#endif
#if TERN_BENCH_PEAK_AVX512
  p.push_back({"vpdpwssd zmm", bench::peak_vpdpwssd_zmm, kIsaAvx512Vnni, 32, 32,
               "32 int16 products of w16 x x16, x16 exact: 1 product = 1 weight x token"});
#endif
#if TERN_BENCH_PEAK_AMX
  p.push_back({"tdpbssd (AMX)", bench::peak_tdpbssd, kIsaAmxInt8, 16384, 8192,
               "16x16x64 s8 products, planes q and r both int8: 2 products = 1 weight x token"});
  p.push_back({"tdpbssd K=32 (AMX)", bench::peak_tdpbssd_k32, kIsaAmxInt8, 8192, 4096,
               "16x16x32 s8 products (half depth, one 32-column group, as kernels/amx): 2 = 1 weight x token"});
#endif
#if TERN_BENCH_PEAK_NEON
  p.push_back({"smull+smlal2+sadalp", bench::peak_smull_smlal_sadalp, kIsaNeon, 16, 8,
               "16 s8 products, one per plane: 2 products = 1 weight x token"});
#endif
#if TERN_BENCH_PEAK_NEONDOT
  p.push_back({"sdot", bench::peak_sdot, kIsaNeon | kIsaNeonDotprod, 16, 8,
               "16 s8 products, one per plane: 2 products = 1 weight x token"});
#endif
#if TERN_BENCH_PEAK_I8MM
  p.push_back({"smmla", bench::peak_smmla, kIsaNeon | kIsaNeonI8mm, 32, 16,
               "32 s8 products, one per plane: 2 products = 1 weight x token"});
#endif
  return p;
}

// Instructions per second of `run`: calibrated to ~20 ms per trial, best of `trials`.
double peak_rate(uint64_t (*run)(uint64_t), int trials) {
  uint64_t iters = 1024;
  for (;;) {
    const uint64_t t0 = thread_ns();
    run(iters);
    const uint64_t dt = thread_ns() - t0;
    if (dt >= 5000000 || iters >= (uint64_t(1) << 40)) {
      iters = uint64_t(double(iters) * 20e6 / double(dt ? dt : 1)) + 1;
      break;
    }
    iters *= 4;
  }
  double best = 0;
  for (int t = 0; t < trials; ++t) {
    const uint64_t t0 = thread_ns();
    const uint64_t n = run(iters);
    const uint64_t t1 = thread_ns();
    best = std::max(best, double(n) / double(t1 - t0) * 1e9);
  }
  return best;
}

const Peak* find_peak(const std::vector<Peak>& peaks, const char* sequence) {
  for (const Peak& p : peaks)
    if (p.per_s > 0 && !std::strcmp(p.sequence, sequence)) return &p;
  return nullptr;
}

// The sequence a variant's 64-token prefill runs in its inner loop, as the
// kernels are written: avxvnni runs the AVX2 prefill from 5 tokens on
// (kernels/avxvnni/matmul_q4q8_avxvnni.cc; vpdpbusd only below); otherwise
// the best ISA the variant requires. nullptr: scalar, or not measured.
const Peak* prefill_peak(const KernelVariant& v, const std::vector<Peak>& peaks) {
  if (!std::strcmp(v.name, "avxvnni")) return find_peak(peaks, "vpmaddwd+vpaddd ymm");
  const uint32_t r = v.required_isa;
  if (r & kIsaAmxInt8) return find_peak(peaks, "tdpbssd (AMX)");
  if (r & kIsaAvx512Vnni) return find_peak(peaks, "vpdpwssd zmm");
  if (r & kIsaAvxVnni) return find_peak(peaks, "vpdpbusd ymm");
  if (r & kIsaAvx2) return find_peak(peaks, "vpmaddwd+vpaddd ymm");
  if (r & kIsaNeonI8mm) return find_peak(peaks, "smmla");
  if (r & kIsaNeonDotprod) return find_peak(peaks, "sdot");
  if (r & kIsaNeon) return find_peak(peaks, "smull+smlal2+sadalp");
  return nullptr;
}

// ---- results ---------------------------------------------------------------------

struct Decode {
  bool have = false;
  double ms = 0, gbs = 0, best_gbs = 0, bw = 0;  // bw: best read GB/s of the window (DRAM rows)
  uint32_t rows = 0, cols = 0;
  double mib = 0;
};
struct Prefill {
  bool have = false;
  double ms = 0, gops = 0;
};
struct VariantResults {
  Decode l2[kBenchTypeCount], dram[kBenchTypeCount][2];
  Prefill prefill[kBenchTypeCount];
};

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "-h") || !std::strcmp(argv[i], "--help")) {
      std::printf("usage: kernel-bench [--quick]\n"
                  "Single thread: every kernel variant this CPU runs (and this build compiled), matrix-vector\n"
                  "decode in GB/s of weight bytes beside the read bandwidth measured in the same time window\n"
                  "(best of trials and access patterns), and matrix-matrix prefill in GOP/s beside the peak of\n"
                  "its dot-product instruction sequence; int8, int4 and int5 weights. About two minutes.\n"
                  "  --quick     3 repetitions instead of 7, buffers and DRAM matrices capped at 256 MiB\n"
                  "              instead of 1 GiB (then possibly cache-resident: the table says)\n"
                  "  --version   the version\n");
      return 0;
    } else if (!std::strcmp(argv[i], "--version")) {
      std::printf("kernel-bench (tern %s)\n", TERN_VERSION_STRING);
      return 0;
    } else {
      std::fprintf(stderr, "kernel-bench: unknown argument '%s' (kernel-bench --help lists the options)\n", argv[i]);
      return 2;
    }
  }
  const int reps = quick ? 3 : 7;
  std::mt19937 rng(7);
  const uint32_t isa = host_isa();
  const size_t llc = bench::llc_bytes();
  const size_t big = bench::probe_bytes(llc, bench::kProbeFloor, quick ? size_t(256) << 20 : bench::kProbeCap);
  const double mib = 1.0 / (1 << 20);

  std::printf("kernel-bench (tern %s): %s; 1 thread, CPU time%s\n", TERN_VERSION_STRING, cpu_name().c_str(),
              quick ? "; --quick" : "");
  std::printf("last-level cache %.0f MiB (sysfs); read-bandwidth buffer and DRAM matrices %.0f MiB (4x the LLC,\n"
              "%s)\n",
              llc * mib, big * mib, quick ? "at most 256 MiB with --quick" : "kept within 256 MiB..1 GiB");
  if (llc && big < 2 * llc)
    std::printf("(under 2x the LLC: the \"DRAM\" rows and the probe may be partly cache-resident)\n");

  // ---- read bandwidth at the start of the run, per pattern
  ReadProbe probe(big);
  {
    std::printf("\nread bandwidth, start of run: %d trials of each pattern over the %.0f MiB buffer\n\n", reps, big * mib);
    std::printf("| pattern | best GB/s | median GB/s | best, wall clock |\n|---|---:|---:|---:|\n");
    std::vector<double> g[kReadPatternCount], w[kReadPatternCount];
    for (int r = 0; r < reps; ++r)
      for (int i = 0; i < kReadPatternCount; ++i) {
        double wall = 0;
        g[i].push_back(probe.pass(i, &wall));
        w[i].push_back(wall);
      }
    for (int i = 0; i < kReadPatternCount; ++i)
      std::printf("| %s | %.2f | %.2f | %.2f |\n", kReadPatterns[i].name, *std::max_element(g[i].begin(), g[i].end()),
                  median(g[i]), *std::max_element(w[i].begin(), w[i].end()));
  }

  // ---- peaks
  std::vector<Peak> peaks = compiled_peaks();
  const double clock_hz = peak_rate(bench::peak_add_chain, reps);
  for (Peak& p : peaks)
    if ((p.isa & isa) == p.isa) p.per_s = peak_rate(p.run, reps);
  char clock[64] = "(unknown) clock";
  if (clock_hz > 0) std::snprintf(clock, sizeof(clock), "%.2f GHz", clock_hz * 1e-9);
  std::printf("\npeak of each dot-product instruction sequence (best of %d trials; per cycle at the %s\n"
              "of a chain of dependent register adds, vector code may clock lower; GOP/s = 2 x weight x token\n"
              "products per second):\n\n",
              reps, clock);
  std::printf("| sequence | G instr/s | per cycle | int products / instr | weight x token / instr | peak GOP/s | conversion |\n"
              "|---|---:|---:|---:|---:|---:|---|\n");
  for (const Peak& p : peaks) {
    if (p.per_s <= 0) {
      std::printf("| %s | (CPU lacks it) | | | | | |\n", p.sequence);
      continue;
    }
    std::printf("| %s | %.3f | %.3f | %.0f | %.0f | %.1f | %s |\n", p.sequence, p.per_s * 1e-9,
                clock_hz > 0 ? p.per_s / clock_hz : 0.0, p.int_products, p.wxt, 2 * p.wxt * p.per_s * 1e-9,
                p.conversion);
  }
  if (peaks.empty()) std::printf("| (no peak microbenchmark for this architecture) | | | | | | |\n");

  size_t n_variants = 0;
  const KernelVariant* variants = kernel_variants(&n_variants);
  std::vector<VariantResults> res(n_variants);
  auto runs = [&](size_t vi) { return (variants[vi].required_isa & isa) == variants[vi].required_isa; };

  // DRAM-resident: long rows (4096 columns) and the model's short rows (576:
  // how every SmolLM2 matrix but the FFN down projection is read). One
  // matrix per type and shape, shared by the variants.
  const uint32_t dram_cols[2] = {4096, 576};
  for (int ti = 0; ti < kBenchTypeCount; ++ti) {
    const WeightType type = kBenchTypes[ti];
    for (size_t vi = 0; vi < n_variants; ++vi) {
      if (!runs(vi) || !matmul_for(*variants[vi].table, type)) continue;
      const KernelTable& k = *variants[vi].table;
      {  // decode, L2-resident
        QMatrix m(type, 576, 576, 11);
        QActs a(k, 1, 576, 576, rng);
        const Timing t = time_call(reps, 200, [&] { matmul_for(k, type)(m.w, MatmulInput{nullptr, a.x}, 1, 0, 576, a.y.data(), 576); });
        Decode& d = res[vi].l2[ti];
        d = Decode{true, t.median_s * 1e3, double(m.bytes) / t.median_s * 1e-9, double(m.bytes) / t.best_s * 1e-9, 0,
                   576, 576, m.bytes * mib};
      }
      {  // prefill, 64 tokens x 1536x576
        const uint32_t rows = 1536, cols = 576, nt = 64;
        QMatrix m(type, rows, cols, 13);
        QActs a(k, nt, cols, rows, rng);
        const Timing t = time_call(reps, 2, [&] { matmul_for(k, type)(m.w, MatmulInput{nullptr, a.x}, nt, 0, rows, a.y.data(), rows); });
        res[vi].prefill[ti] = Prefill{true, t.median_s * 1e3, 2.0 * rows * cols * nt / t.median_s * 1e-9};
      }
    }
    for (int ci = 0; ci < 2; ++ci) {
      const uint32_t cols = dram_cols[ci];
      const uint32_t rows = uint32_t(big / q_row_bytes(type, cols)) / 16 * 16;  // whole r16 blocks
      QMatrix m(type, rows, cols, 17 + ci);
      for (size_t vi = 0; vi < n_variants; ++vi) {
        if (!runs(vi) || !matmul_for(*variants[vi].table, type)) continue;
        const KernelTable& k = *variants[vi].table;
        QActs a(k, 1, cols, rows, rng);
        const int r = std::string_view(variants[vi].name) == "scalar" ? 3 : reps;
        // The window: a trial of every pattern right before and right after.
        double bw = probe.trial();
        const Timing t = time_call(r, 1, [&] { matmul_for(k, type)(m.w, MatmulInput{nullptr, a.x}, 1, 0, rows, a.y.data(), rows); });
        bw = std::max(bw, probe.trial());
        res[vi].dram[ti][ci] = Decode{true, t.median_s * 1e3, double(m.bytes) / t.median_s * 1e-9,
                                      double(m.bytes) / t.best_s * 1e-9, bw, rows, cols, m.bytes * mib};
      }
    }
  }

  // ---- the table, per variant
  std::printf("\ndecode: median GB/s of weight bytes; read BW: the best of the trials of every pattern taken right\n"
              "before and right after the kernel's repetitions (L2 rows: no DRAM bound). prefill: median GOP/s.\n\n");
  std::printf("| variant | op | weights | shape | ms | GB/s | read BW GB/s | %% of read BW | GOP/s |\n");
  std::printf("|---|---|---|---|---:|---:|---:|---:|---:|\n");
  const char* where = llc && big < 4 * llc ? "x LLC" : "x LLC, DRAM";
  double worst_ratio = 0;
  std::string worst_row;
  for (size_t vi = 0; vi < n_variants; ++vi) {
    const KernelVariant& v = variants[vi];
    if (!runs(vi)) {
      std::printf("| %s | (skipped: CPU lacks it) | | | | | | | |\n", v.name);
      continue;
    }
    for (int ti = 0; ti < kBenchTypeCount; ++ti) {
      const VariantResults& rs = res[vi];
      if (!rs.l2[ti].have) {
        std::printf("| %s | (no %s product) | | | | | | | |\n", v.name, type_name(kBenchTypes[ti]));
        continue;
      }
      std::printf("| %s | decode | %s | 576x576 (L2) | %.4f | %.2f | | | |\n", v.name, type_name(kBenchTypes[ti]),
                  rs.l2[ti].ms, rs.l2[ti].gbs);
      for (int ci = 0; ci < 2; ++ci) {
        const Decode& d = rs.dram[ti][ci];
        char llc_ratio[32] = "";
        if (llc) std::snprintf(llc_ratio, sizeof(llc_ratio), ", %.1f%s", d.mib / (llc * mib), where);
        std::printf("| %s | decode | %s | %ux%u (%.0f MiB%s) | %.2f | %.2f | %.2f | %.0f%% | |\n", v.name,
                    type_name(kBenchTypes[ti]), d.rows, d.cols, d.mib, llc_ratio, d.ms, d.gbs, d.bw, 100 * d.gbs / d.bw);
        if (d.best_gbs / d.bw > worst_ratio) {
          worst_ratio = d.best_gbs / d.bw;
          worst_row = std::string(v.name) + " " + type_name(kBenchTypes[ti]) + " " + std::to_string(d.cols) + " columns";
        }
      }
      std::printf("| %s | prefill | %s | 64 x 1536x576 | %.3f | | | | %.2f |\n", v.name, type_name(kBenchTypes[ti]),
                  rs.prefill[ti].ms, rs.prefill[ti].gops);
    }
  }
  if (worst_ratio > 0)
    std::printf("\nbound check: the fastest single repetition of any DRAM decode (%s) read %.0f%% of its window's\n"
                "best read bandwidth%s\n",
                worst_row.c_str(), 100 * worst_ratio,
                worst_ratio > 1.0 ? ": above 100%, so the probe is no bound on this CPU" : "");

  // ---- prefill against the peak of its instruction sequence
  std::printf("\nprefill (64 x 1536x576, median) against the peak of the sequence its inner loop runs:\n\n");
  std::printf("| variant | sequence | peak GOP/s | int8 GOP/s | int8 %% of peak | int4 GOP/s | int4 %% | int5 GOP/s | int5 %% |\n"
              "|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
  double best_variant_peak = 0;
  bool amx_paired = false;
  for (size_t vi = 0; vi < n_variants; ++vi) {
    if (!runs(vi)) continue;
    const Peak* p = prefill_peak(variants[vi], peaks);
    const double peak_gops = p ? 2 * p->wxt * p->per_s * 1e-9 : 0;
    best_variant_peak = std::max(best_variant_peak, peak_gops);
    amx_paired |= p && (p->isa & kIsaAmxInt8);
    std::string row = std::string("| ") + variants[vi].name + " | " + (p ? p->sequence : "(none: scalar C++)") + " |";
    char cell[64];
    std::snprintf(cell, sizeof(cell), p ? " %.1f |" : " |", peak_gops);
    row += cell;
    for (int ti = 0; ti < kBenchTypeCount; ++ti) {
      const Prefill& f = res[vi].prefill[ti];
      if (!f.have) std::snprintf(cell, sizeof(cell), " | |");
      else if (p) std::snprintf(cell, sizeof(cell), " %.2f | %.0f%% |", f.gops, 100 * f.gops / peak_gops);
      else std::snprintf(cell, sizeof(cell), " %.2f | |", f.gops);
      row += cell;
    }
    std::printf("%s\n", row.c_str());
  }
  // The amx prefill issues tdpbssd at half depth (K = 32: one group, whose
  // scales are its own; kernels/amx/matmul_q8_amx.cc), so the K = 32 rate is
  // the ceiling of that design.
  if (const Peak* k32 = find_peak(peaks, "tdpbssd K=32 (AMX)"); k32 && amx_paired) {
    const double g = 2 * k32->wxt * k32->per_s * 1e-9;
    for (size_t vi = 0; vi < n_variants; ++vi) {
      const Peak* p = runs(vi) ? prefill_peak(variants[vi], peaks) : nullptr;
      if (!p || !(p->isa & kIsaAmxInt8)) continue;
      std::printf("\n%s issues tdpbssd at K = 32 (one group per tile product): its ceiling is the K=32 peak,\n"
                  "%.1f GOP/s; against it", variants[vi].name, g);
      for (int ti = 0; ti < kBenchTypeCount; ++ti)
        if (res[vi].prefill[ti].have)
          std::printf(" %s %.0f%%", type_name(kBenchTypes[ti]), 100 * res[vi].prefill[ti].gops / g);
      std::printf(".\n");
    }
  }
  if (const Peak* amx = find_peak(peaks, "tdpbssd (AMX)"); amx && !amx_paired) {
    const double g = 2 * amx->wxt * amx->per_s * 1e-9;
    std::printf("\nAMX-INT8, no variant uses it yet: tdpbssd peak %.1f GOP/s (%.1fx the highest peak above).\n", g,
                best_variant_peak > 0 ? g / best_variant_peak : 0.0);
  }

  // Speed-up of each variant over the scalar reference on DRAM-resident decode (4096 columns).
  const size_t scalar_i = n_variants - 1;
  std::printf("\n");
  for (size_t vi = 0; vi + 1 < n_variants; ++vi)
    for (int ti = 0; ti < kBenchTypeCount; ++ti)
      if (res[vi].dram[ti][0].have && res[scalar_i].dram[ti][0].have)
        std::printf("%s vs scalar, %s DRAM decode: %.1fx\n", variants[vi].name, type_name(kBenchTypes[ti]),
                    res[vi].dram[ti][0].gbs / res[scalar_i].dram[ti][0].gbs);
  return 0;
}
