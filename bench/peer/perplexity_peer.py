#!/usr/bin/env python3
"""llama.cpp's perplexity over the same windows tern-perplexity scores, from its logits.

  perplexity_peer.py --model M.gguf --file TEXT --ctx N [--stride S] [--chunks K] [--threads T]

Runs llama.cpp through llama-cpp-python's C API (the Peer class of llama_peer.py: mmap,
f16 KV cache, use_extra_bufts off on AMX CPUs) and applies tern-perplexity's scheme, which
is llama-perplexity's with stride = ctx:
  - the file's bytes, one trailing newline dropped, tokenized whole as llama-perplexity
    does (add_special on, parse_special off: the BOS the model adds, first);
  - window k = tokens [k*stride, k*stride + ctx), its first token replaced by BOS when
    the model adds one; each window on an empty KV cache;
  - logits rows at window positions [score_from, ctx - 1) scored against the next token,
    score_from = max(ctx // 2, ctx - stride); log-softmax in float64.
Prints one JSON object: ppl, ppl_stderr (ppl times the standard error of the mean NLL,
as llama.cpp), tokens_scored, text_tokens, windows, ctx, stride, score_from and
tokens_hash (FNV-1a 64 of the ids and the BOS id, as tern-perplexity --json prints it,
so a tokenization difference shows before any figure is compared).
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import llama_cpp  # noqa: E402
from llama_peer import Peer  # noqa: E402


def tokenize(peer, text):
    data = text.encode("utf-8")
    cap = len(data) + 16
    buf = (llama_cpp.llama_token * cap)()
    n = llama_cpp.llama_tokenize(peer.vocab, data, len(data), buf, cap, True, False)
    if n < 0:
        raise SystemExit(f"perplexity_peer: tokenize needs {-n} ids")
    return list(buf[:n])


def tokens_hash(ids, bos):
    h = 0xcbf29ce484222325
    for v in list(ids) + [bos]:
        v &= 0xffffffff
        for i in range(4):
            h ^= (v >> (8 * i)) & 0xff
            h = (h * 0x100000001b3) & 0xffffffffffffffff
    return h


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--file", required=True)
    ap.add_argument("--ctx", type=int, required=True)
    ap.add_argument("--stride", type=int, default=0)
    ap.add_argument("--chunks", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    ctx = a.ctx
    stride = a.stride or ctx
    if ctx < 4 or not 2 <= stride <= ctx:
        raise SystemExit("perplexity_peer: need ctx >= 4 and 2 <= stride <= ctx")
    with open(a.file, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    if text.endswith("\n"):
        text = text[:-1]

    n_batch = min(512, ctx)
    peer = Peer(a.model, ctx, a.threads, n_batch=n_batch)
    ids = tokenize(peer, text)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(peer.vocab))
    bos = llama_cpp.llama_vocab_bos(peer.vocab) if add_bos else -1
    if len(ids) < ctx:
        raise SystemExit(f"perplexity_peer: {len(ids)} tokens, fewer than one window of {ctx}")
    windows = (len(ids) - ctx) // stride + 1
    if a.chunks:
        windows = min(windows, a.chunks)
    score_from = max(ctx // 2, ctx - stride)

    batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
    nll_sum = nll_sum2 = 0.0
    count = 0
    t0 = time.monotonic()
    for k in range(windows):
        win = ids[k * stride:k * stride + ctx]
        if bos >= 0:
            win[0] = bos
        peer.reset()
        rows = []  # float64 copies of the scored positions' logits
        for start in range(0, ctx, n_batch):
            chunk = win[start:start + n_batch]
            batch.n_tokens = len(chunk)
            for i, tok in enumerate(chunk):
                pos = start + i
                batch.token[i] = tok
                batch.pos[i] = pos
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = 1 if score_from <= pos < ctx - 1 else 0
            rc = llama_cpp.llama_decode(peer.ctx, batch)
            if rc != 0:
                raise SystemExit(f"perplexity_peer: llama_decode returned {rc}")
            for i in range(len(chunk)):
                pos = start + i
                if score_from <= pos < ctx - 1:
                    ptr = llama_cpp.llama_get_logits_ith(peer.ctx, i)
                    rows.append((pos, np.ctypeslib.as_array(ptr, shape=(peer.n_vocab,)).astype(np.float64)))
        for pos, row in rows:
            mx = row.max()
            lse = mx + math.log(np.exp(row - mx).sum())
            nll = lse - row[win[pos + 1]]
            nll_sum += nll
            nll_sum2 += nll * nll
            count += 1
        print(f"[{k + 1}/{windows}] ppl {math.exp(nll_sum / count):.4f}, {time.monotonic() - t0:.1f} s",
              file=sys.stderr, flush=True)
    llama_cpp.llama_batch_free(batch)
    mean = nll_sum / count
    var = nll_sum2 / count - mean * mean
    se = math.sqrt(var / (count - 1)) if count > 1 and var > 0 else 0.0
    ppl = math.exp(mean)
    print(json.dumps({"ppl": round(ppl, 6), "ppl_stderr": round(ppl * se, 6), "tokens_scored": count,
                      "text_tokens": len(ids), "windows": windows, "ctx": ctx, "stride": stride,
                      "score_from": score_from, "tokens_hash": f"{tokens_hash(ids, bos if bos >= 0 else -1):016x}",
                      "seconds": round(time.monotonic() - t0, 3), "threads": a.threads,
                      "llama_cpp_python": llama_cpp.__version__}))


if __name__ == "__main__":
    main()
