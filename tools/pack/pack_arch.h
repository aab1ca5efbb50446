// GGUF architecture metadata -> the blob's hyperparameters and per-layer
// configs. Each supported architecture is one short file (arch_*.cc) that
// says how it differs from llama; read_arch_hparams picks it by
// general.architecture. The runtime never branches on the architecture: what
// these files decide is written into the blob (blob::hp, blob::layer) and the
// forward pass follows it.
#pragma once
#include <string>

#include "runtime/blob_format.h"
#include "runtime/status.h"
#include "tools/pack/blob_writer.h"
#include "tools/pack/gguf_reader.h"

namespace tern::pack {

// Fill *h from the GGUF's metadata: shape, norms, RoPE, activation, flags and
// one BlobLayerConfig per layer. kUnsupported names the architecture and the
// supported list.
Status read_arch_hparams(const GgufFile& g, blob::WeightKind kind, BlobHparams* h);

// The architectures read_arch_hparams accepts, for messages: "llama, qwen2, qwen3, gemma3".
const char* supported_architectures();

// ---- For the arch_*.cc files ---------------------------------------------------
// The llama-style keys every architecture shares ("<arch>.block_count", ...),
// under the prefix `arch`; every layer global with the model's rope base.
Status read_common_hparams(const GgufFile& g, const std::string& arch, BlobHparams* h);

Status configure_llama(const GgufFile& g, BlobHparams* h);
Status configure_qwen2(const GgufFile& g, BlobHparams* h);
Status configure_qwen3(const GgufFile& g, BlobHparams* h);
Status configure_gemma3(const GgufFile& g, BlobHparams* h);

}  // namespace tern::pack
