#include "runtime/model_file.h"

#include <cmath>
#include <cstring>
#include <new>

#include "runtime/tensor_roles.h"

namespace tern {

namespace {

using blob::load_f32;
using blob::load_i32;
using blob::load_u32;
using blob::load_u64;

using blob::limits::kMaxDim;
using blob::limits::kMaxLayers;  // bounds every per-layer table below
using blob::limits::kMaxVocab;

bool in_bounds(uint64_t offset, uint64_t bytes, uint64_t size) {
  return offset <= size && bytes <= size - offset;
}

const char* section_name(uint32_t kind) {
  switch (static_cast<blob::SectionKind>(kind)) {
    case blob::SectionKind::kHparams: return "hparams";
    case blob::SectionKind::kMemoryPlan: return "memory_plan";
    case blob::SectionKind::kTokenizer: return "tokenizer";
    case blob::SectionKind::kChatTemplate: return "chat_template";
    case blob::SectionKind::kTensorDir: return "tensor_dir";
    case blob::SectionKind::kTensorData: return "tensor_data";
    case blob::SectionKind::kLayers: return "layers";
  }
  return "unknown";
}

Status read_header_and_sections(const uint8_t* data, size_t size, ModelFile* f) {
  if (size < blob::kHeaderBytes) {
    return Status::error(StatusCode::kTruncated, "blob is %zu bytes, shorter than its %u-byte header", size,
                         blob::kHeaderBytes);
  }
  if (std::memcmp(data + blob::hdr::kMagic, blob::kMagic, 8) != 0) {
    return Status::error(StatusCode::kBadMagic, "not a tern blob (magic is not TERNBLOB); pack a GGUF with tern-pack");
  }
  const uint32_t endian = load_u32(data + blob::hdr::kEndian);
  if (endian != blob::kEndianMarker) {
    return Status::error(StatusCode::kBadEndian, "endianness marker is 0x%08x, expected 0x%08x", endian,
                         blob::kEndianMarker);
  }
  const uint32_t version = load_u32(data + blob::hdr::kVersion);
  if (version < blob::kOldestReadableVersion || version > blob::kFormatVersion) {
    return Status::error(StatusCode::kBadVersion,
                         "blob format version %u, this runtime reads versions %u to %u: repack the GGUF with this "
                         "tern-pack",
                         version, blob::kOldestReadableVersion, blob::kFormatVersion);
  }
  f->version = version;
  const uint32_t header_crc = load_u32(data + blob::hdr::kHeaderCrc);
  if (blob::crc32(data, blob::hdr::kHeaderCrc) != header_crc) {
    return Status::error(StatusCode::kBadChecksum, "header checksum mismatch (corrupt blob)");
  }
  const uint64_t file_bytes = load_u64(data + blob::hdr::kFileBytes);
  if (file_bytes != size) {
    return Status::error(file_bytes > size ? StatusCode::kTruncated : StatusCode::kBadLayout,
                         "blob header says %llu bytes, file has %zu (truncated or appended to)",
                         (unsigned long long)file_bytes, size);
  }
  if (load_u32(data + blob::hdr::kHeaderBytes) != blob::kHeaderBytes) {
    return Status::error(StatusCode::kBadLayout, "header size field is not %u", blob::kHeaderBytes);
  }
  const uint32_t count = load_u32(data + blob::hdr::kSectionCount);
  const uint64_t table = load_u64(data + blob::hdr::kSectionTable);
  if (count == 0 || count > blob::kMaxSections) {
    return Status::error(StatusCode::kBadLayout, "section count %u outside [1, %u]", count, blob::kMaxSections);
  }
  const uint64_t table_bytes = uint64_t(count) * blob::kSectionEntryBytes;
  if (table < blob::kHeaderBytes || !in_bounds(table, table_bytes, size)) {
    return Status::error(StatusCode::kBadLayout, "section table [%llu, +%llu) outside the file",
                         (unsigned long long)table, (unsigned long long)table_bytes);
  }
  if (table % 8 != 0) {
    return Status::error(StatusCode::kBadLayout, "section table offset %llu not 8-byte aligned",
                         (unsigned long long)table);
  }
  if (blob::crc32(data + table, table_bytes) != load_u32(data + blob::hdr::kSectionTableCrc)) {
    return Status::error(StatusCode::kBadChecksum, "section table checksum mismatch (corrupt blob)");
  }
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t* e = data + table + uint64_t(i) * blob::kSectionEntryBytes;
    const uint32_t kind = load_u32(e);
    const uint64_t off = load_u64(e + 8);
    const uint64_t bytes = load_u64(e + 16);
    if (kind == 0 || kind >= blob::kSectionKindCount) {
      return Status::error(StatusCode::kBadLayout, "section %u has unknown kind %u", i, kind);
    }
    Section& s = f->sections[kind];
    if (s.present) return Status::error(StatusCode::kBadLayout, "duplicate %s section", section_name(kind));
    if (load_u32(e + 4) != 0 || load_u32(e + 28) != 0) {
      return Status::error(StatusCode::kBadLayout, "%s section entry has nonzero reserved fields", section_name(kind));
    }
    if (!in_bounds(off, bytes, size) || off < blob::kHeaderBytes) {
      return Status::error(StatusCode::kBadLayout, "%s section [%llu, +%llu) outside the file", section_name(kind),
                           (unsigned long long)off, (unsigned long long)bytes);
    }
    if (off % 8 != 0) {
      return Status::error(StatusCode::kBadLayout, "%s section offset %llu not 8-byte aligned", section_name(kind),
                           (unsigned long long)off);
    }
    s.offset = off;
    s.bytes = bytes;
    s.crc = load_u32(e + 24);
    s.present = true;
  }
  // Sections must not overlap each other or the header and table.
  for (uint32_t a = 1; a < blob::kSectionKindCount; ++a) {
    const Section& sa = f->sections[a];
    if (!sa.present) continue;
    if (sa.offset < table + table_bytes && table < sa.offset + sa.bytes) {
      return Status::error(StatusCode::kBadLayout, "%s section overlaps the section table", section_name(a));
    }
    for (uint32_t b = a + 1; b < blob::kSectionKindCount; ++b) {
      const Section& sb = f->sections[b];
      if (sb.present && sa.offset < sb.offset + sb.bytes && sb.offset < sa.offset + sa.bytes) {
        return Status::error(StatusCode::kBadLayout, "%s and %s sections overlap", section_name(a), section_name(b));
      }
    }
  }
  const uint32_t required[] = {1, 2, 3, 5, 6, 7};
  for (uint32_t kind : required) {
    if (!f->sections[kind].present) {
      return Status::error(StatusCode::kBadLayout, "blob has no %s section", section_name(kind));
    }
  }
  // Fixed-size sections: a longer one would be a format this reader does not know.
  const Section& hps = f->sections[uint32_t(blob::SectionKind::kHparams)];
  const Section& plan = f->sections[uint32_t(blob::SectionKind::kMemoryPlan)];
  if (hps.bytes != blob::hp::kBytes) {
    return Status::error(StatusCode::kBadLayout, "hparams section is %llu bytes, expected %zu",
                         (unsigned long long)hps.bytes, blob::hp::kBytes);
  }
  if (plan.bytes != blob::plan::bytes_for_version(f->version)) {
    return Status::error(StatusCode::kBadLayout, "memory plan section is %llu bytes, expected %zu (format version %u)",
                         (unsigned long long)plan.bytes, blob::plan::bytes_for_version(f->version), f->version);
  }
  // Every section but the weights is small: check its CRC now. The weights are
  // verified on demand (verify_tensor_data), because that reads every byte.
  for (uint32_t kind = 1; kind < blob::kSectionKindCount; ++kind) {
    const Section& s = f->sections[kind];
    if (!s.present || kind == uint32_t(blob::SectionKind::kTensorData)) continue;
    if (blob::crc32(data + s.offset, s.bytes) != s.crc) {
      return Status::error(StatusCode::kBadChecksum, "%s section checksum mismatch (corrupt blob)",
                           section_name(kind));
    }
  }
  if (f->sections[uint32_t(blob::SectionKind::kTensorData)].offset % blob::kTensorAlignment != 0) {
    return Status::error(StatusCode::kBadLayout, "tensor data section not %u-byte aligned", blob::kTensorAlignment);
  }
  return Status::ok();
}

Status read_hparams(const uint8_t* p, size_t bytes, Hparams* hp) {
  if (bytes < blob::hp::kBytes) {
    return Status::error(StatusCode::kBadHparams, "hparams section is %zu bytes, expected %zu", bytes,
                         blob::hp::kBytes);
  }
  hp->arch = load_u32(p + blob::hp::kArch);
  if (hp->arch == 0 || hp->arch >= blob::kArchCount) {
    return Status::error(StatusCode::kBadHparams, "unknown architecture %u (known: 1 llama, 2 qwen2, 3 qwen3, 4 gemma3)",
                         hp->arch);
  }
  hp->layers = load_u32(p + blob::hp::kLayers);
  hp->dim = load_u32(p + blob::hp::kDim);
  hp->heads = load_u32(p + blob::hp::kHeads);
  hp->kv_heads = load_u32(p + blob::hp::kKvHeads);
  hp->head_dim = load_u32(p + blob::hp::kHeadDim);
  hp->ffn = load_u32(p + blob::hp::kFfnDim);
  hp->vocab = load_u32(p + blob::hp::kVocab);
  hp->train_context = load_u32(p + blob::hp::kTrainContext);
  hp->rope_dim = load_u32(p + blob::hp::kRopeDim);
  hp->rope_base = load_f32(p + blob::hp::kRopeBase);
  hp->norm_eps = load_f32(p + blob::hp::kNormEps);
  const uint32_t pairing = load_u32(p + blob::hp::kRopePairing);
  hp->tied_embeddings = load_u32(p + blob::hp::kTiedEmbed) != 0;
  hp->bos = load_i32(p + blob::hp::kBos);
  hp->eos = load_i32(p + blob::hp::kEos);
  hp->pad = load_i32(p + blob::hp::kPad);
  hp->unk = load_i32(p + blob::hp::kUnk);
  hp->im_start = load_i32(p + blob::hp::kImStart);
  hp->im_end = load_i32(p + blob::hp::kImEnd);
  hp->add_bos = load_u32(p + blob::hp::kAddBos) != 0;
  hp->weight_kind = load_u32(p + blob::hp::kWeightKind);
  const uint32_t activation = load_u32(p + blob::hp::kActivation);
  hp->flags = load_u32(p + blob::hp::kFlags);
  hp->embed_scale = load_f32(p + blob::hp::kEmbedScale);
  hp->attn_scale = load_f32(p + blob::hp::kAttnScale);
  hp->final_softcap = load_f32(p + blob::hp::kFinalSoftcap);
  const uint32_t scaling = load_u32(p + blob::hp::kRopeScaling);
  hp->rope_scale_factor = load_f32(p + blob::hp::kRopeScaleFactor);
  if (activation > uint32_t(blob::Activation::kGeluTanh)) {
    return Status::error(StatusCode::kBadHparams, "unknown activation %u (0 silu, 1 gelu_tanh)", activation);
  }
  hp->activation = static_cast<blob::Activation>(activation);
  if ((hp->flags & ~blob::kKnownFlags) != 0) {
    return Status::error(StatusCode::kBadHparams, "unknown architecture flags 0x%x", hp->flags);
  }
  const float scales[] = {hp->embed_scale, hp->attn_scale};
  for (float x : scales) {
    if (!(x > 0.0f) || !std::isfinite(x)) {
      return Status::error(StatusCode::kBadHparams, "embedding scale %g and attention scale %g must be positive",
                           double(hp->embed_scale), double(hp->attn_scale));
    }
  }
  if (!(hp->final_softcap >= 0.0f) || !std::isfinite(hp->final_softcap)) {
    return Status::error(StatusCode::kBadHparams, "final logit soft-cap %g must be >= 0", double(hp->final_softcap));
  }
  if (scaling > uint32_t(blob::RopeScaling::kLinear)) {
    return Status::error(StatusCode::kBadHparams, "unknown rope scaling %u (0 none, 1 linear)", scaling);
  }
  hp->rope_scaling = static_cast<blob::RopeScaling>(scaling);
  if (!(hp->rope_scale_factor >= 1.0f) || !std::isfinite(hp->rope_scale_factor) ||
      (hp->rope_scaling == blob::RopeScaling::kNone && hp->rope_scale_factor != 1.0f)) {
    return Status::error(StatusCode::kBadHparams, "rope scale factor %g must be >= 1 (1 without scaling)",
                         double(hp->rope_scale_factor));
  }

  if (hp->layers == 0 || hp->layers > kMaxLayers) {
    return Status::error(StatusCode::kBadHparams, "layers = %u outside [1, %u]", hp->layers, kMaxLayers);
  }
  if (hp->dim == 0 || hp->dim > kMaxDim || hp->dim % kGroup != 0) {
    return Status::error(StatusCode::kBadHparams, "dim = %u must be a nonzero multiple of %u up to %u", hp->dim,
                         kGroup, kMaxDim);
  }
  if (hp->heads == 0 || hp->kv_heads == 0 || hp->heads % hp->kv_heads != 0) {
    return Status::error(StatusCode::kBadHparams, "heads = %u, kv_heads = %u: heads must be a multiple of kv_heads",
                         hp->heads, hp->kv_heads);
  }
  if (hp->head_dim == 0 || hp->head_dim % 2 != 0 || hp->head_dim > blob::limits::kMaxHeadDim ||
      uint64_t(hp->heads) * hp->head_dim > kMaxDim || hp->q_dim() % kGroup != 0) {
    return Status::error(StatusCode::kBadHparams, "head_dim = %u invalid for %u heads", hp->head_dim, hp->heads);
  }
  if (hp->rope_dim == 0 || hp->rope_dim > hp->head_dim || hp->rope_dim % 2 != 0) {
    return Status::error(StatusCode::kBadHparams, "rope_dim = %u must be even and <= head_dim %u", hp->rope_dim,
                         hp->head_dim);
  }
  if (hp->ffn == 0 || hp->ffn > blob::limits::kMaxFfn || hp->ffn % kGroup != 0) {
    return Status::error(StatusCode::kBadHparams, "ffn = %u must be a nonzero multiple of %u", hp->ffn, kGroup);
  }
  if (hp->vocab == 0 || hp->vocab > kMaxVocab) {
    return Status::error(StatusCode::kBadHparams, "vocab = %u outside [1, %u]", hp->vocab, kMaxVocab);
  }
  if (!(hp->rope_base > 0.0f) || !std::isfinite(hp->rope_base)) {
    return Status::error(StatusCode::kBadHparams, "rope base %g must be positive", double(hp->rope_base));
  }
  if (!(hp->norm_eps > 0.0f) || !(hp->norm_eps < 1.0f)) {
    return Status::error(StatusCode::kBadHparams, "norm epsilon %g outside (0, 1)", double(hp->norm_eps));
  }
  if (pairing > uint32_t(blob::RopePairing::kHalves)) {
    return Status::error(StatusCode::kBadHparams, "unknown rope pairing %u", pairing);
  }
  hp->rope_adjacent_pairs = pairing == uint32_t(blob::RopePairing::kAdjacent);
  const int32_t* ids[] = {&hp->bos, &hp->eos, &hp->pad, &hp->unk, &hp->im_start, &hp->im_end};
  for (const int32_t* id : ids) {
    if (*id < -1 || *id >= int32_t(hp->vocab)) {
      return Status::error(StatusCode::kBadHparams, "special token id %d outside the vocabulary of %u", *id,
                           hp->vocab);
    }
  }
  if (hp->eos < 0) return Status::error(StatusCode::kBadHparams, "model has no end-of-sequence token");
  return Status::ok();
}

Status read_memory_plan(const uint8_t* p, size_t bytes, RunLimits* limits, MemoryPlan* stored) {
  if (bytes < blob::plan::kBytesV3) {
    return Status::error(StatusCode::kBadLayout, "memory plan section is %zu bytes, expected %zu", bytes,
                         blob::plan::kBytesV3);
  }
  limits->max_context = load_u32(p + blob::plan::kMaxContext);
  limits->max_sequences = load_u32(p + blob::plan::kMaxSequences);
  limits->prefill_chunk = load_u32(p + blob::plan::kPrefillChunk);
  limits->kv_block_tokens = load_u32(p + blob::plan::kKvBlockTokens);
  limits->logit_rows = load_u32(p + blob::plan::kLogitRows);
  if (limits->logit_rows == 0) limits->logit_rows = 1;
  stored->sampler = load_u32(p + blob::plan::kSamplerBytes);
  stored->total = size_t(load_u64(p + blob::plan::kArenaBytes));
  stored->activations = size_t(load_u64(p + blob::plan::kActivationBytes));
  stored->kv_blocks = size_t(load_u64(p + blob::plan::kKvBytes));
  stored->logits = size_t(load_u64(p + blob::plan::kLogitBytes));
  stored->tokenizer = size_t(load_u64(p + blob::plan::kTokenizerBytes));
  limits->kv_type = KvType::kF16;  // versions 2, 3
  if (bytes >= blob::plan::kBytes) {
    const uint32_t kv = load_u32(p + blob::plan::kKvType);
    if (kv >= blob::plan::kKvTypeCount || load_u32(p + blob::plan::kKvType + 4) != 0) {
      return Status::error(StatusCode::kBadLayout, "memory plan: unknown KV cache type %u (0 f16, 1 int8)", kv);
    }
    limits->kv_type = KvType(kv);
  }
  return Status::ok();  // the planner validates the limits, the engine the stored plan
}

Status read_tokenizer_counts(const uint8_t* p, size_t bytes, ModelFile* f) {
  if (bytes < blob::tok::kHeaderBytes) {
    return Status::error(StatusCode::kBadTokenizer, "tokenizer section is %zu bytes, shorter than its header", bytes);
  }
  f->tok_model = load_u32(p + blob::tok::kModel);
  f->n_tokens = load_u32(p + blob::tok::kNTokens);
  f->n_merges = load_u32(p + blob::tok::kNMerges);
  f->tok_text_bytes = load_u32(p + blob::tok::kPoolBytes);
  if (f->n_tokens != f->hp.vocab) {
    return Status::error(StatusCode::kBadTokenizer, "tokenizer has %u tokens, model vocabulary is %u", f->n_tokens,
                         f->hp.vocab);
  }
  if (f->n_merges > blob::limits::kMaxMerges) {
    return Status::error(StatusCode::kBadTokenizer, "tokenizer claims %u merges", f->n_merges);
  }
  // The counts size the memory plan: they must describe this section.
  const uint64_t want = blob::tok::layout(f->tok_model, f->n_tokens, f->n_merges, f->tok_text_bytes).total;
  if (want != bytes) {
    return Status::error(StatusCode::kBadTokenizer, "tokenizer section is %zu bytes, its counts say %llu", bytes,
                         (unsigned long long)want);
  }
  return Status::ok();  // TextTokenizer::init validates the rest
}

// Every layer's entry of the per-layer section: known values, a window only
// on sliding layers, a positive finite rope base.
Status read_layer_configs(const uint8_t* p, uint64_t bytes, ModelFile* f) {
  const uint32_t layers = f->hp.layers;
  if (bytes != uint64_t(layers) * blob::layer::kEntryBytes) {
    return Status::error(StatusCode::kBadLayout, "layers section is %llu bytes, %u layers need %llu",
                         (unsigned long long)bytes, layers, (unsigned long long)layers * blob::layer::kEntryBytes);
  }
  f->layer_configs = p;
  f->max_window = 0;
  const uint8_t* second = nullptr;  // the first entry whose RoPE differs from layer 0's
  for (uint32_t l = 0; l < layers; ++l) {
    const uint8_t* e = p + size_t(l) * blob::layer::kEntryBytes;
    const uint32_t kind = load_u32(e + blob::layer::kAttention);
    const uint32_t window = load_u32(e + blob::layer::kWindow);
    const float base = load_f32(e + blob::layer::kRopeBase);
    const uint32_t scaled = load_u32(e + blob::layer::kRopeScaled);
    if (kind > uint32_t(blob::AttentionKind::kSliding)) {
      return Status::error(StatusCode::kBadHparams, "layer %u: unknown attention kind %u (0 global, 1 sliding)", l,
                           kind);
    }
    if (window > blob::limits::kMaxWindow) {
      return Status::error(StatusCode::kBadHparams, "layer %u: window %u above 2^20 positions", l, window);
    }
    if (kind == uint32_t(blob::AttentionKind::kSliding) ? window == 0 : window != 0) {
      return Status::error(StatusCode::kBadHparams, "layer %u: window %u does not fit its %s attention", l, window,
                           kind ? "sliding" : "global");
    }
    if (!(base > 0.0f) || !std::isfinite(base)) {
      return Status::error(StatusCode::kBadHparams, "layer %u: rope base %g must be positive", l, double(base));
    }
    if (scaled > 1) return Status::error(StatusCode::kBadHparams, "layer %u: rope_scaled = %u (0 or 1)", l, scaled);
    if (window > f->max_window) f->max_window = window;
    // The forward pass keeps two RoPE tables (ModelShape::rope_tables): at
    // most two distinct (base, scaled) pairs among the layers.
    const uint8_t* e0 = p;
    const float base0 = load_f32(e0 + blob::layer::kRopeBase);
    const uint32_t scaled0 = load_u32(e0 + blob::layer::kRopeScaled);
    if (base != base0 || scaled != scaled0) {
      if (second == nullptr) {
        second = e;
      } else if (base != load_f32(second + blob::layer::kRopeBase) ||
                 scaled != load_u32(second + blob::layer::kRopeScaled)) {
        return Status::error(StatusCode::kUnsupported,
                             "layer %u: a third distinct RoPE configuration (tern supports two: local and global)", l);
      }
    }
  }
  return Status::ok();
}

struct DirEntry {
  char name[blob::tdir::kNameBytes + 1];
  uint32_t role, layer, dtype, rows, cols;
  uint64_t offset, bytes;
};

DirEntry read_entry(const uint8_t* dir, uint32_t i) {
  const uint8_t* e = dir + blob::tdir::kHeaderBytes + uint64_t(i) * blob::tdir::kEntryBytes;
  DirEntry d;
  std::memcpy(d.name, e, blob::tdir::kNameBytes);
  d.name[blob::tdir::kNameBytes] = '\0';
  const uint8_t* f = e + blob::tdir::kNameBytes;
  d.role = load_u32(f);
  d.layer = load_u32(f + 4);
  d.dtype = load_u32(f + 8);
  d.rows = load_u32(f + 12);
  d.cols = load_u32(f + 16);
  d.offset = load_u64(f + 24);
  d.bytes = load_u64(f + 32);
  return d;
}


Status validate_directory(ModelFile* f) {
  const Section& dir = f->sections[uint32_t(blob::SectionKind::kTensorDir)];
  const Section& data = f->sections[uint32_t(blob::SectionKind::kTensorData)];
  const uint8_t* p = f->data + dir.offset;
  if (dir.bytes < blob::tdir::kHeaderBytes) {
    return Status::error(StatusCode::kBadLayout, "tensor directory shorter than its header");
  }
  const uint32_t n = load_u32(p);
  if (uint64_t(n) * blob::tdir::kEntryBytes != dir.bytes - blob::tdir::kHeaderBytes) {
    return Status::error(StatusCode::kBadLayout, "tensor directory claims %u entries but holds %llu bytes", n,
                         (unsigned long long)dir.bytes);
  }
  const uint32_t max_entries = 4 + f->hp.layers * kLayerRoleCount;  // 4 global roles; layers <= kMaxLayers: no overflow
  if (n > max_entries) {
    return Status::error(StatusCode::kBadLayout, "tensor directory has %u entries, at most %u expected", n,
                         max_entries);
  }
  static_assert(kLayerRoleCount <= 16, "layer_seen holds a bit per per-layer role");
  uint16_t layer_seen[kMaxLayers] = {};  // bit r: per-layer role kFirstLayerRole + r seen
  uint32_t global_seen = 0;              // bit role: global role seen
  f->bytes_f32 = f->bytes_int8 = f->bytes_int4 = f->bytes_int5 = 0;
  uint64_t prev_end = 0;  // end of the previous entry's payload
  const Hparams& hp = f->hp;
  const RoleDims dims = {hp.dim, hp.vocab, hp.q_dim(), hp.kv_dim(), hp.ffn, hp.head_dim, hp.rope_dim};
  for (uint32_t i = 0; i < n; ++i) {
    const DirEntry d = read_entry(p, i);
    const uint8_t* raw_name = p + blob::tdir::kHeaderBytes + uint64_t(i) * blob::tdir::kEntryBytes;
    if (std::memchr(raw_name, 0, blob::tdir::kNameBytes) == nullptr) {
      return Status::error(StatusCode::kBadTensor, "tensor %u: name is not NUL-terminated", i);
    }
    if (d.name[0] == '\0') return Status::error(StatusCode::kBadTensor, "tensor %u has an empty name", i);
    const TensorRoleInfo* info = tensor_role_info(d.role);
    if (info == nullptr) {
      return Status::error(StatusCode::kBadTensor, "tensor '%s': unknown role %u", d.name, d.role);
    }
    if (!role_required(*info, f->hp.flags, f->hp.tied_embeddings) && info->presence != Presence::kUntied) {
      return Status::error(StatusCode::kBadTensor, "tensor '%s': role %u is not used by this architecture", d.name,
                           d.role);
    }
    struct {
      uint32_t rows, cols;
      bool per_layer, matrix;
    } ex = {extent_value(info->rows, dims), extent_value(info->cols, dims), info->per_layer, info->matrix};
    if (ex.per_layer ? d.layer >= f->hp.layers : d.layer != 0) {
      return Status::error(StatusCode::kBadTensor, "tensor '%s': layer %u out of range", d.name, d.layer);
    }
    if (d.rows != ex.rows || d.cols != ex.cols) {
      return Status::error(StatusCode::kBadTensor, "tensor '%s': shape [%u, %u], expected [%u, %u]", d.name, d.rows,
                           d.cols, ex.rows, ex.cols);
    }
    // kInt5G32 arrived with version 3, kInt8G32R16 with 4: an older blob cannot hold them.
    if (d.dtype >= blob::kDTypeCount || f->version < blob::dtype_min_version(d.dtype) || (!ex.matrix && d.dtype != uint32_t(blob::DType::kF32))) {
      return Status::error(StatusCode::kBadTensor, "tensor '%s': storage type %u not allowed here", d.name, d.dtype);
    }
    const uint64_t need = blob::tensor_bytes(static_cast<blob::DType>(d.dtype), d.rows, d.cols);
    if (need == 0 || d.bytes != need) {
      return Status::error(StatusCode::kBadTensor, "tensor '%s': %llu bytes, shape and type need %llu", d.name,
                           (unsigned long long)d.bytes, (unsigned long long)need);
    }
    if (d.offset % blob::kTensorAlignment != 0 || !in_bounds(d.offset, d.bytes, data.bytes)) {
      return Status::error(StatusCode::kBadLayout, "tensor '%s': offset %llu unaligned or past the data section",
                           d.name, (unsigned long long)d.offset);
    }
    if (ex.per_layer) {
      const uint16_t bit = uint16_t(1u << (d.role - kFirstLayerRole));
      if (layer_seen[d.layer] & bit) {
        return Status::error(StatusCode::kBadTensor, "tensor '%s': duplicate role in layer %u", d.name, d.layer);
      }
      layer_seen[d.layer] |= bit;
    } else {
      if (global_seen & (1u << d.role)) {
        return Status::error(StatusCode::kBadTensor, "tensor '%s': duplicate role", d.name);
      }
      global_seen |= 1u << d.role;
    }
    // No two tensors may share bytes (a crafted directory could alias weights):
    // payloads are listed in offset order, so each must start at or after the
    // end of the one before. Linear, not pairwise: the cost of opening stays
    // proportional to the directory.
    if (d.offset < prev_end) {
      return Status::error(StatusCode::kBadLayout,
                           "tensor '%s' overlaps the tensor before it or is out of offset order", d.name);
    }
    prev_end = d.offset + d.bytes;  // in_bounds above: no wrap
    // Unique names: each is its (role, layer)'s name, and those are unique.
    char want[blob::tdir::kNameBytes];
    role_tensor_name(*info, d.layer, want);
    if (std::strcmp(d.name, want) != 0) {
      return Status::error(StatusCode::kBadTensor, "tensor %u: name '%s' is not its role's name '%s' (duplicate name?)",
                           i, d.name, want);
    }
    if (d.dtype == uint32_t(blob::DType::kF32)) f->bytes_f32 += d.bytes;
    if (d.dtype == uint32_t(blob::DType::kInt8G32) || d.dtype == uint32_t(blob::DType::kInt8G32R16)) f->bytes_int8 += d.bytes;
    if (d.dtype == uint32_t(blob::DType::kInt4G32) || d.dtype == uint32_t(blob::DType::kInt4G32R16)) f->bytes_int4 += d.bytes;
    if (d.dtype == uint32_t(blob::DType::kInt5G32)) f->bytes_int5 += d.bytes;
  }
  uint32_t required_layer_roles = 0;
  for (size_t i = 0; i < kTensorRoleCount; ++i) {
    const TensorRoleInfo& r = kTensorRoles[i];
    if (r.per_layer && role_required(r, hp.flags, hp.tied_embeddings)) {
      required_layer_roles |= 1u << (uint32_t(r.role) - kFirstLayerRole);
    }
  }
  for (uint32_t l = 0; l < f->hp.layers; ++l) {
    if (layer_seen[l] != required_layer_roles) {  // extra roles were refused above
      for (uint32_t r = 0; r < kLayerRoleCount; ++r) {
        if ((required_layer_roles & (1u << r)) && !(layer_seen[l] & (1u << r))) {
          char name[blob::tdir::kNameBytes];
          role_tensor_name(*tensor_role_info(r + kFirstLayerRole), l, name);
          return Status::error(StatusCode::kMissingTensor, "layer %u lacks the tensor %s (role %u)", l, name,
                               r + kFirstLayerRole);
        }
      }
    }
  }
  if (!(global_seen & (1u << uint32_t(blob::TensorRole::kTokenEmbd)))) {
    return Status::error(StatusCode::kMissingTensor, "blob lacks token_embd");
  }
  if (!(global_seen & (1u << uint32_t(blob::TensorRole::kOutputNorm)))) {
    return Status::error(StatusCode::kMissingTensor, "blob lacks output_norm");
  }
  if ((hp.flags & blob::kFlagRopeFreqs) && !(global_seen & (1u << uint32_t(blob::TensorRole::kRopeFreqs)))) {
    return Status::error(StatusCode::kMissingTensor, "blob lacks rope_freqs (its hparams ask for llama3 rope)");
  }
  const bool has_output = global_seen & (1u << uint32_t(blob::TensorRole::kOutput));
  if (!has_output && !f->hp.tied_embeddings) {
    return Status::error(StatusCode::kMissingTensor, "blob lacks the output head and embeddings are not tied");
  }
  if (has_output && f->hp.tied_embeddings) {
    return Status::error(StatusCode::kBadTensor, "blob has an output head but hparams say the embeddings are tied");
  }
  return Status::ok();
}

static_assert(uint32_t(blob::DType::kF32) == uint32_t(WeightType::kF32) &&
                  uint32_t(blob::DType::kInt8G32) == uint32_t(WeightType::kInt8G32) &&
                  uint32_t(blob::DType::kInt4G32) == uint32_t(WeightType::kInt4G32) &&
                  uint32_t(blob::DType::kInt5G32) == uint32_t(WeightType::kInt5G32) &&
                  uint32_t(blob::DType::kInt8G32R16) == uint32_t(WeightType::kInt8G32R16) &&
                  uint32_t(blob::DType::kInt4G32R16) == uint32_t(WeightType::kInt4G32R16) &&
                  blob::kDTypeCount == kWeightTypeCount,
              "blob storage types and kernel weight types are one numbering");

WeightMatrix make_matrix(const uint8_t* base, const DirEntry& d) {
  WeightMatrix w;
  w.type = static_cast<WeightType>(d.dtype);
  w.rows = d.rows;
  w.cols = d.cols;
  w.data = base + d.offset;
  w.scales = nullptr;
  if (w.type == WeightType::kInt8G32 || w.type == WeightType::kInt8G32R16) {  // same plane sizes
    w.scales = reinterpret_cast<const uint16_t*>(base + d.offset + uint64_t(d.rows) * d.cols);
  } else if (w.type == WeightType::kInt4G32 || w.type == WeightType::kInt4G32R16) {
    w.scales = reinterpret_cast<const uint16_t*>(base + d.offset + uint64_t(d.rows) * d.cols / 2);
  } else if (w.type == WeightType::kInt5G32) {
    // The high-bit plane follows the q plane (int5_high_bits in kernels/kernels.h).
    w.scales = reinterpret_cast<const uint16_t*>(base + d.offset + uint64_t(d.rows) * (d.cols / 2 + d.cols / 8));
  }
  return w;
}

}  // namespace

LayerConfig ModelFile::layer_config(uint32_t l) const {
  const uint8_t* e = layer_configs + size_t(l) * blob::layer::kEntryBytes;
  LayerConfig c;
  c.sliding = load_u32(e + blob::layer::kAttention) == uint32_t(blob::AttentionKind::kSliding);
  c.window = load_u32(e + blob::layer::kWindow);
  c.rope_base = load_f32(e + blob::layer::kRopeBase);
  c.rope_scaled = load_u32(e + blob::layer::kRopeScaled) != 0;
  return c;
}

ModelShape ModelFile::shape() const {
  ModelShape s;
  s.layers = hp.layers;
  s.dim = hp.dim;
  s.heads = hp.heads;
  s.kv_heads = hp.kv_heads;
  s.head_dim = hp.head_dim;
  s.ffn = hp.ffn;
  s.vocab = hp.vocab;
  s.rope_dim = hp.rope_dim;
  s.rope_tables = 1;
  for (uint32_t l = 1; l < hp.layers && layer_configs != nullptr; ++l) {
    if (layer_config(l).rope_base != layer_config(0).rope_base ||
        layer_config(l).rope_scaled != layer_config(0).rope_scaled) {
      s.rope_tables = 2;
    }
  }
  s.tokenizer_model = tok_model;
  s.n_tokens = n_tokens;
  s.n_merges = n_merges;
  for (uint32_t l = 0; l < hp.layers && layer_configs != nullptr; ++l) s.sliding_layers += layer_config(l).sliding ? 1 : 0;
  s.window = max_window;
  s.token_text_bytes = tok_text_bytes;
  return s;
}

Status open_model_file(const uint8_t* data, size_t size, ModelFile* out) {
  *out = ModelFile{};
  if (data == nullptr) return Status::error(StatusCode::kInvalidArgument, "no blob data");
  out->data = data;
  out->size = size;
  TERN_RETURN_IF_ERROR(read_header_and_sections(data, size, out));
  const Section& hps = out->sections[uint32_t(blob::SectionKind::kHparams)];
  TERN_RETURN_IF_ERROR(read_hparams(data + hps.offset, hps.bytes, &out->hp));
  const Section& plan = out->sections[uint32_t(blob::SectionKind::kMemoryPlan)];
  TERN_RETURN_IF_ERROR(read_memory_plan(data + plan.offset, plan.bytes, &out->default_limits, &out->stored_plan));
  const Section& tok = out->sections[uint32_t(blob::SectionKind::kTokenizer)];
  out->tokenizer = data + tok.offset;
  out->tokenizer_bytes = tok.bytes;
  TERN_RETURN_IF_ERROR(read_tokenizer_counts(out->tokenizer, out->tokenizer_bytes, out));
  const Section& layers = out->sections[uint32_t(blob::SectionKind::kLayers)];
  TERN_RETURN_IF_ERROR(read_layer_configs(data + layers.offset, layers.bytes, out));
  const Section& chat = out->sections[uint32_t(blob::SectionKind::kChatTemplate)];
  if (chat.present) {
    out->chat_template = reinterpret_cast<const char*>(data + chat.offset);
    out->chat_template_bytes = chat.bytes;
  }
  return validate_directory(out);
}

Status bind_weights(ModelFile* f, Arena* arena) {
  // kLayerWeightsArenaBytes per layer, as the plan says (see model_file.h).
  f->layers = static_cast<LayerWeights*>(
      arena->allocate(size_t(f->hp.layers) * kLayerWeightsArenaBytes, "model"));
  if (f->layers == nullptr) return Status::error(StatusCode::kArenaTooSmall, "no arena space for the layer table");
  for (uint32_t l = 0; l < f->hp.layers; ++l) new (&f->layers[l]) LayerWeights();  // optional tensors start null
  const Section& dir = f->sections[uint32_t(blob::SectionKind::kTensorDir)];
  const uint8_t* base = f->data + f->sections[uint32_t(blob::SectionKind::kTensorData)].offset;
  const uint8_t* p = f->data + dir.offset;
  const uint32_t n = load_u32(p);
  for (uint32_t i = 0; i < n; ++i) {
    const DirEntry d = read_entry(p, i);
    const WeightMatrix w = make_matrix(base, d);
    const float* vec = reinterpret_cast<const float*>(base + d.offset);
    LayerWeights& L = f->layers[d.layer < f->hp.layers ? d.layer : 0];
    switch (static_cast<blob::TensorRole>(d.role)) {
      case blob::TensorRole::kTokenEmbd: f->token_embd = w; break;
      case blob::TensorRole::kOutputNorm: f->output_norm = vec; break;
      case blob::TensorRole::kOutput: f->output = w; break;
      case blob::TensorRole::kRopeFreqs: f->rope_freqs = vec; break;
      case blob::TensorRole::kAttnNorm: L.attn_norm = vec; break;
      case blob::TensorRole::kAttnQ: L.wq = w; break;
      case blob::TensorRole::kAttnK: L.wk = w; break;
      case blob::TensorRole::kAttnV: L.wv = w; break;
      case blob::TensorRole::kAttnOut: L.wo = w; break;
      case blob::TensorRole::kFfnNorm: L.ffn_norm = vec; break;
      case blob::TensorRole::kFfnGate: L.gate = w; break;
      case blob::TensorRole::kFfnUp: L.up = w; break;
      case blob::TensorRole::kFfnDown: L.down = w; break;
      case blob::TensorRole::kAttnQNorm: L.q_norm = vec; break;
      case blob::TensorRole::kAttnKNorm: L.k_norm = vec; break;
      case blob::TensorRole::kAttnPostNorm: L.attn_post_norm = vec; break;
      case blob::TensorRole::kFfnPostNorm: L.ffn_post_norm = vec; break;
      case blob::TensorRole::kAttnQBias: L.q_bias = vec; break;
      case blob::TensorRole::kAttnKBias: L.k_bias = vec; break;
      case blob::TensorRole::kAttnVBias: L.v_bias = vec; break;
    }
  }
  if (f->output.data == nullptr) f->output = f->token_embd;  // tied embeddings
  if (f->rope_freqs != nullptr) {  // divisors of the RoPE frequencies: finite and positive
    for (uint32_t i = 0; i < f->hp.rope_dim / 2; ++i) {
      const float x = blob::load_f32(reinterpret_cast<const uint8_t*>(f->rope_freqs + i));
      if (!(x > 0.0f) || !std::isfinite(x)) {
        return Status::error(StatusCode::kBadTensor, "rope_freqs[%u] = %g must be positive", i, double(x));
      }
    }
  }
  return Status::ok();
}

Status verify_tensor_data(const ModelFile& f) {
  const Section& s = f.sections[uint32_t(blob::SectionKind::kTensorData)];
  if (blob::crc32(f.data + s.offset, s.bytes) != s.crc) {
    return Status::error(StatusCode::kBadChecksum, "tensor data checksum mismatch: the weights are corrupt");
  }
  return Status::ok();
}

}  // namespace tern
