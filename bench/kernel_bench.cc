// kernel-bench: throughput of the quantized matmul of every kernel variant the
// CPU supports, beside this core's streaming read bandwidth measured in the
// same run.
//   decode  (n_tokens = 1): GB/s of weight bytes (q plane + f16 scales) streamed,
//           for an L2-resident 576x576 matrix and a DRAM-resident ~64 MB one
//           (int5: nibble + high-bit planes + f16 {d, m}, 24 bytes per 32);
//   prefill (64 tokens x 1536x576): GOP/s, counted as 2 ops (one multiply-add)
//           per weight x token, i.e. 2 * rows * cols * tokens per call,
//           whatever the kernel does inside (the two activation planes make
//           it two integer products per weight x token, not counted twice).
// Each figure is the median of several repetitions. Single thread. Times are
// this thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so other processes sharing
// the core do not inflate them; wall time is port/clock.h's now_ns() and is
// printed for the bandwidth probe as a cross-check.
//
//   kernel-bench [--quick]     (--quick: fewer repetitions, smaller DRAM matrix)
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string_view>
#include <vector>

#include "bench/stream_sum.h"
#include "kernels/dispatch.h"
#include "port/clock.h"
#include "port/cpu_features.h"

#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#ifndef TERN_VERSION_STRING
#define TERN_VERSION_STRING "unknown"
#endif

namespace {

using namespace tern;
using bench::stream_sum;

uint32_t host_isa() {
  const CpuFeatures f = detect_cpu_features();
  uint32_t isa = 0;
  if (f.avx2 && f.fma && f.f16c) isa |= kIsaAvx2;
  if (f.avx_vnni) isa |= kIsaAvxVnni;
  if (f.avx512_vnni) isa |= kIsaAvx512Vnni;
  if (f.neon) isa |= kIsaNeon;
  if (f.dotprod) isa |= kIsaNeonDotprod;
  return isa;
}

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

// ---- single-core read bandwidth: sum of a 256 MB buffer ------------------------


double read_bandwidth_gbs(int reps, bool print) {
  const size_t bytes = size_t(256) << 20;
  Buffer buf(bytes);
  std::memset(buf.p, 1, bytes);  // fault the pages in
  std::vector<double> gbs, wall;
  volatile uint64_t sink = 0;
  for (int r = 0; r < reps; ++r) {
    const uint64_t w0 = now_ns(), t0 = thread_ns();
    sink = sink + stream_sum(buf.p, bytes);
    const uint64_t t1 = thread_ns(), w1 = now_ns();
    gbs.push_back(double(bytes) / double(t1 - t0));
    wall.push_back(double(bytes) / double(w1 - w0));
  }
  if (print)
    std::printf("single-core read bandwidth (256 MB streaming sum): %.2f GB/s (wall clock: %.2f GB/s)\n\n",
                median(gbs), median(wall));
  return median(gbs);
}

// ---- quantized problems ----------------------------------------------------------

// Bytes of one row's q planes: int8 1 per weight, int4 1/2, int5 1/2 + 1/8
// (the high-bit plane follows the nibble plane, kernels/kernels.h).
size_t q_row_bytes(WeightType type, uint32_t cols) {
  switch (type) {
    case WeightType::kInt4G32: return cols / 2;
    case WeightType::kInt5G32: return cols / 2 + cols / 8;
    default: return cols;
  }
}

struct QMatrix {
  Buffer q, s;
  WeightMatrix w;
  size_t bytes;  // q planes + scales
  QMatrix(WeightType type, uint32_t rows, uint32_t cols, std::mt19937& rng)
      : q(size_t(rows) * q_row_bytes(type, cols)),
        s(size_t(rows) * (cols / 32) * (type == WeightType::kInt8G32 ? 2 : 4)),
        w{type, rows, cols, q.p, reinterpret_cast<const uint16_t*>(s.p)},
        bytes(q.n + s.n) {
    const bool is_unsigned = type != WeightType::kInt8G32;  // int4, int5: any byte
    std::uniform_int_distribution<int> qd(is_unsigned ? 0 : -127, is_unsigned ? 255 : 127);
    for (size_t i = 0; i < q.n; ++i) q.p[i] = uint8_t(qd(rng));
    uint16_t* sc = reinterpret_cast<uint16_t*>(s.p);
    std::uniform_real_distribution<float> sd(0.001f, 0.02f);
    for (size_t i = 0; i < s.n / 2; ++i) sc[i] = f32_to_f16(sd(rng));
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

// Median seconds of one call over `reps` timed repetitions of `inner` calls.
template <typename F>
double time_call(int reps, int inner, F&& f) {
  f();  // warm up
  std::vector<double> s;
  for (int r = 0; r < reps; ++r) {
    const uint64_t t0 = thread_ns();
    for (int i = 0; i < inner; ++i) f();
    const uint64_t t1 = thread_ns();
    s.push_back(double(t1 - t0) * 1e-9 / inner);
  }
  return median(s);
}

const char* type_name(WeightType t) {
  return t == WeightType::kInt4G32 ? "int4" : t == WeightType::kInt5G32 ? "int5" : "int8";
}
constexpr WeightType kBenchTypes[] = {WeightType::kInt8G32, WeightType::kInt4G32, WeightType::kInt5G32};
constexpr int kBenchTypeCount = 3;

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "-h") || !std::strcmp(argv[i], "--help")) {
      std::printf("usage: kernel-bench [--quick]\n"
                  "Single thread: every kernel variant this CPU runs (and this build compiled), matrix-vector\n"
                  "decode in GB/s of weight bytes beside a read bandwidth measured in the same run, and\n"
                  "matrix-matrix prefill in GOP/s; int8, int4 and int5 weights. About a minute.\n"
                  "  --quick     3 repetitions instead of 7 and 16 MB DRAM matrices instead of 64 MB\n"
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

  const double bw = read_bandwidth_gbs(reps, true);

  size_t n_variants = 0;
  const KernelVariant* variants = kernel_variants(&n_variants);

  // DRAM-resident: ~64 MB of q plane (32 MB L3 here), cols 4096 and 576.
  const uint32_t dram_cols_long = 4096, dram_cols_model = 576;
  const size_t dram_bytes = quick ? (size_t(16) << 20) : (size_t(64) << 20);

  std::printf("| variant | op | weights | shape | ms | GB/s | %% of read BW | GOP/s |\n");
  std::printf("|---|---|---|---|---:|---:|---:|---:|\n");
  double decode_dram[kBenchTypeCount][8] = {};  // [int8/int4/int5][variant] GB/s
  for (size_t vi = 0; vi < n_variants; ++vi) {
    const KernelVariant& v = variants[vi];
    if ((v.required_isa & isa) != v.required_isa) {
      std::printf("| %s | (skipped: CPU lacks it) | | | | | | |\n", v.name);
      continue;
    }
    const KernelTable& k = *v.table;
    for (int ti = 0; ti < kBenchTypeCount; ++ti) {
      const WeightType type = kBenchTypes[ti];
      if (!matmul_for(k, type)) {
        std::printf("| %s | (no %s product) | | | | | | |\n", v.name, type_name(type));
        continue;
      }
      {  // decode, L2-resident
        QMatrix m(type, 576, 576, rng);
        QActs a(k, 1, 576, 576, rng);
        const double s = time_call(reps, 200, [&] { matmul_for(k, m.w.type)(m.w, MatmulInput{nullptr, a.x}, 1, 0, 576, a.y.data(), 576); });
        const double gbs = double(m.bytes) / s * 1e-9;
        std::printf("| %s | decode | %s | 576x576 (L2) | %.4f | %.2f | %.0f%% | |\n", v.name, type_name(type), s * 1e3, gbs, 100 * gbs / bw);
      }
      // decode, DRAM-resident: long rows, and the model's short rows (576
      // columns: how every SmolLM2 matrix but the FFN down projection is read).
      for (const uint32_t dram_cols : {dram_cols_long, dram_cols_model}) {
        const uint32_t rows = uint32_t(dram_bytes / q_row_bytes(type, dram_cols));
        QMatrix m(type, rows, dram_cols, rng);
        QActs a(k, 1, dram_cols, rows, rng);
        const int r = std::string_view(v.name) == "scalar" ? 3 : reps;
        const double s = time_call(r, 1, [&] { matmul_for(k, m.w.type)(m.w, MatmulInput{nullptr, a.x}, 1, 0, rows, a.y.data(), rows); });
        const double gbs = double(m.bytes) / s * 1e-9;
        if (dram_cols == dram_cols_long) decode_dram[ti][vi] = gbs;
        // The machine may be shared: compare with the read bandwidth measured
        // right after, not only with the figure from the start of the run.
        const double bw_now = read_bandwidth_gbs(3, false);
        std::printf("| %s | decode | %s | %ux%u (%.0f MB, DRAM) | %.2f | %.2f | %.0f%% (%.0f%% of %.1f measured next to it) | |\n",
                    v.name, type_name(type), rows, dram_cols, double(m.bytes) / (1 << 20), s * 1e3, gbs, 100 * gbs / bw,
                    100 * gbs / bw_now, bw_now);
      }
      {  // prefill, 64 tokens x 1536x576
        const uint32_t rows = 1536, cols = 576, nt = 64;
        QMatrix m(type, rows, cols, rng);
        QActs a(k, nt, cols, rows, rng);
        const double s = time_call(reps, 2, [&] { matmul_for(k, m.w.type)(m.w, MatmulInput{nullptr, a.x}, nt, 0, rows, a.y.data(), rows); });
        const double gops = 2.0 * rows * cols * nt / s * 1e-9;
        std::printf("| %s | prefill | %s | 64 x 1536x576 | %.3f | | | %.2f |\n", v.name, type_name(type), s * 1e3, gops);
      }
    }
  }
  // Speed-up of each variant over the scalar reference on DRAM-resident decode.
  const size_t scalar_i = n_variants - 1;
  std::printf("\n");
  for (size_t vi = 0; vi + 1 < n_variants; ++vi)
    for (int ti = 0; ti < kBenchTypeCount; ++ti)
      if (decode_dram[ti][vi] > 0 && decode_dram[ti][scalar_i] > 0)
        std::printf("%s vs scalar, %s DRAM decode: %.1fx\n", variants[vi].name, type_name(kBenchTypes[ti]),
                    decode_dram[ti][vi] / decode_dram[ti][scalar_i]);
  return 0;
}
