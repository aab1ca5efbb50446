// Status codes: every fallible call in the runtime returns one. No exceptions.
// A Status is a small integer code plus a short static-or-caller-buffer message;
// it never allocates, so error paths are as heap-free as the hot path.
#pragma once
#include <cstdarg>
#include <cstddef>
#include <cstdint>

namespace tern {

enum class StatusCode : uint16_t {
  kOk = 0,
  kInvalidArgument,   // a caller passed something out of range
  kIoError,           // open/stat/mmap failed
  kBadMagic,          // not a tern blob
  kBadVersion,        // blob format version this runtime does not read
  kBadEndian,         // endianness marker mismatch
  kTruncated,         // file shorter than its header says
  kBadChecksum,       // header, directory or section CRC mismatch
  kBadLayout,         // offsets, sizes, alignment or counts inconsistent
  kBadHparams,        // hyperparameters invalid or unsupported
  kMissingTensor,     // a tensor the model needs is absent
  kBadTensor,         // tensor has the wrong type, shape or size
  kBadTokenizer,      // vocabulary / merges invalid
  kArenaTooSmall,     // arena cannot hold what init needs
  kKvFull,            // KV block pool exhausted (documented runtime error)
  kContextFull,       // sequence reached max context
  kPromptTooLong,     // prompt does not fit the context
  kInvalidToken,      // token id out of vocabulary
  kInvalidUtf8,       // input text is not valid UTF-8 (when rejecting)
  kUnsupportedIsa,    // requested ISA not available on this CPU
  kBadGguf,           // (packer) GGUF input malformed
  kUnsupported,       // valid input this build does not handle
  kBusy,              // a queue is full or a limit of concurrent work is reached: retry later
  kInternal,
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  static constexpr size_t kMessageBytes = 160;

  Status() = default;
  static Status ok() { return Status(); }
  // printf-style message, truncated to kMessageBytes-1 characters.
  static Status error(StatusCode code, const char* fmt, ...)
#if defined(__GNUC__)
      __attribute__((format(printf, 2, 3)))
#endif
      ;

  bool is_ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const char* message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  char message_[kMessageBytes] = {0};
};

// Propagate a failing status to the caller.
#define TERN_RETURN_IF_ERROR(expr)          \
  do {                                      \
    ::tern::Status tern_status_ = (expr);   \
    if (!tern_status_.is_ok()) return tern_status_; \
  } while (0)

}  // namespace tern
