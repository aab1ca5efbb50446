#include "runtime/status.h"

#include <cstdio>

namespace tern {

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kIoError: return "io_error";
    case StatusCode::kBadMagic: return "bad_magic";
    case StatusCode::kBadVersion: return "bad_version";
    case StatusCode::kBadEndian: return "bad_endian";
    case StatusCode::kTruncated: return "truncated";
    case StatusCode::kBadChecksum: return "bad_checksum";
    case StatusCode::kBadLayout: return "bad_layout";
    case StatusCode::kBadHparams: return "bad_hparams";
    case StatusCode::kMissingTensor: return "missing_tensor";
    case StatusCode::kBadTensor: return "bad_tensor";
    case StatusCode::kBadTokenizer: return "bad_tokenizer";
    case StatusCode::kArenaTooSmall: return "arena_too_small";
    case StatusCode::kKvFull: return "kv_full";
    case StatusCode::kContextFull: return "context_full";
    case StatusCode::kPromptTooLong: return "prompt_too_long";
    case StatusCode::kInvalidToken: return "invalid_token";
    case StatusCode::kInvalidUtf8: return "invalid_utf8";
    case StatusCode::kUnsupportedIsa: return "unsupported_isa";
    case StatusCode::kBadGguf: return "bad_gguf";
    case StatusCode::kUnsupported: return "unsupported";
    case StatusCode::kBusy: return "busy";
    case StatusCode::kInternal: return "internal";
  }
  return "unknown";
}

Status Status::error(StatusCode code, const char* fmt, ...) {
  Status s;
  s.code_ = code;
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(s.message_, kMessageBytes, fmt, args);  // never allocates
  va_end(args);
  return s;
}

}  // namespace tern
