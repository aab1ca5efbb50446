#include "runtime/model.h"

#include <cmath>

#include "kernels/weight_quant.h"

namespace tern {

namespace {

// One pool job over the rows of up to kMaxMatmulParts matrices that read the
// same input, taken as one range of rows: one dispatch (one wake-up and one
// wait) instead of one per matrix. Decode issues a job per matrix otherwise,
// 8 per layer, and with 2 threads each costs a hand-off between cores.
constexpr uint32_t kMaxMatmulParts = 3;
struct MatmulJob {
  const KernelTable* k;
  const WeightMatrix* w[kMaxMatmulParts];
  float* y[kMaxMatmulParts];  // y[p]: [n, w[p]->rows]
  uint32_t parts;
  MatmulInput in;  // the float rows (kF32 weights) and their quantized form
  uint32_t n;
};

void run_matmul(void* ctx, uint32_t r0, uint32_t r1, uint32_t) {
  const MatmulJob& j = *static_cast<const MatmulJob*>(ctx);
  uint32_t first = 0;  // part p is rows [first, first + rows) of the joint range
  for (uint32_t p = 0; p < j.parts; first += j.w[p]->rows, ++p) {
    const WeightMatrix& w = *j.w[p];
    const uint32_t lo = r0 > first ? r0 : first;
    const uint32_t hi = r1 < first + w.rows ? r1 : first + w.rows;
    if (lo >= hi) continue;
    const uint32_t b = lo - first, e = hi - first;
    // Non-null: Model::init checked every matrix's type against the table.
    matmul_for(*j.k, w.type)(w, j.in, j.n, b, e, j.y[p], w.rows);
  }
}

struct AttentionJob {
  const KernelTable* k;
  const KvPool* pool;        // the pool that holds this layer
  uint32_t slot;             // the layer's index in that pool
  bool window_pool;          // the pool is the sliding-window one: read seq->window
  KvSequence* const* seq;    // [n] each row's sequence
  const uint32_t* pos;       // [n] each row's position
  const float* q;   // [n, q_dim]
  float* out;       // [n, q_dim]
  float* scores;    // [threads, max_context]
  uint32_t max_context;
  uint32_t heads, head_dim;
  uint32_t window;  // 0: global attention
  float scale;
};

// Work items are (row, head) pairs, row-major: a worker's range is cut into
// runs of heads of one row, each over its own sequence's blocks.
void run_attention(void* ctx, uint32_t begin, uint32_t end, uint32_t worker) {
  const AttentionJob& j = *static_cast<const AttentionJob*>(ctx);
  uint32_t i = begin;
  while (i < end) {
    const uint32_t t = i / j.heads;
    const uint32_t h0 = i % j.heads;
    const uint32_t h1 = (end - t * j.heads) < j.heads ? end - t * j.heads : j.heads;
    const KvSequence& seq = j.window_pool ? *j.seq[t]->window : *j.seq[t];
    AttentionArgs a;
    a.q = j.q + size_t(t) * j.heads * j.head_dim;
    a.out = j.out + size_t(t) * j.heads * j.head_dim;
    a.scratch = j.scores + size_t(worker) * j.max_context;
    a.heads = j.heads;
    a.h0 = h0;
    a.h1 = h1;
    a.n_ctx = j.pos[t] + 1;  // causal: this token sees itself and everything before
    a.scale = j.scale;
    // A sliding window: itself and the window - 1 positions before it.
    a.first = j.window != 0 && a.n_ctx > j.window ? a.n_ctx - j.window : 0;
    const PagedKv kv = j.pool->layer_view(seq, j.slot);
    if (kv.type == KvType::kInt8) {
      j.k->attention_i8kv(kv, a);
    } else {
      j.k->attention(kv, a);
    }
    i = t * j.heads + h1;
  }
}

}  // namespace

// Every matrix the forward pass multiplies must have a product in the chosen
// table: a variant that lacks a weight type is refused here, by name, rather
// than read through another type's kernel.
Status check_kernels_cover(const ModelFile& file, const KernelTable& k) {
  auto check = [&](const WeightMatrix& w, const char* what, uint32_t layer) -> Status {
    if (matmul_for(k, w.type) != nullptr) return Status::ok();
    return Status::error(StatusCode::kUnsupportedIsa,
                         "kernel variant '%s' lacks weight type %s (%s, layer %u): use another --isa "
                         "(scalar has every type)",
                         k.name, weight_type_name(w.type), what, layer);
  };
  TERN_RETURN_IF_ERROR(check(file.output, "output", 0));
  for (uint32_t l = 0; l < file.hp.layers; ++l) {
    const LayerWeights& L = file.layers[l];
    const WeightMatrix* ms[] = {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down};
    const char* names[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    for (size_t i = 0; i < 7; ++i) TERN_RETURN_IF_ERROR(check(*ms[i], names[i], l));
  }
  return Status::ok();
}

Status Model::init(const ModelFile* file, const RunLimits& limits, const KernelTable* kernels, ThreadPool* pool,
                   Arena* arena) {
  file_ = file;
  k_ = kernels;
  pool_ = pool;
  limits_ = limits;
  const ModelShape shape = file->shape();
  MemoryPlan plan;
  const char* why = nullptr;
  if (!plan_memory(shape, limits, &plan, &why)) {
    return Status::error(StatusCode::kInvalidArgument, "run limits rejected: %s", why);
  }
  if (limits.threads > pool->size()) {
    return Status::error(StatusCode::kInvalidArgument, "limits plan %u threads, pool has %u", limits.threads,
                         pool->size());
  }
  const Hparams& hp = file->hp;
  const uint32_t wide = hp.q_dim() > hp.dim ? hp.q_dim() : hp.dim;
  max_cols_ = wide > hp.ffn ? wide : hp.ffn;

  // Allocate exactly the planner's list, in its order.
  BufferSpec specs[kMaxBufferSpecs] = {};
  const size_t n_specs = model_buffer_specs(shape, limits, specs);
  void* bufs[kMaxBufferSpecs] = {};
  if (file->layers == nullptr) {
    return Status::error(StatusCode::kInternal, "bind_weights must run before Model::init");
  }
  TERN_RETURN_IF_ERROR(check_kernels_cover(*file, *kernels));
  if (limits.kv_type == KvType::kInt8 && (kernels->attention_i8kv == nullptr || kernels->kv_store_i8 == nullptr)) {
    return Status::error(StatusCode::kUnsupportedIsa, "kernel variant '%s' has no int8 KV attention: use --kv f16",
                         kernels->name);
  }
  for (size_t i = 1; i < n_specs; ++i) {  // spec 0 is the layer table bind_weights took
    bufs[i] = arena->allocate(specs[i].bytes, specs[i].region);
    if (bufs[i] == nullptr) {
      return Status::error(StatusCode::kArenaTooSmall, "arena too small for activations (%zu bytes of '%s')",
                           specs[i].bytes, specs[i].region);
    }
  }
  act_.x = static_cast<float*>(bufs[1]);
  act_.xb = static_cast<float*>(bufs[2]);
  act_.q = static_cast<float*>(bufs[3]);
  act_.k = static_cast<float*>(bufs[4]);
  act_.v = static_cast<float*>(bufs[5]);
  act_.hb = static_cast<float*>(bufs[6]);
  act_.hb2 = static_cast<float*>(bufs[7]);
  act_.proj = static_cast<float*>(bufs[8]);
  act_.rope = static_cast<float*>(bufs[9]);
  act_.scores = static_cast<float*>(bufs[10]);
  act_.act_q = static_cast<int8_t*>(bufs[11]);
  act_.act_r = static_cast<int8_t*>(bufs[12]);
  act_.act_d = static_cast<float*>(bufs[13]);
  act_.act_s = static_cast<float*>(bufs[14]);
  act_.logits = static_cast<float*>(bufs[15]);
  act_.row_token = static_cast<int32_t*>(bufs[16]);
  act_.row_pos = static_cast<uint32_t*>(bufs[17]);
  act_.row_seq = static_cast<KvSequence**>(bufs[18]);
  act_.row_logits = static_cast<uint8_t*>(bufs[19]);

  // RoPE tables: table 0 for the layers configured like layer 0, table 1
  // (gemma3: the global layers' base) for the others; the planner counted
  // shape.rope_tables of them.
  rope_tables_ = shape.rope_tables;
  const LayerConfig first = file->layer_config(0);
  rope_base_[0] = rope_base_[1] = first.rope_base;
  rope_scaled_[0] = rope_scaled_[1] = first.rope_scaled;
  for (uint32_t l = 1; l < hp.layers; ++l) {
    const LayerConfig c = file->layer_config(l);
    if (c.rope_base != first.rope_base || c.rope_scaled != first.rope_scaled) {
      rope_base_[1] = c.rope_base;
      rope_scaled_[1] = c.rope_scaled;
      break;
    }
  }

  // KV pools, as the planner laid them out: sliding layers in a window pool
  // of recycled blocks when plan.window_layers says so.
  has_window_pool_ = plan.window_layers > 0;
  uint32_t n_global = 0, n_window = 0;
  for (uint32_t l = 0; l < hp.layers; ++l) {
    in_window_pool_[l] = has_window_pool_ && file->layer_config(l).sliding;
    kv_slot_[l] = uint16_t(in_window_pool_[l] ? n_window++ : n_global++);
  }
  KvPoolShape kv;
  kv.layers = n_global;
  kv.kv_heads = hp.kv_heads;
  kv.head_dim = hp.head_dim;
  kv.block_tokens = limits.kv_block_tokens;
  kv.type = limits.kv_type;
  kv.n_blocks = plan.kv_block_count;
  kv.prefix_cache = true;  // as the planner lays it out (runtime/memory_plan.cc)
  TERN_RETURN_IF_ERROR(kv_.init(kv, arena));
  if (has_window_pool_) {
    KvPoolShape w = kv;
    w.layers = n_window;
    w.n_blocks = plan.window_kv_block_count;
    TERN_RETURN_IF_ERROR(window_kv_.init(w, arena));
    kv_.set_window_pool(&window_kv_, file->max_window);
  }
  return Status::ok();
}

void Model::embed(const int32_t* tokens, uint32_t n) {
  const uint32_t dim = file_->hp.dim;
  const float scale = file_->hp.embed_scale;
  for (uint32_t t = 0; t < n; ++t) {
    float* x = act_.x + size_t(t) * dim;
    dequantize_row(file_->token_embd, uint32_t(tokens[t]), x);
    if (scale != 1.0f) {
      for (uint32_t i = 0; i < dim; ++i) x[i] *= scale;
    }
  }
}

uint32_t Model::rope_table(uint32_t layer) const {
  if (rope_tables_ == 1) return 0;
  const LayerConfig c = file_->layer_config(layer);
  return c.rope_base == rope_base_[0] && c.rope_scaled == rope_scaled_[0] ? 0 : 1;
}

void Model::rope_angles(uint32_t n) {
  // theta_i = pos * inv_freq_i, inv_freq_i = base^(-2i/rope_dim), adjusted by
  // the model's rope scaling on the tables that use it.
  const Hparams& hp = file_->hp;
  const uint32_t half = hp.rope_dim / 2;
  for (uint32_t table = 0; table < rope_tables_; ++table) {
    for (uint32_t t = 0; t < n; ++t) {
      float* cs = act_.rope + (size_t(table) * limits_.prefill_chunk + t) * hp.rope_dim;
      const double pos = double(act_.row_pos[t]);
      for (uint32_t i = 0; i < half; ++i) {
        double inv_freq = std::pow(double(rope_base_[table]), -2.0 * double(i) / double(hp.rope_dim));
        if (rope_scaled_[table]) {
          if (hp.rope_scaling == blob::RopeScaling::kLinear) inv_freq /= double(hp.rope_scale_factor);
          if (file_->rope_freqs != nullptr) inv_freq /= double(file_->rope_freqs[i]);  // llama3
        }
        const double theta = pos * inv_freq;
        cs[2 * i] = float(std::cos(theta));
        cs[2 * i + 1] = float(std::sin(theta));
      }
    }
  }
}

void Model::add_residual(const float* out_norm, uint32_t n) {
  const Hparams& hp = file_->hp;
  const uint32_t dim = hp.dim;
  float* x = act_.x;
  float* p = act_.proj;
  if (out_norm != nullptr) {  // sandwich norm (gemma): normalize the block's output first
    for (uint32_t t = 0; t < n; ++t) k_->rmsnorm(p + size_t(t) * dim, out_norm, dim, hp.norm_eps, p + size_t(t) * dim);
  }
  for (size_t i = 0, e = size_t(n) * dim; i < e; ++i) x[i] += p[i];
}

void Model::quantize(const float* x, uint32_t n, uint32_t cols) {
  ActRowsQ8 a{act_.act_q, act_.act_r, act_.act_d, act_.act_s, cols};
  k_->quantize_rows_q8(x, n, cols, a);
}

void Model::matmul(const WeightMatrix& w, const float* x, uint32_t n, float* y) {
  const WeightMatrix* ws[1] = {&w};
  float* ys[1] = {y};
  matmuls(ws, ys, 1, x, n);
}

void Model::matmuls(const WeightMatrix* const* ws, float* const* ys, uint32_t count, const float* x, uint32_t n) {
  if (count > kMaxMatmulParts) count = kMaxMatmulParts;  // callers pass 1..3
  MatmulJob job{k_, {}, {}, count, MatmulInput{x, ActRowsQ8{act_.act_q, act_.act_r, act_.act_d, act_.act_s, ws[0]->cols}}, n};
  uint32_t rows = 0;
  for (uint32_t p = 0; p < count; ++p) {
    job.w[p] = ws[p];
    job.y[p] = ys[p];
    rows += ws[p]->rows;
  }
  pool_->parallel_for(rows, 16, run_matmul, &job);
}

void Model::attention_block(uint32_t layer, uint32_t n) {
  const Hparams& hp = file_->hp;
  const LayerWeights& L = file_->layers[layer];
  const uint32_t dim = hp.dim, q_dim = hp.q_dim(), kv_dim = hp.kv_dim();
  for (uint32_t t = 0; t < n; ++t) {
    k_->rmsnorm(act_.x + size_t(t) * dim, L.attn_norm, dim, hp.norm_eps, act_.xb + size_t(t) * dim);
  }
  quantize(act_.xb, n, dim);
  {
    const WeightMatrix* ws[3] = {&L.wq, &L.wk, &L.wv};
    float* ys[3] = {act_.q, act_.k, act_.v};
    matmuls(ws, ys, 3, act_.xb, n);
  }
  if (L.q_bias != nullptr) {  // qwen2
    for (uint32_t t = 0; t < n; ++t) {
      for (uint32_t i = 0; i < q_dim; ++i) act_.q[size_t(t) * q_dim + i] += L.q_bias[i];
      for (uint32_t i = 0; i < kv_dim; ++i) act_.k[size_t(t) * kv_dim + i] += L.k_bias[i];
      for (uint32_t i = 0; i < kv_dim; ++i) act_.v[size_t(t) * kv_dim + i] += L.v_bias[i];
    }
  }
  if (L.q_norm != nullptr) {  // qwen3, gemma3: RMSNorm of each head of Q and K before RoPE
    const uint32_t hd = hp.head_dim;
    for (uint32_t r = 0; r < n * hp.heads; ++r) k_->rmsnorm(act_.q + size_t(r) * hd, L.q_norm, hd, hp.norm_eps, act_.q + size_t(r) * hd);
    for (uint32_t r = 0; r < n * hp.kv_heads; ++r) k_->rmsnorm(act_.k + size_t(r) * hd, L.k_norm, hd, hp.norm_eps, act_.k + size_t(r) * hd);
  }

  const bool in_window = in_window_pool_[layer];
  KvPool& pool = in_window ? window_kv_ : kv_;
  const uint32_t slot = kv_slot_[layer];
  const float* rope = act_.rope + size_t(rope_table(layer)) * limits_.prefill_chunk * hp.rope_dim;
  for (uint32_t t = 0; t < n; ++t) {
    const float* cs = rope + size_t(t) * hp.rope_dim;
    k_->rope(act_.q + size_t(t) * q_dim, hp.heads, hp.head_dim, hp.rope_dim, cs, hp.rope_adjacent_pairs);
    k_->rope(act_.k + size_t(t) * kv_dim, hp.kv_heads, hp.head_dim, hp.rope_dim, cs, hp.rope_adjacent_pairs);
    const KvSequence& seq = in_window ? *act_.row_seq[t]->window : *act_.row_seq[t];
    if (limits_.kv_type == KvType::kInt8) {
      k_->kv_store_i8(pool.layer_view(seq, slot), pool.k_bytes(slot), pool.v_bytes(slot), act_.row_pos[t],
                      act_.k + size_t(t) * kv_dim, act_.v + size_t(t) * kv_dim);
    } else {
      k_->kv_store(pool.layer_view(seq, slot), pool.k_layer(slot), pool.v_layer(slot), act_.row_pos[t],
                   act_.k + size_t(t) * kv_dim, act_.v + size_t(t) * kv_dim);
    }
  }

  const LayerConfig cfg = file_->layer_config(layer);
  AttentionJob job{k_,         &pool,       slot,    in_window, act_.row_seq, act_.row_pos, act_.q, act_.xb,
                   act_.scores, limits_.max_context, hp.heads, hp.head_dim, cfg.sliding ? cfg.window : 0,
                   hp.attn_scale};
  pool_->parallel_for(n * hp.heads, 1, run_attention, &job);

  quantize(act_.xb, n, q_dim);
  matmul(L.wo, act_.xb, n, act_.proj);
  add_residual(L.attn_post_norm, n);
}

void Model::mlp_block(uint32_t layer, uint32_t n) {
  const Hparams& hp = file_->hp;
  const LayerWeights& L = file_->layers[layer];
  const uint32_t dim = hp.dim;
  for (uint32_t t = 0; t < n; ++t) {
    k_->rmsnorm(act_.x + size_t(t) * dim, L.ffn_norm, dim, hp.norm_eps, act_.xb + size_t(t) * dim);
  }
  quantize(act_.xb, n, dim);
  {
    const WeightMatrix* ws[2] = {&L.gate, &L.up};
    float* ys[2] = {act_.hb, act_.hb2};
    matmuls(ws, ys, 2, act_.xb, n);
  }
  if (hp.activation == blob::Activation::kGeluTanh) {
    k_->gelu_mul(act_.hb, act_.hb2, n * hp.ffn);
  } else {
    k_->silu_mul(act_.hb, act_.hb2, n * hp.ffn);
  }
  quantize(act_.hb, n, hp.ffn);
  matmul(L.down, act_.hb, n, act_.proj);
  add_residual(L.ffn_post_norm, n);
}

void Model::output_head(uint32_t n, uint32_t rows) {
  const Hparams& hp = file_->hp;
  const uint32_t dim = hp.dim;
  for (uint32_t t = 0, r = 0; t < n; ++t) {
    if (act_.row_logits[t] == 0) continue;
    k_->rmsnorm(act_.x + size_t(t) * dim, file_->output_norm, dim, hp.norm_eps, act_.xb + size_t(r) * dim);
    ++r;
  }
  quantize(act_.xb, rows, dim);
  matmul(file_->output, act_.xb, rows, act_.logits);
  const float cap = hp.final_softcap;
  if (cap > 0.0f) {  // gemma 2 style soft-capping of the logits
    float* l = act_.logits;
    for (size_t i = 0, e = size_t(rows) * hp.vocab; i < e; ++i) l[i] = cap * std::tanh(l[i] / cap);
  }
}

Status Model::forward(KvSequence* seq, const int32_t* tokens, uint32_t n, Logits logits) {
  if (n == 0 || n > limits_.prefill_chunk) {
    return Status::error(StatusCode::kInvalidArgument, "forward of %u tokens; 1..%u per call", n,
                         limits_.prefill_chunk);
  }
  if (seq == nullptr) return Status::error(StatusCode::kInvalidArgument, "forward of a null sequence");
  for (uint32_t t = 0; t < n; ++t) {
    act_.row_pos[t] = seq->n_past + t;
    act_.row_seq[t] = seq;
    act_.row_logits[t] = logits == Logits::kAll || (logits == Logits::kLast && t + 1 == n);
  }
  return forward_batch(Batch{tokens, act_.row_pos, act_.row_seq, act_.row_logits, n});
}

Status Model::check_batch(const Batch& b, uint32_t* logit_rows) const {
  const Hparams& hp = file_->hp;
  if (b.n == 0 || b.n > limits_.prefill_chunk) {
    return Status::error(StatusCode::kInvalidArgument, "forward of %u rows; 1..%u per call", b.n,
                         limits_.prefill_chunk);
  }
  if (b.token == nullptr || b.pos == nullptr || b.seq == nullptr) {
    return Status::error(StatusCode::kInvalidArgument, "batch without tokens, positions or sequences");
  }
  uint32_t rows = 0;
  for (uint32_t t = 0; t < b.n; ++t) {
    if (b.token[t] < 0 || uint32_t(b.token[t]) >= hp.vocab) {
      return Status::error(StatusCode::kInvalidToken, "token id %d at index %u outside the vocabulary of %u",
                           b.token[t], t, hp.vocab);
    }
    if (b.seq[t] == nullptr) return Status::error(StatusCode::kInvalidArgument, "batch row %u has no sequence", t);
    rows += b.want_logits != nullptr && b.want_logits[t] != 0;
  }
  if (rows > limits_.logit_rows) {
    return Status::error(StatusCode::kInvalidArgument, "%u logit rows requested, the arena holds %u", rows,
                         limits_.logit_rows);
  }
  // Runs of rows of one sequence: positions n_past, n_past + 1, ..; a
  // sequence in two runs is refused (its rows must be adjacent).
  const uint32_t block = limits_.kv_block_tokens;
  for (uint32_t s = 0; s < b.n;) {
    KvSequence* seq = b.seq[s];
    uint32_t e = s;
    while (e < b.n && b.seq[e] == seq) {
      if (b.pos[e] != seq->n_past + (e - s)) {
        return Status::error(StatusCode::kInvalidArgument,
                             "batch row %u: position %u, but its sequence continues at %u (a sequence's rows "
                             "must be adjacent and in order from its length)",
                             e, b.pos[e], seq->n_past + (e - s));
      }
      ++e;
    }
    for (uint32_t p = 0; p < s; ++p) {
      if (b.seq[p] == seq) {
        return Status::error(StatusCode::kInvalidArgument,
                             "batch rows %u and %u are the same sequence but not adjacent", p, s);
      }
    }
    if (uint64_t(seq->n_past) + (e - s) > limits_.max_context) {
      return Status::error(StatusCode::kContextFull, "context full: %u + %u tokens exceed max context %u",
                           seq->n_past, e - s, limits_.max_context);
    }
    if (has_window_pool_) {
      // The window pool keeps only what the queries of a call can see: the
      // first query (at n_past) sees from n_past + 1 - window. A sequence
      // rewound below what it still holds cannot go on (those positions
      // were recycled).
      const uint32_t pos0 = seq->n_past, window = file_->max_window;
      const uint32_t keep_from = pos0 + 1 > window ? pos0 + 1 - window : 0;
      if (seq->window == nullptr) {
        return Status::error(StatusCode::kInternal, "sequence has no sliding-window block table");
      }
      if (pos0 > 0 && keep_from / block < seq->window->first_block) {
        return Status::error(StatusCode::kInvalidArgument,
                             "the sliding-window cache no longer holds positions %u..%u (the sequence was rewound "
                             "past its window): reset it and prefill again",
                             keep_from, pos0 - 1);
      }
    }
    s = e;
  }
  *logit_rows = rows;
  return Status::ok();
}

Status Model::reserve_batch(uint32_t n) {
  KvSequence* const* seq = act_.row_seq;
  for (uint32_t s = 0; s < n;) {
    uint32_t e = s;
    while (e < n && seq[e] == seq[s]) ++e;
    KvSequence* q = seq[s];
    const uint32_t pos0 = q->n_past, end = pos0 + (e - s);
    Status st = kv_.reserve(q, end);
    if (st.is_ok() && has_window_pool_) {
      const uint32_t window = file_->max_window;
      st = window_kv_.reserve(q->window, end, pos0 + 1 > window ? pos0 + 1 - window : 0);
      // On failure give back what the global reserve took; the window
      // pool's recycled blocks were below anything a query still sees.
      if (!st.is_ok()) kv_.truncate(q, pos0);
    }
    if (!st.is_ok()) {
      // All or nothing: the sequences before this one give their new blocks back.
      for (uint32_t p = 0; p < s; ++p) {
        if (p == 0 || seq[p] != seq[p - 1]) kv_.truncate(seq[p], seq[p]->n_past);
      }
      return st;
    }
    s = e;
  }
  return Status::ok();
}

Status Model::forward_batch(const Batch& b) {
  uint32_t logit_rows = 0;
  TERN_RETURN_IF_ERROR(check_batch(b, &logit_rows));
  const uint32_t n = b.n;
  // The rows, copied into the model's own arrays (forward() passes those
  // arrays themselves: copying onto itself is harmless).
  for (uint32_t t = 0; t < n; ++t) {
    act_.row_pos[t] = b.pos[t];
    act_.row_seq[t] = b.seq[t];
    act_.row_logits[t] = b.want_logits != nullptr && b.want_logits[t] != 0;
  }
  TERN_RETURN_IF_ERROR(reserve_batch(n));

  const Hparams& hp = file_->hp;
  rope_angles(n);
  embed(b.token, n);
  for (uint32_t l = 0; l < hp.layers; ++l) {
    attention_block(l, n);
    mlp_block(l, n);
  }
  for (uint32_t t = 0; t < n; ++t) {  // each sequence ends at its last row's position + 1
    KvSequence* q = act_.row_seq[t];
    q->n_past = act_.row_pos[t] + 1;
    if (has_window_pool_) q->window->n_past = q->n_past;
  }
  if (logit_rows > 0) output_head(n, logit_rows);
  return Status::ok();
}

}  // namespace tern
