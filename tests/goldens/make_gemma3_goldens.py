#!/usr/bin/env python3
"""Float32 reference goldens for Gemma 3 270M (base model), made with Hugging Face transformers.

transformers loads the SAME GGUF file tern packs (.cache/models/gemma-3-270m-q4_k_m.gguf),
dequantizes every tensor to float32 with gguf-py (Q8_0, Q5_0, Q4_K, Q6_K; norms are F32) and runs
its own PyTorch Gemma3ForCausalLM in float32 (SDPA attention; sliding-window layers 512 wide).
Nothing here shares code with tern. The files use exactly the line formats of the SmolLM2 goldens
(model_greedy.tsv, model_teacher_forced.tsv, model_continuations.txt; tests/goldens/README.md):

  tests/goldens/gemma3_greedy.tsv            prompt ids (BOS first), greedy continuation, per-step gaps
  tests/goldens/gemma3_teacher_forced.tsv    per-position top-1, logp(next), gap, top-5
  tests/goldens/gemma3_continuations.txt     the same, decoded, for humans

Before writing anything it checks (and prints) that the model transformers builds is Gemma 3 as
llama.cpp reads the GGUF: the config against the GGUF metadata and Gemma 3's fixed
hyper-parameters, the norm weights (the GGUF stores 1+w, transformers must give back w), every
weight bit for bit (hand-decoded blocks of each quant type, and the committed per-tensor SHA-256
of gguf-py's dequantization), the embedding scale and RoPE tables, and the sliding window (its
exact edge, and that the long prompts' positions past 512 depend on it).

Environment: the reference venv of tests/goldens/requirements.txt (the same as make_goldens.py):
  python3 -m venv .cache/venv-ref
  .cache/venv-ref/bin/pip install -r tests/goldens/requirements.txt
Run from the repo root, offline:
  HF_HUB_OFFLINE=1 .cache/venv-ref/bin/python tests/goldens/make_gemma3_goldens.py
Deterministic (greedy, float32): two runs give byte-identical files.
"""

import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# make_goldens sets the offline environment variables before importing transformers.
from make_goldens import CODE, ESSAY, STORY, fmt_floats, hex_or_dash, ids_or_dash, top2_gap  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL_DIR = os.path.join(REPO, ".cache", "models")
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
OUT_DIR = os.path.dirname(os.path.abspath(__file__))
DEQUANT_HASHES = os.path.join(OUT_DIR, "gemma3_270m_q4_k_m_dequant.tsv")
PREFIX = "gemma3"

N_GEN = 64         # greedy tokens per prompt (fewer if the model emits a stop token)
TOP_K = 5          # top-k ids/logps kept per teacher-forced position
BOS_ID = 2
STOP_IDS = (1, 106)  # <eos>, <end_of_turn>
SWA = 512          # sliding window of the local layers
ROW_CHUNK = 128    # teacher-forced rows turned into float64 log-probs at a time (vocab is 262,144)

# --------------------------------------------------------------------------
# Prompts (plain text: a base model, no chat template; BOS prepended)
# --------------------------------------------------------------------------

STORY_3 = STORY.rsplit("\n\n", 1)[0]  # the story without its last paragraph (keeps seq <= 1024)
ESSAY_OPENING = ESSAY.split(". ")[0]  # "The history of computing is often told as ... machines getting smaller"

PROMPTS = [
    ("capital", "The capital of France is"),
    ("en_prose", "The old lighthouse keeper climbed the spiral stairs for the last time. At the top, he"),
    ("en_list", "Things to pack for a weekend camping trip:\n1. A tent\n2. A sleeping bag\n3."),
    ("py_code", "def is_prime(n):\n    \"\"\"Return True if n is a prime number.\"\"\"\n    if n < 2:\n"),
    ("arithmetic", "12 + 7 = 19\n45 - 18 = 27\n6 * 8 = 48\n144 / 12 = 12\n23 + 59 = 82\n17 * 3 ="),
    ("fr_prose", "La Révolution française a commencé en 1789. Au début, le peuple de Paris"),
    ("de_prose", "Berlin ist die Hauptstadt Deutschlands. Die Stadt liegt an der Spree und ist bekannt für"),
    ("zh_prose", "长城是中国古代的伟大建筑，它"),
    ("question", "Question: Why do leaves change color in autumn?\nAnswer:"),
    ("emoji", "Weekend plans 🎉: a hike in the hills ⛰️ on Saturday morning, pizza 🍕 with friends, and"),
    # > 512 tokens: teacher-forced positions past the sliding window.
    ("long_prose", STORY_3 + "\n\n" + ESSAY),
    ("long_code", CODE),
    # The essay, then its opening again: copying the second time needs tokens > 512 positions back,
    # which only the global layers (5, 11, 17) can see.
    ("long_recall", ESSAY + "\n\n" + ESSAY_OPENING),
]


# --------------------------------------------------------------------------
# Forward passes
# --------------------------------------------------------------------------

def log_probs(logits):
    """float32 logits [n, vocab] -> float64 log-probabilities [n, vocab]."""
    return torch.log_softmax(logits.double(), dim=-1)


@torch.no_grad()
def greedy(model, ids, n_new):
    """Greedy decode with the KV cache; stops after a stop token (included). Returns (gen, gaps, logps)."""
    out = model(torch.tensor([ids]), use_cache=True, logits_to_keep=1)
    past = out.past_key_values
    logits = out.logits[0, -1]
    gen, gaps, logps = [], [], []
    for _ in range(n_new):
        lp = log_probs(logits[None])[0]
        tok_id, gap = top2_gap(lp)
        gen.append(tok_id)
        gaps.append(gap)
        logps.append(float(lp[tok_id]))
        if tok_id in STOP_IDS:
            break
        out = model(torch.tensor([[tok_id]]), past_key_values=past, use_cache=True)
        past = out.past_key_values
        logits = out.logits[0, -1]
    return gen, gaps, logps


@torch.no_grad()
def forward_logits(model, seq):
    """One full forward pass (no cache): float32 logits [len, vocab]."""
    return model(torch.tensor([seq]), use_cache=False).logits[0]


@torch.no_grad()
def teacher_forced(model, seq):
    """Rows i in [0, len-2]: (pos, token, next, top1, logp_next, gap, topk_ids, topk_logps), plus the
    float64 log-prob of the next token per row (for the sliding-window check)."""
    logits = forward_logits(model, seq)
    rows = []
    for c0 in range(0, len(seq) - 1, ROW_CHUNK):
        c1 = min(c0 + ROW_CHUNK, len(seq) - 1)
        lp = log_probs(logits[c0:c1])
        top_v, top_i = torch.topk(lp, TOP_K, dim=-1)
        for r in range(c1 - c0):
            i = c0 + r
            nxt = seq[i + 1]
            rows.append((i, seq[i], nxt, int(top_i[r, 0]), float(lp[r, nxt]),
                         float(top_v[r, 0] - top_v[r, 1]), top_i[r].tolist(), top_v[r].tolist()))
    return rows


# --------------------------------------------------------------------------
# Checks: the model transformers built is the Gemma 3 llama.cpp reads from this GGUF
# --------------------------------------------------------------------------

def gguf_meta(reader, key):
    f = reader.fields[key]
    v = f.contents()
    return v


def check_config(model, reader):
    """The config against the GGUF metadata and Gemma 3's fixed hyper-parameters (llama.cpp's
    LLM_ARCH_GEMMA3 hard-codes what the GGUF does not carry: local RoPE base 10000, the 5:1
    sliding/global pattern, attention scale 1/sqrt(key_length) for every size but 27B)."""
    c = model.config
    a = "gemma3"
    n_layer = gguf_meta(reader, f"{a}.block_count")
    expect = {
        "model_type": ("gemma3_text", c.model_type),
        "hidden_size": (gguf_meta(reader, f"{a}.embedding_length"), c.hidden_size),
        "num_hidden_layers": (n_layer, c.num_hidden_layers),
        "intermediate_size": (gguf_meta(reader, f"{a}.feed_forward_length"), c.intermediate_size),
        "num_attention_heads": (gguf_meta(reader, f"{a}.attention.head_count"), c.num_attention_heads),
        "num_key_value_heads": (gguf_meta(reader, f"{a}.attention.head_count_kv"), c.num_key_value_heads),
        "head_dim (key_length)": (gguf_meta(reader, f"{a}.attention.key_length"), c.head_dim),
        "head_dim (value_length)": (gguf_meta(reader, f"{a}.attention.value_length"), c.head_dim),
        "query_pre_attn_scalar (= key_length)": (gguf_meta(reader, f"{a}.attention.key_length"),
                                                 c.query_pre_attn_scalar),
        "sliding_window": (gguf_meta(reader, f"{a}.attention.sliding_window"), c.sliding_window),
        "rms_norm_eps (f32)": (np.float32(gguf_meta(reader, f"{a}.attention.layer_norm_rms_epsilon")),
                               np.float32(c.rms_norm_eps)),
        "rope_theta global": (gguf_meta(reader, f"{a}.rope.freq_base"),
                              c.rope_parameters["full_attention"]["rope_theta"]),
        "rope_theta local": (10000.0, c.rope_parameters["sliding_attention"]["rope_theta"]),
        "rope_type global": ("default", c.rope_parameters["full_attention"]["rope_type"]),
        "rope_type local": ("default", c.rope_parameters["sliding_attention"]["rope_type"]),
        "layer_types": (["sliding_attention" if il % 6 < 5 else "full_attention" for il in range(n_layer)],
                        list(c.layer_types)),
        "vocab_size": (len(reader.fields["tokenizer.ggml.tokens"].data), c.vocab_size),
        "attn_logit_softcapping": (None, c.attn_logit_softcapping),
        "final_logit_softcapping": (None, c.final_logit_softcapping),
        "hidden_activation": ("gelu_pytorch_tanh", c.hidden_activation),
        "use_bidirectional_attention": (False, c.use_bidirectional_attention),
        "tie_word_embeddings (no output.weight)": (True, c.tie_word_embeddings),
        "bos_token_id": (gguf_meta(reader, "tokenizer.ggml.bos_token_id"), c.bos_token_id),
        "eos_token_id": (gguf_meta(reader, "tokenizer.ggml.eos_token_id"), c.eos_token_id),
    }
    for k, (want, got) in expect.items():
        ok = want == got
        print(f"  config {k}: {got!r}" + ("" if ok else f"  EXPECTED {want!r}"))
        assert ok, k
    assert abs(float(np.float32(c.rms_norm_eps)) - 1e-6) < 1e-12
    # Runtime attributes the config alone does not guarantee.
    inner = model.model
    eps = {m.eps for m in model.modules() if type(m).__name__ == "Gemma3RMSNorm"}
    assert eps == {c.rms_norm_eps}, eps
    scale = inner.embed_tokens.embed_scale
    sqrtf_640 = np.sqrt(np.float32(c.hidden_size))  # llama.cpp: ggml_scale(inpL, sqrtf(n_embd))
    assert scale.dtype == torch.float32 and float(scale) == float(sqrtf_640), (scale, sqrtf_640)
    print(f"  embed_scale = {float(scale)!r} (== float32 sqrtf(640)); RMSNorm eps {eps}")
    for layer in inner.layers:
        at = layer.self_attn
        assert at.scaling == 256 ** -0.5 and at.attn_logit_softcapping is None
        assert at.sliding_window == (SWA if at.layer_type == "sliding_attention" else None)
    for lt, base in (("full_attention", 1e6), ("sliding_attention", 1e4)):
        inv = getattr(inner.rotary_emb, f"{lt}_inv_freq")
        want = 1.0 / (base ** (torch.arange(0, 256, 2, dtype=torch.int64).float() / 256))
        d = float((inv - want).abs().max())
        print(f"  rope {lt}: inv_freq[0..2] = {inv[:3].tolist()}, max|inv_freq - 1/base^(2i/256)| = {d}")
        assert inv.shape == (128,) and d == 0.0
        assert getattr(inner.rotary_emb, f"{lt}_attention_scaling") == 1.0
    print(f"  attention: {model.config._attn_implementation}, scale 1/16, no softcap; "
          f"sliding layers {[i for i, t in enumerate(c.layer_types) if t == 'sliding_attention']}")


def hf_params_by_gguf_name(model, n_layer):
    """GGUF tensor name -> (transformers parameter, is_norm)."""
    m = model.model
    out = {"token_embd.weight": (m.embed_tokens.weight, False), "output_norm.weight": (m.norm.weight, True)}
    for i in range(n_layer):
        L = m.layers[i]
        b = f"blk.{i}."
        out.update({
            b + "attn_q.weight": (L.self_attn.q_proj.weight, False),
            b + "attn_k.weight": (L.self_attn.k_proj.weight, False),
            b + "attn_v.weight": (L.self_attn.v_proj.weight, False),
            b + "attn_output.weight": (L.self_attn.o_proj.weight, False),
            b + "attn_q_norm.weight": (L.self_attn.q_norm.weight, True),
            b + "attn_k_norm.weight": (L.self_attn.k_norm.weight, True),
            b + "ffn_gate.weight": (L.mlp.gate_proj.weight, False),
            b + "ffn_up.weight": (L.mlp.up_proj.weight, False),
            b + "ffn_down.weight": (L.mlp.down_proj.weight, False),
            b + "attn_norm.weight": (L.input_layernorm.weight, True),
            b + "post_attention_norm.weight": (L.post_attention_layernorm.weight, True),
            b + "ffn_norm.weight": (L.pre_feedforward_layernorm.weight, True),
            b + "post_ffw_norm.weight": (L.post_feedforward_layernorm.weight, True),
        })
    return out


def hand_dequant(t):
    """A from-scratch decode of the raw GGUF blocks (ggml's block layouts), float32."""
    import gguf
    raw = np.asarray(t.data).reshape(-1).view(np.uint8)
    T = gguf.GGMLQuantizationType
    f16 = lambda b: b.copy().view(np.float16).astype(np.float32)  # noqa: E731
    if t.tensor_type == T.Q8_0:     # 34 bytes: d f16, 32 x int8
        b = raw.reshape(-1, 34)
        return b[:, 2:].copy().view(np.int8).astype(np.float32) * f16(b[:, :2])
    if t.tensor_type == T.Q5_0:     # 22 bytes: d f16, qh u32 (bit j = 5th bit of element j), 16 x nibble pairs
        b = raw.reshape(-1, 22)
        d = f16(b[:, :2])
        qh = b[:, 2:6].copy().view("<u4")                                       # [n, 1]
        qs = b[:, 6:]
        lo = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int32)      # elements 0..15, 16..31
        hi = ((qh >> np.arange(32, dtype=np.uint32)) & 1).astype(np.int32) << 4  # [n, 32]
        return ((lo | hi) - 16).astype(np.float32) * d
    if t.tensor_type == T.Q4_K:     # 144 bytes: d, dmin f16, 12 bytes of 6-bit scales/mins, 128 x nibble pairs
        b = raw.reshape(-1, 144)
        d, dmin = f16(b[:, 0:2]), f16(b[:, 2:4])
        s = b[:, 4:16].astype(np.int32)
        qs = b[:, 16:]
        sc = np.empty((len(b), 8), np.int32)
        mn = np.empty((len(b), 8), np.int32)
        for j in range(8):
            if j < 4:
                sc[:, j], mn[:, j] = s[:, j] & 63, s[:, j + 4] & 63
            else:
                sc[:, j] = (s[:, j + 4] & 0x0F) | ((s[:, j - 4] >> 6) << 4)
                mn[:, j] = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
        y = np.empty((len(b), 256), np.float32)
        for c in range(4):  # 64 elements per chunk: low nibbles of 32 bytes, then high nibbles
            q = qs[:, 32 * c:32 * c + 32]
            for h, nib in enumerate((q & 0x0F, q >> 4)):
                j = 2 * c + h
                d1 = d[:, 0] * sc[:, j].astype(np.float32)
                m1 = dmin[:, 0] * mn[:, j].astype(np.float32)
                y[:, 64 * c + 32 * h:64 * c + 32 * h + 32] = d1[:, None] * nib.astype(np.float32) - m1[:, None]
        return y
    if t.tensor_type == T.Q6_K:     # 210 bytes: 128 ql, 64 qh, 16 x int8 scales, d f16
        b = raw.reshape(-1, 210)
        ql, qh = b[:, :128].astype(np.int32), b[:, 128:192].astype(np.int32)
        sc = b[:, 192:208].copy().view(np.int8).astype(np.float32)
        d = f16(b[:, 208:210])[:, 0]
        y = np.empty((len(b), 256), np.float32)
        for n in range(2):  # 128 elements per half
            L, H, S = ql[:, 64 * n:64 * n + 64], qh[:, 32 * n:32 * n + 32], sc[:, 8 * n:8 * n + 8]
            for l in range(32):
                is_ = l // 16
                q1 = ((L[:, l] & 0xF) | (((H[:, l] >> 0) & 3) << 4)) - 32
                q2 = ((L[:, l + 32] & 0xF) | (((H[:, l] >> 2) & 3) << 4)) - 32
                q3 = ((L[:, l] >> 4) | (((H[:, l] >> 4) & 3) << 4)) - 32
                q4 = ((L[:, l + 32] >> 4) | (((H[:, l] >> 6) & 3) << 4)) - 32
                base = 128 * n
                y[:, base + l] = (d * S[:, is_]) * q1.astype(np.float32)
                y[:, base + l + 32] = (d * S[:, is_ + 2]) * q2.astype(np.float32)
                y[:, base + l + 64] = (d * S[:, is_ + 4]) * q3.astype(np.float32)
                y[:, base + l + 96] = (d * S[:, is_ + 6]) * q4.astype(np.float32)
        return y
    raise ValueError(t.tensor_type)


def check_weights(model, reader):
    """Every GGUF tensor is in the model, bit for bit (norms: transformers' w with 1 + w == GGUF)."""
    n_layer = model.config.num_hidden_layers
    params = hf_params_by_gguf_name(model, n_layer)
    tensors = {t.name: t for t in reader.tensors}
    assert set(params) == set(tensors), (set(params) ^ set(tensors))
    n_model_params = len(list(model.parameters()))  # lm_head is tied: not a separate parameter
    assert n_model_params == len(tensors), (n_model_params, len(tensors))
    assert model.lm_head.weight is model.model.embed_tokens.weight or torch.equal(
        model.lm_head.weight, model.model.embed_tokens.weight)
    print(f"  {len(tensors)} GGUF tensors <-> {n_model_params} model parameters; lm_head tied to token_embd")

    # 1. Hand decode of one tensor of each quant type.
    for name in ("token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_output.weight",
                 "blk.0.ffn_down.weight", "blk.17.attn_v.weight", "blk.17.ffn_gate.weight"):
        t = tensors[name]
        w = params[name][0].detach().numpy()
        ref = hand_dequant(t).reshape(w.shape)
        diff = float(np.abs(ref - w).max())
        print(f"  {name}: {t.tensor_type.name} {tuple(w.shape)} max|transformers - hand decode| = {diff}")
        assert diff == 0.0, name

    # 2. Every quantized tensor against the committed SHA-256 of gguf-py's dequantization
    #    (tests/goldens/gemma3_270m_q4_k_m_dequant.tsv, also checked against tern's decoder).
    hashes = {}
    with open(DEQUANT_HASHES, encoding="ascii") as f:
        for line in f:
            if not line.startswith("#"):
                name, _, _, digest = line.rstrip("\n").split("\t")
                hashes[name] = digest
    assert set(hashes) == set(tensors)
    n_hash = 0
    norm_stats = []
    for name, (p, is_norm) in params.items():
        w = p.detach().numpy()
        assert w.dtype == np.float32
        if is_norm:
            # The GGUF (llama.cpp's converter) stores Gemma's norm weights with +1 added; transformers'
            # GGUF loader subtracts 1 and Gemma3RMSNorm multiplies by (1 + w) in float32.
            raw = np.asarray(tensors[name].data, dtype=np.float32).reshape(w.shape)
            eff = (np.float32(1.0) + w).astype(np.float32)
            assert np.array_equal(eff, raw), (name, float(np.abs(eff - raw).max()))
            assert hashlib.sha256(np.ascontiguousarray(raw, "<f4").tobytes()).hexdigest() == hashes[name]
            norm_stats.append((name, float(raw.min()), float(raw.max()), float(w.min()), float(w.max())))
        else:
            digest = hashlib.sha256(np.ascontiguousarray(w, "<f4").tobytes()).hexdigest()
            assert digest == hashes[name], name
            n_hash += 1
    print(f"  {n_hash} quantized tensors: SHA-256 of transformers' float32 weights == {os.path.basename(DEQUANT_HASHES)}")
    lo = min(s[1] for s in norm_stats)
    hi = max(s[2] for s in norm_stats)
    print(f"  {len(norm_stats)} norm tensors: GGUF values in [{lo:.4f}, {hi:.4f}] (already 1+w); "
          f"float32(1 + transformers' w) == GGUF value exactly for every element")
    for name in ("output_norm.weight", "blk.0.attn_norm.weight", "blk.0.attn_q_norm.weight"):
        s = next(x for x in norm_stats if x[0] == name)
        print(f"    {name}: GGUF [{s[1]:.4f}, {s[2]:.4f}], transformers w [{s[3]:.4f}, {s[4]:.4f}]")


def next_logp_top1(logits, seq):
    """Per row i in [0, len-2]: float64 log-prob of seq[i+1], and the argmax."""
    lp, top1 = [], []
    for c0 in range(0, len(seq) - 1, ROW_CHUNK):
        c1 = min(c0 + ROW_CHUNK, len(seq) - 1)
        l64 = log_probs(logits[c0:c1])
        lp.append(l64.gather(1, torch.tensor(seq[c0 + 1:c1 + 1])[:, None])[:, 0])
        top1.append(l64.argmax(-1))
    return torch.cat(lp), torch.cat(top1)


@torch.no_grad()
def check_sliding_window(model, seqs):
    """The window's exact edge, and how much the long prompts' positions past it depend on it."""
    cfg = model.config
    # Edge: a query at position p sees keys p-511..p (llama.cpp: masked when p - p_key >= 512).
    seq = seqs["long_recall"][:SWA + 24]
    base = forward_logits(model, seq)
    for w, first in ((SWA + 1, SWA), (SWA - 1, SWA - 1)):
        cfg.sliding_window = w
        try:
            other = forward_logits(model, seq)
        finally:
            cfg.sliding_window = SWA
        diff = (other - base).abs().amax(dim=-1)
        nz = torch.nonzero(diff).flatten().tolist()
        print(f"  window {w} vs {SWA}: logits identical before position {nz[0] if nz else None}, "
              f"differ at {len(nz)} of the {len(seq) - nz[0] if nz else 0} positions from there")
        assert nz and nz[0] == first and diff[:first].max() == 0.0
    # Dependence: the same sequences with the local layers attending to everything.
    out = {}
    for name, seq in seqs.items():
        if len(seq) <= SWA:
            continue
        lp, top1 = next_logp_top1(forward_logits(model, seq), seq)
        cfg.sliding_window = 1 << 20
        try:
            lp_full, top1_full = next_logp_top1(forward_logits(model, seq), seq)
        finally:
            cfg.sliding_window = SWA
        d = (lp - lp_full).abs()
        flips = top1 != top1_full
        out[name] = (len(seq) - 1 - SWA, int(flips[SWA:].sum()), float(d[SWA:].mean()), float(d[SWA:].max()),
                     float(d[:SWA].max()))
        print(f"  {name}: {out[name][0]} positions >= {SWA}; with no window there: top-1 differs at {out[name][1]}, "
              f"|dlogp(next)| mean {out[name][2]:.4f} max {out[name][3]:.4f} (positions < {SWA}: max {out[name][4]})")
        assert out[name][4] == 0.0
    return out


# --------------------------------------------------------------------------

def main():
    t_start = time.time()
    gguf_path = os.path.join(MODEL_DIR, GGUF_NAME)
    if not os.path.exists(gguf_path):
        sys.exit(f"missing {gguf_path} (scripts/fetch_model.sh gemma3)")
    import gguf
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, gguf "
          f"{__import__('importlib.metadata').metadata.version('gguf')}, threads {torch.get_num_threads()}")
    reader = gguf.GGUFReader(gguf_path)

    tok = AutoTokenizer.from_pretrained(MODEL_DIR, gguf_file=GGUF_NAME)
    assert tok.bos_token_id == BOS_ID and tok.eos_token_id == 1
    assert tok.convert_ids_to_tokens(list(STOP_IDS)) == ["<eos>", "<end_of_turn>"]
    print(f"tokenizer: {type(tok).__name__}, {len(tok)} ids, bos={tok.bos_token!r}({tok.bos_token_id}) "
          f"eos={tok.eos_token!r}({tok.eos_token_id}) add_bos_token={getattr(tok, 'add_bos_token', None)}")

    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, gguf_file=GGUF_NAME, dtype=torch.float32)
    model.eval()
    print(f"model: {type(model).__name__}; checks:")
    check_config(model, reader)
    check_weights(model, reader)
    t_checks = time.time()

    prompt_ids = {}
    for name, text in PROMPTS:
        ids = tok.encode(text, add_special_tokens=True)
        assert ids[0] == BOS_ID and BOS_ID not in ids[1:] and not set(ids[1:]) & set(STOP_IDS), name
        # prompt_text is the text after BOS; it must round-trip exactly.
        assert tok.decode(ids[1:], skip_special_tokens=False) == text, name
        prompt_ids[name] = ids

    greedy_lines, tf_lines, txt = [], [], []
    seqs = {}
    n_tf = n_mismatch = 0
    for name, text in PROMPTS:
        ids = prompt_ids[name]
        gen, gaps, logps = greedy(model, ids, N_GEN)
        seq = ids + gen
        seqs[name] = seq
        rows = teacher_forced(model, seq)
        # The no-cache pass must pick the same tokens over the continuation, except at near-ties.
        for (i, _, nxt, top1, _, gap, _, _) in rows[len(ids) - 1:]:
            if top1 != nxt:
                n_mismatch += 1
                print(f"  {name}: cached vs uncached argmax differ at pos {i} (gap {gap:.6f})")
        cont = tok.decode(gen, skip_special_tokens=False)
        greedy_lines.append("\t".join([
            name, "plain", hex_or_dash(text.encode("utf-8")),
            str(len(ids)), ids_or_dash(ids),
            str(len(gen)), ids_or_dash(gen), fmt_floats(gaps), fmt_floats(logps),
        ]) + "\n")
        for (i, cur, nxt, top1, lpn, gap, ti, tv) in rows:
            tf_lines.append(f"{name}\t{i}\t{cur}\t{nxt}\t{top1}\t{lpn:.6f}\t{gap:.6f}\t"
                            f"{','.join(str(x) for x in ti)}\t{','.join(f'{x:.6f}' for x in tv)}\n")
        n_tf += len(rows)
        min_gap = min(gaps)
        txt.append(f"=== {name} (plain): {len(ids)} prompt ids (BOS first), {len(gen)} generated, "
                   f"min greedy gap {min_gap:.4f} ===\n--- prompt ---\n{text}\n--- continuation ---\n{cont}\n\n")
        print(f"{name}: prompt {len(ids)} ids, gen {len(gen)}, min gap {min_gap:.4f}\n  -> {cont!r}", flush=True)
    t_gold = time.time()

    print("sliding window:")
    check_sliding_window(model, seqs)

    with open(os.path.join(OUT_DIR, f"{PREFIX}_greedy.tsv"), "w", encoding="ascii", newline="\n") as f:
        f.write("# tern model goldens, Gemma 3 270M (base): greedy decoding by transformers (float32) on the "
                f"dequantized {GGUF_NAME}\n")
        f.write(f"# transformers {transformers.__version__}, torch {torch.__version__}; prompt_ids = BOS (2) + "
                f"encode(prompt_text); stop after <eos> (1) or <end_of_turn> (106) or {N_GEN} tokens\n")
        f.write("# fields (tab-separated): name, kind, prompt_text_utf8_hex, n_prompt, prompt_ids,"
                " n_gen, gen_ids, gen_gaps (logp top1 - logp top2 per step), gen_logps (logp of chosen token)\n")
        f.writelines(greedy_lines)
    with open(os.path.join(OUT_DIR, f"{PREFIX}_teacher_forced.tsv"), "w", encoding="ascii", newline="\n") as f:
        f.write(f"# tern model goldens, Gemma 3 270M (base): teacher-forced log-probs over prompt_ids + gen_ids "
                f"of {PREFIX}_greedy.tsv\n")
        f.write("# one full forward pass (no cache), float32 logits, log_softmax in float64\n")
        f.write(f"# fields (tab-separated): name, pos, token, next_token, top1, logp_next, gap (logp top1 - logp top2),"
                f" top{TOP_K}_ids (comma-separated), top{TOP_K}_logps (comma-separated)\n")
        f.writelines(tf_lines)
    with open(os.path.join(OUT_DIR, f"{PREFIX}_continuations.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write(f"Greedy continuations of Gemma 3 270M (base) from transformers on the dequantized GGUF "
                f"(for humans; see {PREFIX}_greedy.tsv).\n\n")
        f.writelines(txt)
    longest = max(len(v) for v in prompt_ids.values())
    print(f"prompts: {len(PROMPTS)}, longest {longest} ids; teacher-forced positions: {n_tf} "
          f"({sum(max(0, len(s) - 1 - SWA) for s in seqs.values())} at positions >= {SWA}); "
          f"cached/uncached argmax mismatches: {n_mismatch}")
    print(f"done in {time.time() - t_start:.1f} s (load+checks {t_checks - t_start:.1f} s, goldens "
          f"{t_gold - t_checks:.1f} s, window check {time.time() - t_gold:.1f} s)")


if __name__ == "__main__":
    main()
