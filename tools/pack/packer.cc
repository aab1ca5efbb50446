// GGUF -> blob conversion: hyperparameters, tokenizer, chat template, memory
// plan and the weights (see packer.h for the precision rules).
#include "tools/pack/packer.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <type_traits>

#include "kernels/blocks.h"
#include "kernels/gguf_blocks.h"
#include "kernels/weight_quant.h"
#include "port/blob_map.h"
#include "runtime/engine.h"
#include "runtime/model_file.h"
#include "runtime/tensor_roles.h"
#include "tools/pack/pack_arch.h"
#include "tools/pack/pack_tokenizer.h"

namespace tern::pack {
namespace {

using blob::DType;
using blob::TensorRole;
using ull = unsigned long long;

// ---- Tensor roles (runtime/tensor_roles.h: the table the loader uses too) ----

RoleDims role_dims(const BlobHparams& h) {
  return {h.dim, h.vocab, h.heads * h.head_dim, h.kv_heads * h.head_dim, h.ffn, h.head_dim, h.rope_dim};
}

std::string tensor_name(const TensorRoleInfo& r, uint32_t layer) {
  char name[blob::tdir::kNameBytes];
  role_tensor_name(r, layer, name);
  return name;
}

// ---- Weights -------------------------------------------------------------------

inline uint16_t le16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline void st16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v); p[1] = uint8_t(v >> 8); }
inline bool f16_finite(uint16_t h) { return (h & 0x7c00u) != 0x7c00u; }

Status non_finite(const GgufTensor& src) {
  return Status::error(StatusCode::kBadTensor, "tensor %.64s holds a non-finite value", src.name.c_str());
}

// Dequantize one row and check it is finite.
Status source_row(const GgufTensor& src, uint64_t r, float* row) {
  TERN_RETURN_IF_ERROR(dequantize_rows(src, r, 1, row));
  for (uint64_t c = 0; c < src.cols(); ++c)
    if (!std::isfinite(row[c])) return non_finite(src);
  return Status::ok();
}

// Q4_1 -> kInt4G32, bit for bit: nibbles to the q plane, {d, m} to the scales.
Status copy_q4_1(const GgufTensor& src, const BlobTensor& t, uint8_t* out) {
  const uint64_t rows = t.rows, groups = t.cols / kGroup;
  uint8_t* q = out;
  uint8_t* dm = q + rows * t.cols / 2;
  const uint8_t* blk = src.data;
  for (uint64_t b = 0; b < rows * groups; ++b, blk += 20) {
    if (!f16_finite(le16(blk)) || !f16_finite(le16(blk + 2))) return non_finite(src);
    std::memcpy(dm + 4 * b, blk, 4);  // f16 d, f16 m: same order, same little-endian bytes
    std::memcpy(q + 16 * b, blk + 4, 16);
  }
  return Status::ok();
}

// Q8_0 -> kInt8G32, bit for bit except groups holding -128 (re-quantized).
Status copy_q8_0(const GgufTensor& src, const BlobTensor& t, uint8_t* out, uint64_t* requantized_groups) {
  const uint64_t rows = t.rows, groups = t.cols / kGroup;
  int8_t* q = reinterpret_cast<int8_t*>(out);
  uint8_t* d = out + rows * t.cols;
  const uint8_t* blk = src.data;
  for (uint64_t b = 0; b < rows * groups; ++b, blk += 34) {
    const uint16_t dh = le16(blk);
    if (!f16_finite(dh)) return non_finite(src);
    bool has_min = false;
    for (int j = 0; j < 32; ++j) has_min |= int8_t(blk[2 + j]) == -128;
    if (!has_min) {
      st16(d + 2 * b, dh);
      std::memcpy(q + 32 * b, blk + 2, 32);
      continue;
    }
    float x[32];
    const float df = f16_to_f32(dh);
    for (int j = 0; j < 32; ++j) x[j] = df * float(int8_t(blk[2 + j]));
    uint16_t dn;
    quantize_row_int8_g32(x, 32, q + 32 * b, &dn);
    st16(d + 2 * b, dn);
    ++*requantized_groups;
  }
  return Status::ok();
}

Status requantize(const GgufTensor& src, const BlobTensor& t, uint8_t* out) {
  const uint32_t rows = t.rows, cols = t.cols, groups = cols / kGroup;
  std::vector<float> row(cols);
  std::vector<uint16_t> scales(size_t(groups) * 2);
  uint8_t* q = out;
  for (uint32_t r = 0; r < rows; ++r) {
    TERN_RETURN_IF_ERROR(source_row(src, r, row.data()));
    if (t.dtype == DType::kInt8G32) {
      quantize_row_int8_g32(row.data(), cols, reinterpret_cast<int8_t*>(q) + uint64_t(r) * cols, scales.data());
      uint8_t* d = q + uint64_t(rows) * cols + uint64_t(r) * groups * 2;
      for (uint32_t g = 0; g < groups; ++g) st16(d + 2 * g, scales[g]);
    } else if (t.dtype == DType::kInt5G32) {
      uint8_t* h = q + uint64_t(rows) * cols / 2;
      quantize_row_int5_g32(row.data(), cols, q + uint64_t(r) * cols / 2, h + uint64_t(r) * cols / 8, scales.data());
      uint8_t* dm = h + uint64_t(rows) * cols / 8 + uint64_t(r) * groups * 4;
      for (uint32_t g = 0; g < 2 * groups; ++g) st16(dm + 2 * g, scales[g]);
    } else {
      quantize_row_int4_g32(row.data(), cols, q + uint64_t(r) * cols / 2, scales.data());
      uint8_t* dm = q + uint64_t(rows) * cols / 2 + uint64_t(r) * groups * 4;
      for (uint32_t g = 0; g < 2 * groups; ++g) st16(dm + 2 * g, scales[g]);
    }
  }
  return Status::ok();
}

bool is_supported_weight_type(uint32_t type) {
  switch (GgmlType(type)) {
    case GgmlType::kF32: case GgmlType::kF16: case GgmlType::kBF16: case GgmlType::kQ4_0: case GgmlType::kQ4_1:
    case GgmlType::kQ5_0: case GgmlType::kQ5_1: case GgmlType::kQ8_0: case GgmlType::kQ4_K: case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
      return true;
    default:
      return false;
  }
}
const char* supported_weight_types() { return "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K"; }

// Distinct (rope base, scaled) pairs among the layers: the runtime keeps one
// table of RoPE angles for each (ModelShape::rope_tables, at most 2).
uint32_t rope_table_count(const BlobHparams& h) {
  for (const BlobLayerConfig& c : h.layer_configs)
    if (c.rope_base != h.layer_configs[0].rope_base || c.rope_scaled != h.layer_configs[0].rope_scaled) return 2;
  return 1;
}

// Block `index` of a block-quantized source (32 or 256 weights) as floats.
Status dequantize_block(const GgufTensor& src, uint64_t index, float* out) {
  uint32_t elems = 0, bytes = 0;
  if (!ggml_type_layout(src.type, &elems, &bytes) ||
      !gguf::dequantize_gguf(src.type, src.data + index * bytes, elems, out))
    return Status::error(StatusCode::kUnsupported, "tensor %.64s: cannot read type %s", src.name.c_str(),
                         ggml_type_name(src.type));
  return Status::ok();
}

// The largest |blob weight - source weight| of a converted matrix.
double requantization_error(const GgufTensor& src, const BlobTensor& t, const uint8_t* out) {
  WeightMatrix w;
  w.type = static_cast<WeightType>(t.dtype);
  w.rows = t.rows;
  w.cols = t.cols;
  w.data = out;
  const uint64_t q_bytes = t.dtype == DType::kInt8G32   ? uint64_t(t.rows) * t.cols
                           : t.dtype == DType::kInt5G32 ? uint64_t(t.rows) * (t.cols / 2 + t.cols / 8)
                                                        : uint64_t(t.rows) * t.cols / 2;
  w.scales = reinterpret_cast<const uint16_t*>(out + q_bytes);
  std::vector<float> a(t.cols), b(t.cols);
  double worst = 0.0;
  for (uint32_t r = 0; r < t.rows; ++r) {
    if (!dequantize_rows(src, r, 1, a.data()).is_ok()) return -1.0;
    dequantize_row(w, r, b.data());
    for (uint32_t c = 0; c < t.cols; ++c) worst = std::max(worst, std::fabs(double(a[c]) - double(b[c])));
  }
  return worst;
}

// Q4_0 -> kInt4G32, exactly: w = d * (q - 8) = d * q + m with m = -8 d
// (a power-of-two multiple: exact in f16 unless it overflows, then the group
// is re-quantized). Same nibble order as the blob.
Status copy_q4_0(const GgufTensor& src, const BlobTensor& t, uint8_t* out, uint64_t* requantized_groups) {
  const uint64_t rows = t.rows, groups = t.cols / kGroup;
  uint8_t* q = out;
  uint8_t* dm = q + rows * t.cols / 2;
  const uint8_t* blk = src.data;
  for (uint64_t b = 0; b < rows * groups; ++b, blk += sizeof(gguf::BlockQ4_0)) {
    const uint16_t dh = le16(blk);
    if (!f16_finite(dh)) return non_finite(src);
    const float d = f16_to_f32(dh);
    const uint16_t mh = f32_to_f16(-8.0f * d);
    if (f16_finite(mh) && f16_to_f32(mh) == -8.0f * d) {
      st16(dm + 4 * b, dh);
      st16(dm + 4 * b + 2, mh);
      std::memcpy(q + 16 * b, blk + 2, 16);
      continue;
    }
    float x[32];
    TERN_RETURN_IF_ERROR(dequantize_block(src, b, x));
    uint16_t scales[2];
    quantize_row_int4_g32(x, 32, q + 16 * b, scales);
    st16(dm + 4 * b, scales[0]);
    st16(dm + 4 * b + 2, scales[1]);
    ++*requantized_groups;
  }
  return Status::ok();
}

// Q5_0 / Q4_0 -> kInt8G32, exactly: w = d * (q - 16) with 5-bit q, or
// d * (q - 8) with 4-bit q: the centred values fit int8 with the same d.
Status copy_q5_0_or_q4_0(const GgufTensor& src, const BlobTensor& t, uint8_t* out) {
  const bool five = GgmlType(src.type) == GgmlType::kQ5_0;
  const size_t block = five ? sizeof(gguf::BlockQ5_0) : sizeof(gguf::BlockQ4_0);
  const uint64_t rows = t.rows, groups = t.cols / kGroup;
  int8_t* q = reinterpret_cast<int8_t*>(out);
  uint8_t* d = out + rows * t.cols;
  const uint8_t* blk = src.data;
  for (uint64_t b = 0; b < rows * groups; ++b, blk += block) {
    const uint16_t dh = le16(blk);
    if (!f16_finite(dh)) return non_finite(src);
    uint32_t qh = 0;
    const uint8_t* qs = blk + 2;
    if (five) {
      qh = uint32_t(blk[2]) | uint32_t(blk[3]) << 8 | uint32_t(blk[4]) << 16 | uint32_t(blk[5]) << 24;
      qs = blk + 6;
    }
    const int offset = five ? 16 : 8;
    for (uint32_t j = 0; j < 16; ++j) {
      q[32 * b + j] = int8_t(((qs[j] & 0x0f) | (((qh >> j) & 1) << 4)) - offset);
      q[32 * b + j + 16] = int8_t(((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - offset);
    }
    st16(d + 2 * b, dh);
  }
  return Status::ok();
}

// Q5_0 / Q5_1 -> kInt5G32, exactly: the blob's int5 planes are the GGML
// block's own (nibbles in the same order, qh read as a little-endian u32 puts
// bit 4 of weight j at bit j % 8 of byte j / 8, the high-bit plane's order).
// Q5_1 keeps its {d, m}; Q5_0's w = d * (q - 16) = d * q + m with m = -16 d
// (a power-of-two multiple: exact in f16 unless it overflows, then the group
// is re-quantized as int5, counted in *requantized_groups).
Status copy_q5_to_int5(const GgufTensor& src, const BlobTensor& t, uint8_t* out, uint64_t* requantized_groups) {
  const bool q5_1 = GgmlType(src.type) == GgmlType::kQ5_1;
  const size_t block = q5_1 ? sizeof(gguf::BlockQ5_1) : sizeof(gguf::BlockQ5_0);
  const uint64_t rows = t.rows, groups = t.cols / kGroup;
  uint8_t* q = out;
  uint8_t* h = q + rows * t.cols / 2;
  uint8_t* dm = h + rows * t.cols / 8;
  const uint8_t* blk = src.data;
  for (uint64_t b = 0; b < rows * groups; ++b, blk += block) {
    const uint16_t dh = le16(blk);
    if (!f16_finite(dh)) return non_finite(src);
    uint16_t mh;
    if (q5_1) {
      mh = le16(blk + 2);
      if (!f16_finite(mh)) return non_finite(src);
    } else {
      const float d = f16_to_f32(dh);
      mh = f32_to_f16(-16.0f * d);
      if (!f16_finite(mh) || f16_to_f32(mh) != -16.0f * d) {
        float x[32];
        TERN_RETURN_IF_ERROR(dequantize_block(src, b, x));
        uint16_t scales[2];
        quantize_row_int5_g32(x, 32, q + 16 * b, h + 4 * b, scales);
        st16(dm + 4 * b, scales[0]);
        st16(dm + 4 * b + 2, scales[1]);
        ++*requantized_groups;
        continue;
      }
    }
    const uint8_t* qh = blk + (q5_1 ? 4 : 2);
    st16(dm + 4 * b, dh);
    st16(dm + 4 * b + 2, mh);
    std::memcpy(h + 4 * b, qh, 4);
    std::memcpy(q + 16 * b, qh + 4, 16);
  }
  return Status::ok();
}

// Q4_K -> kInt4G32 and Q5_K -> kInt5G32 with the same 4/5-bit values: each
// 32-weight sub-block is w = (d sc) q - (dmin m), so the blob's {d, m} per
// group are f16(d * sc) and f16(-(dmin * m)): one f16 rounding of each scale
// (relative error <= 2^-11, far below the quantization step), the values
// unchanged but re-ordered: the k-quants put sub-block 2c in the low nibbles
// of a 32-byte run (Q5_K: bit 4 of weight l of sub-block j is bit j of
// qh[l]); the blob pairs weight j with j + 16 within a group and keeps bit 4
// in its high-bit plane (kInt5G32). *max_abs_err: the largest weight error.
template <class Block>
Status convert_k_quant(const GgufTensor& src, const BlobTensor& t, uint8_t* out, double* max_abs_err) {
  constexpr bool kFive = std::is_same<Block, gguf::BlockQ5_K>::value;
  const uint64_t rows = t.rows, supers = t.cols / gguf::kSuperBlock;
  uint8_t* q = out;
  uint8_t* high = q + rows * t.cols / 2;                      // kInt5G32 only
  uint8_t* dm = kFive ? high + rows * t.cols / 8 : high;
  const uint8_t* blk = src.data;
  float want[gguf::kSuperBlock];
  for (uint64_t sb = 0; sb < rows * supers; ++sb, blk += sizeof(Block)) {
    Block x;
    std::memcpy(&x, blk, sizeof x);
    if (!f16_finite(x.d) || !f16_finite(x.dmin)) return non_finite(src);
    TERN_RETURN_IF_ERROR(dequantize_block(src, sb, want));
    const float d = f16_to_f32(x.d), dmin = f16_to_f32(x.dmin);
    for (uint32_t j = 0; j < 8; ++j) {  // sub-block j = blob group 8 sb + j
      uint8_t sc, m;
      gguf::scale_min_k4(j, x.scales, &sc, &m);
      const uint16_t dh = f32_to_f16(d * float(sc)), mh = f32_to_f16(-(dmin * float(m)));
      if (!f16_finite(dh) || !f16_finite(mh)) return non_finite(src);
      const uint64_t g = 8 * sb + j;
      st16(dm + 4 * g, dh);
      st16(dm + 4 * g + 2, mh);
      const uint8_t* qs = x.qs + 32 * (j / 2);
      const int shift = (j % 2) * 4;
      uint8_t vals[32];
      for (uint32_t l = 0; l < 32; ++l) {
        vals[l] = uint8_t((qs[l] >> shift) & 0x0f);
        if constexpr (kFive) vals[l] = uint8_t(vals[l] | ((x.qh[l] >> j) & 1u) << 4);
      }
      uint8_t* o = q + 16 * g;
      for (uint32_t i = 0; i < 16; ++i) o[i] = uint8_t((vals[i] & 0x0f) | (vals[i + 16] & 0x0f) << 4);
      if constexpr (kFive) {
        for (uint32_t b = 0; b < 4; ++b) {
          uint8_t bits = 0;
          for (uint32_t i = 0; i < 8; ++i) bits = uint8_t(bits | ((vals[8 * b + i] >> 4) & 1u) << i);
          high[4 * g + b] = bits;
        }
      }
      const float dd = f16_to_f32(dh), mm = f16_to_f32(mh);
      for (uint32_t l = 0; l < 32; ++l) {
        const double e = std::fabs(double(dd * float(vals[l]) + mm) - double(want[32 * j + l]));
        *max_abs_err = std::max(*max_abs_err, e);
      }
    }
  }
  return Status::ok();
}

// How a source type becomes a blob type (--weights int4 | int8):
//   int8: every matrix kInt8G32.
//   int4: 4-bit sources (Q4_0, Q4_1, Q4_K) and float sources kInt4G32;
//         5-bit sources (Q5_0, Q5_1, Q5_K) kInt5G32 with the same values;
//         6- and 8-bit sources (Q6_K, Q8_0) kInt8G32, because taking any of
//         them down to 4 bits would lose what the file's author kept.
DType blob_type_for(GgmlType src, blob::WeightKind kind) {
  if (kind == blob::WeightKind::kInt8) return DType::kInt8G32;
  if (kind == blob::WeightKind::kF32) return DType::kF32;
  switch (src) {
    case GgmlType::kQ5_0: case GgmlType::kQ5_1: case GgmlType::kQ5_K:
      return DType::kInt5G32;
    case GgmlType::kQ6_K: case GgmlType::kQ8_0:
      return DType::kInt8G32;
    default:
      return DType::kInt4G32;
  }
}

// Validate the source's shape for its role and fix the stored dtype and shape
// (no payload: it is converted straight into the blob image by fill_tensor).
Status describe_tensor(const GgufTensor& src, const TensorRoleInfo& role, uint32_t layer, const BlobHparams& h,
                       blob::WeightKind kind, RowLayout layout, BlobTensor* out) {
  const RoleDims dims = role_dims(h);
  const uint32_t rows = extent_value(role.rows, dims), cols = extent_value(role.cols, dims);
  const char* nm = src.name.c_str();
  out->name = src.name;
  out->role = role.role;
  out->layer = layer;
  out->rows = rows;
  out->cols = cols;
  if (!role.matrix) {
    if (src.n_dims != 1 || src.ne[0] != cols)
      return Status::error(StatusCode::kBadTensor, "tensor %.64s: expected a vector of %u", nm, cols);
    out->dtype = DType::kF32;
    return Status::ok();
  }
  if (src.n_dims != 2 || src.ne[0] != cols || src.ne[1] != rows)
    return Status::error(StatusCode::kBadTensor, "tensor %.64s: GGUF shape [%llu, %llu] (n_dims %u), expected [%u, %u] (cols, rows)",
                         nm, ull(src.ne[0]), ull(src.ne[1]), src.n_dims, cols, rows);
  out->dtype = blob_type_for(GgmlType(src.type), kind);
  if (layout == RowLayout::kR16 && rows % kInterleaveRows == 0) {
    if (out->dtype == DType::kInt8G32) out->dtype = DType::kInt8G32R16;
    if (out->dtype == DType::kInt4G32) out->dtype = DType::kInt4G32R16;
  }
  return Status::ok();
}

// Convert `src` into `out`: exactly blob::tensor_bytes(t.dtype, t.rows, t.cols) bytes.
Status fill_tensor(const GgufTensor& src, const BlobTensor& t, uint8_t* out, PackSummary* sum) {
  if (t.dtype == DType::kInt8G32R16 || t.dtype == DType::kInt4G32R16) {
    // Converted in the row layout (every exact path of the source type
    // applies), then permuted into the interleave: same values, same bytes.
    const bool int8 = t.dtype == DType::kInt8G32R16;
    BlobTensor rows = t;
    rows.dtype = int8 ? DType::kInt8G32 : DType::kInt4G32;
    std::vector<uint8_t> tmp(blob::tensor_bytes(rows.dtype, t.rows, t.cols));
    TERN_RETURN_IF_ERROR(fill_tensor(src, rows, tmp.data(), sum));
    sum->conversions.back().dtype = t.dtype;
    const uint64_t q_bytes = int8 ? uint64_t(t.rows) * t.cols : uint64_t(t.rows) * t.cols / 2;
    std::vector<uint16_t> sc((tmp.size() - q_bytes) / 2), out_sc(sc.size());
    for (size_t i = 0; i < sc.size(); ++i) sc[i] = uint16_t(tmp[q_bytes + 2 * i] | (tmp[q_bytes + 2 * i + 1] << 8));
    if (int8)
      interleave_rows_int8_g32(reinterpret_cast<const int8_t*>(tmp.data()), sc.data(), t.rows, t.cols,
                               reinterpret_cast<int8_t*>(out), out_sc.data());
    else
      interleave_rows_int4_g32(tmp.data(), sc.data(), t.rows, t.cols, out, out_sc.data());
    for (size_t i = 0; i < out_sc.size(); ++i) st16(out + q_bytes + 2 * i, out_sc[i]);
    return Status::ok();
  }
  TensorConversion conv;
  conv.name = t.name;
  conv.source_type = src.type;
  conv.dtype = t.dtype;
  conv.elems = uint64_t(t.rows) * t.cols;
  conv.source_bytes = src.bytes;
  conv.blob_bytes = blob::tensor_bytes(t.dtype, t.rows, t.cols);
  Status st = Status::ok();
  const GgmlType type = GgmlType(src.type);
  if (t.dtype == DType::kF32) {  // vectors (norms, biases, rope factors), and matrices with --weights f32
    std::vector<float> v(t.cols);
    for (uint32_t r = 0; r < t.rows && st.is_ok(); ++r) {
      st = source_row(src, r, v.data());
      uint8_t* o = out + 4 * uint64_t(r) * t.cols;
      if (st.is_ok())
        for (uint32_t c = 0; c < t.cols; ++c) blob::store_f32(o + 4 * uint64_t(c), v[c]);
    }
    conv.method = type == GgmlType::kF32 ? ConversionMethod::kExact : ConversionMethod::kWidened;
  } else if (type == GgmlType::kQ8_0 && t.dtype == DType::kInt8G32) {
    ++sum->copied_q8_0;
    uint64_t before = sum->q8_minus128_groups;
    st = copy_q8_0(src, t, out, &sum->q8_minus128_groups);
    conv.method = sum->q8_minus128_groups == before ? ConversionMethod::kExact : ConversionMethod::kExactButGroups;
    conv.groups_requantized = sum->q8_minus128_groups - before;
  } else if (type == GgmlType::kQ4_1 && t.dtype == DType::kInt4G32) {
    ++sum->copied_q4_1;
    st = copy_q4_1(src, t, out);
    conv.method = ConversionMethod::kExact;
  } else if (type == GgmlType::kQ4_0 && t.dtype == DType::kInt4G32) {
    st = copy_q4_0(src, t, out, &conv.groups_requantized);
    conv.method = conv.groups_requantized == 0 ? ConversionMethod::kExact : ConversionMethod::kExactButGroups;
  } else if ((type == GgmlType::kQ5_0 || type == GgmlType::kQ4_0) && t.dtype == DType::kInt8G32) {
    st = copy_q5_0_or_q4_0(src, t, out);
    conv.method = ConversionMethod::kExact;
  } else if (type == GgmlType::kQ4_K && t.dtype == DType::kInt4G32) {
    st = convert_k_quant<gguf::BlockQ4_K>(src, t, out, &conv.max_abs_error);
    conv.method = ConversionMethod::kScalesRounded;
  } else if ((type == GgmlType::kQ5_0 || type == GgmlType::kQ5_1) && t.dtype == DType::kInt5G32) {
    st = copy_q5_to_int5(src, t, out, &conv.groups_requantized);
    conv.method = conv.groups_requantized == 0 ? ConversionMethod::kExact : ConversionMethod::kExactButGroups;
  } else if (type == GgmlType::kQ5_K && t.dtype == DType::kInt5G32) {
    st = convert_k_quant<gguf::BlockQ5_K>(src, t, out, &conv.max_abs_error);
    conv.method = ConversionMethod::kScalesRounded;
  } else {
    ++sum->requantized;
    st = requantize(src, t, out);
    conv.method = ConversionMethod::kRequantized;
  }
  TERN_RETURN_IF_ERROR(st);
  if (conv.method == ConversionMethod::kRequantized) conv.max_abs_error = requantization_error(src, t, out);
  sum->conversions.push_back(conv);
  return Status::ok();
}

}  // namespace

Status pack_gguf(const GgufFile& g, const PackOptions& opt, std::vector<uint8_t>* blob_out, PackSummary* sum) {
  *sum = PackSummary{};
  BlobContents c;
  BlobHparams& h = c.hparams;
  TERN_RETURN_IF_ERROR(read_arch_hparams(g, opt.weights, &h));
  TERN_RETURN_IF_ERROR(check_tokenizer_counts(g));
  TERN_RETURN_IF_ERROR(read_tokenizer(g, &h, &c.tokenizer));
  if (g.find("tokenizer.chat_template")) TERN_RETURN_IF_ERROR(g.get_string("tokenizer.chat_template", &c.chat_template));

  const GgufTensor* embd = g.find_tensor("token_embd.weight");
  if (!embd) return Status::error(StatusCode::kMissingTensor, "missing tensor token_embd.weight");
  if (embd->n_dims != 2 || embd->ne[0] != h.dim || embd->ne[1] >= (1u << 31))
    return Status::error(StatusCode::kBadTensor, "token_embd.weight: GGUF shape [%llu, %llu], expected [%u, vocab]",
                         ull(embd->ne[0]), ull(embd->ne[1]), h.dim);
  h.vocab = uint32_t(embd->ne[1]);
  if (h.vocab != c.tokenizer.tokens.size())
    return Status::error(StatusCode::kBadTokenizer, "vocabulary has %llu tokens, token_embd has %u rows",
                         ull(c.tokenizer.tokens.size()), h.vocab);
  std::string arch;
  TERN_RETURN_IF_ERROR(g.get_string("general.architecture", &arch));
  if (g.find(arch + ".vocab_size")) {
    uint32_t v;
    TERN_RETURN_IF_ERROR(g.get_u32(arch + ".vocab_size", &v));
    if (v != h.vocab) return Status::error(StatusCode::kBadHparams, "%s.vocab_size %u != token_embd rows %u", arch.c_str(), v, h.vocab);
  }
  h.tied_embed = g.find_tensor("output.weight") == nullptr;

  // The tensor list the blob needs, in directory order (the role table's);
  // every GGUF tensor must be one of them.
  struct Want { const TensorRoleInfo* role; uint32_t layer; };
  std::vector<Want> want;
  for (size_t i = 0; i < kTensorRoleCount; ++i)
    if (!kTensorRoles[i].per_layer && role_required(kTensorRoles[i], h.flags, h.tied_embed)) want.push_back({&kTensorRoles[i], 0});
  for (uint32_t l = 0; l < h.layers; ++l)
    for (size_t i = 0; i < kTensorRoleCount; ++i)
      if (kTensorRoles[i].per_layer && role_required(kTensorRoles[i], h.flags, h.tied_embed)) want.push_back({&kTensorRoles[i], l});
  if (g.tensors().size() != want.size()) {
    // Sorted names and binary search: no hash a file could aim.
    std::vector<std::string> names;
    for (const Want& w : want) names.push_back(tensor_name(*w.role, w.layer));
    std::sort(names.begin(), names.end());
    for (const GgufTensor& t : g.tensors())
      if (!std::binary_search(names.begin(), names.end(), t.name))
        return Status::error(StatusCode::kUnsupported, "unsupported tensor %.64s for architecture %s", t.name.c_str(), arch.c_str());
  }
  c.tensors.resize(want.size());
  std::vector<const GgufTensor*> sources(want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const std::string name = tensor_name(*want[i].role, want[i].layer);
    sources[i] = g.find_tensor(name);
    if (!sources[i]) return Status::error(StatusCode::kMissingTensor, "missing tensor %.64s", name.c_str());
    if (want[i].role->matrix && !is_supported_weight_type(sources[i]->type))
      return Status::error(StatusCode::kUnsupported, "tensor %.64s has type %s; tern reads %s", name.c_str(),
                           ggml_type_name(sources[i]->type), supported_weight_types());
    TERN_RETURN_IF_ERROR(describe_tensor(*sources[i], *want[i].role, want[i].layer, h, opt.weights, opt.layout, &c.tensors[i]));
  }

  // Memory plan for the requested limits.
  ModelShape shape;
  shape.layers = h.layers;
  shape.dim = h.dim;
  shape.heads = h.heads;
  shape.kv_heads = h.kv_heads;
  shape.head_dim = h.head_dim;
  shape.ffn = h.ffn;
  shape.vocab = h.vocab;
  shape.rope_dim = h.rope_dim;
  shape.rope_tables = rope_table_count(h);
  for (const BlobLayerConfig& lc : h.layer_configs) {
    if (!lc.sliding) continue;
    ++shape.sliding_layers;
    shape.window = std::max(shape.window, lc.window);
  }
  shape.tokenizer_model = c.tokenizer.model;
  shape.n_tokens = uint32_t(c.tokenizer.tokens.size());
  shape.n_merges = uint32_t(c.tokenizer.merges.size());
  for (const std::string& t : c.tokenizer.tokens) shape.token_text_bytes += uint32_t(t.size());  // < 4 GiB: read_tokenizer
  const char* why = "";
  if (!plan_memory(shape, opt.limits, &sum->plan, &why))
    return Status::error(StatusCode::kInvalidArgument, "run limits cannot be planned: %s", why);
  if ((uint64_t(sum->plan.sampler) >> 32) != 0)  // (a shift: no always-false warning where size_t is 32-bit)
    return Status::error(StatusCode::kInvalidArgument, "sampler plan of %zu bytes does not fit the blob's u32 field",
                         sum->plan.sampler);
  c.plan.limits = opt.limits;
  c.plan.arena_bytes = sum->plan.total;
  c.plan.bytes = sum->plan;

  // Lay the blob out, then convert every tensor straight into its place: the
  // packer holds the mapped GGUF and one blob image, never a second copy of
  // the weights.
  std::vector<uint64_t> payload_at;
  TERN_RETURN_IF_ERROR(layout_blob(c, blob_out, &payload_at));
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    const Status st = fill_tensor(*sources[i], c.tensors[i], blob_out->data() + payload_at[i], sum);
    if (!st.is_ok()) {
      blob_out->clear();
      return st;
    }
    if (opt.progress) opt.progress(uint32_t(i + 1), uint32_t(c.tensors.size()), c.tensors[i].name);
  }
  seal_blob(blob_out);

  sum->tensors = uint32_t(c.tensors.size());
  for (const BlobTensor& t : c.tensors) {
    const uint64_t bytes = blob::tensor_bytes(t.dtype, t.rows, t.cols);
    sum->bytes_by_dtype[uint32_t(t.dtype)] += bytes;
    sum->tensors_by_dtype[uint32_t(t.dtype)] += 1;
    if (tensor_role_info(uint32_t(t.role))->matrix) {
      sum->matrix_elems += uint64_t(t.rows) * t.cols;
      sum->matrix_bytes += bytes;
    }
  }
  sum->blob_bytes = blob_out->size();
  sum->limits = opt.limits;
  sum->hparams = h;
  sum->n_tokens = shape.n_tokens;
  sum->n_merges = shape.n_merges;
  if (opt.check_opens) {
    const Status st = check_blob_opens(blob_out->data(), blob_out->size());
    if (!st.is_ok()) {
      blob_out->clear();
      return Status::error(st.code(), "the runtime would refuse this blob, so it is not written: %s", st.message());
    }
  }
  return Status::ok();
}

Status check_blob_opens(const uint8_t* data, size_t size) {
  // Opening reads fields at their natural alignment (u64 at most; section
  // offsets are multiples of 8) and never runs a kernel, so any 16-byte
  // aligned image opens in place (every malloc'd buffer is); others are copied
  // to page-aligned scratch, as a mapped file would be.
  void* copy = nullptr;
  if (reinterpret_cast<uintptr_t>(data) % 16 != 0) {
    copy = os_reserve_arena(size ? size : 1);
    if (!copy) return Status::error(StatusCode::kArenaTooSmall, "no scratch memory for a %zu-byte blob copy", size);
    std::memcpy(copy, data, size);
    data = static_cast<const uint8_t*>(copy);
  }
  // The plan the engine will take, for the scratch arena's size.
  Status st = Status::ok();
  size_t arena_bytes = 0;
  {
    ModelFile f;
    st = open_model_file(data, size, &f);
    if (st.is_ok()) {
      EngineOptions probe;
      RunLimits limits = resolve_run_limits(probe, f.default_limits);
      MemoryPlan plan;
      const char* why = "";
      if (!plan_memory(f.shape(), limits, &plan, &why))
        st = Status::error(StatusCode::kInvalidArgument, "run limits rejected: %s", why);
      arena_bytes = plan.total;
    }
  }
  void* arena = nullptr;
  if (st.is_ok()) {
    arena = os_reserve_arena(arena_bytes);
    if (!arena)
      st = Status::error(StatusCode::kArenaTooSmall, "the OS refused %zu bytes of scratch arena to check the blob",
                         arena_bytes);
  }
  if (st.is_ok()) {
    std::unique_ptr<Engine> engine(new Engine);
    EngineOptions o;
    o.blob_data = data;
    o.blob_size = size;
    o.threads = 1;
    o.verify_weights = true;
    o.arena_buffer = arena;
    o.arena_bytes = arena_bytes;
    st = engine->open(o);
    engine.reset();
  }
  if (arena) os_release_arena(arena, arena_bytes);
  if (copy) os_release_arena(copy, size ? size : 1);
  return st;
}

namespace {
const char* arch_name(blob::Arch a) {
  switch (a) {
    case blob::Arch::kLlama: return "llama";
    case blob::Arch::kQwen2: return "qwen2";
    case blob::Arch::kQwen3: return "qwen3";
    case blob::Arch::kGemma3: return "gemma3";
  }
  return "?";
}
const char* dtype_name(DType d) {
  switch (d) {
    case DType::kF32: return "f32";
    case DType::kInt8G32: return "int8";
    case DType::kInt4G32: return "int4";
    case DType::kInt5G32: return "int5";
    case DType::kInt8G32R16: return "int8r16";
    case DType::kInt4G32R16: return "int4r16";
  }
  return "?";
}
const char* method_name(ConversionMethod m) {
  switch (m) {
    case ConversionMethod::kExact: return "exact";
    case ConversionMethod::kExactButGroups: return "exact except re-quantized groups";
    case ConversionMethod::kScalesRounded: return "same 4/5-bit values, scales rounded to f16";
    case ConversionMethod::kWidened: return "widened to f32 (exact)";
    case ConversionMethod::kRequantized: return "re-quantized";
  }
  return "?";
}

// Bytes and bits per weight by (source type, blob type, method), and the
// per-tensor lines.
std::string format_conversions(const PackSummary& s, bool per_tensor) {
  struct Row {
    uint32_t src;
    DType dtype;
    ConversionMethod method;
    uint32_t tensors = 0;
    uint64_t elems = 0, src_bytes = 0, blob_bytes = 0, groups = 0;
    double max_err = 0.0;
  };
  std::vector<Row> rows;
  for (const TensorConversion& c : s.conversions) {
    auto it = std::find_if(rows.begin(), rows.end(), [&](const Row& r) {
      return r.src == c.source_type && r.dtype == c.dtype && r.method == c.method;
    });
    if (it == rows.end()) {
      rows.push_back(Row{c.source_type, c.dtype, c.method});
      it = rows.end() - 1;
    }
    it->tensors += 1;
    it->elems += c.elems;
    it->src_bytes += c.source_bytes;
    it->blob_bytes += c.blob_bytes;
    it->groups += c.groups_requantized;
    it->max_err = std::max(it->max_err, c.max_abs_error);
  }
  std::string out = "conversion (source -> blob: tensors, bytes, bits per weight, method, largest |weight error|):\n";
  char line[512];
  for (const Row& r : rows) {
    const double e = double(r.elems);
    std::snprintf(line, sizeof line, "  %-5s -> %-4s %4u tensors %11" PRIu64 " -> %11" PRIu64 " bytes  %6.3f -> %6.3f bpw  %s",
                  ggml_type_name(r.src), dtype_name(r.dtype), r.tensors, r.src_bytes, r.blob_bytes,
                  8.0 * double(r.src_bytes) / e, 8.0 * double(r.blob_bytes) / e, method_name(r.method));
    out += line;
    if (r.groups) out += " (" + std::to_string(r.groups) + " groups)";
    if (r.method == ConversionMethod::kScalesRounded || r.method == ConversionMethod::kRequantized) {
      std::snprintf(line, sizeof line, ", max %.3g", r.max_err);
      out += line;
    }
    out += "\n";
  }
  if (per_tensor) {
    for (const TensorConversion& c : s.conversions) {
      if (c.method == ConversionMethod::kExact || c.method == ConversionMethod::kWidened) continue;
      std::snprintf(line, sizeof line, "  %-34s %-5s -> %-4s %s, max |error| %.3g\n", c.name.c_str(),
                    ggml_type_name(c.source_type), dtype_name(c.dtype), method_name(c.method), c.max_abs_error);
      out += line;
    }
  }
  return out;
}
}  // namespace

std::string format_summary(const PackSummary& s, bool per_tensor) {
  char buf[4096];
  const auto mib = [](uint64_t b) { return double(b) / (1024.0 * 1024.0); };
  const BlobHparams& h = s.hparams;
  const double bpw = s.matrix_elems ? 8.0 * double(s.matrix_bytes) / double(s.matrix_elems) : 0.0;
  int n = std::snprintf(
      buf, sizeof buf,
      "model: %s, %u layers, dim %u, heads %u/%u (head_dim %u), ffn %u, vocab %u, %s embeddings\n"
      "tokenizer: %u tokens, %u merges; bos %d eos %d pad %d unk %d im_start %d im_end %d add_bos %d\n"
      "weights: %s\n"
      "tensors: %u\n"
      "  f32:  %3u tensors %12" PRIu64 " bytes (%7.2f MiB)\n"
      "  int8: %3u tensors %12" PRIu64 " bytes (%7.2f MiB)\n"
      "  int4: %3u tensors %12" PRIu64 " bytes (%7.2f MiB)\n"
      "  int5: %3u tensors %12" PRIu64 " bytes (%7.2f MiB)\n"
      "  int8, rows interleaved by 16 (--layout r16): %3u tensors %12" PRIu64 " bytes (%7.2f MiB)\n"
      "  int4, rows interleaved by 16 (--layout r16): %3u tensors %12" PRIu64 " bytes (%7.2f MiB)\n"
      "matrices: %" PRIu64 " weights, %" PRIu64 " bytes, %.3f bits per weight (scales included)\n"
      "  Q4_1 copied exactly to int4: %u; Q8_0 copied exactly to int8: %u; re-quantized: %u\n"
      "  Q8_0 groups re-quantized because they held -128: %" PRIu64 "\n",
      arch_name(h.arch), h.layers, h.dim, h.heads, h.kv_heads, h.head_dim, h.ffn, h.vocab, h.tied_embed ? "tied" : "untied",
      s.n_tokens, s.n_merges, h.bos, h.eos, h.pad, h.unk, h.im_start, h.im_end, h.add_bos ? 1 : 0,
      h.weight_kind == blob::WeightKind::kInt4
          ? "int4 (kInt4G32 from 4-bit and float sources, kInt5G32 from 5-bit sources, kInt8G32 from 6- and 8-bit sources: fewer bits would lose accuracy)"
          : h.weight_kind == blob::WeightKind::kF32 ? "f32 (kF32: exact for float sources; for tests, not deployment)"
                                                    : s.tensors_by_dtype[uint32_t(DType::kInt8G32R16)]
                                                          ? "int8 (kInt8G32R16: --layout r16, rows interleaved by 16)"
                                                          : "int8 (kInt8G32)",
      s.tensors, s.tensors_by_dtype[0], s.bytes_by_dtype[0], mib(s.bytes_by_dtype[0]), s.tensors_by_dtype[1],
      s.bytes_by_dtype[1], mib(s.bytes_by_dtype[1]), s.tensors_by_dtype[2], s.bytes_by_dtype[2],
      mib(s.bytes_by_dtype[2]), s.tensors_by_dtype[3], s.bytes_by_dtype[3], mib(s.bytes_by_dtype[3]), s.tensors_by_dtype[4], s.bytes_by_dtype[4], mib(s.bytes_by_dtype[4]), s.tensors_by_dtype[5], s.bytes_by_dtype[5], mib(s.bytes_by_dtype[5]), s.matrix_elems, s.matrix_bytes, bpw, s.copied_q4_1, s.copied_q8_0, s.requantized,
      s.q8_minus128_groups);
  const MemoryPlan& p = s.plan;
  std::snprintf(buf + n, sizeof buf - size_t(n),
                "blob: %" PRIu64 " bytes (%.2f MiB)\n"
                "arena for max_context %u, max_sequences %u, prefill_chunk %u, kv_block %u, logit_rows %u, threads %u:\n"
                "  activations %10zu bytes\n"
                "  kv_blocks   %10zu bytes (%u blocks, %s KV, %zu bytes per token; sliding-window pool %zu bytes, %u blocks)\n"
                "  logits      %10zu bytes\n"
                "  tokenizer   %10zu bytes\n"
                "  sampler     %10zu bytes\n"
                "  total       %10zu bytes (%.2f MiB)\n",
                s.blob_bytes, mib(s.blob_bytes), s.limits.max_context, s.limits.max_sequences, s.limits.prefill_chunk,
                s.limits.kv_block_tokens, s.limits.logit_rows, s.limits.threads, p.activations, p.kv_blocks,
                p.kv_block_count, kv_type_name(s.limits.kv_type), p.kv_bytes_per_token, p.window_kv_bytes, p.window_kv_block_count, p.logits, p.tokenizer, p.sampler, p.total, mib(p.total));
  std::string out = buf;
  // The architecture beyond llama's, and each layer kind.
  uint32_t sliding = 0, window = 0;
  for (const BlobLayerConfig& c : h.layer_configs) {
    sliding += c.sliding ? 1 : 0;
    if (c.sliding) window = c.window;
  }
  char arch_line[512];
  std::snprintf(arch_line, sizeof arch_line,
                "architecture: %s FFN, rope %s base %g%s%s%s%s, embed scale %g, attention scale %g%s; %u sliding layers (window %u), %u global\n",
                h.activation == blob::Activation::kGeluTanh ? "GELU(tanh)" : "SiLU",
                h.rope_pairing == blob::RopePairing::kAdjacent ? "adjacent-pair" : "half-split", double(h.rope_base),
                h.rope_scaling == blob::RopeScaling::kLinear ? " (linear scaling)" : "",
                (h.flags & blob::kFlagRopeFreqs) ? " (llama3 frequency factors)" : "",
                (h.flags & blob::kFlagQkNorm) ? ", QK-norm" : "", (h.flags & blob::kFlagPostNorms) ? ", post-norms" : "",
                double(h.embed_scale), double(h.attn_scale), (h.flags & blob::kFlagQkvBias) ? ", Q/K/V bias" : "",
                sliding, window, h.layers - sliding);
  const size_t at = out.find("tokenizer:");
  out.insert(at == std::string::npos ? 0 : at, arch_line);
  const size_t at2 = out.find("blob:");
  out.insert(at2 == std::string::npos ? out.size() : at2, format_conversions(s, per_tensor));
  return out;
}

}  // namespace tern::pack
