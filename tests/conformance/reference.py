#!/usr/bin/env python3
"""A float64 numpy forward pass of the conformance models, compared with llama.cpp's logits.

Each GGUF is read with the `gguf` package (weights dequantized by gguf.quants.dequantize, exactly
the values stored), hyperparameters from its own metadata, and run in float64 with exact math
(RMSNorm, rope NORM/NEOX with linear scale or llama3 factors, GQA, causal + sliding-window mask,
SiLU or tanh-GELU, Gemma's embedding scale and post-norms). The differences to llama.cpp's float32
logits (<models>/<name>.llama_cpp.npy from make_goldens.py) are llama.cpp's own rounding: F16 KV
cache, activations quantized to Q8_0/Q8_K for quantized matmuls, F16 activations for F16 weights,
fp16 GELU table. They justify the tolerances of the C++ conformance test (README).

This also checks the *architecture*: a wrong rope mode, window, pattern or norm placement shows up
as large differences and top-1 disagreement, not as rounding noise.

  .venv-tools/bin/python tests/conformance/reference.py [--models .cache/conformance]

Writes tests/conformance/goldens/reference_check.tsv and prints the same table.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGUFValueType
from gguf.quants import dequantize

ROOT = Path(__file__).resolve().parents[2]
GOLDENS = Path(__file__).resolve().parent / "goldens"
NEOX_ARCHS = {"qwen2", "qwen3", "gemma3"}


class Model:
    def __init__(self, path: Path):
        r = GGUFReader(path)
        self.kv = {}
        for k, f in r.fields.items():
            if k.startswith("tokenizer.") or not f.types or f.types[0] == GGUFValueType.ARRAY:
                continue
            self.kv[k] = f.contents()
        self.w = {t.name: np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float64)
                  .reshape([int(x) for x in reversed(t.shape)]) for t in r.tensors}
        self.wtype = {t.name: t.tensor_type.name for t in r.tensors}
        a = self.arch = self.kv["general.architecture"]
        g = lambda k, d=None: self.kv.get(f"{a}.{k}", d)  # noqa: E731
        self.n_embd = g("embedding_length")
        self.n_layer = g("block_count")
        self.n_head = g("attention.head_count")
        self.n_head_kv = g("attention.head_count_kv", self.n_head)
        self.head_dim = g("attention.key_length", self.n_embd // self.n_head)
        self.eps = g("attention.layer_norm_rms_epsilon")
        self.base = g("rope.freq_base", 10000.0)
        st, sf = g("rope.scaling.type", "none"), g("rope.scaling.factor", 0.0)
        self.freq_scale = 1.0 / sf if st == "linear" and sf else 1.0
        self.window = g("attention.sliding_window")
        # llama.cpp gemma3: pattern 6 unless attention.sliding_window_pattern says otherwise;
        # layer il slides iff il % 6 < 5 (every 6th layer, 5, 11, ..., is global).
        self.pattern = g("attention.sliding_window_pattern", 6)
        self.base_swa = g("rope.freq_base_swa", 10000.0)

    def is_swa(self, il: int) -> bool:
        return self.arch == "gemma3" and bool(self.window) and il % self.pattern < self.pattern - 1


def rms(x, w, eps):
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * w


def rope(x, pos, base, scale, factors, neox):
    """x [T, H, D]; rotates pairs (2i, 2i+1) (NORM) or (i, i+D/2) (NEOX) by pos*scale*base^(-2i/D)/f_i."""
    d = x.shape[-1]
    i = np.arange(d // 2, dtype=np.float64)
    inv = base ** (-2.0 * i / d) * scale
    if factors is not None:
        inv = inv / factors
    th = pos[:, None, None].astype(np.float64) * inv[None, None, :]
    c, s = np.cos(th), np.sin(th)
    if neox:
        a, b = x[..., : d // 2], x[..., d // 2:]
        return np.concatenate([a * c - b * s, a * s + b * c], axis=-1)
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * c - b * s
    out[..., 1::2] = a * s + b * c
    return out


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def f16(x):
    return x.astype(np.float16).astype(np.float64)


def q8_blocks(x, bs, f16_scale):
    """Round rows of x to symmetric int8 per block of bs (ggml's Q8_0/Q8_1 (bs 32, f16 scale) or
    Q8_K (bs 256, f32 scale)): the activation quantization of ggml's quantized dot products."""
    sh = x.shape
    b = x.reshape(-1, bs)
    amax = np.abs(b).max(axis=1, keepdims=True)
    d = amax / 127.0
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(d > 0, np.rint(b / d), 0.0)
    if f16_scale:
        d = f16(d)
    else:
        d = d.astype(np.float32).astype(np.float64)
    return (q * d).reshape(sh)


# The type ggml converts activations to before a dot product with each weight type (ggml-cpu.c
# type_traits_cpu[].vec_dot_type).
ACT = {"F32": None, "F16": "F16", "Q8_0": "Q8_0", "Q4_0": "Q8_0", "Q5_0": "Q8_0", "Q4_1": "Q8_1",
       "Q5_1": "Q8_1", "Q4_K": "Q8_K", "Q5_K": "Q8_K", "Q6_K": "Q8_K"}


class Ops:
    """Exact float64 (emulate=False), or float64 with llama.cpp's roundings (emulate=True):
    activations rounded to the weight's vec_dot_type, K/V cache in F16 (and so Q and the softmax
    weights, which ggml converts to F16 for the F16 K*Q and V*P products), GELU through ggml's fp16
    table (input and output rounded to f16)."""

    def __init__(self, m, emulate):
        self.m, self.emulate = m, emulate

    def mm(self, x, name):
        w = self.m.w[name]
        if self.emulate:
            a = ACT[self.m.wtype[name]]
            if a == "F16":
                x = f16(x)
            elif a in ("Q8_0", "Q8_1"):
                x = q8_blocks(x, 32, True)
            elif a == "Q8_K":
                x = q8_blocks(x, 256, False)
        return x @ w.T

    def kv(self, x):
        return f16(x) if self.emulate else x

    def gelu(self, x):
        return f16(gelu_tanh(f16(x))) if self.emulate else gelu_tanh(x)


def forward(m: Model, tokens, emulate=False, ablate=()) -> np.ndarray:
    """ablate: deliberate mistakes (ABLATIONS) to show the goldens catch them."""
    W = m.w
    ops = Ops(m, emulate)
    T = len(tokens)
    pos = np.arange(T)
    x = W["token_embd.weight"][tokens].copy()
    if m.arch == "gemma3" and "no_embd_scale" not in ablate:
        x *= math.sqrt(m.n_embd)
    H, Hkv, D = m.n_head, m.n_head_kv, m.head_dim
    grp = H // Hkv
    factors = None if "no_rope_factors" in ablate else W.get("rope_freqs.weight")
    neox = (m.arch in NEOX_ARCHS) != ("rope_mode_swapped" in ablate)
    for il in range(m.n_layer):
        b = f"blk.{il}."
        h = rms(x, W[b + "attn_norm.weight"], m.eps)
        q = ops.mm(h, b + "attn_q.weight")
        k = ops.mm(h, b + "attn_k.weight")
        v = ops.mm(h, b + "attn_v.weight")
        if b + "attn_q.bias" in W and "no_qkv_bias" not in ablate:
            q, k, v = q + W[b + "attn_q.bias"], k + W[b + "attn_k.bias"], v + W[b + "attn_v.bias"]
        q, k, v = q.reshape(T, H, D), k.reshape(T, Hkv, D), v.reshape(T, Hkv, D)
        if b + "attn_q_norm.weight" in W and "no_qk_norm" not in ablate:
            q = rms(q, W[b + "attn_q_norm.weight"], m.eps)
            k = rms(k, W[b + "attn_k_norm.weight"], m.eps)
        swa = m.is_swa(il)
        if "all_layers_global" in ablate:
            swa = False
        if "all_layers_sliding" in ablate and m.window:
            swa = True
        base = m.base_swa if swa and "one_rope_base" not in ablate else m.base
        scale = 1.0 if swa or "no_linear_scale" in ablate else m.freq_scale
        q = rope(q, pos, base, scale, factors, neox)
        k = ops.kv(rope(k, pos, base, scale, factors, neox))
        v = ops.kv(v)
        kk = np.repeat(k, grp, axis=1)                     # head h reads kv head h // grp
        vv = np.repeat(v, grp, axis=1)
        if m.arch == "gemma3":                             # llama.cpp scales Q before K*Q (gemma3.cpp)
            q, kq_scale = q / math.sqrt(D), 1.0
        else:
            kq_scale = 1.0 / math.sqrt(D)
        s = np.einsum("ihd,jhd->hij", ops.kv(q), kk) * kq_scale   # K is F16: Q is rounded to F16 too
        i, j = np.meshgrid(pos, pos, indexing="ij")
        masked = j > i
        if swa:
            w = m.window + (1 if "window_plus_1" in ablate else 0)
            masked |= (i - j) >= w                         # llama.cpp: masked iff p1 - p0 >= n_swa
        s = np.where(masked[None], -np.inf, s)
        s = s - s.max(axis=-1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=-1, keepdims=True)
        o = np.einsum("hij,jhd->ihd", ops.kv(p), vv).reshape(T, H * D)   # V is F16: so are the weights
        o = ops.mm(o, b + "attn_output.weight")
        if m.arch == "gemma3" and "no_post_norms" not in ablate:
            o = rms(o, W[b + "post_attention_norm.weight"], m.eps)
        x = x + o
        h = rms(x, W[b + "ffn_norm.weight"], m.eps)
        gt = ops.mm(h, b + "ffn_gate.weight")
        up = ops.mm(h, b + "ffn_up.weight")
        gelu = (m.arch == "gemma3") != ("act_swapped" in ablate)
        act = ops.gelu(gt) if gelu else gt / (1.0 + np.exp(-gt))
        y = ops.mm(act * up, b + "ffn_down.weight")
        if m.arch == "gemma3" and "no_post_norms" not in ablate:
            y = rms(y, W[b + "post_ffw_norm.weight"], m.eps)
        x = x + y
    x = rms(x, W["output_norm.weight"], m.eps)
    return ops.mm(x, "output.weight" if "output.weight" in W else "token_embd.weight")


# Per model: the mistakes a runtime could make on it.
ABLATIONS = {
    "llama_f16": ["rope_mode_swapped"],
    "llama_rope_llama3_q8_0": ["no_rope_factors", "rope_mode_swapped"],
    "llama_rope_linear_q4_0": ["no_linear_scale"],
    "qwen2_q4_k": ["no_qkv_bias", "rope_mode_swapped"],
    "qwen3_q6_k": ["no_qk_norm", "rope_mode_swapped"],
    "gemma3_q4_k_m": ["all_layers_global", "all_layers_sliding", "window_plus_1", "one_rope_base",
                      "no_embd_scale", "no_post_norms", "no_qk_norm", "act_swapped", "rope_mode_swapped"],
    "gemma3_f16": ["all_layers_global", "all_layers_sliding", "window_plus_1", "one_rope_base"],
}


def read_models_tsv():
    rows = {}
    for line in open(GOLDENS / "models.tsv", encoding="ascii"):
        if line.startswith("#"):
            continue
        f = line.rstrip("\n").split("\t")
        rows[f[0]] = dict(tokens=[int(t) for t in f[6].split()], probes=[int(t) for t in f[7].split()])
    return rows


def lse(a):
    mx = a.max(axis=1, keepdims=True)
    return mx[:, 0] + np.log(np.exp(a - mx).sum(axis=1))


def compare(name, types, ours, ref, toks, probes, mode):
    d = np.abs(ours - ref)
    lp_d = np.abs((ours - lse(ours)[:, None]) - (ref - lse(ref)[:, None]))
    stored = []
    for p in range(len(toks)):
        ids = list(np.argsort(-ref[p], kind="stable")[:8]) + probes + ([toks[p + 1]] if p + 1 < len(toks) else [])
        stored.append(d[p, ids].max())
    a1, b1 = ours.argmax(1), ref.argmax(1)
    gaps = []
    for p in np.nonzero(a1 != b1)[0]:
        srt = np.sort(ref[p])[::-1]
        gaps.append(srt[0] - srt[1])
    return (f"{name}\t{mode}\t{'+'.join(types)}\t{d.max():.6f}\t{math.sqrt((d * d).mean()):.6f}\t"
            f"{lp_d.max():.6f}\t{max(stored):.6f}\t{np.abs(lse(ours) - lse(ref)).max():.6f}\t"
            f"{int((a1 == b1).sum())}\t{(f'{max(gaps):.6f}' if gaps else '-')}\t{ref.std():.3f}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=str(ROOT / ".cache/conformance"))
    ap.add_argument("--ablate", action="store_true",
                    help="instead: the reference with deliberate mistakes (goldens/ablations.tsv)")
    args = ap.parse_args()
    mdir = Path(args.models)
    manifest = json.loads((mdir / "manifest.json").read_text())
    meta = read_models_tsv()
    out = ["# float64 numpy reference (tests/conformance/reference.py) vs llama.cpp's float32 logits"
           " (goldens/logits.tsv), all 40 positions and all vocabulary ids\n",
           "# mode: exact = float64 math on the stored weights; emulated = the same plus llama.cpp's roundings"
           " (activations to the weight's vec_dot_type Q8_0/Q8_1/Q8_K/F16; K, V, Q and softmax weights in F16;"
           " fp16 GELU table)\n",
           "# fields: name, mode, weight types, max_abs_logit_diff, rms_logit_diff, max_abs_logprob_diff,"
           " max_abs_diff_on_stored (top-8 + probes + next), max_abs_lse_diff, top1_agree (of 40),"
           " max llama.cpp top1-top2 gap where top-1 differs ('-' if none), std of llama.cpp logits\n"]
    for mm in manifest["models"]:
        name = mm["name"]
        m = Model(mdir / mm["file"])
        toks, probes = meta[name]["tokens"], meta[name]["probes"]
        ref = np.load(mdir / f"{name}.llama_cpp.npy").astype(np.float64)
        types = sorted(set(mm["tensor_types"].values()) - {"F32"})
        modes = [("exact", ())] + [("ablated:" + a, (a,)) for a in ABLATIONS.get(name, [])] \
            if args.ablate else [("exact", ()), ("emulated", ())]
        for mode, abl in modes:
            ours = forward(m, toks, emulate=(mode == "emulated"), ablate=abl)
            row = compare(name, types, ours, ref, toks, probes, mode)
            out.append(row)
            print(row, end="", flush=True)
    if args.ablate:
        out[1] = ("# mode: exact = float64 reference; ablated:X = the same with one deliberate mistake X"
                  " (a runtime bug the goldens must catch)\n")
    (GOLDENS / ("ablations.tsv" if args.ablate else "reference_check.tsv")).write_text("".join(out), encoding="ascii")


if __name__ == "__main__":
    sys.exit(main())
