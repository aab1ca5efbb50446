// GGUF (llama architecture) -> tern blob: the whole conversion tern-pack
// performs, as a library call so tests can run it in memory.
//
// Weights (--weights):
//   int4: every matrix becomes kInt4G32. A Q4_1 source is copied exactly
//         (d, m and nibbles; same nibble order). A Q8_0 source (SmolLM2's token
//         embedding) is kept 8-bit as kInt8G32, copied exactly, because
//         re-quantizing 8-bit weights to 4 bits would lose accuracy. Other
//         sources are dequantized and quantized with quantize_row_int4_g32.
//   int8: every matrix becomes kInt8G32. A Q8_0 source is copied exactly;
//         anything else is dequantized and quantized with quantize_row_int8_g32.
//   Q8_0 allows q = -128, kInt8G32 does not: a group holding -128 is
//   re-quantized with quantize_row_int8_g32 and counted.
// Norms are stored as kF32 [1, n].
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/blob_format.h"
#include "runtime/memory_plan.h"
#include "runtime/status.h"
#include "tools/pack/blob_writer.h"
#include "tools/pack/gguf_reader.h"

namespace tern::pack {

struct PackOptions {
  blob::WeightKind weights = blob::WeightKind::kInt4;
  RunLimits limits;  // stored in the memory plan section
  // Open the finished blob with the runtime (check_blob_opens) before
  // returning it: pack_gguf then never returns a blob the runtime refuses.
  bool check_opens = true;
  // Called after each tensor is converted (done of total); may be empty.
  std::function<void(uint32_t done, uint32_t total, const std::string& name)> progress;
};

struct PackSummary {
  uint32_t tensors = 0;
  uint64_t bytes_by_dtype[3] = {0, 0, 0};   // payload bytes: kF32, kInt8G32, kInt4G32
  uint32_t tensors_by_dtype[3] = {0, 0, 0};
  uint64_t matrix_elems = 0;                // weights of all 2-D matrices
  uint64_t matrix_bytes = 0;                // their payload bytes (q planes + scales)
  uint32_t copied_q4_1 = 0;                 // Q4_1 -> kInt4G32 exact copies
  uint32_t copied_q8_0 = 0;                 // Q8_0 -> kInt8G32 exact copies
  uint32_t requantized = 0;                 // matrices dequantized and quantized again
  uint64_t q8_minus128_groups = 0;          // Q8_0 groups re-quantized because of q = -128
  uint64_t blob_bytes = 0;
  MemoryPlan plan;
  RunLimits limits;
  BlobHparams hparams;
  uint32_t n_tokens = 0, n_merges = 0;
};

// Convert a parsed GGUF into a blob image. With options.check_opens (the
// default) the image is opened as the runtime opens it before it is returned,
// so the packer either refuses with a message or returns a blob the runtime
// runs.
Status pack_gguf(const GgufFile& gguf, const PackOptions& options, std::vector<uint8_t>* blob_out,
                 PackSummary* summary);

// Open a blob image exactly as the runtime does: Engine::open with the
// blob's default limits, one thread, the weights' CRC verified, on a scratch
// arena of exactly the plan's size (an anonymous mapping: only pages the
// inits touch cost memory). Runs every init the runtime runs (model file,
// plan and stored-plan check, weights, model, KV pool and sequences,
// tokenizer, sampler). An image that is not 16-byte aligned is copied to
// page-aligned scratch first.
Status check_blob_opens(const uint8_t* data, size_t size);

// The human-readable summary tern-pack prints.
std::string format_summary(const PackSummary& s);

}  // namespace tern::pack
