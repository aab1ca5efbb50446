// tern-info: what a blob holds, without running it. Architecture, parameter
// count, tensor storage types and bits per weight, tokenizer, chat format,
// trained and planned context, the arena plan, format version and checksums.
//
//   tern-info model.tern [--verify] [--json] [--max-context N ...]
#include <cstdio>
#include <cstring>
#include <string>

#include "port/blob_map.h"
#include "runtime/blob_format.h"
#include "runtime/chat_format.h"
#include "runtime/engine.h"
#include "runtime/model_file.h"
#include "tools/cli/cli_common.h"

namespace {

const char* arch_name(uint32_t arch) {
  switch (static_cast<tern::blob::Arch>(arch)) {
    case tern::blob::Arch::kLlama: return "llama";
    case tern::blob::Arch::kQwen2: return "qwen2";
    case tern::blob::Arch::kQwen3: return "qwen3";
    case tern::blob::Arch::kGemma3: return "gemma3";
  }
  return "unknown";
}

using namespace tern;

constexpr const char* kTool = "tern-info";

void usage(FILE* f) {
  std::fprintf(f,
               "usage: tern-info BLOB [options]\n"
               "  BLOB (or -m/--model BLOB)  a tern blob made by tern-pack\n"
               "  --verify                   also check the CRC of every weight byte (reads the whole file)\n"
               "  --json                     one JSON object\n"
               "  --max-context N, --max-sequences N, --prefill-chunk N, --kv-block N, --kv-pool-blocks N,\n"
               "  --threads N, --kv f16|int8 the limits the arena plan is computed for (default: the blob's)\n"
               "  -h, --help | --version\n"
               "Prints: architecture, parameters, tensor storage types and bits per weight, tokenizer (kind,\n"
               "vocabulary, merges, special ids), chat format, trained and planned context, the arena plan,\n"
               "the blob format version and which checksums were verified.\n");
}

// Storage statistics per dtype, from the tensor directory (validated by open_model_file).
struct TypeStats {
  uint32_t tensors = 0;
  uint64_t elements = 0;
  uint64_t bytes = 0;
};

const char* dtype_name(uint32_t d) {
  switch (blob::DType(d)) {
    case blob::DType::kF32: return "f32";
    case blob::DType::kInt8G32: return "int8 (group 32, f16 scale)";
    case blob::DType::kInt4G32: return "int4 (group 32, f16 scale + min)";
    case blob::DType::kInt5G32: return "int5 (group 32, f16 scale + min)";
    case blob::DType::kInt8G32R16: return "int8 (group 32, f16 scale, rows interleaved by 16)";
    case blob::DType::kInt4G32R16: return "int4 (group 32, f16 scale + min, rows interleaved by 16)";
  }
  return "unknown";
}
const char* dtype_key(uint32_t d) {
  switch (blob::DType(d)) {
    case blob::DType::kF32: return "f32";
    case blob::DType::kInt8G32: return "int8_g32";
    case blob::DType::kInt4G32: return "int4_g32";
    case blob::DType::kInt5G32: return "int5_g32";
    case blob::DType::kInt8G32R16: return "int8_g32_r16";
    case blob::DType::kInt4G32R16: return "int4_g32_r16";
  }
  return "unknown";
}

void tensor_stats(const ModelFile& f, TypeStats stats[blob::kDTypeCount], uint64_t* params) {
  const Section& dir = f.sections[uint32_t(blob::SectionKind::kTensorDir)];
  const uint8_t* p = f.data + dir.offset;
  const uint32_t n = blob::load_u32(p);
  *params = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t* e = p + blob::tdir::kHeaderBytes + uint64_t(i) * blob::tdir::kEntryBytes;
    const uint8_t* q = e + blob::tdir::kNameBytes;  // role, layer, dtype, rows, cols, reserved, offset, bytes
    const uint32_t dtype = blob::load_u32(q + 8);
    const uint64_t elems = uint64_t(blob::load_u32(q + 12)) * blob::load_u32(q + 16);
    const uint64_t bytes = blob::load_u64(q + 32);
    if (dtype >= blob::kDTypeCount) continue;
    ++stats[dtype].tensors;
    stats[dtype].elements += elems;
    stats[dtype].bytes += bytes;
    *params += elems;
  }
}

const char* tokenizer_kind(uint32_t model) {
  return model == 1 ? "byte-level BPE (GPT-2 byte map)"
         : model == 2 ? "SentencePiece-style (scores, byte fallback)"
                      : "unknown";
}
const char* pretokenizer_kind(uint32_t model, uint32_t pre) {
  return model == 1 && pre == 1 ? "smollm (single digits + GPT-2 regex)" : model == 2 && pre == 0 ? "none" : "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  EngineOptions opt;
  cli::CommonFlagsSeen seen;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string err;
    const int r = cli::parse_common_flag(argc, argv, &i, &opt, &err, &seen);
    if (r < 0) {
      std::fprintf(stderr, "%s: %s (%s --help lists the options)\n", kTool, err.c_str(), kTool);
      return 2;
    }
    if (r > 0) continue;
    const char* a = argv[i];
    if (!std::strcmp(a, "-h") || !std::strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!std::strcmp(a, "--version")) {
      std::printf("%s (%s)\n", kTool, cli::version());
      return 0;
    } else if (!std::strcmp(a, "--json")) {
      json = true;
    } else if (a[0] != '-' && opt.model_path == nullptr) {
      opt.model_path = a;
    } else {
      return cli::unknown_argument(kTool, a);
    }
  }
  if (!opt.model_path) {
    std::fprintf(stderr, "%s: give a blob (%s --help lists the options)\n", kTool, kTool);
    return 2;
  }
  BlobMap map;
  if (const int err = blob_map_file(opt.model_path, &map); err != 0) {
    return cli::report_error(
        kTool, Status::error(StatusCode::kIoError, "cannot open blob '%s': %s", opt.model_path, std::strerror(err)),
        json);
  }
  ModelFile f;
  if (Status s = open_model_file(map.data, map.size, &f); !s.is_ok()) {
    blob_unmap(&map);
    return cli::report_error(kTool, s, json);
  }
  if (opt.verify_weights) {
    if (Status s = verify_tensor_data(f); !s.is_ok()) {
      blob_unmap(&map);
      return cli::report_error(kTool, s, json);
    }
  }
  cli::PlanReport plan;
  const Status plan_status = cli::plan_for(f, map.size, opt, &plan);
  const Hparams& hp = f.hp;
  const uint32_t version = blob::load_u32(f.data + blob::hdr::kVersion);
  const uint8_t* tok = f.tokenizer;
  const uint32_t tok_model = blob::load_u32(tok + blob::tok::kModel), tok_pre = blob::load_u32(tok + blob::tok::kPre);
  const bool space_prefix = (blob::load_u32(tok + blob::tok::kFlags) & blob::tok::kFlagAddSpacePrefix) != 0;
  // The chat format the engine selects needs the tokenizer (Gemma's turn tokens).
  ChatFormat chat;
  {
    std::vector<uint8_t> mem;
    static TextTokenizer t;
    if (Status s = cli::open_tokenizer(f, 0, &mem, &t, &chat); !s.is_ok()) return cli::report_error(kTool, s, json);
  }
  const bool has_template = f.chat_template != nullptr && f.chat_template_bytes > 0;
  const char* chat_kind = chat.kind == ChatKind::kChatMl  ? "ChatML"
                          : chat.kind == ChatKind::kGemma ? "Gemma (<start_of_turn>/<end_of_turn>)"
                          : has_template                  ? "template not recognized (plain prompts only)"
                                                          : "none";
  TypeStats ts[blob::kDTypeCount];
  uint64_t params = 0;
  tensor_stats(f, ts, &params);
  uint64_t weight_bytes = 0;
  for (const TypeStats& t : ts) weight_bytes += t.bytes;
  const double bpw = params ? weight_bytes * 8.0 / double(params) : 0;
  uint32_t sliding = 0;
  float local_base = hp.rope_base;
  for (uint32_t l = 0; l < hp.layers; ++l) {
    const LayerConfig c = f.layer_config(l);
    if (c.sliding) {
      ++sliding;
      local_base = c.rope_base;
    }
  }
  const char* weights_crc = opt.verify_weights ? "verified" : "not checked (--verify checks it)";

  if (json) {
    std::printf("{\"status\":\"ok\",\"blob\":");
    cli::json_string(stdout, opt.model_path, std::strlen(opt.model_path));
    std::printf(",\"format_version\":%u,\"file_bytes\":%zu,\"checksums\":{\"header\":\"verified\","
                "\"sections\":\"verified\",\"weights\":\"%s\"},",
                version, f.size, opt.verify_weights ? "verified" : "not_checked");
    std::printf("\"architecture\":\"%s\",\"sliding_layers\":%u,\"window\":%u,\"activation\":\"%s\",\"qk_norm\":%s,"
                "\"post_norms\":%s,\"qkv_bias\":%s,\"embed_scale\":%g,\"attn_scale\":%g,\"final_softcap\":%g,",
                arch_name(hp.arch), sliding, f.max_window, hp.activation == blob::Activation::kGeluTanh ? "gelu_tanh" : "silu",
                hp.qk_norm() ? "true" : "false", hp.post_norms() ? "true" : "false", hp.qkv_bias() ? "true" : "false",
                double(hp.embed_scale), double(hp.attn_scale), double(hp.final_softcap));
    std::printf("\"parameters\":%llu,\"layers\":%u,\"dim\":%u,\"heads\":%u,"
                "\"kv_heads\":%u,\"head_dim\":%u,\"ffn\":%u,\"vocab\":%u,\"rope_dim\":%u,\"rope_base\":%g,"
                "\"norm_eps\":%g,\"tied_embeddings\":%s,",
                (unsigned long long)params, hp.layers, hp.dim, hp.heads, hp.kv_heads, hp.head_dim, hp.ffn, hp.vocab,
                hp.rope_dim, double(hp.rope_base), double(hp.norm_eps), hp.tied_embeddings ? "true" : "false");
    std::printf("\"weight_bytes\":%llu,\"bits_per_weight\":%.3f,\"tensor_types\":{", (unsigned long long)weight_bytes,
                bpw);
    bool first = true;
    for (uint32_t d = 0; d < blob::kDTypeCount; ++d) {
      if (!ts[d].tensors) continue;
      std::printf("%s\"%s\":{\"tensors\":%u,\"elements\":%llu,\"bytes\":%llu,\"bits_per_weight\":%.3f}",
                  first ? "" : ",", dtype_key(d), ts[d].tensors, (unsigned long long)ts[d].elements,
                  (unsigned long long)ts[d].bytes, ts[d].elements ? ts[d].bytes * 8.0 / double(ts[d].elements) : 0);
      first = false;
    }
    std::printf("},\"tokenizer\":{\"kind\":\"%s\",\"pre\":\"%s\",\"tokens\":%u,\"merges\":%u,\"bos\":%d,\"eos\":%d,"
                "\"pad\":%d,\"unk\":%d,\"im_start\":%d,\"im_end\":%d,\"add_bos\":%s},",
                tok_model == 1 ? "bpe" : tok_model == 2 ? "spm" : "unknown",
                tok_model == 1 && tok_pre == 1 ? "smollm" : tok_model == 2 && tok_pre == 0 ? "none" : "unknown",
                f.n_tokens, f.n_merges,
                hp.bos, hp.eos, hp.pad, hp.unk, hp.im_start, hp.im_end, hp.add_bos ? "true" : "false");
    std::printf("\"chat_format\":\"%s\",",
                chat.kind != ChatKind::kNone ? chat_kind_name(chat.kind) : has_template ? "unrecognized" : "none");
    if (hp.train_context) std::printf("\"trained_context\":%u,", hp.train_context);
    else std::printf("\"trained_context\":null,");
    if (plan_status.is_ok()) {
      std::printf("\"plan\":{");
      cli::json_plan_fields(stdout, plan);
      std::printf("}");
    } else {
      std::printf("\"plan_error\":");
      cli::json_string(stdout, plan_status.message(), std::strlen(plan_status.message()));
    }
    std::printf("}\n");
  } else {
    std::printf("blob:          %s (%zu bytes, %.1f MiB), format version %u\n", opt.model_path, f.size,
                f.size / 1048576.0, version);
    std::printf("checksums:     header and section CRCs verified; weights CRC %s\n", weights_crc);
    std::printf("architecture:  %s, %u layers, dim %u, %u heads / %u KV heads of %u, ffn %u, rope %u dims base %g%s\n",
                arch_name(hp.arch), hp.layers, hp.dim, hp.heads, hp.kv_heads, hp.head_dim, hp.ffn, hp.rope_dim,
                double(hp.rope_base), hp.tied_embeddings ? ", tied embeddings" : "");
    std::printf("layers:        %u global", hp.layers - sliding);
    if (sliding) std::printf(", %u sliding (window %u, rope base %g)", sliding, f.max_window, double(local_base));
    std::printf("; %s gate%s%s%s", hp.activation == blob::Activation::kGeluTanh ? "GELU(tanh)" : "SiLU",
                hp.qk_norm() ? ", QK-norm" : "", hp.post_norms() ? ", post-norms" : "",
                hp.qkv_bias() ? ", Q/K/V bias" : "");
    if (hp.embed_scale != 1.0f) std::printf(", embeddings x %g", double(hp.embed_scale));
    if (hp.final_softcap > 0.0f) std::printf(", logit soft-cap %g", double(hp.final_softcap));
    if (hp.rope_scaling == blob::RopeScaling::kLinear) std::printf(", linear rope scaling x%g", double(hp.rope_scale_factor));
    if (f.rope_freqs != nullptr || (hp.flags & blob::kFlagRopeFreqs)) std::printf(", llama3 rope factors");
    std::printf("\n");
    std::printf("parameters:    %llu (%.1f M), %llu weight bytes, %.2f bits per weight overall\n",
                (unsigned long long)params, params / 1e6, (unsigned long long)weight_bytes, bpw);
    for (uint32_t d = 0; d < blob::kDTypeCount; ++d) {
      if (!ts[d].tensors) continue;
      std::printf("  %-34s %3u tensors, %11llu weights, %.2f bits per weight\n", dtype_name(d), ts[d].tensors,
                  (unsigned long long)ts[d].elements,
                  ts[d].elements ? ts[d].bytes * 8.0 / double(ts[d].elements) : 0);
    }
    if (tok_model == 2) {
      std::printf("tokenizer:     %s; %u tokens, %s\n", tokenizer_kind(tok_model), f.n_tokens,
                  space_prefix ? "a space prefixed to the text" : "no space prefix");
    } else {
      std::printf("tokenizer:     %s, pre-tokenizer %s; %u tokens, %u merges\n", tokenizer_kind(tok_model),
                  pretokenizer_kind(tok_model, tok_pre), f.n_tokens, f.n_merges);
    }
    std::printf("special ids:   bos %d, eos %d, pad %d, unk %d, im_start %d, im_end %d; BOS %s\n", hp.bos, hp.eos,
                hp.pad, hp.unk, hp.im_start, hp.im_end, hp.add_bos ? "added to prompts" : "not added");
    std::printf("chat format:   %s\n", chat_kind);
    if (hp.train_context) std::printf("context:       trained %u tokens; ", hp.train_context);
    else std::printf("context:       trained context not stored in this blob; ");
    std::printf("planned %u (the blob's default; --max-context changes it)\n", f.default_limits.max_context);
    if (plan_status.is_ok()) {
      cli::print_plan_text(stdout, plan);
    } else {
      std::printf("arena plan:    %s\n", plan_status.message());
    }
  }
  blob_unmap(&map);
  return plan_status.is_ok() ? 0 : 1;
}
