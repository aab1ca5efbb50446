// GGUF (llama, qwen2, qwen3, gemma3; see pack_arch.h) -> tern blob: the
// whole conversion tern-pack performs, as a library call so tests can run it
// in memory.
//
// Weights (--weights):
//   int4: 4-bit and float sources become kInt4G32, 5-bit sources (Q5_0,
//         Q5_1, Q5_K) kInt5G32, 6- and 8-bit sources (Q6_K, Q8_0) kInt8G32:
//         taking them to 4 bits would lose accuracy the file's author kept.
//   int8: every matrix becomes kInt8G32.
//   Exact: Q4_1 -> int4 (same d, m, nibbles), Q4_0 -> int4 (m = -8 d),
//   Q8_0 -> int8 (except groups holding q = -128, re-quantized and counted),
//   Q5_0 -> int8 (q - 16), Q5_0 -> int5 (m = -16 d), Q5_1 -> int5. Q4_K -> int4
//   and Q5_K -> int5 keep every 4/5-bit value and round each sub-block's d*sc
//   and dmin*m to f16 once. Everything else is
//   dequantized and quantized again (quantize_row_int{8,4}_g32). The summary
//   lists each tensor's method and largest weight error.
// Vectors (norms, biases, rope factors) are stored as kF32 [1, n].
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

// The blob's row layout of int8 matrices (--layout).
//   kRows: every matrix row-major (kInt8G32): every kernel variant reads it
//          natively.
//   kR16:  int8 and int4 matrices whose rows are a multiple of 16 as
//          kInt8G32R16 / kInt4G32R16, 16 rows interleaved for the AVX-512 / AMX kernels (no repack per
//          call; the batched step and decode gain most). Other variants read
//          it through a de-interleaving adapter, slower: pack for the device.
enum class RowLayout : uint8_t { kRows, kR16 };

struct PackOptions {
  blob::WeightKind weights = blob::WeightKind::kInt4;
  RowLayout layout = RowLayout::kRows;
  RunLimits limits;  // stored in the memory plan section
  // Open the finished blob with the runtime (check_blob_opens) before
  // returning it: pack_gguf then never returns a blob the runtime refuses.
  bool check_opens = true;
  // Called after each tensor is converted (done of total); may be empty.
  std::function<void(uint32_t done, uint32_t total, const std::string& name)> progress;
};

// How one tensor went from its GGUF type to the blob.
enum class ConversionMethod : uint8_t {
  kExact,           // the same values (copied bits, or a lossless re-encoding)
  kExactButGroups,  // exact except groups_requantized groups (Q8_0 q = -128; Q4_0 with an f16-overflowing offset)
  kScalesRounded,   // same quantized values, scales rounded to f16 once (Q4_K -> int4)
  kWidened,         // f16/bf16/quantized vector widened to f32: exact
  kRequantized,     // dequantized and quantized again (max_abs_error says how far)
};
struct TensorConversion {
  std::string name;
  uint32_t source_type = 0;  // GgmlType
  blob::DType dtype = blob::DType::kF32;
  ConversionMethod method = ConversionMethod::kExact;
  uint64_t elems = 0, source_bytes = 0, blob_bytes = 0;
  uint64_t groups_requantized = 0;
  double max_abs_error = 0.0;  // largest |blob weight - source weight| (0 when exact)
};

struct PackSummary {
  uint32_t tensors = 0;
  uint64_t bytes_by_dtype[blob::kDTypeCount] = {};  // payload bytes by blob::DType
  uint32_t tensors_by_dtype[blob::kDTypeCount] = {};
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
  std::vector<TensorConversion> conversions;  // one per tensor, directory order
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

// The human-readable summary tern-pack prints: the model, a table of bytes
// and bits per weight by (source type, blob type, method), the memory plan.
// per_tensor: also one line per tensor that was not copied exactly.
std::string format_summary(const PackSummary& s, bool per_tensor = false);

}  // namespace tern::pack
