// Blob serialization: lays the sections out, writes each field explicitly and
// fills in the CRCs last (sections, then the section table, then the header).
#include "tools/pack/blob_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tern::pack {
namespace {

using ull = unsigned long long;

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

Status invalid(const char* what, const char* name = "") {
  return Status::error(StatusCode::kInvalidArgument, "blob writer: %s %.60s", what, name);
}

void write_hparams(const BlobHparams& h, uint8_t* p) {
  using namespace blob::hp;
  blob::store_u32(p + kArch, uint32_t(h.arch));
  blob::store_u32(p + kLayers, h.layers);
  blob::store_u32(p + kDim, h.dim);
  blob::store_u32(p + kHeads, h.heads);
  blob::store_u32(p + kKvHeads, h.kv_heads);
  blob::store_u32(p + kHeadDim, h.head_dim);
  blob::store_u32(p + kFfnDim, h.ffn);
  blob::store_u32(p + kVocab, h.vocab);
  blob::store_u32(p + kTrainContext, h.train_context);
  blob::store_u32(p + kRopeDim, h.rope_dim);
  blob::store_f32(p + kRopeBase, h.rope_base);
  blob::store_f32(p + kNormEps, h.norm_eps);
  blob::store_u32(p + kRopePairing, uint32_t(h.rope_pairing));
  blob::store_u32(p + kTiedEmbed, h.tied_embed ? 1u : 0u);
  blob::store_i32(p + kBos, h.bos);
  blob::store_i32(p + kEos, h.eos);
  blob::store_i32(p + kPad, h.pad);
  blob::store_i32(p + kUnk, h.unk);
  blob::store_i32(p + kImStart, h.im_start);
  blob::store_i32(p + kImEnd, h.im_end);
  blob::store_u32(p + kAddBos, h.add_bos ? 1u : 0u);
  blob::store_u32(p + kWeightKind, uint32_t(h.weight_kind));
  blob::store_u32(p + kActivation, uint32_t(h.activation));
  blob::store_u32(p + kFlags, h.flags);
  blob::store_f32(p + kEmbedScale, h.embed_scale);
  blob::store_f32(p + kAttnScale, h.attn_scale);
  blob::store_f32(p + kFinalSoftcap, h.final_softcap);
  blob::store_u32(p + kRopeScaling, uint32_t(h.rope_scaling));
  blob::store_f32(p + kRopeScaleFactor, h.rope_scale_factor);
}

void write_layers(const BlobHparams& h, uint8_t* p) {
  for (size_t l = 0; l < h.layer_configs.size(); ++l) {
    const BlobLayerConfig& c = h.layer_configs[l];
    uint8_t* e = p + l * blob::layer::kEntryBytes;
    blob::store_u32(e + blob::layer::kAttention, uint32_t(c.sliding ? blob::AttentionKind::kSliding : blob::AttentionKind::kGlobal));
    blob::store_u32(e + blob::layer::kWindow, c.sliding ? c.window : 0);
    blob::store_f32(e + blob::layer::kRopeBase, c.rope_base);
    blob::store_u32(e + blob::layer::kRopeScaled, c.rope_scaled ? 1u : 0u);
  }
}

void write_plan(const BlobPlan& pl, uint8_t* p) {
  using namespace blob::plan;
  blob::store_u32(p + kMaxContext, pl.limits.max_context);
  blob::store_u32(p + kMaxSequences, pl.limits.max_sequences);
  blob::store_u32(p + kPrefillChunk, pl.limits.prefill_chunk);
  blob::store_u32(p + kKvBlockTokens, pl.limits.kv_block_tokens);
  blob::store_u32(p + kLogitRows, pl.limits.logit_rows);
  blob::store_u64(p + kArenaBytes, pl.arena_bytes);
  blob::store_u32(p + kSamplerBytes, uint32_t(pl.bytes.sampler));  // the packer checks it fits
  blob::store_u64(p + kActivationBytes, pl.bytes.activations);
  blob::store_u64(p + kKvBytes, pl.bytes.kv_blocks);
  blob::store_u64(p + kLogitBytes, pl.bytes.logits);
  blob::store_u64(p + kTokenizerBytes, pl.bytes.tokenizer);
  blob::store_u32(p + kKvType, uint32_t(pl.limits.kv_type));
}

// Tokenizer section size (blob::tok::layout; the counts are checked by check_tokenizer).
uint64_t tokenizer_bytes(const BlobTokenizer& t, uint64_t* pool_bytes) {
  uint64_t pool = 0;
  for (const std::string& s : t.tokens) pool += s.size();
  *pool_bytes = pool;
  const uint64_t n = t.tokens.size();
  const uint64_t scores = t.model == uint32_t(blob::tok::Model::kSentencePiece) ? 4 * n : 0;
  return blob::tok::kHeaderBytes + 4 * (n + 1) + align_up(n, 4) + 12 * uint64_t(t.merges.size()) + scores + pool;
}

Status check_tokenizer(const BlobTokenizer& t, uint64_t pool_bytes) {
  using blob::tok::Model;
  const uint64_t n = t.tokens.size();
  if (n == 0 || n >= UINT32_MAX) return invalid("token count out of range");
  if (t.types.size() != n) return invalid("token types and tokens differ in count");
  if (t.merges.size() >= UINT32_MAX) return invalid("too many merges");
  if (pool_bytes >= UINT32_MAX) return invalid("token texts exceed 4 GiB");
  if (t.model == uint32_t(Model::kByteBpe)) {
    if (t.pre != uint32_t(blob::tok::Pre::kSmollm) || t.flags != 0 || !t.scores.empty())
      return invalid("byte-level BPE tokenizer with a pre-tokenizer other than smollm, flags or scores");
  } else if (t.model == uint32_t(Model::kSentencePiece)) {
    if (t.pre != uint32_t(blob::tok::Pre::kNone) || !t.merges.empty() || (t.flags & ~blob::tok::kKnownFlags) != 0)
      return invalid("SentencePiece tokenizer with a pre-tokenizer, merges or unknown flags");
    if (t.scores.size() != n) return invalid("token scores and tokens differ in count");
    for (float s : t.scores)
      if (!std::isfinite(s)) return invalid("token score not finite");
  } else {
    return invalid("unknown tokenizer model");
  }
  for (uint8_t ty : t.types)
    if (ty < uint8_t(blob::tok::TokenType::kNormal) || ty > uint8_t(blob::tok::TokenType::kByte))
      return invalid("token type out of range");
  for (const auto& m : t.merges)
    if (m[0] >= n || m[1] >= n || m[2] >= n) return invalid("merge id out of range");
  return Status::ok();
}

void write_tokenizer(const BlobTokenizer& t, uint64_t pool_bytes, uint8_t* p) {
  namespace tok = blob::tok;
  const uint32_t n = uint32_t(t.tokens.size());
  blob::store_u32(p + tok::kModel, t.model);
  blob::store_u32(p + tok::kPre, t.pre);
  blob::store_u32(p + tok::kNTokens, n);
  blob::store_u32(p + tok::kNMerges, uint32_t(t.merges.size()));
  blob::store_u32(p + tok::kPoolBytes, uint32_t(pool_bytes));
  blob::store_u32(p + tok::kFlags, t.flags);
  const tok::Layout l = tok::layout(t.model, n, uint32_t(t.merges.size()), uint32_t(pool_bytes));
  uint8_t* offsets = p + l.offsets;  // u32 [n + 1]
  uint8_t* types = p + l.types;      // u8 [n], padded to 4
  uint8_t* merges = p + l.merges;    // u32 [n_merges][3]
  uint8_t* scores = p + l.scores;    // f32 [n] (model 2)
  uint8_t* pool = p + l.pool;
  uint32_t off = 0;
  for (uint32_t i = 0; i < n; ++i) {
    blob::store_u32(offsets + 4 * uint64_t(i), off);
    std::memcpy(pool + off, t.tokens[i].data(), t.tokens[i].size());
    off += uint32_t(t.tokens[i].size());
    types[i] = t.types[i];
  }
  blob::store_u32(offsets + 4 * uint64_t(n), off);
  for (size_t j = 0; j < t.merges.size(); ++j)
    for (int k = 0; k < 3; ++k) blob::store_u32(merges + 12 * j + 4 * k, t.merges[j][k]);
  if (t.model == uint32_t(tok::Model::kSentencePiece))
    for (uint32_t i = 0; i < n; ++i) blob::store_f32(scores + 4 * uint64_t(i), t.scores[i]);
}

}  // namespace

Status serialize_tokenizer_section(const BlobTokenizer& t, std::vector<uint8_t>* out) {
  uint64_t pool_bytes = 0;
  const uint64_t bytes = tokenizer_bytes(t, &pool_bytes);
  TERN_RETURN_IF_ERROR(check_tokenizer(t, pool_bytes));
  if (bytes > uint64_t(SIZE_MAX)) return invalid("tokenizer section larger than this machine's address space");
  out->assign(size_t(bytes), 0);
  write_tokenizer(t, pool_bytes, out->data());
  return Status::ok();
}

Status serialize_blob(const BlobContents& c, std::vector<uint8_t>* out) {
  for (const BlobTensor& t : c.tensors)
    if (t.payload.empty()) return invalid("payload size does not match dtype and shape:", t.name.c_str());
  std::vector<uint64_t> at;
  TERN_RETURN_IF_ERROR(layout_blob(c, out, &at));
  seal_blob(out);
  return Status::ok();
}

void seal_blob(std::vector<uint8_t>* blob_image) {
  using namespace blob;
  uint8_t* base = blob_image->data();
  const uint32_t n = load_u32(base + hdr::kSectionCount);
  uint8_t* table = base + load_u64(base + hdr::kSectionTable);
  for (uint32_t k = 0; k < n; ++k) {
    uint8_t* e = table + kSectionEntryBytes * k;
    store_u32(e + 24, crc32(base + load_u64(e + 8), size_t(load_u64(e + 16))));
  }
  store_u32(base + hdr::kSectionTableCrc, crc32(table, size_t(n) * kSectionEntryBytes));
  store_u32(base + hdr::kHeaderCrc, crc32(base, hdr::kHeaderCrc));
}

Status layout_blob(const BlobContents& c, std::vector<uint8_t>* out, std::vector<uint64_t>* payload_at) {
  using namespace blob;
  constexpr uint32_t kSections = 7;

  uint64_t pool_bytes = 0;
  const uint64_t tok_bytes = tokenizer_bytes(c.tokenizer, &pool_bytes);
  TERN_RETURN_IF_ERROR(check_tokenizer(c.tokenizer, pool_bytes));
  if (c.tensors.size() >= UINT32_MAX) return invalid("too many tensors");

  // Tensor payload offsets inside the data section.
  std::vector<uint64_t> tensor_off(c.tensors.size());
  uint64_t data_bytes = 0;
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    const BlobTensor& t = c.tensors[i];
    if (t.name.empty() || t.name.size() >= tdir::kNameBytes) return invalid("tensor name empty or too long:", t.name.c_str());
    const uint64_t want = tensor_bytes(t.dtype, t.rows, t.cols);
    if (want == 0 || (!t.payload.empty() && want != t.payload.size()))
      return invalid("payload size does not match dtype and shape:", t.name.c_str());
    data_bytes = align_up(data_bytes, kTensorAlignment);
    tensor_off[i] = data_bytes;
    data_bytes += want;
  }

  if (c.hparams.layer_configs.size() != c.hparams.layers) return invalid("per-layer configs do not match the layer count");

  // Section layout.
  struct Span { SectionKind kind; uint64_t offset, bytes; };
  Span s[kSections] = {
      {SectionKind::kHparams, 0, hp::kBytes},
      {SectionKind::kMemoryPlan, 0, plan::kBytes},
      {SectionKind::kTokenizer, 0, tok_bytes},
      {SectionKind::kChatTemplate, 0, c.chat_template.size()},
      {SectionKind::kLayers, 0, uint64_t(c.hparams.layer_configs.size()) * blob::layer::kEntryBytes},
      {SectionKind::kTensorDir, 0, tdir::kHeaderBytes + tdir::kEntryBytes * uint64_t(c.tensors.size())},
      {SectionKind::kTensorData, 0, data_bytes},
  };
  uint64_t pos = kHeaderBytes + uint64_t(kSections) * kSectionEntryBytes;
  for (uint32_t k = 0; k < kSections; ++k) {
    pos = align_up(pos, k + 1 == kSections ? kDataSectionAlignment : kSectionAlignment);
    s[k].offset = pos;
    pos += s[k].bytes;
  }
  const uint64_t file_bytes = pos;
  if (file_bytes > uint64_t(SIZE_MAX)) return invalid("blob larger than this machine's address space");

  std::vector<uint8_t>& f = *out;
  f.assign(size_t(file_bytes), 0);
  payload_at->clear();
  uint8_t* base = f.data();
  write_hparams(c.hparams, base + s[0].offset);
  write_plan(c.plan, base + s[1].offset);
  write_tokenizer(c.tokenizer, pool_bytes, base + s[2].offset);
  if (!c.chat_template.empty()) std::memcpy(base + s[3].offset, c.chat_template.data(), c.chat_template.size());
  write_layers(c.hparams, base + s[4].offset);

  uint8_t* dir = base + s[5].offset;
  store_u32(dir + 0, uint32_t(c.tensors.size()));
  store_u32(dir + 4, 0);
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    const BlobTensor& t = c.tensors[i];
    uint8_t* e = dir + tdir::kHeaderBytes + tdir::kEntryBytes * i;
    std::memcpy(e, t.name.data(), t.name.size());  // rest of the 48 bytes stays NUL
    store_u32(e + 48, uint32_t(t.role));
    store_u32(e + 52, t.layer);
    store_u32(e + 56, uint32_t(t.dtype));
    store_u32(e + 60, t.rows);
    store_u32(e + 64, t.cols);
    store_u32(e + 68, 0);
    const uint64_t bytes = tensor_bytes(t.dtype, t.rows, t.cols);
    store_u64(e + 72, tensor_off[i]);
    store_u64(e + 80, bytes);
    payload_at->push_back(s[6].offset + tensor_off[i]);
    if (!t.payload.empty()) std::memcpy(base + s[6].offset + tensor_off[i], t.payload.data(), t.payload.size());
  }

  // Section table (CRCs: seal_blob), then the header.
  uint8_t* table = base + kHeaderBytes;
  for (uint32_t k = 0; k < kSections; ++k) {
    uint8_t* e = table + kSectionEntryBytes * k;
    store_u32(e + 0, uint32_t(s[k].kind));
    store_u32(e + 4, 0);
    store_u64(e + 8, s[k].offset);
    store_u64(e + 16, s[k].bytes);
    store_u32(e + 28, 0);
  }
  std::memcpy(base + hdr::kMagic, kMagic, sizeof(kMagic));
  store_u32(base + hdr::kVersion, kFormatVersion);
  store_u32(base + hdr::kEndian, kEndianMarker);
  store_u64(base + hdr::kFileBytes, file_bytes);
  store_u32(base + hdr::kHeaderBytes, kHeaderBytes);
  store_u32(base + hdr::kSectionCount, kSections);
  store_u64(base + hdr::kSectionTable, kHeaderBytes);
  store_u32(base + hdr::kFlags, 0);
  return Status::ok();
}

namespace {

Status io_error(const char* what, const std::string& path, int e) {
  return Status::error(StatusCode::kIoError, "%s %.200s: %s", what, path.c_str(), std::strerror(e));
}

const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

}  // namespace

Status resolve_output_path(const std::string& path, const char* input, std::string* target) {
  if (path.empty()) return Status::error(StatusCode::kInvalidArgument, "empty output path");
  *target = path;
  struct stat lst;
  if (::lstat(path.c_str(), &lst) != 0) {
    if (errno != ENOENT) return io_error("cannot inspect output", path, errno);
  } else if (S_ISLNK(lst.st_mode)) {
    // Write through the link: the target is replaced atomically in its own
    // directory, the link stays a link.
    char* real = ::realpath(path.c_str(), nullptr);
    if (real == nullptr) {
      const int e = errno;
      if (e == ENOENT)
        return Status::error(StatusCode::kInvalidArgument,
                             "output %.200s is a symbolic link to a file that does not exist; give the target path",
                             path.c_str());
      return io_error("cannot resolve symbolic link", path, e);
    }
    *target = real;
    std::free(real);
  }
  struct stat st;
  const bool exists = ::stat(target->c_str(), &st) == 0;
  if (!exists && errno != ENOENT) return io_error("cannot inspect output", *target, errno);
  if (exists && !S_ISREG(st.st_mode))
    return Status::error(StatusCode::kInvalidArgument, "output %.200s is %s, not a regular file: refusing to replace it",
                         target->c_str(), file_kind(st.st_mode));
  if (exists && input != nullptr) {
    struct stat in;
    if (::stat(input, &in) == 0 && in.st_dev == st.st_dev && in.st_ino == st.st_ino)
      return Status::error(StatusCode::kInvalidArgument,
                           "output %.200s is the input file itself (same file): refusing to overwrite the source",
                           path.c_str());
  }
  return Status::ok();
}

Status write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes, const char* input) {
  std::string target;
  TERN_RETURN_IF_ERROR(resolve_output_path(path, input, &target));
  mode_t mode = 0;
  struct stat st;
  if (::stat(target.c_str(), &st) == 0) {
    mode = st.st_mode & 07777;
  } else {
    const mode_t mask = ::umask(0);
    ::umask(mask);
    mode = 0644 & ~mask;
  }
  // A fresh name beside the target; O_EXCL | O_NOFOLLOW: never an existing
  // file or a link someone planted under that name.
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    tmp = target + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(attempt);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) return io_error("cannot create", tmp, errno);
  }
  if (fd < 0) return io_error("cannot create", tmp, EEXIST);
  auto fail = [&](const char* what, int e) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return io_error(what, tmp, e);
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return fail("cannot write", w < 0 ? errno : ENOSPC);
    done += size_t(w);
  }
  if (::fchmod(fd, mode) != 0) return fail("cannot set the mode of", errno);
  if (::fsync(fd) != 0) return fail("cannot flush", errno);
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return io_error("cannot flush", tmp, e);
  }
  // Re-check just before the rename: the target may have changed meanwhile.
  std::string again;
  Status recheck = resolve_output_path(path, input, &again);
  if (recheck.is_ok() && again != target)
    recheck = Status::error(StatusCode::kIoError, "output %.200s changed while it was written", path.c_str());
  if (!recheck.is_ok()) {
    ::unlink(tmp.c_str());
    return recheck;
  }
  if (std::rename(tmp.c_str(), target.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return io_error("cannot rename onto", target, e);
  }
  // Make the rename itself durable.
  const size_t slash = target.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : target.substr(0, slash);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return Status::ok();
}

}  // namespace tern::pack
