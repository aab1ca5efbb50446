#!/usr/bin/env python3
"""How closely llama.cpp (the peer) follows a set of float32 reference goldens.

For every prompt of <prefix>_greedy.tsv, llama.cpp (llama-cpp-python, CPU) runs one teacher-forced
pass over prompt_ids + gen_ids (one llama_decode of the whole sequence, logits for every position)
on the same GGUF the goldens were made from, and the script compares each position with
<prefix>_teacher_forced.tsv:

  * top-1 agreement: llama.cpp's argmax == the reference's top1,
  * |dlogp|: |llama.cpp's log-prob of the reference's next token - logp_next| (natural log,
    log_softmax in float64 of llama.cpp's float32 logits).

It also tokenizes each prompt_text with llama.cpp (BOS added when the vocabulary says so; special
tokens parsed for `chat` prompts) and reports whether it gives prompt_ids.

  .venv-bench/bin/python tests/goldens/peer_agreement.py tests/goldens/gemma3   # Gemma 3 270M Q4_K_M
  .venv-bench/bin/python tests/goldens/peer_agreement.py tests/goldens/model    # SmolLM2-135M Q4_1

The GGUF defaults from the prefix (gemma3 -> gemma-3-270m-q4_k_m.gguf, model ->
SmolLM2-135M-Instruct.Q4_1.gguf, both in .cache/models); --gguf overrides it. Environment: the
benchmark venv (bench/peer/setup_venv.sh: llama-cpp-python 0.3.36 built from source).
"""
import argparse
import os
import sys
import time

import numpy as np
import llama_cpp
import llama_cpp.llama_cpp as llama_c

# Extra weight buffer types off (llama_model_params.use_extra_bufts = false), as in
# tests/conformance/make_goldens.py: on a CPU with AMX a GGML_NATIVE build repacks quantized weights
# into the AMX buffer type and llama_decode dies with SIGSEGV for every quantized model.
_default_model_params = llama_c.llama_model_default_params


def _model_params_without_extra_bufts():
    p = _default_model_params()
    p.use_extra_bufts = False
    return p


llama_c.llama_model_default_params = _model_params_without_extra_bufts

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_GGUF = {
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
    "model": "SmolLM2-135M-Instruct.Q4_1.gguf",
}
SWA = 512        # Gemma 3's sliding window: positions at or past it are reported separately
GAP_MIN = 0.5    # "clear" positions: the reference's top-1/top-2 gap at least this
ROW_CHUNK = 128


def rows_of(path):
    with open(path, encoding="ascii") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            yield line.rstrip("\n").split("\t")


def ids_of(field):
    return [] if field == "-" else [int(x) for x in field.split()]


def read_goldens(prefix):
    greedy = []
    for f in rows_of(prefix + "_greedy.tsv"):
        text = b"" if f[2] == "-" else bytes.fromhex(f[2])
        greedy.append(dict(name=f[0], kind=f[1], text=text, prompt_ids=ids_of(f[4]), gen_ids=ids_of(f[6])))
    forced = {}
    for f in rows_of(prefix + "_teacher_forced.tsv"):
        forced.setdefault(f[0], []).append(dict(pos=int(f[1]), token=int(f[2]), next=int(f[3]), top1=int(f[4]),
                                                logp_next=float(f[5]), gap=float(f[6])))
    return greedy, forced


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("prefix", help="goldens prefix, e.g. tests/goldens/gemma3 (reads <prefix>_greedy.tsv, "
                                   "<prefix>_teacher_forced.tsv)")
    ap.add_argument("--gguf", help="model file (default: from the prefix)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=0,
                    help="tokens per llama_decode (default 0: the whole sequence in one decode)")
    ap.add_argument("--flash-attn", action="store_true", help="llama.cpp's flash attention on (default off)")
    args = ap.parse_args()
    base = os.path.basename(args.prefix)
    gguf = args.gguf or os.path.join(ROOT, ".cache", "models", DEFAULT_GGUF.get(base, ""))
    if not os.path.isfile(gguf):
        sys.exit(f"no model file {gguf} (pass --gguf)")
    greedy, forced = read_goldens(args.prefix)
    seqs = {g["name"]: g["prompt_ids"] + g["gen_ids"] for g in greedy}
    n_ctx = max(len(s) for s in seqs.values())
    n_ctx = (n_ctx + 255) // 256 * 256
    n_batch = args.batch or n_ctx
    t0 = time.time()
    llm = llama_cpp.Llama(model_path=gguf, n_ctx=n_ctx, n_batch=n_batch, n_ubatch=n_batch, n_threads=args.threads,
                          n_threads_batch=args.threads, logits_all=True, flash_attn=args.flash_attn, seed=0,
                          verbose=False)
    print(f"llama-cpp-python {llama_cpp.__version__}, {os.path.basename(gguf)}, n_ctx {n_ctx}, "
          f"{n_batch} tokens per decode, {args.threads} threads, KV cache F16, "
          f"flash_attn {'on' if args.flash_attn else 'off'}, extra buffer types off")

    tot = dict(n=0, agree=0, dsum=0.0, dmax=0.0, n_clear=0, agree_clear=0, n_far=0, agree_far=0, dsum_far=0.0)
    tok_ok = 0
    for g in greedy:
        name, seq = g["name"], seqs[g["name"]]
        ids = llm.tokenize(g["text"], add_bos=True, special=g["kind"] == "chat")
        tok_same = ids == g["prompt_ids"]
        tok_ok += tok_same
        rows = forced[name]
        assert [r["pos"] for r in rows] == list(range(len(seq) - 1)), name
        assert all(r["token"] == seq[r["pos"]] and r["next"] == seq[r["pos"] + 1] for r in rows), name
        llm.reset()
        llm.eval(seq)
        logits = np.array(llm.scores[:len(seq)], dtype=np.float32, copy=True)
        assert np.isfinite(logits).all(), name
        s = dict(n=0, agree=0, dsum=0.0, dmax=0.0, n_clear=0, agree_clear=0, n_far=0, agree_far=0, dsum_far=0.0)
        for c0 in range(0, len(seq) - 1, ROW_CHUNK):
            c1 = min(c0 + ROW_CHUNK, len(seq) - 1)
            l64 = logits[c0:c1].astype(np.float64)
            mx = l64.max(axis=1, keepdims=True)
            lse = mx[:, 0] + np.log(np.exp(l64 - mx).sum(axis=1))
            top1 = l64.argmax(axis=1)
            for r in rows[c0:c1]:
                i = r["pos"] - c0
                agree = int(top1[i]) == r["top1"]
                d = abs(float(l64[i, r["next"]] - lse[i]) - r["logp_next"])
                s["n"] += 1
                s["agree"] += agree
                s["dsum"] += d
                s["dmax"] = max(s["dmax"], d)
                if r["gap"] >= GAP_MIN:
                    s["n_clear"] += 1
                    s["agree_clear"] += agree
                if r["pos"] >= SWA:
                    s["n_far"] += 1
                    s["agree_far"] += agree
                    s["dsum_far"] += d
        for k in tot:
            tot[k] = max(tot[k], s[k]) if k == "dmax" else tot[k] + s[k]
        far = (f", pos>={SWA}: {s['n_far']} at {100.0 * s['agree_far'] / s['n_far']:.2f}% "
               f"mean|dlogp| {s['dsum_far'] / s['n_far']:.4f}") if s["n_far"] else ""
        print(f"  {name}: {s['n']} positions, top-1 {100.0 * s['agree'] / s['n']:.2f}%, "
              f"mean|dlogp| {s['dsum'] / s['n']:.4f}, max {s['dmax']:.4f}{far}; "
              f"llama.cpp tokenization {'==' if tok_same else '!='} prompt_ids", flush=True)
    n = tot["n"]
    print(f"positions: {n}")
    print(f"top-1 agreement: {100.0 * tot['agree'] / n:.2f}% ({tot['agree']}/{n}); at reference gap >= {GAP_MIN}: "
          f"{100.0 * tot['agree_clear'] / max(1, tot['n_clear']):.2f}% ({tot['agree_clear']}/{tot['n_clear']})")
    print(f"mean |dlogp(reference next token)|: {tot['dsum'] / n:.4f} (max {tot['dmax']:.4f})")
    if tot["n_far"]:
        print(f"positions >= {SWA}: {tot['n_far']}, top-1 {100.0 * tot['agree_far'] / tot['n_far']:.2f}%, "
              f"mean |dlogp| {tot['dsum_far'] / tot['n_far']:.4f}")
    print(f"prompts whose llama.cpp tokenization == prompt_ids: {tok_ok}/{len(greedy)}")
    print(f"done in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
