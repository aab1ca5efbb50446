#include "runtime/engine.h"

#include <cstring>

#include "kernels/dispatch.h"
#include "port/clock.h"
#include "port/cpu_features.h"

namespace tern {

uint32_t host_isa_bits() {
  const CpuFeatures f = detect_cpu_features();
  uint32_t bits = 0;
  if (f.avx2 && f.fma && f.f16c) bits |= kIsaAvx2;
  if (f.avx_vnni) bits |= kIsaAvxVnni;
  if (f.avx512_vnni) bits |= kIsaAvx512Vnni;
  if (f.amx_int8) bits |= kIsaAmxInt8;
  if (f.neon) bits |= kIsaNeon;
  if (f.dotprod) bits |= kIsaNeonDotprod;
  if (f.i8mm) bits |= kIsaNeonI8mm;
  return bits;
}

namespace {

Status select_isa(const char* requested, const KernelTable** out) {
  const uint32_t bits = host_isa_bits();
  *out = select_kernels(bits, requested);
  if (*out != nullptr) return Status::ok();
  size_t n = 0;
  const KernelVariant* v = kernel_variants(&n);
  for (size_t i = 0; i < n; ++i) {
    if (std::strcmp(v[i].name, requested) == 0) {
      return Status::error(StatusCode::kUnsupportedIsa, "ISA '%s' is compiled in but this CPU lacks it", requested);
    }
  }
  char names[128] = {0};
  size_t used = 0;
  for (size_t i = 0; i < n && used + 24 < sizeof(names); ++i) {
    const size_t len = std::strlen(v[i].name);
    std::memcpy(names + used, v[i].name, len);
    used += len;
    if (i + 1 < n) names[used++] = ',';
  }
  return Status::error(StatusCode::kUnsupportedIsa, "unknown ISA '%s' (this build has: %s)", requested, names);
}

}  // namespace

RunLimits resolve_run_limits(const EngineOptions& o, const RunLimits& d) {
  RunLimits l;
  l.max_context = o.limits.max_context ? o.limits.max_context : d.max_context;
  l.max_sequences = o.limits.max_sequences ? o.limits.max_sequences : d.max_sequences;
  l.prefill_chunk = o.limits.prefill_chunk ? o.limits.prefill_chunk : d.prefill_chunk;
  l.kv_block_tokens = o.limits.kv_block_tokens ? o.limits.kv_block_tokens : d.kv_block_tokens;
  l.logit_rows = o.limits.logit_rows ? o.limits.logit_rows : 1;
  l.threads = o.threads ? o.threads : 1;
  l.kv_blocks = o.limits.kv_blocks;
  l.kv_type = o.kv_type >= 0 ? KvType(uint32_t(o.kv_type)) : d.kv_type;
  return l;
}

Status check_stored_plan(const ModelFile& file, const RunLimits& limits, const MemoryPlan& plan) {
  const RunLimits& d = file.default_limits;
  const bool same_limits = limits.max_context == d.max_context && limits.max_sequences == d.max_sequences &&
                           limits.prefill_chunk == d.prefill_chunk && limits.kv_block_tokens == d.kv_block_tokens &&
                           limits.logit_rows == d.logit_rows && limits.threads == 1 && limits.kv_blocks == 0 &&
                           limits.kv_type == d.kv_type;
  if (!same_limits) return Status::ok();  // nothing stored to compare with
  const MemoryPlan& s = file.stored_plan;
  if (s.activations == plan.activations && s.kv_blocks == plan.kv_blocks && s.logits == plan.logits &&
      s.tokenizer == plan.tokenizer && s.sampler == plan.sampler && s.total == plan.total) {
    return Status::ok();
  }
  // Short enough for a Status message: the category that differs first, and both totals.
  const char* what = s.activations != plan.activations ? "activations"
                     : s.kv_blocks != plan.kv_blocks   ? "kv_blocks"
                     : s.logits != plan.logits         ? "logits"
                     : s.tokenizer != plan.tokenizer   ? "tokenizer"
                     : s.sampler != plan.sampler       ? "sampler"
                                                       : "total";
  return Status::error(StatusCode::kBadLayout,
                       "repack the blob: its stored memory plan (%zu bytes) differs from this runtime's (%zu bytes) "
                       "for the same limits, first in %s",
                       s.total, plan.total, what);
}

Status Engine::open(const EngineOptions& o) {
  close();
  const uint64_t t0 = now_ns();
  if (o.model_path != nullptr) {
    const int err = blob_map_file(o.model_path, &map_);
    if (err != 0) {
      return Status::error(StatusCode::kIoError, "cannot open blob '%s': %s", o.model_path, std::strerror(err));
    }
  } else if (o.blob_data != nullptr) {
    map_ = blob_map_memory(o.blob_data, o.blob_size);
  } else {
    return Status::error(StatusCode::kInvalidArgument, "no model given");
  }
  TERN_RETURN_IF_ERROR(open_model_file(map_.data, map_.size, &file_));
  if (o.verify_weights) TERN_RETURN_IF_ERROR(verify_tensor_data(file_));

  limits_ = resolve_run_limits(o, file_.default_limits);
  if (limits_.max_sequences > kMaxSequences) {
    return Status::error(StatusCode::kInvalidArgument, "at most %u sequences", kMaxSequences);
  }
  const char* why = nullptr;
  if (!plan_memory(file_.shape(), limits_, &plan_, &why)) {
    return Status::error(StatusCode::kInvalidArgument, "run limits rejected: %s", why);
  }
  TERN_RETURN_IF_ERROR(check_stored_plan(file_, limits_, plan_));

  TERN_RETURN_IF_ERROR(select_isa(o.isa && std::strcmp(o.isa, "auto") != 0 ? o.isa : nullptr, &kernels_));

  // The arena: exactly the plan, from the caller or one anonymous mapping.
  if (o.arena_buffer != nullptr) {
    if (o.arena_bytes < plan_.total) {
      return Status::error(StatusCode::kArenaTooSmall,
                           "arena of %zu bytes is %zu bytes short of the %zu this model and these limits need",
                           o.arena_bytes, plan_.total - o.arena_bytes, plan_.total);
    }
    arena_.init(o.arena_buffer, o.arena_bytes);
  } else {
    os_arena_ = os_reserve_arena(plan_.total);
    if (os_arena_ == nullptr) {
      return Status::error(StatusCode::kArenaTooSmall,
                           "the OS refused an arena of %zu bytes (%.1f MiB, max context %u): lower --max-context "
                           "(or --max-sequences)",
                           plan_.total, plan_.total / 1048576.0, limits_.max_context);
    }
    os_arena_bytes_ = plan_.total;
    arena_.init(os_arena_, os_arena_bytes_);
  }

  pool_ = &serial_;
  if (limits_.threads > 1) {
#if defined(TERN_HAVE_THREADS)
    if (!threads_.start(limits_.threads)) {
      return Status::error(StatusCode::kInvalidArgument, "cannot start %u threads", limits_.threads);
    }
    pool_ = &threads_;
#else
    return Status::error(StatusCode::kUnsupported, "this build is single-threaded (TERN_THREADS=OFF)");
#endif
  }

  // Allocation order = the planner's: model table and activations, KV, then
  // tokenizer and sampler.
  TERN_RETURN_IF_ERROR(bind_weights(&file_, &arena_));
  TERN_RETURN_IF_ERROR(model_.init(&file_, limits_, kernels_, pool_, &arena_));
  const uint32_t blocks_per_seq = (limits_.max_context + limits_.kv_block_tokens - 1) / limits_.kv_block_tokens;
  for (uint32_t i = 0; i < limits_.max_sequences; ++i) {
    TERN_RETURN_IF_ERROR(model_.kv().init_sequence(&sequences_[i], blocks_per_seq, &arena_));
    if (KvPool* w = model_.window_kv()) {  // the same sequence's sliding-window layers
      TERN_RETURN_IF_ERROR(w->init_sequence(&window_sequences_[i], blocks_per_seq, &arena_));
      sequences_[i].window = &window_sequences_[i];
    }
  }
  n_sequences_ = limits_.max_sequences;
  TERN_RETURN_IF_ERROR(tokenizer_.init(file_, TextTokenizer::text_bytes_for_context(limits_.max_context), &arena_));
  for (uint32_t i = 0; i < limits_.max_sequences; ++i) {
    history_[i] = arena_.allocate_array<int32_t>(limits_.max_context, "tokens");
    if (history_[i] == nullptr) return Status::error(StatusCode::kArenaTooSmall, "arena too small for token history");
  }
  TERN_RETURN_IF_ERROR(sampler_.init(o.sampling, file_.hp.vocab, &arena_));
  // A blob without a chat format tern knows still runs plain prompts.
  (void)chat_format_select(file_.chat_template, file_.chat_template_bytes, file_.hp.im_start, file_.hp.im_end,
                           tokenizer_, &chat_);
  // The tokenizer section was read whole just now (its CRC, the vocabulary
  // checks, the sort); from here on encode and decode read a few of its pages
  // per call. Its pages go back to the page cache instead of staying in the
  // resident set for the life of the process: 4.5 MiB for Gemma 3's 262,144
  // tokens, 2% of its peak RSS (bench/results/README.md).
  if (file_.tokenizer != nullptr) blob_release_pages(map_, size_t(file_.tokenizer - map_.data), file_.tokenizer_bytes);
  open_ms_ = ns_to_ms(now_ns() - t0);
  return Status::ok();
}

void Engine::close() {
#if defined(TERN_HAVE_THREADS)
  threads_.stop();
#endif
  pool_ = nullptr;
  if (os_arena_) os_release_arena(os_arena_, os_arena_bytes_);
  os_arena_ = nullptr;
  os_arena_bytes_ = 0;
  blob_unmap(&map_);
  n_sequences_ = 0;
  kernels_ = nullptr;
  chat_ = ChatFormat{};
}

Status Engine::check_tokens(const int32_t* ids, size_t n) const {
  const uint32_t vocab = file_.hp.vocab;
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || uint32_t(ids[i]) >= vocab) {
      return Status::error(StatusCode::kInvalidToken, "token id %d at position %zu is outside the vocabulary (0..%u)",
                           ids[i], i, vocab ? vocab - 1 : 0);
    }
  }
  return Status::ok();
}

Status Engine::decode(KvSequence* seq, int32_t token) {
  TERN_RETURN_IF_ERROR(check_tokens(&token, 1));
  return model_.forward(seq, &token, 1, Model::Logits::kLast);
}

Status Engine::prefill(KvSequence* seq, const int32_t* ids, size_t n) {
  if (n == 0) return Status::error(StatusCode::kInvalidArgument, "empty prompt: nothing to prefill");
  TERN_RETURN_IF_ERROR(check_tokens(ids, n));
  if (uint64_t(seq->n_past) + n > limits_.max_context) {
    return Status::error(StatusCode::kPromptTooLong,
                         "prompt of %zu tokens does not fit: %u already in context, max context %u", n, seq->n_past,
                         limits_.max_context);
  }
  const uint32_t start = seq->n_past;
  for (size_t done = 0; done < n;) {
    const uint32_t chunk = uint32_t(n - done < limits_.prefill_chunk ? n - done : limits_.prefill_chunk);
    // Only the prompt's last token needs logits: earlier chunks skip the head.
    const bool last = done + chunk == n;
    Status s = model_.forward(seq, ids + done, chunk, last ? Model::Logits::kLast : Model::Logits::kNone);
    if (!s.is_ok()) {
      model_.kv().truncate(seq, start);
      return s;
    }
    done += chunk;
  }
  return Status::ok();
}

int32_t Engine::sample(const int32_t* recent, uint32_t n_recent) {
  return sampler_.sample(logits(), recent, n_recent);
}

}  // namespace tern
