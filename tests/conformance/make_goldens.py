#!/usr/bin/env python3
"""llama.cpp logits goldens for the synthetic conformance models (tests/conformance/make_models.py).

For every model of <models>/manifest.json, llama.cpp (llama-cpp-python, CPU, 1 thread) runs one
teacher-forced pass over a fixed 40-token sequence (one llama_decode of all 40 tokens, logits for
every position) and this script stores, per position, what a runtime needs to be compared with it
without committing full-vocabulary logits:

  * the top-8 ids and their logits,
  * the logits of 32 fixed probe ids (the same for every position of a model),
  * the logit of the next token of the sequence (teacher forcing),
  * logsumexp over the whole vocabulary (float64), so log-probs = logit - lse.

Outputs (formats in tests/conformance/README.md):
  tests/conformance/goldens/models.tsv   one line per model: file, sha256, tokens, probe ids
  tests/conformance/goldens/logits.tsv   one line per (model, position)
  tests/conformance/goldens/batch_vs_decode.tsv  llama.cpp's one-batch vs token-by-token logits
  <models>/<name>.llama_cpp.npy          full float32 logits [40, n_vocab] (not committed; read by
                                         reference.py)

Run (after make_models.py):
  bench/peer/setup_venv.sh
  .venv-bench/bin/python tests/conformance/make_goldens.py [--models .cache/conformance]
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import llama_cpp
import llama_cpp.llama_cpp as llama_c

# Extra weight buffer types off (llama_model_params.use_extra_bufts = false; llama-cpp-python has no
# argument for it): on a CPU with AMX (this dev machine reports amx_int8/amx_tile) a GGML_NATIVE build
# repacks quantized weights into the AMX buffer type and llama_decode then dies with SIGSEGV for every
# quantized model (F16 models are unaffected). Without extra buffers the weights stay in their GGUF
# layout and ggml's ordinary CPU kernels run, which is also the more portable reference.
_default_model_params = llama_c.llama_model_default_params


def _model_params_without_extra_bufts():
    p = _default_model_params()
    p.use_extra_bufts = False
    return p


llama_c.llama_model_default_params = _model_params_without_extra_bufts

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "goldens")
LLAMA_CPP_COMMIT = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"  # vendor/llama.cpp of the 0.3.36 sdist
N_TOKENS = 40
TOP_K = 8
N_PROBES = 32
# The text behind the fixed sequences (tokenized once by llama.cpp with the model's own vocabulary,
# then cut to N_TOKENS; the ids are what is committed and fed).
TEXT = ("The lighthouse keeper counted 1874 ships, then 42 more; naïve café 東京 🙂.\n"
        "def f(x):\n    return x * 2  # doubled\n" * 2)
SETTINGS = dict(n_ctx=64, n_batch=64, n_ubatch=64, n_threads=1, n_threads_batch=1, logits_all=True,
                flash_attn=False, seed=0, verbose=False)  # KV cache type: llama.cpp's default (F16)


def probe_ids(n_vocab):
    """32 fixed ids: 0..3 (special in both vocabularies) and 28 spread evenly up to n_vocab-1."""
    ids = [0, 1, 2, 3] + [round(i * (n_vocab - 1) / 27) for i in range(28)]
    seen, out = set(), []
    for i in ids:
        while i in seen:
            i += 1
        seen.add(i)
        out.append(i)
    assert len(out) == N_PROBES and max(out) < n_vocab
    return out


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fmt(xs):
    return ",".join(f"{x:.6f}" for x in xs)


def run_model(path, tokens, **over):
    llm = llama_cpp.Llama(model_path=path, **{**SETTINGS, **over})
    llm.reset()
    llm.eval(tokens)
    logits = np.array(llm.scores[:len(tokens)], dtype=np.float32, copy=True)
    del llm
    return logits


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=os.path.join(ROOT, ".cache", "conformance"))
    args = ap.parse_args()
    manifest = json.load(open(os.path.join(args.models, "manifest.json")))
    os.makedirs(OUT_DIR, exist_ok=True)
    model_lines, logit_lines, inc_lines = [], [], []
    for m in manifest["models"]:
        path = os.path.join(args.models, m["file"])
        digest = sha256(path)
        assert digest == m["sha256"], f"{m['file']}: sha256 differs from the manifest"
        tok = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
        tokens = tok.tokenize(TEXT.encode(), add_bos=True, special=False)
        del tok
        assert len(tokens) >= N_TOKENS, (m["name"], len(tokens))
        tokens = tokens[:N_TOKENS]
        t0 = time.time()
        logits = run_model(path, tokens)
        dt = time.time() - t0
        n_vocab = logits.shape[1]
        assert n_vocab == m["n_vocab"]
        assert np.isfinite(logits).all(), m["name"]
        np.save(os.path.join(args.models, f"{m['name']}.llama_cpp.npy"), logits)
        # The same tokens decoded one at a time through the KV cache: llama.cpp's own spread
        # between its batched (matrix-matrix) and decode (matrix-vector) paths.
        inc = run_model(path, tokens, n_batch=1, n_ubatch=1)
        d_inc = np.abs(inc.astype(np.float64) - logits)
        inc_lines.append(f"{m['name']}\t{d_inc.max():.6f}\t{math.sqrt((d_inc ** 2).mean()):.6f}\t"
                         f"{int((inc.argmax(1) == logits.argmax(1)).sum())}\n")
        probes = probe_ids(n_vocab)
        l64 = logits.astype(np.float64)
        mx = l64.max(axis=1, keepdims=True)
        lse = (mx[:, 0] + np.log(np.exp(l64 - mx).sum(axis=1)))
        for pos in range(len(tokens)):
            row = logits[pos]
            top = np.argsort(-row, kind="stable")[:TOP_K]
            nxt = tokens[pos + 1] if pos + 1 < len(tokens) else -1
            nxt_logit = f"{row[nxt]:.6f}" if nxt >= 0 else "-"
            logit_lines.append(
                f"{m['name']}\t{pos}\t{tokens[pos]}\t{nxt}\t{lse[pos]:.6f}\t{nxt_logit}\t"
                f"{','.join(str(int(i)) for i in top)}\t{fmt(row[top])}\t{fmt(row[probes])}\n")
        spec = m["spec"]
        model_lines.append(
            f"{m['name']}\t{spec['arch']}\t{m['file']}\t{digest}\t{m['bytes']}\t{n_vocab}\t"
            f"{' '.join(map(str, tokens))}\t{' '.join(map(str, probes))}\n")
        top1 = logits.argmax(axis=1)
        print(f"{m['name']}: {dt:.1f}s, logit range [{logits.min():.2f}, {logits.max():.2f}], "
              f"distinct top-1 {len(set(top1.tolist()))}/{len(tokens)}", flush=True)
    sysinfo = llama_cpp.llama_print_system_info().decode().strip()
    head = [
        f"# llama.cpp via llama-cpp-python {llama_cpp.__version__} (llama.cpp {LLAMA_CPP_COMMIT}), "
        f"made by tests/conformance/make_goldens.py\n",
        f"# settings: {json.dumps({k: v for k, v in SETTINGS.items() if k != 'verbose'})}; use_extra_bufts=false"
        f" (no AMX/repacked weights); KV cache F16; "
        f"one llama_decode of all {N_TOKENS} tokens\n",
        f"# system: {sysinfo}\n",
        f"# models made by make_models.py with gguf {manifest['gguf']}, numpy {manifest['numpy']}\n",
    ]
    with open(os.path.join(OUT_DIR, "models.tsv"), "w", encoding="ascii", newline="\n") as f:
        f.writelines(head)
        f.write("# fields: name, arch, gguf_file, gguf_sha256, gguf_bytes, n_vocab, tokens (the fed sequence,"
                f" {N_TOKENS} ids), probe_ids ({N_PROBES} ids)\n")
        f.writelines(model_lines)
    with open(os.path.join(OUT_DIR, "batch_vs_decode.tsv"), "w", encoding="ascii", newline="\n") as f:
        f.writelines(head)
        f.write("# llama.cpp against itself: the 40 tokens in one llama_decode (logits.tsv) vs one token per"
                " llama_decode (n_batch = n_ubatch = 1, KV cache)\n")
        f.write("# fields: name, max_abs_logit_diff (all ids), rms_logit_diff, top1_agree (of 40)\n")
        f.writelines(inc_lines)
    with open(os.path.join(OUT_DIR, "logits.tsv"), "w", encoding="ascii", newline="\n") as f:
        f.writelines(head)
        f.write(f"# fields: name, pos, token, next_token (-1 at the last position), logsumexp (all ids, float64),"
                f" next_logit ('-' at the last position), top{TOP_K}_ids (best first, ties by lower id; comma-separated),"
                f" top{TOP_K}_logits, probe_logits (order of models.tsv probe_ids); floats %.6f, lists"
                " comma-separated\n")
        f.writelines(logit_lines)


if __name__ == "__main__":
    sys.exit(main())
