// A second, host-side reader of the tern blob, written from
// docs/blob_format.md alone: validates the header, section table, CRCs and
// tensor directory and gives views of the sections and tensors. The tests use
// it to check the writer against the spec independently of the runtime's
// heap-free loader (runtime/model_file.h), which tern-pack itself re-reads
// every blob with.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/blob_format.h"
#include "runtime/status.h"

namespace tern::pack {

struct BlobSectionView {
  blob::SectionKind kind;
  uint64_t offset = 0, bytes = 0;
  uint32_t crc = 0;
  const uint8_t* data = nullptr;
};

struct BlobTensorView {
  std::string name;
  blob::TensorRole role;
  uint32_t layer = 0;
  blob::DType dtype;
  uint32_t rows = 0, cols = 0;
  uint64_t offset = 0, bytes = 0;  // offset relative to the tensor data section
  const uint8_t* data = nullptr;   // payload in the image
};

struct BlobView {
  uint32_t version = 0;
  uint64_t file_bytes = 0;
  std::vector<BlobSectionView> sections;
  std::vector<BlobTensorView> tensors;

  // nullptr if the blob has no section of that kind.
  const BlobSectionView* section(blob::SectionKind kind) const;
  const BlobTensorView* tensor(const std::string& name) const;
};

// Validate and index a blob image. verify_data_crc also checks the tensor
// data section's CRC (the runtime does so only on demand).
Status inspect_blob(const uint8_t* data, size_t size, bool verify_data_crc, BlobView* out);

}  // namespace tern::pack
