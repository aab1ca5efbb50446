// Every tensor of the real GGUFs dequantizes (kernels/gguf_blocks.h) to the
// same float32 bits as the `gguf` Python package's dequantization: SHA-256
// per tensor, committed by tests/goldens/make_gguf_dequant_hashes.py. Needs
// both models (scripts/fetch_model.sh all).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/gguf_blocks.h"
#include "tests/support/sha256.h"
#include "tools/pack/gguf_reader.h"

namespace tern {
namespace {

using namespace gguf;

// Every tensor of `gguf_path` against the committed hashes.
void check_file_against_hashes(const std::string& gguf_path, const std::string& tsv_path) {
  pack::GgufFile file;
  Status s = pack::GgufFile::open(gguf_path, &file);
  ASSERT_TRUE(s.is_ok()) << gguf_path << ": " << s.message() << " (scripts/fetch_model.sh all fetches it)";
  std::ifstream tsv(tsv_path);
  ASSERT_TRUE(tsv.good()) << tsv_path;
  std::string line;
  size_t checked = 0;
  std::vector<float> values;
  while (std::getline(tsv, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream row(line);
    std::string name, type, elems, want;
    std::getline(row, name, '\t');
    std::getline(row, type, '\t');
    std::getline(row, elems, '\t');
    std::getline(row, want, '\t');
    const pack::GgufTensor* t = file.find_tensor(name);
    ASSERT_NE(t, nullptr) << name;
    ASSERT_EQ(std::to_string(t->elems()), elems) << name;
    values.resize(t->elems());
    ASSERT_TRUE(dequantize_gguf(t->type, t->data, t->elems(), values.data())) << name << " type " << type;
    test::Sha256 sha;
    sha.update(values.data(), values.size() * sizeof(float));
    EXPECT_EQ(sha.hex(), want) << name << " (" << type << ", " << elems << " weights)";
    ++checked;
  }
  EXPECT_EQ(checked, file.tensors().size());
}

TEST(GgufDequant, Gemma3_270M_Q4_K_M_EveryTensorMatchesTheGgufPackage) {
  check_file_against_hashes(std::string(TERN_MODEL_DIR) + "/gemma-3-270m-q4_k_m.gguf",
                            std::string(TERN_SOURCE_DIR) + "/tests/goldens/gemma3_270m_q4_k_m_dequant.tsv");
}

TEST(GgufDequant, SmolLM2_Q4_1_EveryTensorMatchesTheGgufPackage) {
  check_file_against_hashes(std::string(TERN_MODEL_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf",
                            std::string(TERN_SOURCE_DIR) + "/tests/goldens/smollm2_135m_q4_1_dequant.tsv");
}

}  // namespace
}  // namespace tern
