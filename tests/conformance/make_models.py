#!/usr/bin/env python3
"""Writes the small random-weight GGUF models of the llama.cpp conformance suite.

Each model is tiny (dim 64-256, 2-7 layers) but keeps a real tokenizer (SmolLM2's byte-level BPE
for llama/qwen2/qwen3, Gemma 3's SentencePiece-style vocabulary for gemma3), so a model id is a
real token and the runtime's GGUF loader sees real tokenizer metadata. The weights are random but
fully deterministic: every value comes from a splitmix64 stream keyed by sha256(model/tensor), not
from numpy's generators (whose streams may change between numpy versions), and quantization uses
the pinned `gguf` package (Q8_0, Q5_0, Q4_0, Q4_1) or the K-quant packers below (the `gguf` package
dequantizes Q4_K/Q6_K but does not quantize them). Two runs write byte-identical files; the SHA-256
of every file is recorded in goldens/models.tsv so a drift is detected (make_goldens.py and the C++
test compare it).

Offline tooling (never a runtime dependency of tern):

    python3 -m venv .venv-tools && .venv-tools/bin/pip install -r tests/conformance/requirements.txt
    .venv-tools/bin/python tests/conformance/make_models.py [--out .cache/conformance] [--only NAME ...]

It reads the tokenizer from .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf and
.cache/models/gemma-3-270m-q4_k_m.gguf (scripts/fetch_model.sh all), writes <out>/<name>.gguf and
<out>/manifest.json (name, file, sha256, bytes, architecture, shapes, tensor types).

What each model exercises is written in MODELS below and in tests/conformance/README.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER_SOURCES = {
    "smollm2": ROOT / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": ROOT / ".cache/models/gemma-3-270m-q4_k_m.gguf",
}
QK_K = 256


@dataclass
class Spec:
    name: str
    arch: str                      # llama | qwen2 | qwen3 | gemma3
    tokenizer: str                 # key of TOKENIZER_SOURCES
    what: str                      # what the model exercises (README)
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    n_ff: int
    head_dim: int | None = None    # written as attention.key_length/value_length when set
    rope_base: float = 10000.0
    eps: float = 1e-5
    types: dict = field(default_factory=dict)   # role -> ggml type name; roles below
    tied: bool = True              # no output.weight: the head is token_embd
    rope_llama3: dict | None = None          # llama3 rope: rope_freqs.weight tensor (factors)
    rope_scaling: tuple | None = None        # (type, factor) keys, e.g. ("linear", 4.0)
    sliding_window: int | None = None        # gemma3: attention.sliding_window
    context_length: int = 2048


# Roles: embd (token_embd), out (output.weight), q k v o (attention), gate up down (FFN).
def _all(t: str, **over) -> dict:
    d = {r: t for r in ("embd", "out", "q", "k", "v", "o", "gate", "up", "down")}
    d.update(over)
    return d


MODELS = [
    Spec("llama_f16", "llama", "smollm2",
         "llama block, F16 everywhere, untied output.weight, GQA 4:2, rope NORM (adjacent pairs)",
         n_embd=64, n_layer=2, n_head=4, n_head_kv=2, n_ff=192,
         types=_all("F16"), tied=False),
    Spec("llama_rope_llama3_q8_0", "llama", "smollm2",
         "llama 3 rope scaling (rope_freqs.weight factors, factor 8, low 1, high 4, original ctx 64: "
         "factors 1, 1, 2.44 and 8 for the 13 lowest of 16 frequencies), Q8_0 weights and Q8_0 tied embedding, GQA 4:1",
         n_embd=128, n_layer=2, n_head=4, n_head_kv=1, n_ff=256, rope_base=500000.0,
         types=_all("Q8_0"),
         rope_llama3=dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                          original_max_position_embeddings=64)),
    Spec("llama_rope_linear_q4_0", "llama", "smollm2",
         "rope.scaling.type=linear, rope.scaling.factor=4 (positions scaled by 1/4); Q4_0 and Q4_1 "
         "matrices, Q8_0 tied embedding (SmolLM2's own type mix)",
         n_embd=64, n_layer=3, n_head=4, n_head_kv=4, n_ff=160,
         types=_all("Q4_1", embd="Q8_0", q="Q4_0", k="Q4_0", down="Q4_0"),
         rope_scaling=("linear", 4.0)),
    Spec("qwen2_q4_k", "qwen2", "smollm2",
         "qwen2 block: Q/K/V biases, rope NEOX (halves), Q4_K matrices and a Q4_K tied embedding "
         "(k-quant get_rows), eps 1e-6, rope base 1e6",
         n_embd=256, n_layer=2, n_head=4, n_head_kv=2, n_ff=512, rope_base=1e6, eps=1e-6,
         types=_all("Q4_K")),
    Spec("qwen3_q6_k", "qwen3", "smollm2",
         "qwen3 block: per-head RMSNorm of Q and K before rope (QK-norm), explicit key_length, "
         "rope NEOX, Q6_K matrices and embedding, untied Q8_0 output.weight",
         n_embd=256, n_layer=2, n_head=4, n_head_kv=2, n_ff=512, head_dim=64, rope_base=1e6,
         eps=1e-6, types=_all("Q6_K", out="Q8_0"), tied=False),
    Spec("gemma3_q4_k_m", "gemma3", "gemma3",
         "gemma3 with the real 270M Q4_K_M file's type mix (Q8_0 embedding, Q5_0 q/k/gate/up, Q8_0 v, "
         "Q4_K attn_output, Q6_K ffn_down); 6 layers: 0-4 sliding window 8 (rope base 10000), "
         "5 global (rope base 1e6); QK-norm, post-attention and post-FFN norms, GELU(tanh) gate, "
         "embedding scaled by sqrt(n_embd), head_dim 64 > n_embd/n_head, GQA 4:1, tied head",
         n_embd=64, n_layer=6, n_head=4, n_head_kv=1, n_ff=256, head_dim=64, rope_base=1e6,
         eps=1e-6, sliding_window=8, context_length=32768,
         types=_all("Q5_0", embd="Q8_0", v="Q8_0", o="Q4_K", down="Q6_K")),
    Spec("gemma3_f16", "gemma3", "gemma3",
         "gemma3 in F16 (weights exact in a float reference): 7 layers, so a sliding layer (6) "
         "follows the global one (5); window 8, head_dim 32, GQA 4:2",
         n_embd=64, n_layer=7, n_head=4, n_head_kv=2, n_ff=128, head_dim=32, rope_base=1e6,
         eps=1e-6, sliding_window=8, context_length=32768, types=_all("F16")),
]


# ---------------------------------------------------------------------------------------------
# Deterministic numbers

_M64 = (1 << 64) - 1


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:8], "little")


def uniform(key: str, n: int) -> np.ndarray:
    """n float64 values in [-1, 1) from splitmix64 keyed by key (numpy-version independent)."""
    with np.errstate(over="ignore"):
        i = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(_seed(key)) + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (2.0 / 2**53) - 1.0


# ---------------------------------------------------------------------------------------------
# K-quant packers (llama.cpp's block layouts, ggml-common.h; checked against gguf.quants.dequantize)

def _f16(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16)


def quantize_q4_k(w: np.ndarray) -> np.ndarray:
    """[rows, cols] float32 (cols % 256 == 0) -> [rows, cols/256*144] uint8 block_q4_K.

    y = d*sc[j]*q - dmin*m[j], q in 0..15, sc/m 6-bit per 32 values. A plain min/max fit (not
    llama.cpp's search): any valid block serves a conformance test.
    """
    rows, cols = w.shape
    x = w.astype(np.float32).reshape(-1, 8, 32)                      # [blocks, sub, 32]
    lo = np.minimum(x.min(axis=-1), 0.0)
    hi = x.max(axis=-1)
    scale = (hi - lo) / 15.0                                         # [blocks, 8]
    mins = -lo
    d = _f16(scale.max(axis=-1) / 63.0)                              # [blocks]
    dmin = _f16(mins.max(axis=-1) / 63.0)
    df, dminf = d.astype(np.float32), dmin.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(df[:, None] > 0, np.rint(scale / df[:, None]), 0).clip(0, 63).astype(np.uint8)
        m = np.where(dminf[:, None] > 0, np.rint(mins / dminf[:, None]), 0).clip(0, 63).astype(np.uint8)
        step = (df[:, None] * sc.astype(np.float32))[..., None]
        off = (dminf[:, None] * m.astype(np.float32))[..., None]
        q = np.where(step > 0, np.rint((x + off) / step), 0).clip(0, 15).astype(np.uint8)
    scales = np.zeros((x.shape[0], 12), np.uint8)
    scales[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    scales[:, 4:8] = (m[:, 0:4] & 63) | ((m[:, 4:8] >> 4) << 6)
    scales[:, 8:12] = (sc[:, 4:8] & 15) | ((m[:, 4:8] & 15) << 4)
    qs = (q[:, 0::2, :] | (q[:, 1::2, :] << 4)).reshape(-1, 128)      # chunk c: sub 2c low, 2c+1 high
    blocks = np.concatenate([d.reshape(-1, 1).view(np.uint8), dmin.reshape(-1, 1).view(np.uint8),
                             scales, qs], axis=1)
    return blocks.reshape(rows, cols // QK_K * 144)


def quantize_q6_k(w: np.ndarray) -> np.ndarray:
    """[rows, cols] float32 (cols % 256 == 0) -> [rows, cols/256*210] uint8 block_q6_K.

    y = d*sc[j]*(q-32), q in 0..63, sc int8 per 16 values.
    """
    rows, cols = w.shape
    x = w.astype(np.float32).reshape(-1, 16, 16)
    amax = np.abs(x).max(axis=-1)                                    # [blocks, 16]
    scale = amax / 31.0
    d = _f16(scale.max(axis=-1) / 127.0)
    df = d.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(df[:, None] > 0, np.rint(scale / df[:, None]), 0).clip(-128, 127).astype(np.int8)
        step = (df[:, None] * sc.astype(np.float32))[..., None]
        q = (np.where(step != 0, np.rint(x / step), 0).clip(-32, 31) + 32).astype(np.uint8)
    q = q.reshape(-1, 2, 4, 32)                                      # [blocks, half, t, l]
    ql = np.empty((q.shape[0], 2, 2, 32), np.uint8)                  # [blocks, half, k, l] -> 64 bytes/half
    ql[:, :, 0, :] = (q[:, :, 0, :] & 15) | ((q[:, :, 2, :] & 15) << 4)
    ql[:, :, 1, :] = (q[:, :, 1, :] & 15) | ((q[:, :, 3, :] & 15) << 4)
    qh = ((q[:, :, 0, :] >> 4) | ((q[:, :, 1, :] >> 4) << 2) | ((q[:, :, 2, :] >> 4) << 4)
          | ((q[:, :, 3, :] >> 4) << 6))                            # [blocks, half, 32]
    blocks = np.concatenate([ql.reshape(-1, 128), qh.reshape(-1, 64), sc.view(np.uint8),
                             d.reshape(-1, 1).view(np.uint8)], axis=1)
    return blocks.reshape(rows, cols // QK_K * 210)


def encode(w: np.ndarray, type_name: str):
    """Returns (array, raw_dtype or None) for GGUFWriter.add_tensor."""
    from gguf import GGMLQuantizationType as T
    from gguf.quants import quantize
    w = w.astype(np.float32)
    if type_name == "F32":
        return w, None
    if type_name == "F16":
        return w.astype(np.float16), None
    if type_name == "Q4_K":
        return quantize_q4_k(w), T.Q4_K
    if type_name == "Q6_K":
        return quantize_q6_k(w), T.Q6_K
    t = T[type_name]
    return quantize(w, t), t


# ---------------------------------------------------------------------------------------------
# Models

def _head_dim(s: Spec) -> int:
    return s.head_dim or s.n_embd // s.n_head


def llama3_rope_factors(head_dim: int, base: float, p: dict) -> np.ndarray:
    """The factors of convert_hf_to_gguf.py LlamaModel.generate_extra_tensors (llama 3 rope), in
    Python float64 (the converter uses float32 torch; float64 keeps the file platform-independent)."""
    factor, low, high = p["factor"], p["low_freq_factor"], p["high_freq_factor"]
    old = p["original_max_position_embeddings"]
    low_wl, high_wl = old / low, old / high
    out = []
    for i in range(0, head_dim, 2):
        wl = 2 * math.pi * math.pow(base, i / head_dim)       # 2*pi / freq
        if wl < high_wl:
            out.append(1.0)
        elif wl > low_wl:
            out.append(factor)
        else:
            smooth = (old / wl - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def tensors(s: Spec, n_vocab: int):
    """Yields (gguf name, float32 array [ne1, ne0] or [ne0], ggml type name) in file order."""
    hd = _head_dim(s)
    q_dim, kv_dim = s.n_head * hd, s.n_head_kv * hd

    def mat(name, rows, cols, role, gain=1.0):
        a = gain * math.sqrt(3.0) / math.sqrt(cols)                    # std gain/sqrt(fan_in)
        w = (a * uniform(f"{s.name}/{name}", rows * cols)).reshape(rows, cols)
        return name, w.astype(np.float32), s.types[role]

    def vec(name, n, centre, spread, type_name="F32"):
        return name, (centre + spread * uniform(f"{s.name}/{name}", n)).astype(np.float32), type_name

    # Embedding rows with std 3/sqrt(dim): tied logits then have std ~3 (peaked, not flat).
    emb_gain = 3.0
    yield mat("token_embd.weight", n_vocab, s.n_embd, "embd", emb_gain)
    if s.rope_llama3:
        yield "rope_freqs.weight", llama3_rope_factors(hd, s.rope_base, s.rope_llama3), "F32"
    for i in range(s.n_layer):
        b = f"blk.{i}"
        yield vec(f"{b}.attn_norm.weight", s.n_embd, 1.0, 0.2)
        qk_gain = 1.0 if s.arch in ("qwen3", "gemma3") else 2.0          # sharper attention without QK-norm
        yield mat(f"{b}.attn_q.weight", q_dim, s.n_embd, "q", qk_gain)
        yield mat(f"{b}.attn_k.weight", kv_dim, s.n_embd, "k", qk_gain)
        yield mat(f"{b}.attn_v.weight", kv_dim, s.n_embd, "v")
        if s.arch == "qwen2":
            yield vec(f"{b}.attn_q.bias", q_dim, 0.0, 0.5)
            yield vec(f"{b}.attn_k.bias", kv_dim, 0.0, 0.5)
            yield vec(f"{b}.attn_v.bias", kv_dim, 0.0, 0.5)
        if s.arch in ("qwen3", "gemma3"):
            yield vec(f"{b}.attn_q_norm.weight", hd, 1.5, 0.3)
            yield vec(f"{b}.attn_k_norm.weight", hd, 1.5, 0.3)
        yield mat(f"{b}.attn_output.weight", s.n_embd, q_dim, "o")
        if s.arch == "gemma3":
            yield vec(f"{b}.post_attention_norm.weight", s.n_embd, 1.0, 0.2)
        yield vec(f"{b}.ffn_norm.weight", s.n_embd, 1.0, 0.2)
        yield mat(f"{b}.ffn_gate.weight", s.n_ff, s.n_embd, "gate")
        yield mat(f"{b}.ffn_up.weight", s.n_ff, s.n_embd, "up")
        yield mat(f"{b}.ffn_down.weight", s.n_embd, s.n_ff, "down")
        if s.arch == "gemma3":
            yield vec(f"{b}.post_ffw_norm.weight", s.n_embd, 1.0, 0.2)
    yield vec("output_norm.weight", s.n_embd, 1.0, 0.2)
    if not s.tied:
        yield mat("output.weight", n_vocab, s.n_embd, "out", emb_gain)


def copy_tokenizer(writer, source: Path) -> int:
    """Copies every tokenizer.* key of source (raw bytes, original value types); returns n_vocab."""
    from gguf import GGUFReader, GGUFValueType
    r = GGUFReader(source)
    n_vocab = None
    for key, f in r.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vt = f.types[0]
        if vt == GGUFValueType.ARRAY:
            sub = f.types[1]
            if sub == GGUFValueType.STRING:
                val = [bytes(f.parts[i]) for i in f.data]
            else:
                val = [f.parts[i].tolist()[0] for i in f.data]
            writer.add_key_value(key, val, vt, sub_type=sub)
            if key == "tokenizer.ggml.tokens":
                n_vocab = len(val)
        elif vt == GGUFValueType.STRING:
            writer.add_key_value(key, bytes(f.parts[f.data[0]]), vt)
        else:
            writer.add_key_value(key, f.parts[f.data[0]].tolist()[0], vt)
    assert n_vocab, source
    return n_vocab


def write_model(s: Spec, out_dir: Path) -> dict:
    import gguf
    path = out_dir / f"{s.name}.gguf"
    tmp = path.with_suffix(".gguf.tmp")
    w = gguf.GGUFWriter(str(tmp), s.arch)
    w.add_name(f"tern conformance {s.name}")
    a = s.arch
    w.add_uint32(f"{a}.context_length", s.context_length)
    w.add_uint32(f"{a}.embedding_length", s.n_embd)
    w.add_uint32(f"{a}.block_count", s.n_layer)
    w.add_uint32(f"{a}.feed_forward_length", s.n_ff)
    w.add_uint32(f"{a}.attention.head_count", s.n_head)
    w.add_uint32(f"{a}.attention.head_count_kv", s.n_head_kv)
    w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", s.eps)
    w.add_float32(f"{a}.rope.freq_base", s.rope_base)
    if s.head_dim:
        w.add_uint32(f"{a}.attention.key_length", s.head_dim)
        w.add_uint32(f"{a}.attention.value_length", s.head_dim)
    if a == "llama":
        w.add_uint32(f"{a}.rope.dimension_count", _head_dim(s))
    if s.rope_scaling:
        w.add_string(f"{a}.rope.scaling.type", s.rope_scaling[0])
        w.add_float32(f"{a}.rope.scaling.factor", s.rope_scaling[1])
    if s.sliding_window:
        w.add_uint32(f"{a}.attention.sliding_window", s.sliding_window)
    n_vocab = copy_tokenizer(w, TOKENIZER_SOURCES[s.tokenizer])
    if a == "llama":
        w.add_uint32(f"{a}.vocab_size", n_vocab)
    types = {}
    for name, arr, type_name in tensors(s, n_vocab):
        data, raw = encode(arr, type_name)
        if raw is None:
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_dtype=raw)
        types[name] = type_name
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return dict(name=s.name, file=path.name, sha256=digest, bytes=path.stat().st_size,
                n_vocab=n_vocab, spec=asdict(s), tensor_types=types)


def self_check() -> None:
    """The K-quant packers round-trip through gguf's dequantizer to the values they meant."""
    from gguf import GGMLQuantizationType as T
    from gguf.quants import dequantize
    x = (uniform("selfcheck", 4 * 512) * 0.3).reshape(4, 512).astype(np.float32)
    x[1, :256] = 0.0                                       # an all-zero block
    x[2] += 0.5                                            # all-positive blocks (min 0)
    for t, fn, tol in ((T.Q4_K, quantize_q4_k, 0.05), (T.Q6_K, quantize_q6_k, 0.02)):
        y = dequantize(fn(x), t)
        err = np.abs(y - x).max()
        assert y.shape == x.shape and err < tol, (t.name, err)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / ".cache/conformance"))
    ap.add_argument("--only", nargs="*", help="model names (default: all)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    self_check()
    manifest_path = out / "manifest.json"
    manifest = {}
    if args.only and manifest_path.exists():
        manifest = {m["name"]: m for m in json.loads(manifest_path.read_text())["models"]}
    for s in MODELS:
        if args.only and s.name not in args.only:
            continue
        m = write_model(s, out)
        manifest[s.name] = m
        print(f"{m['file']}\t{m['bytes']}\t{m['sha256']}", flush=True)
    import importlib.metadata as md
    doc = dict(gguf=md.version("gguf"), numpy=np.__version__,
               models=[manifest[s.name] for s in MODELS if s.name in manifest])
    manifest_path.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
