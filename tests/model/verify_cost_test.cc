// --verify on the real blobs: the packed int4 and int8 files pass the weight
// CRC, a flipped weight bit fails it, and the cost of the check (medians of
// 3 runs, file in the page cache) is printed in ms and GB/s, as CPU time and
// wall time, for docs/blob_format.md ("Integrity").
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <vector>

#include "port/blob_map.h"
#include "runtime/model_file.h"
#include "tests/support/goldens.h"

namespace tern {
namespace {

TEST(VerifyCost, RealBlobsPassAndCostIsReported) {
  for (const char* name : {"smollm2-135m-int4.tern", "smollm2-135m-int8.tern"}) {
    const std::string path = testing::model_path(name);
    BlobMap m;
    ASSERT_EQ(blob_map_file(path.c_str(), &m), 0) << path;
    std::vector<double> open_ms, wall_ms, cpu_ms;
    ModelFile f;
    for (int r = 0; r < 3; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      Status st = open_model_file(m.data, m.size, &f);
      const auto t1 = std::chrono::steady_clock::now();
      ASSERT_TRUE(st.is_ok()) << st.message();
      const std::clock_t c0 = std::clock();
      st = verify_tensor_data(f);
      const std::clock_t c1 = std::clock();
      const auto t2 = std::chrono::steady_clock::now();
      ASSERT_TRUE(st.is_ok()) << name << ": " << st.message();
      open_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      wall_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
      cpu_ms.push_back(1e3 * double(c1 - c0) / CLOCKS_PER_SEC);
    }
    for (auto* v : {&open_ms, &wall_ms, &cpu_ms}) std::sort(v->begin(), v->end());
    const double gb = double(f.sections[uint32_t(blob::SectionKind::kTensorData)].bytes) / 1e9;
    std::printf("%s: %.1f MB, validation at open %.2f ms; --verify %.1f ms CPU (%.2f GB/s), %.1f ms wall (%.2f GB/s)\n",
                name, double(m.size) / 1e6, open_ms[1], cpu_ms[1], gb / (cpu_ms[1] / 1e3), wall_ms[1],
                gb / (wall_ms[1] / 1e3));
    blob_unmap(&m);
    if (std::string(name).find("int8") != std::string::npos) continue;
    // A flipped weight bit in a private copy fails the check.
    ASSERT_EQ(blob_map_file(path.c_str(), &m), 0) << path;
    std::vector<uint8_t> copy(m.data, m.data + m.size);
    copy[copy.size() - 1000] ^= 0x04;
    ModelFile g;
    ASSERT_TRUE(open_model_file(copy.data(), copy.size(), &g).is_ok());
    const Status bad = verify_tensor_data(g);
    EXPECT_EQ(bad.code(), StatusCode::kBadChecksum) << bad.message();
    blob_unmap(&m);
  }
}

}  // namespace
}  // namespace tern
