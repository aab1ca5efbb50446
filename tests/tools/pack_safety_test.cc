// What the packer must never do (issue 19 items 4, 5, 7 and tern-pack's CLI):
//  - write a blob the runtime refuses (the runtime's inits run before writing:
//    tokenizer limits, KV pool block limit);
//  - accept a tensor size that wraps past 2^64 (blob::tensor_bytes, the strict
//    reader);
//  - overwrite its own input or write over/through a device node; a symbolic
//    link output is written through.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/kv_pages.h"
#include "tests/support/tiny_model.h"
#include "tools/pack/blob_inspect.h"
#include "tools/pack/blob_writer.h"

namespace tern {
namespace {

using testing::TinyGguf;

Status pack_with(const TinyGguf& g, const RunLimits& limits, std::vector<uint8_t>* blob) {
  pack::GgufFile f;
  TERN_RETURN_IF_ERROR(pack::GgufFile::parse(g.bytes(), &f));
  pack::PackOptions opt;
  opt.limits = limits;
  pack::PackSummary sum;
  return pack::pack_gguf(f, opt, blob, &sum);
}

RunLimits small_limits() {
  RunLimits l;
  l.max_context = 64;
  l.prefill_chunk = 8;
  return l;
}

// The tiny model with `extra` more tokens of type `type` and text `text(i)`;
// token_embd / output grow to match.
TinyGguf tiny_with_tokens(uint32_t extra, int32_t type, const std::function<std::string(uint32_t)>& text) {
  TinyGguf g = testing::tiny_llama_gguf();
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (uint32_t b = 0; b < 256; ++b) {
    tokens.push_back(testing::gpt2_byte_text(uint8_t(b)));
    types.push_back(1);
  }
  const std::string G = testing::gpt2_byte_text(' ');
  for (const std::string& t : {G + "t", std::string("he"), G + "the"}) {
    tokens.push_back(t);
    types.push_back(1);
  }
  for (const char* t : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    tokens.push_back(t);
    types.push_back(3);
  }
  for (uint32_t i = 0; i < extra; ++i) {
    tokens.push_back(text(i));
    types.push_back(type);
  }
  const uint32_t vocab = uint32_t(tokens.size());
  g.set_strs("tokenizer.ggml.tokens", tokens);
  g.set_i32s("tokenizer.ggml.token_type", types);
  for (const char* name : {"token_embd.weight", "output.weight"}) {
    TinyGguf::Tensor* t = g.tensor(name);
    t->ne = {32, vocab};
    t->data = testing::tiny_q8_0(testing::tiny_randoms(32 * size_t(vocab), 7, 1.0f));
  }
  return g;
}

// Item 5: before the fix these packed with ok and Engine::open refused them.
TEST(PackerNeverWritesWhatTheRuntimeRefuses, MoreSpecialTokensThanTheTokenizerMatches) {
  const TinyGguf g = tiny_with_tokens(uint32_t(Tokenizer::kMaxSpecialTokens) + 10, 4,
                                      [](uint32_t i) { return "<|user_" + std::to_string(i) + "|>"; });
  std::vector<uint8_t> blob;
  const Status st = pack_with(g, small_limits(), &blob);
  EXPECT_FALSE(st.is_ok()) << "packed " << blob.size() << " bytes";
  EXPECT_NE(std::string(st.message()).find("special tokens"), std::string::npos) << st.message();
  EXPECT_TRUE(blob.empty());
}

TEST(PackerNeverWritesWhatTheRuntimeRefuses, TokenTextsOverTheRuntimesBudget) {
  // 600 normal tokens of 200 bytes each: far over 12 bytes per token on average.
  const TinyGguf g = tiny_with_tokens(600, 1, [](uint32_t i) { return std::to_string(i) + std::string(200, 'x'); });
  std::vector<uint8_t> blob;
  const Status st = pack_with(g, small_limits(), &blob);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(std::string(st.message()).find("runtime would refuse"), std::string::npos) << st.message();
}

TEST(PackerNeverWritesWhatTheRuntimeRefuses, KvPoolOverTheBlockLimit) {
  RunLimits l = small_limits();
  l.max_context = 1u << 20;
  l.max_sequences = 256;
  l.kv_block_tokens = 1;  // 2^28 blocks
  std::vector<uint8_t> blob;
  const Status st = pack_with(testing::tiny_llama_gguf(), l, &blob);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.message();
  EXPECT_NE(std::string(st.message()).find("2^24 - 1 blocks"), std::string::npos) << st.message();
  // And the planner (what --print-plan shows) refuses the same limits.
  const ModelShape shape{1, 32, 2, 1, 16, 64, testing::kTinyVocab, 16, testing::kTinyVocab, 3};
  MemoryPlan plan;
  const char* why = "";
  EXPECT_FALSE(plan_memory(shape, l, &plan, &why));
}

TEST(PackerNeverWritesWhatTheRuntimeRefuses, ThePlannerAndThePoolShareOneBlockLimit) {
  const ModelShape shape{1, 32, 2, 1, 16, 64, testing::kTinyVocab, 16, testing::kTinyVocab, 3};
  RunLimits l;
  l.max_context = 1u << 20;
  l.max_sequences = 32;
  l.kv_block_tokens = 1;
  l.kv_blocks = kMaxKvBlocks;  // exactly the limit: planned
  MemoryPlan plan;
  const char* why = "";
  EXPECT_TRUE(plan_memory(shape, l, &plan, &why)) << why;
  EXPECT_EQ(plan.kv_block_count, kMaxKvBlocks);
  l.kv_blocks = kMaxKvBlocks + 1;  // one more: refused by both
  EXPECT_FALSE(plan_memory(shape, l, &plan, &why));
  KvPool pool;
  KvPoolShape ks{1, 1, 16, 1, kMaxKvBlocks + 1};
  alignas(64) static uint8_t small[256];
  Arena arena;
  arena.init(small, sizeof small);
  EXPECT_EQ(pool.init(ks, &arena).code(), StatusCode::kInvalidArgument);
}

TEST(PackerNeverWritesWhatTheRuntimeRefuses, EveryPackedTinyBlobOpens) {
  std::vector<uint8_t> blob;
  ASSERT_TRUE(pack_with(testing::tiny_llama_gguf(), small_limits(), &blob).is_ok());
  EXPECT_TRUE(pack::check_blob_opens(blob.data(), blob.size()).is_ok());
  // A corrupted copy is refused by the check, naming the runtime's reason.
  std::vector<uint8_t> bad = blob;
  bad[bad.size() - 1] ^= 1;  // a weight byte: the data CRC
  const Status st = pack::check_blob_opens(bad.data(), bad.size());
  EXPECT_EQ(st.code(), StatusCode::kBadChecksum) << st.message();
}

// Item 7: the int8 size of this u32 shape is 2^64 + 424; it must be invalid, not 424.
TEST(SizeArithmetic, TensorBytesNeverWraps) {
  EXPECT_EQ(blob::tensor_bytes(blob::DType::kInt8G32, 4194611740ull, 4139034208ull), 0u);
  // Exact where it fits, 0 where it does not: against 128-bit arithmetic.
  const uint64_t dims[] = {1, 32, 4096, 65536, 1ull << 31, 4139034208ull, 0xffffffe0ull};
  for (uint64_t r : dims)
    for (uint64_t c : dims) {
      if (c % 32 != 0) continue;
      const unsigned __int128 e = (unsigned __int128)r * c;
      const unsigned __int128 want[3] = {e * 4, e + (unsigned __int128)r * (c / 32) * 2,
                                         e / 2 + (unsigned __int128)r * (c / 32) * 4};
      for (int d = 0; d < 3; ++d) {
        const uint64_t got = blob::tensor_bytes(blob::DType(d), r, c);
        if (want[d] > UINT64_MAX) EXPECT_EQ(got, 0u) << "dtype " << d << " [" << r << ", " << c << "]";
        else EXPECT_EQ(got, uint64_t(want[d])) << "dtype " << d << " [" << r << ", " << c << "]";
      }
    }
  uint64_t x;
  EXPECT_FALSE(blob::checked_mul(1ull << 32, 1ull << 32, &x));
  EXPECT_FALSE(blob::checked_add(UINT64_MAX, 1, &x));
  EXPECT_TRUE(blob::checked_mul_add(1ull << 31, 1ull << 32, 1, 5, &x));
  EXPECT_EQ(x, (1ull << 63) + 5);
}

// Patch directory entry 0 to the wrapping shape with the wrapped byte count
// and re-seal every CRC: the strict reader must refuse it.
TEST(SizeArithmetic, StrictReaderRefusesAWrappedTensorSize) {
  std::vector<uint8_t> blob;
  ASSERT_TRUE(testing::tiny_blob(&blob).is_ok());
  pack::BlobView v;
  ASSERT_TRUE(pack::inspect_blob(blob.data(), blob.size(), true, &v).is_ok());
  const pack::BlobSectionView* dir = v.section(blob::SectionKind::kTensorDir);
  uint8_t* e = blob.data() + dir->offset + blob::tdir::kHeaderBytes;
  blob::store_u32(e + 56, uint32_t(blob::DType::kInt8G32));
  blob::store_u32(e + 60, 4194611740u);
  blob::store_u32(e + 64, 4139034208u);
  blob::store_u64(e + 72, 0);
  blob::store_u64(e + 80, 424);
  // Re-seal: the directory section's CRC, the section table's, the header's.
  uint8_t* table = blob.data() + blob::kHeaderBytes;
  const uint32_t n_sections = blob::load_u32(blob.data() + blob::hdr::kSectionCount);
  for (uint32_t k = 0; k < n_sections; ++k) {
    uint8_t* s = table + k * blob::kSectionEntryBytes;
    if (blob::load_u32(s) == uint32_t(blob::SectionKind::kTensorDir))
      blob::store_u32(s + 24, blob::crc32(blob.data() + dir->offset, size_t(dir->bytes)));
  }
  blob::store_u32(blob.data() + blob::hdr::kSectionTableCrc, blob::crc32(table, n_sections * blob::kSectionEntryBytes));
  blob::store_u32(blob.data() + blob::hdr::kHeaderCrc, blob::crc32(blob.data(), blob::hdr::kHeaderCrc));
  const Status st = pack::inspect_blob(blob.data(), blob.size(), false, &v);
  EXPECT_EQ(st.code(), StatusCode::kBadTensor) << st.message();
  ModelFile f;
  EXPECT_FALSE(open_model_file(blob.data(), blob.size(), &f).is_ok());
}

// ---- Item 4: output paths ------------------------------------------------------

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/tern_pack_safety_XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void spit(const std::string& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }
const std::vector<uint8_t> kBytes = {'b', 'l', 'o', 'b'};

TEST(OutputPath, ANonRegularFileIsNeverReplaced) {
  TempDir d;
  const std::string fifo = d / "fifo", dir = d / "dir", dev = d / "null";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  const bool have_dev = ::mknod(dev.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0;  // root only
  for (const std::string& p : {fifo, dir, have_dev ? dev : fifo}) {
    const Status st = pack::write_file_atomic(p, kBytes);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << p << ": " << st.message();
    EXPECT_NE(std::string(st.message()).find("not a regular file"), std::string::npos) << st.message();
  }
  struct stat s;
  ASSERT_EQ(::lstat(fifo.c_str(), &s), 0);
  EXPECT_TRUE(S_ISFIFO(s.st_mode));
  ASSERT_EQ(::lstat(dir.c_str(), &s), 0);
  EXPECT_TRUE(S_ISDIR(s.st_mode));
  if (have_dev) {
    ASSERT_EQ(::lstat(dev.c_str(), &s), 0);
    EXPECT_TRUE(S_ISCHR(s.st_mode));
  }
  // The system's /dev/null: refused by the check, never touched.
  std::string target;
  EXPECT_EQ(pack::resolve_output_path("/dev/null", nullptr, &target).code(), StatusCode::kInvalidArgument);
  // No temporary file is left behind.
  EXPECT_EQ(std::system(("test -z \"$(ls '" + d.path + "' | grep tmp)\"").c_str()), 0);
}

TEST(OutputPath, ASymlinkIsWrittenThrough) {
  TempDir d;
  const std::string real = d / "real.tern", link = d / "link.tern", dangling = d / "dangling.tern";
  spit(real, "old");
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  ASSERT_TRUE(pack::write_file_atomic(link, kBytes).is_ok());
  struct stat s;
  ASSERT_EQ(::lstat(link.c_str(), &s), 0);
  EXPECT_TRUE(S_ISLNK(s.st_mode)) << "the link was replaced by a file";
  EXPECT_EQ(slurp(real), "blob");
  // A dangling link is refused (its target path may be anywhere).
  ASSERT_EQ(::symlink((d / "missing/x").c_str(), dangling.c_str()), 0);
  EXPECT_EQ(pack::write_file_atomic(dangling, kBytes).code(), StatusCode::kInvalidArgument);
  ASSERT_EQ(::lstat(dangling.c_str(), &s), 0);
  EXPECT_TRUE(S_ISLNK(s.st_mode));
}

TEST(OutputPath, TheInputIsNeverOverwritten) {
  TempDir d;
  const std::string in = d / "in.gguf", hard = d / "hard.gguf", soft = d / "soft.gguf", other = d / "out.tern";
  spit(in, "gguf bytes");
  ASSERT_EQ(::link(in.c_str(), hard.c_str()), 0);
  ASSERT_EQ(::symlink(in.c_str(), soft.c_str()), 0);
  for (const std::string& out : {in, hard, soft, d.path + "/./in.gguf"}) {
    const Status st = pack::write_file_atomic(out, kBytes, in.c_str());
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << out;
    EXPECT_NE(std::string(st.message()).find("input file itself"), std::string::npos) << st.message();
  }
  EXPECT_EQ(slurp(in), "gguf bytes");
  EXPECT_TRUE(pack::write_file_atomic(other, kBytes, in.c_str()).is_ok());
  EXPECT_EQ(slurp(other), "blob");
}

// ---- tern-pack's command line ----------------------------------------------------

struct CliRun {
  int code = -1;
  std::string out, err;
};

CliRun run_pack(const std::string& args) {
  TempDir d;
  const std::string cmd = std::string(TERN_BIN_DIR) + "/tern-pack " + args + " >" + (d / "o") + " 2>" + (d / "e");
  CliRun r;
  const int s = std::system(cmd.c_str());
  r.code = WIFEXITED(s) ? WEXITSTATUS(s) : -1;
  r.out = slurp(d / "o");
  r.err = slurp(d / "e");
  return r;
}

class TernPackCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access((std::string(TERN_BIN_DIR) + "/tern-pack").c_str(), X_OK) != 0) GTEST_SKIP() << "no tern-pack";
    const std::vector<uint8_t> b = testing::tiny_llama_gguf().bytes();
    spit(gguf_, std::string(b.begin(), b.end()));
  }
  TempDir dir_;
  const std::string gguf_ = dir_ / "tiny.gguf";
};

TEST_F(TernPackCli, VersionHelpAndUnknownArguments) {
  CliRun r = run_pack("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "tern 0.2.0\n");
  r = run_pack("--help");
  EXPECT_EQ(r.code, 0);
  for (const char* want : {"llama", "gpt2", "smollm", "Q4_1", "--max-context", "symbolic link", "--version"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want;
  r = run_pack("--frobnicate");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "tern-pack: unknown argument '--frobnicate' (tern-pack --help lists the options)\n");
}

TEST_F(TernPackCli, RefusesToOverwriteItsInput) {
  const std::string before = slurp(gguf_);
  CliRun r = run_pack(gguf_ + " -o " + gguf_ + " --weights int4");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("input file itself"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(gguf_), before);
}

TEST_F(TernPackCli, WarnsWhenMaxContextExceedsTheTrainedContext) {
  const std::string out = dir_ / "t.tern";
  CliRun r = run_pack(gguf_ + " -o " + out + " --weights int4 --max-context 512");  // trained: 256
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("exceeds the model's trained context of 256"), std::string::npos) << r.err;
  r = run_pack(gguf_ + " -o " + out + " --weights int4 --max-context 256");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
  // Not a terminal: no progress lines either.
  EXPECT_EQ(r.err, "");
}

TEST_F(TernPackCli, APlanTheRuntimeRefusesIsNotWritten) {
  const std::string out = dir_ / "huge.tern";
  CliRun r = run_pack(gguf_ + " -o " + out + " --weights int4 --max-context 1048576 --max-sequences 256 --kv-block 1");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("2^24 - 1 blocks"), std::string::npos) << r.err;
  EXPECT_NE(::access(out.c_str(), F_OK), 0) << "a blob was written";
}

}  // namespace
}  // namespace tern
