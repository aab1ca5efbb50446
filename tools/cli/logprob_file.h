// The reference log-probability file of tern-perplexity: --save-logits
// writes one on a reference configuration, --kl-divergence reads it back
// and compares another configuration's distributions position by position.
//
// Version 1. Every field little-endian, written and read field by field.
//
// Header, 64 bytes:
//    0  char[8] magic "TERNLOGP"
//    8  u32 version (1)
//   12  u32 header_bytes (64)
//   16  u32 vocab
//   20  u32 ctx            window length in tokens (--ctx)
//   24  u32 stride         tokens from one window's start to the next (--stride)
//   28  u32 score_from     first window position whose logits row is scored
//   32  u32 windows
//   36  u32 row_bytes      16 + 2 * vocab rounded up to 4, + 4
//   40  u64 text_tokens    tokens of the whole text (with the BOS the model adds)
//   48  u64 tokens_hash    FNV-1a 64 over the text's ids (u32 each) and then
//                          the window-start BOS id (u32; 0xffffffff = none):
//                          another text, tokenizer or BOS rule gives another hash
//   56  u32 bos            the id every window starts with, 0xffffffff = none
//   60  u32 header_crc     CRC-32 (zlib's) of bytes [0, 60)
// Then windows * (ctx - score_from - 1) rows, window by window, in position
// order; a row is the reference distribution of one scored position:
//    0  u32 top1           argmax of the unquantized logits (lowest id on ties)
//    4  f32 logprob_next   log p(actual next token), from the unquantized logits
//    8  f32 lo             the log-prob code 1 stands for
//   12  f32 step           log-prob per code step (0: every kept entry is lo)
//   16  u16 q[vocab]       0: more than kFloorNats below the row's maximum (the
//                          probability is taken as 0); else lo + step * (q - 1)
//       u16 0              padding when vocab is odd
//   row_bytes - 4: u32 crc CRC-32 of the row's bytes before it
//
// Why this shape: a full distribution per position is what KL divergence
// needs, and at 2 bytes per entry SmolLM2's 49,152-entry rows are 96 KiB
// each (llama.cpp's --kl-divergence-base file stores uint16 log-probs too,
// with a 16-nat range below the maximum). Code 0 is kept for "below the
// floor" so a row whose whole range is under 16 nats (small or flat models)
// loses nothing; the quantization error of a kept entry is at most step / 2
// (1.2e-4 nats at the full 16-nat range). logprob_next and top1 come from the
// exact logits, so the reference perplexity and the top-1 test do not see the
// quantization. Per-row CRCs find a flipped bit where it is, and the file
// size is checked against the header before any work.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/status.h"

namespace tern::ppl {

constexpr char kLogprobMagic[8] = {'T', 'E', 'R', 'N', 'L', 'O', 'G', 'P'};
constexpr uint32_t kLogprobVersion = 1;
constexpr uint32_t kLogprobHeaderBytes = 64;
constexpr uint32_t kNoBos = 0xffffffffu;
// Entries this many nats below the row's most likely token are stored as
// code 0 (probability 0), as llama.cpp's format drops them.
constexpr double kFloorNats = 16.0;

struct LogprobHeader {
  uint32_t vocab = 0;
  uint32_t ctx = 0;
  uint32_t stride = 0;
  uint32_t score_from = 0;
  uint32_t windows = 0;
  uint64_t text_tokens = 0;
  uint64_t tokens_hash = 0;
  uint32_t bos = kNoBos;

  uint32_t rows_per_window() const { return ctx - score_from - 1; }
  uint64_t rows() const { return uint64_t(windows) * rows_per_window(); }
  uint32_t row_bytes() const { return row_bytes_for(vocab); }
  static uint32_t row_bytes_for(uint32_t vocab) { return 16 + 2 * (vocab + (vocab & 1)) + 4; }
};

// FNV-1a 64 of the ids (each as 4 little-endian bytes), then the BOS id.
uint64_t tokens_hash(const int32_t* ids, size_t n, uint32_t bos);

// One decoded reference row.
struct RefRow {
  uint32_t top1 = 0;
  double logprob_next = 0;
  double lo = 0, step = 0;
  const uint16_t* q = nullptr;  // [vocab], valid until the next read
  // Decoded log-prob of entry j (q[j] != 0).
  double logprob(uint32_t j) const { return lo + step * double(q[j] - 1); }
};

// Quantize one row of logits [vocab] into `out` (row_bytes bytes, CRC
// included): lp_j = logits_j - lse, lse = log(sum exp(logits)), top1 the
// row's argmax. The caller passes top1 and lse because score_tokens has
// them already (a second pass of vocab exps per row would cost as much).
void encode_row(const float* logits, uint32_t vocab, uint32_t top1, double lse, int32_t next, uint8_t* out);

// Writes the file at PATH.partial and renames it to PATH at finish(), so an
// interrupted run never leaves a file that looks complete.
class LogprobWriter {
 public:
  ~LogprobWriter();
  Status open(const std::string& path, const LogprobHeader& h);
  Status write_row(const float* logits, uint32_t top1, double lse, int32_t next);
  Status finish();  // checks every promised row was written, then renames

 private:
  void abandon();
  FILE* f_ = nullptr;
  std::string path_, partial_;
  LogprobHeader h_;
  uint64_t rows_written_ = 0;
  std::vector<uint8_t> row_;
};

class LogprobReader {
 public:
  ~LogprobReader();
  // Reads and checks the header and the file's size: kBadMagic (not a
  // log-prob file), kBadVersion, kBadChecksum (header CRC), kBadLayout
  // (inconsistent fields, trailing bytes), kTruncated (shorter than the
  // header says), kIoError.
  Status open(const std::string& path);
  const LogprobHeader& header() const { return h_; }
  // kInvalidArgument naming the first field where the reference and this
  // run differ (the text, tokenizer or BOS through the token hash).
  Status check_matches(const LogprobHeader& run) const;
  // The next row; kBadChecksum / kTruncated / kBadLayout name the row.
  Status read_row(RefRow* row);

 private:
  FILE* f_ = nullptr;
  std::string path_;
  LogprobHeader h_;
  uint64_t rows_read_ = 0;
  std::vector<uint8_t> buf_;
  std::vector<uint16_t> q_;
};

}  // namespace tern::ppl
