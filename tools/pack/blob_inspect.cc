// Blob validation in the order docs/blob_format.md gives: header, section
// table, per-section CRCs, section sizes, tensor directory.
#include "tools/pack/blob_inspect.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace tern::pack {
namespace {

using ull = unsigned long long;
#define LAYOUT(...) Status::error(StatusCode::kBadLayout, __VA_ARGS__)

}  // namespace

const BlobSectionView* BlobView::section(blob::SectionKind kind) const {
  for (const BlobSectionView& s : sections)
    if (s.kind == kind) return &s;
  return nullptr;
}

const BlobTensorView* BlobView::tensor(const std::string& name) const {
  for (const BlobTensorView& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

Status inspect_blob(const uint8_t* p, size_t size, bool verify_data_crc, BlobView* out) {
  using namespace blob;
  BlobView v;
  if (size < kHeaderBytes) return Status::error(StatusCode::kTruncated, "blob of %llu bytes is shorter than its header", ull(size));
  if (std::memcmp(p + hdr::kMagic, kMagic, sizeof(kMagic)) != 0) return Status::error(StatusCode::kBadMagic, "not a tern blob");
  if (load_u32(p + hdr::kEndian) != kEndianMarker) return Status::error(StatusCode::kBadEndian, "endian marker mismatch");
  v.version = load_u32(p + hdr::kVersion);
  if (v.version < kOldestReadableVersion || v.version > kFormatVersion)
    return Status::error(StatusCode::kBadVersion, "blob version %u, reader reads %u to %u", v.version,
                         kOldestReadableVersion, kFormatVersion);
  if (load_u32(p + hdr::kHeaderCrc) != crc32(p, hdr::kHeaderCrc)) return Status::error(StatusCode::kBadChecksum, "header CRC mismatch");
  v.file_bytes = load_u64(p + hdr::kFileBytes);
  if (v.file_bytes != size) return Status::error(StatusCode::kTruncated, "header says %llu bytes, file has %llu", ull(v.file_bytes), ull(size));
  if (load_u32(p + hdr::kHeaderBytes) != kHeaderBytes) return LAYOUT("header size field is not %u", kHeaderBytes);
  if (load_u32(p + hdr::kFlags) != 0) return LAYOUT("unknown header flags 0x%x", load_u32(p + hdr::kFlags));
  for (size_t i = 48; i < hdr::kHeaderCrc; ++i)
    if (p[i] != 0) return LAYOUT("reserved header byte %llu is not zero", ull(i));
  const uint32_t n_sections = load_u32(p + hdr::kSectionCount);
  const uint64_t table = load_u64(p + hdr::kSectionTable);
  if (n_sections == 0 || n_sections > kMaxSections) return LAYOUT("section count %u not in 1..%u", n_sections, kMaxSections);
  const uint64_t table_bytes = uint64_t(n_sections) * kSectionEntryBytes;
  if (table < kHeaderBytes || table > size || table_bytes > size - table || table % 8 != 0)
    return LAYOUT("section table [%llu, +%llu) outside the file", ull(table), ull(table_bytes));
  if (load_u32(p + hdr::kSectionTableCrc) != crc32(p + table, size_t(table_bytes)))
    return Status::error(StatusCode::kBadChecksum, "section table CRC mismatch");

  for (uint32_t k = 0; k < n_sections; ++k) {
    const uint8_t* e = p + table + uint64_t(k) * kSectionEntryBytes;
    BlobSectionView s;
    const uint32_t kind = load_u32(e);
    if (kind < uint32_t(SectionKind::kHparams) || kind >= kSectionKindCount)
      return LAYOUT("section %u has unknown kind %u", k, kind);
    s.kind = SectionKind(kind);
    s.offset = load_u64(e + 8);
    s.bytes = load_u64(e + 16);
    s.crc = load_u32(e + 24);
    if (load_u32(e + 4) != 0 || load_u32(e + 28) != 0) return LAYOUT("section %u reserved fields not zero", k);
    if (v.section(s.kind)) return LAYOUT("section kind %u appears twice", kind);
    if (s.offset > size || s.bytes > size - s.offset) return LAYOUT("section %u [%llu, +%llu) outside the file", kind, ull(s.offset), ull(s.bytes));
    if (s.offset < table + table_bytes && s.offset + s.bytes > kHeaderBytes && s.bytes > 0)
      return LAYOUT("section %u overlaps the header or section table", kind);
    if (s.offset % 8 != 0) return LAYOUT("section %u is not 8-byte aligned", kind);
    s.data = p + s.offset;
    const bool is_data = s.kind == SectionKind::kTensorData;
    if ((!is_data || verify_data_crc) && crc32(s.data, size_t(s.bytes)) != s.crc)
      return Status::error(StatusCode::kBadChecksum, "section %u CRC mismatch", kind);
    v.sections.push_back(s);
  }
  for (size_t a = 0; a < v.sections.size(); ++a)
    for (size_t b = a + 1; b < v.sections.size(); ++b) {
      const BlobSectionView& x = v.sections[a];
      const BlobSectionView& y = v.sections[b];
      if (x.offset < y.offset + y.bytes && y.offset < x.offset + x.bytes)
        return LAYOUT("sections %u and %u overlap", uint32_t(x.kind), uint32_t(y.kind));
    }
  for (uint32_t kind = 1; kind < kSectionKindCount; ++kind)
    if (!v.section(SectionKind(kind))) return LAYOUT("section kind %u missing", kind);
  // No CRC covers the zero padding between the header, the table and the
  // sections; a strict reader checks it is zero, so every byte of the file is
  // accounted for (the runtime ignores padding).
  {
    for (uint64_t i = kHeaderBytes; i < table; ++i)
      if (p[i] != 0) return LAYOUT("padding byte at offset %llu is not zero", ull(i));
    uint64_t pos = table + table_bytes;
    std::vector<const BlobSectionView*> by_offset;
    for (const BlobSectionView& s : v.sections) by_offset.push_back(&s);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const BlobSectionView* x, const BlobSectionView* y) { return x->offset < y->offset; });
    for (size_t k = 0; k <= by_offset.size(); ++k) {
      const uint64_t end = k < by_offset.size() ? by_offset[k]->offset : size;
      for (uint64_t i = pos; i < end; ++i)
        if (p[i] != 0) return LAYOUT("padding byte at offset %llu is not zero", ull(i));
      if (k < by_offset.size()) pos = std::max(pos, by_offset[k]->offset + by_offset[k]->bytes);
    }
  }
  if (v.section(SectionKind::kHparams)->bytes != hp::kBytes) return LAYOUT("hparams section is not %llu bytes", ull(hp::kBytes));
  if (v.section(SectionKind::kMemoryPlan)->bytes != plan::bytes_for_version(v.version))
    return LAYOUT("memory plan section is not %llu bytes", ull(plan::bytes_for_version(v.version)));
  const uint32_t n_layers = load_u32(v.section(SectionKind::kHparams)->data + hp::kLayers);
  if (v.section(SectionKind::kLayers)->bytes != uint64_t(n_layers) * layer::kEntryBytes)
    return LAYOUT("layers section is %llu bytes, %u layers need %llu", ull(v.section(SectionKind::kLayers)->bytes), n_layers,
                  ull(uint64_t(n_layers) * layer::kEntryBytes));

  const BlobSectionView& dir = *v.section(SectionKind::kTensorDir);
  const BlobSectionView& data = *v.section(SectionKind::kTensorData);
  if (data.offset % kTensorAlignment != 0) return LAYOUT("tensor data section not %u-byte aligned", kTensorAlignment);
  if (dir.bytes < tdir::kHeaderBytes) return LAYOUT("tensor directory too short");
  const uint32_t n_tensors = load_u32(dir.data);
  if ((dir.bytes - tdir::kHeaderBytes) / tdir::kEntryBytes != n_tensors || (dir.bytes - tdir::kHeaderBytes) % tdir::kEntryBytes != 0)
    return LAYOUT("tensor directory size does not match its %u entries", n_tensors);
  for (uint32_t i = 0; i < n_tensors; ++i) {
    const uint8_t* e = dir.data + tdir::kHeaderBytes + uint64_t(i) * tdir::kEntryBytes;
    BlobTensorView t;
    const void* nul = std::memchr(e, 0, tdir::kNameBytes);
    if (!nul || nul == e) return LAYOUT("tensor %u: name empty or not NUL-terminated", i);
    t.name.assign(reinterpret_cast<const char*>(e), size_t(static_cast<const uint8_t*>(nul) - e));
    t.role = TensorRole(load_u32(e + 48));
    t.layer = load_u32(e + 52);
    const uint32_t dtype = load_u32(e + 56);
    if (dtype >= kDTypeCount || v.version < dtype_min_version(dtype)) return Status::error(StatusCode::kBadTensor, "tensor %.48s: unknown dtype %u", t.name.c_str(), dtype);
    t.dtype = DType(dtype);
    t.rows = load_u32(e + 60);
    t.cols = load_u32(e + 64);
    t.offset = load_u64(e + 72);
    t.bytes = load_u64(e + 80);
    const uint64_t want = tensor_bytes(t.dtype, t.rows, t.cols);
    if (want == 0 || want != t.bytes)
      return Status::error(StatusCode::kBadTensor, "tensor %.48s: %llu bytes, dtype and shape need %llu", t.name.c_str(), ull(t.bytes), ull(want));
    if (t.offset % kTensorAlignment != 0) return LAYOUT("tensor %.48s: offset not %u-byte aligned", t.name.c_str(), kTensorAlignment);
    if (t.offset > data.bytes || t.bytes > data.bytes - t.offset) return LAYOUT("tensor %.48s: payload outside the data section", t.name.c_str());
    if (v.tensor(t.name)) return LAYOUT("tensor name %.48s appears twice", t.name.c_str());
    for (const BlobTensorView& o : v.tensors)
      if (t.offset < o.offset + o.bytes && o.offset < t.offset + t.bytes)
        return LAYOUT("tensors %.48s and %.48s overlap", t.name.c_str(), o.name.c_str());
    t.data = data.data + t.offset;
    v.tensors.push_back(std::move(t));
  }
  *out = std::move(v);
  return Status::ok();
}

}  // namespace tern::pack
