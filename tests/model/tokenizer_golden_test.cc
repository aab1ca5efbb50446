// The tokenizer on the real vocabulary (the packed int4 blob's tokenizer
// section) against tests/goldens/tokenizer_cases.tsv, made by Hugging Face
// transformers from the same GGUF (tests/goldens/README.md):
//   - PreSplit::kGpt2 (what transformers builds from the GGUF) must give the
//     `ids` column exactly, for every case;
//   - PreSplit::kSmollm (the default: SmolLM2's own tokenizer, digits split
//     first) must give the `digit_split_ids` column ('=' means same as `ids`);
//   - the token bytes of the ids give back the text (all cases are valid UTF-8);
//   - encoding 10 KB of text takes well under a few milliseconds.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/blob_format.h"
#include "runtime/tokenizer.h"

namespace tern {
namespace {

std::vector<uint8_t> read_file(const std::string& path) {
  std::vector<uint8_t> data;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return data;
  std::fseek(f, 0, SEEK_END);
  const long n = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  if (n > 0) {
    data.resize(size_t(n));
    if (std::fread(data.data(), 1, data.size(), f) != data.size()) data.clear();
  }
  std::fclose(f);
  return data;
}

// Find the tokenizer section through the blob's section table.
bool find_tokenizer_section(const std::vector<uint8_t>& b, size_t* off, size_t* bytes) {
  if (b.size() < blob::kHeaderBytes || std::memcmp(b.data(), blob::kMagic, 8) != 0) return false;
  const uint32_t count = blob::load_u32(&b[blob::hdr::kSectionCount]);
  const uint64_t table = blob::load_u64(&b[blob::hdr::kSectionTable]);
  if (count > blob::kMaxSections || table + uint64_t(count) * blob::kSectionEntryBytes > b.size()) return false;
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t* e = &b[table + uint64_t(i) * blob::kSectionEntryBytes];
    if (blob::load_u32(e) != uint32_t(blob::SectionKind::kTokenizer)) continue;
    const uint64_t o = blob::load_u64(e + 8), n = blob::load_u64(e + 16);
    if (o > b.size() || n > b.size() - o) return false;
    if (blob::crc32(&b[o], n) != blob::load_u32(e + 24)) return false;
    *off = size_t(o);
    *bytes = size_t(n);
    return true;
  }
  return false;
}

std::string unhex(const std::string& h) {
  std::string s;
  if (h == "-") return s;
  for (size_t i = 0; i + 1 < h.size(); i += 2) s.push_back(char(std::stoi(h.substr(i, 2), nullptr, 16)));
  return s;
}

std::vector<int32_t> parse_ids(const std::string& f) {
  std::vector<int32_t> ids;
  if (f == "-") return ids;
  std::istringstream in(f);
  int32_t v;
  while (in >> v) ids.push_back(v);
  return ids;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

struct GoldenCase {
  std::string name, text;
  std::vector<int32_t> ids, digit_split_ids;
};

class TokenizerGolden : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = std::string(TERN_MODEL_DIR) + "/smollm2-135m-int4.tern";
    blob_ = read_file(path);
    ASSERT_FALSE(blob_.empty()) << path << " is missing: pack it first with\n  tern-pack "
                                << TERN_MODEL_DIR << "/SmolLM2-135M-Instruct.Q4_1.gguf -o " << path
                                << " --weights int4\n(or run ctest, whose model.pack_int4 fixture does it)";
    size_t off = 0, bytes = 0;
    ASSERT_TRUE(find_tokenizer_section(blob_, &off, &bytes)) << path << ": no valid tokenizer section";
    const uint32_t n_tokens = blob::load_u32(&blob_[off + 8]);
    const uint32_t n_merges = blob::load_u32(&blob_[off + 12]);
    arena_bytes_ = Tokenizer::arena_bytes(n_tokens, n_merges);
    memory_.resize(arena_bytes_);
    arena_.init(memory_.data(), memory_.size());
    const Status st = tok_.init(&blob_[off], bytes, &arena_);
    ASSERT_TRUE(st.is_ok()) << st.message();
    std::printf("vocab %u tokens, %u merges; arena_bytes %zu, used %zu\n", n_tokens, n_merges,
                arena_bytes_, arena_.used());

    const std::string gpath = std::string(TERN_SOURCE_DIR) + "/tests/goldens/tokenizer_cases.tsv";
    const std::vector<uint8_t> g = read_file(gpath);
    ASSERT_FALSE(g.empty()) << gpath << " is missing";
    std::istringstream in(std::string(g.begin(), g.end()));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::vector<std::string> f;
      size_t a = 0;
      for (size_t b; (b = line.find('\t', a)) != std::string::npos; a = b + 1) f.push_back(line.substr(a, b - a));
      f.push_back(line.substr(a));
      ASSERT_EQ(f.size(), 6u) << "bad golden line: " << line.substr(0, 80);
      GoldenCase c{f[0], unhex(f[1]), parse_ids(f[3]), {}};
      ASSERT_EQ(c.ids.size(), size_t(std::stoul(f[2]))) << c.name;
      c.digit_split_ids = f[5] == "=" ? c.ids : parse_ids(f[5]);
      cases_.push_back(c);
    }
    ASSERT_GE(cases_.size(), 260u);
  }

  std::vector<int32_t> encode(const std::string& s, bool special = true) {
    std::vector<int32_t> ids(s.size() + 16);
    size_t n = 0;
    const Status st = tok_.encode(s.data(), s.size(), special, ids.data(), ids.size(), &n);
    EXPECT_TRUE(st.is_ok()) << st.message();
    ids.resize(n);
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) {
      const char* b;
      size_t n;
      if (tok_.token_bytes(id, &b, &n)) s.append(b, n);
    }
    return s;
  }

  std::vector<uint8_t> blob_, memory_;
  size_t arena_bytes_ = 0;
  Arena arena_;
  Tokenizer tok_;
  std::vector<GoldenCase> cases_;
};

TEST_F(TokenizerGolden, Gpt2SplitMatchesTransformersExactly) {
  tok_.set_pre_split(PreSplit::kGpt2);
  size_t pass = 0;
  for (const GoldenCase& c : cases_) {
    const std::vector<int32_t> got = encode(c.text);
    if (got == c.ids) ++pass;
    EXPECT_EQ(show(got), show(c.ids)) << "case " << c.name;
  }
  std::printf("kGpt2: %zu / %zu golden cases exact\n", pass, cases_.size());
}

TEST_F(TokenizerGolden, SmollmSplitMatchesDigitSplitReference) {
  ASSERT_EQ(tok_.pre_split(), PreSplit::kSmollm);  // the default after init
  size_t pass = 0;
  for (const GoldenCase& c : cases_) {
    const std::vector<int32_t> got = encode(c.text);
    if (got == c.digit_split_ids) ++pass;
    EXPECT_EQ(show(got), show(c.digit_split_ids)) << "case " << c.name;
  }
  std::printf("kSmollm: %zu / %zu golden cases exact\n", pass, cases_.size());
}

TEST_F(TokenizerGolden, DecodeOfEncodeIsIdentity) {
  for (const GoldenCase& c : cases_) {
    EXPECT_EQ(decode(encode(c.text)), c.text) << "case " << c.name;
    EXPECT_EQ(decode(encode(c.text, false)), c.text) << "case " << c.name << " (plain text mode)";
  }
}

TEST_F(TokenizerGolden, ChatMarkersAndLookups) {
  EXPECT_EQ(tok_.find("<|im_start|>", 12), 1);
  EXPECT_EQ(tok_.find("<|im_end|>", 10), 2);
  EXPECT_TRUE(tok_.is_special(1));
  EXPECT_FALSE(tok_.is_special(1000));
  EXPECT_EQ(encode("<|im_start|>user\nhi<|im_end|>"), (std::vector<int32_t>{1, 4093, 198, 6004, 2}));
  const std::vector<int32_t> plain = encode("<|im_start|>", false);
  EXPECT_GT(plain.size(), 1u);
  for (int32_t id : plain) EXPECT_FALSE(tok_.is_special(id));
}

TEST_F(TokenizerGolden, EncodeSpeed) {
  std::string text;
  for (size_t i = 0; text.size() < 10240; i = (i + 1) % cases_.size()) text += cases_[i].text + "\n";
  text.resize(10240);
  while (!utf8_valid(text.data(), text.size())) text.pop_back();
  std::vector<int32_t> ids(text.size());
  double best = 1e9;
  size_t n = 0;
  for (int rep = 0; rep < 20; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    const Status st = tok_.encode(text.data(), text.size(), true, ids.data(), ids.size(), &n);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(st.is_ok()) << st.message();
    if (ms < best) best = ms;
  }
  std::printf("encode %zu bytes -> %zu ids: best %.3f ms\n", text.size(), n, best);
  EXPECT_LT(best, 20.0) << "10 KB encode too slow";
}

}  // namespace
}  // namespace tern
