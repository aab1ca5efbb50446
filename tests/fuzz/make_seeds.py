#!/usr/bin/env python3
"""Write the fuzz seed corpus (tests/fuzz/corpus/<target>/).

Run from the repository root with a built tern-pack:
    python3 tests/fuzz/make_seeds.py build/release/bin/tern-pack

Seeds are small valid (and a few nearly-valid) inputs from which libFuzzer
mutates: three tiny llama GGUFs (a 5-token vocabulary, a 256-byte-token
GPT-2 byte-level one and a SentencePiece one laid out as Gemma 3's, tensors
in F32/F16/BF16/Q8_0/Q4_0/Q4_1), the blobs
tern-pack makes of them, tokenizer texts, REPL input streams and KV
operation sequences. Deterministic (fixed seeds), standard library only.
"""
import os
import random
import struct
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def out(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- GGUF -----------------------------------------------------------------
T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9
G_F32, G_F16, G_Q4_0, G_Q4_1, G_Q8_0, G_BF16 = 0, 1, 2, 3, 8, 30
G_Q5_0, G_Q5_1, G_Q4_K, G_Q5_K, G_Q6_K = 6, 7, 12, 13, 14


def gstr(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv_u32(k, v): return gstr(k) + struct.pack("<II", T_U32, v)
def kv_f32(k, v): return gstr(k) + struct.pack("<If", T_F32, v)
def kv_str(k, v): return gstr(k) + struct.pack("<I", T_STR) + gstr(v)
def kv_strs(k, v): return gstr(k) + struct.pack("<IIQ", T_ARR, T_STR, len(v)) + b"".join(gstr(s) for s in v)
def kv_i32s(k, v): return gstr(k) + struct.pack("<IIQ", T_ARR, T_I32, len(v)) + b"".join(struct.pack("<i", x) for x in v)
def kv_f32s(k, v): return gstr(k) + struct.pack("<IIQ", T_ARR, T_F32, len(v)) + b"".join(struct.pack("<f", x) for x in v)
def kv_bool(k, v): return gstr(k) + struct.pack("<IB", T_BOOL, 1 if v else 0)


def tensor_bytes(rng, gtype, n):
    if gtype == G_F32:
        return b"".join(struct.pack("<f", rng.gauss(0, 0.1)) for _ in range(n))
    if gtype == G_F16:
        return b"".join(struct.pack("<e", rng.gauss(0, 0.1)) for _ in range(n))
    if gtype == G_BF16:
        return b"".join(struct.pack("<f", rng.gauss(0, 0.1))[2:] for _ in range(n))
    groups = n // 32
    if gtype == G_Q8_0:
        return b"".join(struct.pack("<e", 0.002) + bytes(rng.randrange(256) for _ in range(32)) for _ in range(groups))
    if gtype == G_Q4_0:
        return b"".join(struct.pack("<e", 0.01) + bytes(rng.randrange(256) for _ in range(16)) for _ in range(groups))
    if gtype == G_Q4_1:
        return b"".join(struct.pack("<ee", 0.01, -0.08) + bytes(rng.randrange(256) for _ in range(16))
                        for _ in range(groups))
    rnd = lambda k: bytes(rng.randrange(256) for _ in range(k))
    if gtype == G_Q5_0:
        return b"".join(struct.pack("<e", 0.01) + rnd(4 + 16) for _ in range(groups))
    if gtype == G_Q5_1:
        return b"".join(struct.pack("<ee", 0.01, -0.1) + rnd(4 + 16) for _ in range(groups))
    supers = n // 256  # k-quants: 256 weights per block
    if gtype == G_Q4_K:
        return b"".join(struct.pack("<ee", 0.001, 0.002) + rnd(12 + 128) for _ in range(supers))
    if gtype == G_Q5_K:
        return b"".join(struct.pack("<ee", 0.001, 0.002) + rnd(12 + 32 + 128) for _ in range(supers))
    if gtype == G_Q6_K:
        return b"".join(rnd(128 + 64 + 16) + struct.pack("<e", 0.0005) for _ in range(supers))
    raise ValueError(gtype)


def gguf(version, kvs, tensors, seed):
    rng = random.Random(seed)
    b = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    datas, off = [], 0
    for name, ne, gtype in tensors:
        n = 1
        for d in ne:
            n *= d
        data = tensor_bytes(rng, gtype, n)
        b += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        b += struct.pack("<IQ", gtype, off)
        datas.append(data)
        off += (len(data) + 31) // 32 * 32
    b += b"\0" * (-len(b) % 32)
    for data in datas:
        b += data + b"\0" * (-len(data) % 32)
    return b


def byte_alphabet():
    """GPT-2's bytes_to_unicode: the byte-level alphabet token texts use."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def spm_tokenizer_kvs():
    """A SentencePiece ("llama") vocabulary laid out as Gemma 3's: <pad> <eos>
    <bos> <unk> <start_of_turn> <end_of_turn>, the 256 byte tokens, "\n" and
    "</s>" user-defined, then scored pieces; BOS added, no space prefix."""
    sp = "\u2581"
    toks = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
    types = [3, 3, 3, 2, 3, 3]
    toks += ["<0x%02X>" % b for b in range(256)]
    types += [6] * 256
    toks += ["\n", "</s>"]
    types += [4, 4]
    scores = [0.0] * len(toks)
    pieces = [sp] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["th", "he", "ll", "llo", "hello", "in", "er"]
    pieces += [sp + w for w in ("t", "h", "the", "hello", "w", "wor", "world")] + ["or", "ld", "user", "model", "\u00e9"]
    for i, p in enumerate(pieces):
        toks.append(p)
        types.append(1)
        scores.append(-1.0 - 0.5 * i)
    return len(toks), [
        kv_str("tokenizer.ggml.model", "llama"),
        kv_str("tokenizer.ggml.pre", "default"),
        kv_strs("tokenizer.ggml.tokens", toks),
        kv_f32s("tokenizer.ggml.scores", scores),
        kv_i32s("tokenizer.ggml.token_type", types),
        kv_u32("tokenizer.ggml.bos_token_id", 2),
        kv_u32("tokenizer.ggml.eos_token_id", 1),
        kv_u32("tokenizer.ggml.unknown_token_id", 3),
        kv_bool("tokenizer.ggml.add_bos_token", True),
        kv_bool("tokenizer.ggml.add_space_prefix", False),
    ]


def tiny_llama(tokens, types, merges, bos, eos, embd_type, out_type, v2=False, spm=False):
    vocab = len(tokens)
    if spm:
        vocab, tok_kvs = spm_tokenizer_kvs()
    else:
        tok_kvs = [
            kv_str("tokenizer.ggml.model", "gpt2"),
            kv_str("tokenizer.ggml.pre", "smollm"),
            kv_strs("tokenizer.ggml.tokens", tokens),
            kv_i32s("tokenizer.ggml.token_type", types),
            kv_strs("tokenizer.ggml.merges", merges),
            kv_u32("tokenizer.ggml.bos_token_id", bos),
            kv_u32("tokenizer.ggml.eos_token_id", eos),
            kv_str("tokenizer.chat_template",
                   "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                   "'<|im_end|>' + '\n'}}{% endfor %}"),
        ]
    kvs = [
        kv_str("general.architecture", "llama"),
        kv_u32("llama.block_count", 1),
        kv_u32("llama.context_length", 256),
        kv_u32("llama.embedding_length", 32),
        kv_u32("llama.feed_forward_length", 64),
        kv_u32("llama.attention.head_count", 2),
        kv_u32("llama.attention.head_count_kv", 1),
        kv_f32("llama.rope.freq_base", 10000.0),
        kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
        kv_u32("llama.rope.dimension_count", 16),
    ] + tok_kvs
    tensors = [
        ("token_embd.weight", [32, vocab], embd_type),
        ("output_norm.weight", [32], G_F32),
        ("blk.0.attn_norm.weight", [32], G_F32),
        ("blk.0.attn_q.weight", [32, 32], G_Q4_1),
        ("blk.0.attn_k.weight", [32, 16], G_BF16),
        ("blk.0.attn_v.weight", [32, 16], G_Q8_0),
        ("blk.0.attn_output.weight", [32, 32], G_Q4_0),
        ("blk.0.ffn_norm.weight", [32], G_F16),
        ("blk.0.ffn_gate.weight", [32, 64], G_Q4_1),
        ("blk.0.ffn_up.weight", [32, 64], G_Q4_1),
        ("blk.0.ffn_down.weight", [64, 32], G_Q4_1),
    ]
    if out_type is not None:
        tensors.insert(2, ("output.weight", [32, vocab], out_type))
    return gguf(2 if v2 else 3, kvs, tensors, seed=vocab)


def tiny_arch(arch, seed):
    """Tiny non-llama models (issue 14) with the k-quant and 5-bit types:
    qwen2 (Q/K/V bias), qwen3 (QK-norm), gemma3 (6 layers, sliding window 4 on
    layers 0-4, QK-norm, post-norms, SentencePiece vocabulary). Widths of 256
    where a k-quant needs whole 256-weight blocks."""
    dim, heads, kv, hd, ffn, layers = 32, 2, 1, 128, 256, (6 if arch == "gemma3" else 1)
    if arch == "gemma3":
        vocab, tok_kvs = spm_tokenizer_kvs()
    else:
        alpha = byte_alphabet()
        toks = [alpha[b] for b in range(256)] + ["<|im_start|>", "<|im_end|>"]
        vocab = len(toks)
        tok_kvs = [kv_str("tokenizer.ggml.model", "gpt2"), kv_str("tokenizer.ggml.pre", "smollm"),
                   kv_strs("tokenizer.ggml.tokens", toks), kv_i32s("tokenizer.ggml.token_type", [1] * 256 + [3, 3]),
                   kv_strs("tokenizer.ggml.merges", []), kv_u32("tokenizer.ggml.bos_token_id", 256),
                   kv_u32("tokenizer.ggml.eos_token_id", 257)]
    a = arch
    kvs = [kv_str("general.architecture", a), kv_u32(a + ".block_count", layers), kv_u32(a + ".context_length", 256),
           kv_u32(a + ".embedding_length", dim), kv_u32(a + ".feed_forward_length", ffn),
           kv_u32(a + ".attention.head_count", heads), kv_u32(a + ".attention.head_count_kv", kv),
           kv_u32(a + ".attention.key_length", hd), kv_u32(a + ".attention.value_length", hd),
           kv_f32(a + ".rope.freq_base", 1e6), kv_f32(a + ".attention.layer_norm_rms_epsilon", 1e-6)]
    if arch == "gemma3":
        kvs.append(kv_u32("gemma3.attention.sliding_window", 4))
    kvs += tok_kvs
    tensors = [("token_embd.weight", [dim, vocab], G_Q8_0), ("output_norm.weight", [dim], G_F32)]
    for l in range(layers):
        b = f"blk.{l}."
        tensors += [(b + "attn_norm.weight", [dim], G_F32), (b + "attn_q.weight", [dim, heads * hd], G_Q5_0),
                    (b + "attn_k.weight", [dim, kv * hd], G_Q5_1), (b + "attn_v.weight", [dim, kv * hd], G_Q8_0),
                    (b + "attn_output.weight", [heads * hd, dim], G_Q6_K if l % 2 == 0 else G_Q4_K),
                    (b + "ffn_norm.weight", [dim], G_F32), (b + "ffn_gate.weight", [dim, ffn], G_Q5_0),
                    (b + "ffn_up.weight", [dim, ffn], G_Q4_0),
                    (b + "ffn_down.weight", [ffn, dim], G_Q5_K if l % 2 == 0 else G_Q4_K)]
        if arch == "qwen2":
            tensors += [(b + "attn_q.bias", [heads * hd], G_F32), (b + "attn_k.bias", [kv * hd], G_F32),
                        (b + "attn_v.bias", [kv * hd], G_F32)]
        if arch in ("qwen3", "gemma3"):
            tensors += [(b + "attn_q_norm.weight", [hd], G_F32), (b + "attn_k_norm.weight", [hd], G_F32)]
        if arch == "gemma3":
            tensors += [(b + "post_attention_norm.weight", [dim], G_F32), (b + "post_ffw_norm.weight", [dim], G_F32)]
    return gguf(3, kvs, tensors, seed=seed)


def main():
    pack = sys.argv[1] if len(sys.argv) > 1 else "build/release/bin/tern-pack"
    alpha = byte_alphabet()
    # 5-token vocabulary (as tests/tools/packer_test.cc), untied output.
    small = tiny_llama(["a", "b", "ab", "<|im_start|>", "<|im_end|>"], [1, 1, 1, 3, 3], ["a b"], 3, 4,
                       G_F16, G_Q8_0)
    # Byte-level vocabulary: 256 byte tokens, a few merges, specials; tied output, v2.
    toks = [alpha[b] for b in range(256)]
    merges = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "Ġ 1"]
    for m in merges:
        toks.append(m.replace(" ", ""))
    toks += ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    types = [1] * (len(toks) - 3) + [3, 3, 3]
    byte_level = tiny_llama(toks, types, merges, len(toks) - 2, len(toks) - 1, G_Q8_0, None, v2=True)
    # SentencePiece vocabulary (Gemma 3's layout), tied output.
    spm = tiny_llama([], [], [], 0, 0, G_Q8_0, None, spm=True)
    out("gguf_reader", "tiny_vocab5_v3.gguf", small)
    out("gguf_reader", "tiny_spm_v3.gguf", spm)
    out("pack_e2e", "tiny_spm_v3.gguf", spm)
    out("gguf_reader", "tiny_bytelevel_v2.gguf", byte_level)
    out("gguf_reader", "header_only.gguf", b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
    for i, arch in enumerate(("qwen2", "qwen3", "gemma3")):
        g = tiny_arch(arch, seed=100 + i)
        out("gguf_reader", f"tiny_{arch}_kquants.gguf", g)
        out("pack_e2e", f"tiny_{arch}_kquants.gguf", g)

    tmp = "/tmp/tern_fuzz_seeds"
    os.makedirs(tmp, exist_ok=True)
    archs = [("qwen2", tiny_arch("qwen2", seed=100)), ("gemma3", tiny_arch("gemma3", seed=102))]
    for name, g in [("vocab5", small), ("bytelevel", byte_level), ("spm", spm)] + archs:
        src = os.path.join(tmp, name + ".gguf")
        with open(src, "wb") as f:
            f.write(g)
        for w in ("int4", "int8"):
            dst = os.path.join(tmp, f"{name}_{w}.tern")
            subprocess.run([pack, src, "-o", dst, "--weights", w, "--max-context", "64", "--prefill-chunk", "8"],
                           check=True, stdout=subprocess.DEVNULL)
            with open(dst, "rb") as f:
                out("blob_loader", f"tiny_{name}_{w}.tern", f.read())
    out("blob_loader", "header_garbage.bin", b"TERN" + bytes(range(124)))

    # Tokenizer: byte 0 = mode (bit0 decode, bit1 allow_special / u32 ids, bit2 GPT-2 split).
    texts = [
        "Hello, world! The capital of France is Paris.",
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
        "    def f(x):\n\treturn x**2  # 12345678901234\r\n",
        "naïve café 東京 😀👍🏽 Ωμέγα русский العربية",
        "I'm you'll we've THEY'RE 3.14159e-10 ... !!!???",
        " " * 40 + "\n\n\n" + "a" * 50,
    ]
    for i, t in enumerate(texts):
        for mode in (0, 2, 4, 6):
            out("tokenizer", f"text{i}_mode{mode}", bytes([mode]) + t.encode("utf-8"))
    out("tokenizer", "invalid_utf8", bytes([2]) + b"ab\xff\xfe\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82 <|im_end")
    out("tokenizer", "decode_u16", bytes([1]) + struct.pack("<12H", 504, 2, 1, 9690, 28, 3757, 314, 216, 17, 0, 48, 1000))
    out("tokenizer", "decode_u32", bytes([3]) + struct.pack("<5i", 1, 49151, 49152, -1, 0x7fffffff))
    out("tokenizer", "decode_bytes", bytes([1]) + struct.pack("<8H", 223, 224, 239, 254, 255, 256, 130, 131))

    # REPL: byte 0 picks the line buffer (< 128: 1..32 bytes, else 4096).
    out("repl_line", "session", b"\xff" + b"hello there\n/stats\n  /reset \n\t\n/quit\n")
    out("repl_line", "crlf_nul", b"\xff" + b"caf\xc3\xa9\r\nA\x00B\nline\r\r\n/help")
    out("repl_line", "invalid", b"\xff" + b"\xff\xfe \xc0\xaf\n\xed\xa0\x80 /x\n\xe2\x82\n/exit")
    out("repl_line", "too_long", bytes([7]) + b"short\n" + b"x" * 40 + b"\nok\n/unknown cmd\n")
    out("repl_line", "editor_keys", b"\x90" + b"Hello w\xc3\xa9rld\x1b[D\x1b[D\x7f\x01\x05\x17\x15again \xe4\xb8\xad\x1b[1;5D\x1b[A\x1b[B\x1b[3~\x0b\x1bb\x1bf\r\nnext\x03\x04")
    out("repl_line", "triple_quote_block", b"\x90" + b'"""\nline one\n/quit\n\\\nend"""\ncontinued \\\nline\n/system  Be brief.\n"""one"""\n')

    # KV: shape bytes (block tokens, blocks, 4 table sizes), then ops (op byte, argument).
    out("kv_pages", "grow_fork_cow", bytes([3, 11, 8, 8, 4, 2]) + bytes([0, 20, 5, 0, 3, 5, 1, 7, 9, 2, 0, 3, 11, 5]))
    out("kv_pages", "exhaust", bytes([1, 3, 10, 10, 10, 10]) + bytes([0, 9, 8, 9, 16, 9, 4, 0, 8, 9]))
    out("kv_pages", "ops_all", bytes([15, 23, 11, 11, 11, 0]) + bytes(range(0, 96)))


if __name__ == "__main__":
    main()
