#include "tools/cli/logprob_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "runtime/blob_format.h"  // blob::crc32

namespace tern::ppl {

using blob::crc32;

namespace {

void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}
void put_f32(uint8_t* p, float f) {
  uint32_t v;
  std::memcpy(&v, &f, 4);
  put_u32(p, v);
}
uint32_t get_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(p[i]) << (8 * i);
  return v;
}
uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}
float get_f32(const uint8_t* p) {
  const uint32_t v = get_u32(p);
  float f;
  std::memcpy(&f, &v, 4);
  return f;
}

void encode_header(const LogprobHeader& h, uint8_t* b) {
  std::memset(b, 0, kLogprobHeaderBytes);
  std::memcpy(b, kLogprobMagic, 8);
  put_u32(b + 8, kLogprobVersion);
  put_u32(b + 12, kLogprobHeaderBytes);
  put_u32(b + 16, h.vocab);
  put_u32(b + 20, h.ctx);
  put_u32(b + 24, h.stride);
  put_u32(b + 28, h.score_from);
  put_u32(b + 32, h.windows);
  put_u32(b + 36, h.row_bytes());
  put_u64(b + 40, h.text_tokens);
  put_u64(b + 48, h.tokens_hash);
  put_u32(b + 56, h.bos);
  put_u32(b + 60, crc32(b, 60));
}

// The largest vocabulary a file may declare: 2^24 ids (today's vocabularies
// are below 2^18), so a forged header cannot ask for a huge row buffer.
constexpr uint32_t kMaxVocab = 1u << 24;

}  // namespace

uint64_t tokens_hash(const int32_t* ids, size_t n, uint32_t bos) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](uint32_t v) {
    for (int i = 0; i < 4; ++i) {
      h ^= uint8_t(v >> (8 * i));
      h *= 0x100000001b3ull;
    }
  };
  for (size_t i = 0; i < n; ++i) mix(uint32_t(ids[i]));
  mix(bos);
  return h;
}

void encode_row(const float* logits, uint32_t vocab, uint32_t top1, double lse, int32_t next, uint8_t* out) {
  const uint32_t top = top1;
  float mn = logits[0];
  for (uint32_t v = 1; v < vocab; ++v) mn = logits[v] < mn ? logits[v] : mn;
  const double lp_max = double(logits[top]) - lse;
  double lo_d = double(mn) - lse;
  if (lo_d < lp_max - kFloorNats) lo_d = lp_max - kFloorNats;
  // Quantize against the float values the row stores, so decoding in double
  // reproduces each code's value exactly and the error is the rounding alone.
  const float lo = float(lo_d);
  const float step = float((lp_max - double(lo)) / 65534.0);
  put_u32(out, top);
  put_f32(out + 4, float(double(logits[next]) - lse));
  put_f32(out + 8, lo);
  put_f32(out + 12, step);
  uint8_t* q = out + 16;
  for (uint32_t v = 0; v < vocab; ++v) {
    const double lp = double(logits[v]) - lse;
    uint32_t code;
    if (lp < lp_max - kFloorNats) {
      code = 0;  // below the floor: probability 0
    } else if (lp <= double(lo) || step == 0) {
      code = 1;  // float(lo_d) may round up past the row's minimum
    } else {
      const double c = std::nearbyint((lp - double(lo)) / double(step));
      code = c >= 65534.0 ? 65535u : 1u + uint32_t(c);
    }
    q[2 * v] = uint8_t(code);
    q[2 * v + 1] = uint8_t(code >> 8);
  }
  const uint32_t row_bytes = LogprobHeader::row_bytes_for(vocab);
  if (vocab & 1) q[2 * vocab] = q[2 * vocab + 1] = 0;
  put_u32(out + row_bytes - 4, crc32(out, row_bytes - 4));
}

// ---- writer ----

LogprobWriter::~LogprobWriter() { abandon(); }

void LogprobWriter::abandon() {
  if (f_) {
    std::fclose(f_);
    f_ = nullptr;
    std::remove(partial_.c_str());
  }
}

Status LogprobWriter::open(const std::string& path, const LogprobHeader& h) {
  abandon();
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    return Status::error(StatusCode::kInvalidArgument, "'%s' exists and is not a regular file", path.c_str());
  }
  path_ = path;
  partial_ = path + ".partial";
  // fopen follows links: a leftover PATH.partial that is not a plain file
  // (a link, a device) is not written through.
  if (::lstat(partial_.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    return Status::error(StatusCode::kInvalidArgument, "'%s' exists and is not a regular file", partial_.c_str());
  }
  h_ = h;
  rows_written_ = 0;
  row_.assign(h.row_bytes(), 0);
  f_ = std::fopen(partial_.c_str(), "wb");
  if (!f_) return Status::error(StatusCode::kIoError, "cannot write '%s': %s", partial_.c_str(), std::strerror(errno));
  uint8_t b[kLogprobHeaderBytes];
  encode_header(h, b);
  if (std::fwrite(b, 1, sizeof(b), f_) != sizeof(b)) {
    abandon();
    return Status::error(StatusCode::kIoError, "cannot write '%s'", partial_.c_str());
  }
  return Status::ok();
}

Status LogprobWriter::write_row(const float* logits, uint32_t top1, double lse, int32_t next) {
  if (!f_) return Status::error(StatusCode::kInternal, "log-prob writer not open");
  encode_row(logits, h_.vocab, top1, lse, next, row_.data());
  if (std::fwrite(row_.data(), 1, row_.size(), f_) != row_.size()) {
    const int err = errno;
    abandon();
    return Status::error(StatusCode::kIoError, "cannot write '%s': %s", partial_.c_str(), std::strerror(err));
  }
  ++rows_written_;
  return Status::ok();
}

Status LogprobWriter::finish() {
  if (!f_) return Status::error(StatusCode::kInternal, "log-prob writer not open");
  if (rows_written_ != h_.rows()) {
    abandon();
    return Status::error(StatusCode::kInternal, "wrote %llu of %llu rows", (unsigned long long)rows_written_,
                         (unsigned long long)h_.rows());
  }
  const bool ok = std::fflush(f_) == 0;
  const bool closed = std::fclose(f_) == 0;
  f_ = nullptr;
  if (!ok || !closed || std::rename(partial_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    std::remove(partial_.c_str());
    return Status::error(StatusCode::kIoError, "cannot write '%s': %s", path_.c_str(), std::strerror(err));
  }
  return Status::ok();
}

// ---- reader ----

LogprobReader::~LogprobReader() {
  if (f_) std::fclose(f_);
}

Status LogprobReader::open(const std::string& path) {
  path_ = path;
  rows_read_ = 0;
  if (f_) std::fclose(f_);
  f_ = std::fopen(path.c_str(), "rb");
  if (!f_) return Status::error(StatusCode::kIoError, "cannot read '%s': %s", path.c_str(), std::strerror(errno));
  struct stat st;
  if (::fstat(fileno(f_), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status::error(StatusCode::kIoError, "'%s' is not a regular file", path.c_str());
  }
  const uint64_t size = uint64_t(st.st_size);
  uint8_t b[kLogprobHeaderBytes];
  const size_t got = std::fread(b, 1, sizeof(b), f_);
  if (got < 8 || std::memcmp(b, kLogprobMagic, 8) != 0) {
    return Status::error(StatusCode::kBadMagic, "'%s' is not a tern log-prob file (no TERNLOGP magic)", path.c_str());
  }
  if (got < 12) return Status::error(StatusCode::kTruncated, "log-prob file truncated in its header");
  const uint32_t version = get_u32(b + 8);
  if (version != kLogprobVersion) {
    return Status::error(StatusCode::kBadVersion, "log-prob file version %u; this build reads version %u", version,
                         kLogprobVersion);
  }
  if (got < sizeof(b)) return Status::error(StatusCode::kTruncated, "log-prob file truncated in its header");
  if (get_u32(b + 60) != crc32(b, 60)) {
    return Status::error(StatusCode::kBadChecksum, "log-prob file header checksum mismatch: the file is corrupt");
  }
  LogprobHeader h;
  h.vocab = get_u32(b + 16);
  h.ctx = get_u32(b + 20);
  h.stride = get_u32(b + 24);
  h.score_from = get_u32(b + 28);
  h.windows = get_u32(b + 32);
  h.text_tokens = get_u64(b + 40);
  h.tokens_hash = get_u64(b + 48);
  h.bos = get_u32(b + 56);
  // The CRC only says the header is as written; a forged one can still hold
  // any values, so each is checked before it sizes anything.
  if (get_u32(b + 12) != kLogprobHeaderBytes || h.vocab < 2 || h.vocab > kMaxVocab || h.ctx < 4 ||
      h.score_from + 2 > h.ctx || h.stride < 1 || h.stride > h.ctx || h.windows < 1 ||
      get_u32(b + 36) != h.row_bytes() || h.text_tokens < h.ctx) {
    return Status::error(StatusCode::kBadLayout, "log-prob file header has inconsistent fields");
  }
  // rows * row_bytes: rows < 2^32 * 2^32 is too much for u64 with large rows,
  // so check against the file size by division.
  const uint64_t body = size - kLogprobHeaderBytes;
  const uint64_t rows = h.rows();
  if (rows > body / h.row_bytes()) {
    return Status::error(StatusCode::kTruncated, "log-prob file truncated: %llu bytes, the header needs %llu rows of %u",
                         (unsigned long long)size, (unsigned long long)rows, h.row_bytes());
  }
  if (body != rows * h.row_bytes()) {
    return Status::error(StatusCode::kBadLayout, "log-prob file has %llu bytes after its last row",
                         (unsigned long long)(body - rows * h.row_bytes()));
  }
  h_ = h;
  buf_.assign(h.row_bytes(), 0);
  q_.assign(h.vocab, 0);
  return Status::ok();
}

Status LogprobReader::check_matches(const LogprobHeader& run) const {
  auto differ = [](const char* what, uint64_t ref, uint64_t now) {
    return Status::error(StatusCode::kInvalidArgument, "the reference was saved with %s %llu, this run has %llu", what,
                         (unsigned long long)ref, (unsigned long long)now);
  };
  if (h_.vocab != run.vocab) return differ("a vocabulary of", h_.vocab, run.vocab);
  if (h_.ctx != run.ctx) return differ("--ctx", h_.ctx, run.ctx);
  if (h_.stride != run.stride) return differ("--stride", h_.stride, run.stride);
  if (h_.score_from != run.score_from) return differ("scoring from position", h_.score_from, run.score_from);
  if (h_.text_tokens != run.text_tokens) return differ("a text of tokens:", h_.text_tokens, run.text_tokens);
  if (h_.bos != run.bos) {
    return Status::error(StatusCode::kInvalidArgument, "the reference windows start with BOS id %d, this run's with %d",
                         int32_t(h_.bos), int32_t(run.bos));
  }
  if (h_.tokens_hash != run.tokens_hash) {
    return Status::error(StatusCode::kInvalidArgument,
                         "the reference was saved on other tokens (another text or tokenizer): token hashes differ");
  }
  if (h_.windows != run.windows) return differ("windows:", h_.windows, run.windows);
  return Status::ok();
}

Status LogprobReader::read_row(RefRow* row) {
  if (!f_ || rows_read_ >= h_.rows()) return Status::error(StatusCode::kInternal, "no more log-prob rows");
  const unsigned long long r = (unsigned long long)rows_read_;
  if (std::fread(buf_.data(), 1, buf_.size(), f_) != buf_.size()) {
    // The size was checked at open: the file shrank since.
    return Status::error(StatusCode::kTruncated, "log-prob file ends inside row %llu", r);
  }
  const uint32_t rb = h_.row_bytes();
  if (get_u32(buf_.data() + rb - 4) != crc32(buf_.data(), rb - 4)) {
    return Status::error(StatusCode::kBadChecksum, "log-prob file row %llu: checksum mismatch (the file is corrupt)", r);
  }
  row->top1 = get_u32(buf_.data());
  const float next = get_f32(buf_.data() + 4), lo = get_f32(buf_.data() + 8), step = get_f32(buf_.data() + 12);
  if (row->top1 >= h_.vocab || !std::isfinite(next) || next > 0 || !std::isfinite(lo) || !std::isfinite(step) ||
      step < 0) {
    return Status::error(StatusCode::kBadLayout, "log-prob file row %llu has values out of range", r);
  }
  row->logprob_next = next;
  row->lo = lo;
  row->step = step;
  const uint8_t* q = buf_.data() + 16;
  for (uint32_t v = 0; v < h_.vocab; ++v) q_[v] = uint16_t(q[2 * v] | (q[2 * v + 1] << 8));
  row->q = q_.data();
  ++rows_read_;
  return Status::ok();
}

}  // namespace tern::ppl
