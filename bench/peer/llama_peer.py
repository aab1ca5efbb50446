#!/usr/bin/env python3
"""llama.cpp side of the benchmark, through llama-cpp-python's low-level C API.

Mirrors tern-bench and tern-run so the two systems do the same work and print
the same JSON shapes:

  bench      TTFT / prefill tok/s per prompt length, decode tok/s and per-token
             latency at ascending contexts in one sequence (tern-bench's protocol).
  footprint  a short prompt, then N greedy tokens; prints a flushed
             {"event":"first_token"} line so the driver can stamp process start to
             first token, like `stdbuf -oL tern-run --json`.
  greedy     greedy continuation of a token-id prompt (decoding equivalence).
  quantize   make a GGUF of another type with llama.cpp's own quantizer.
  batched    N sequences at once (tern-bench --sequences): the prompts prefilled in
             llama_batch rows of several seq_ids, then one llama_decode per step with
             one row per sequence; aggregate decode tok/s as llama-batched-bench's S_TG.
  settings   print the load/context settings below as they apply on this CPU.

Decoding is greedy argmax over the logits (numpy, zero-copy view), the same
work tern's greedy sampler does. The model is loaded with mmap, n_batch 512,
the context's defaults otherwise (f16 KV cache, flash attention auto; with
--kv q8_0, K and V in q8_0 and flash attention on, which q8_0 V needs), and
n_threads = n_threads_batch = --threads, with two exceptions (settings() says
which applied; the report prints them):
  - swa_full off: sliding-window layers (Gemma 3) keep only their window in the
    KV cache, as llama.cpp's own tools do by default (llama-cli/llama-server
    --swa-full is opt-in; the C API's default is on).
  - on a CPU with AMX, use_extra_bufts off (see extra_bufts()).
Every process prints {"event":"ready"} as soon as model and context exist.

Timings inside the process: `import_ms` (importing llama_cpp, i.e. loading
the shared library) and `load_ms` (model + context creation). The driver adds
what the process cannot see: interpreter start, measured from spawn.
"""
import argparse
import ctypes
import json
import os
import resource
import sys
import time

T_MAIN = time.monotonic_ns()
import numpy as np  # noqa: E402  (after T_MAIN on purpose: part of the library load)
import llama_cpp  # noqa: E402

T_IMPORTED = time.monotonic_ns()


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def quiet_logs():
    # llama.cpp logs every tensor at load; keep stderr for errors only.
    cb_type = llama_cpp.llama_log_callback

    @cb_type
    def _log(level, text, user_data):  # noqa: ARG001
        if level == 3:  # GGML_LOG_LEVEL_ERROR (4 is DEBUG, 5 CONT)
            sys.stderr.write(text.decode("utf-8", "replace"))

    llama_cpp.llama_log_set(_log, ctypes.c_void_p(0))
    return _log  # keep a reference alive


def cpu_has_amx():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_int8" in line.split()
    except OSError:
        pass
    return False


def extra_bufts():
    """llama_model_params.use_extra_bufts for this CPU: off when it has AMX, else llama.cpp's default (on).

    With extra buffer types on, a GGML_NATIVE build on a CPU with AMX (amx_int8) repacks quantized weights
    into the AMX buffer type, and llama.cpp 0.3.36's llama_decode then dies with SIGSEGV for every quantized
    model (Q4_1, Q8_0, Q4_K_M alike; F16 is unaffected); tests/conformance/make_goldens.py does the same.
    Turning them off also turns off the CPU_REPACK layouts (e.g. Q4_0/Q4_K interleaved for AVX2), so only
    CPUs with AMX pay for the workaround; elsewhere llama.cpp keeps its default. LLAMA_PEER_EXTRA_BUFTS=0/1
    forces it either way."""
    forced = os.environ.get("LLAMA_PEER_EXTRA_BUFTS")
    if forced in ("0", "1"):
        return forced == "1"
    return not cpu_has_amx()


SWA_FULL = False  # see the module docstring


def settings(kv="f16"):
    return {"use_extra_bufts": extra_bufts(), "amx": cpu_has_amx(), "swa_full": SWA_FULL, "kv_cache": kv,
            "flash_attn": "on" if kv == "q8_0" else "auto", "n_batch": 512, "mmap": True}


class Peer:
    def __init__(self, model_path, n_ctx, threads, n_batch=512, n_seq_max=1, kv="f16"):
        self.kv = kv
        self._log = quiet_logs()
        t0 = time.monotonic_ns()
        llama_cpp.llama_backend_init()
        mp = llama_cpp.llama_model_default_params()
        mp.n_gpu_layers = 0
        mp.load_mode = llama_cpp.LLAMA_LOAD_MODE_MMAP  # mmap on, as asked of both systems
        mp.use_extra_bufts = extra_bufts()  # off on AMX CPUs: llama_decode segfaults otherwise
        self.model = llama_cpp.llama_model_load_from_file(model_path.encode(), mp)
        if not self.model:
            raise SystemExit(f"llama_peer: cannot load model {model_path}")
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx = n_ctx
        cp.n_batch = n_batch
        cp.n_ubatch = n_batch
        cp.n_threads = threads
        cp.n_threads_batch = threads
        cp.no_perf = True
        cp.swa_full = SWA_FULL
        cp.n_seq_max = n_seq_max
        if kv == "q8_0":  # llama-bench -ctk q8_0 -ctv q8_0 -fa 1
            cp.type_k = llama_cpp.GGML_TYPE_Q8_0
            cp.type_v = llama_cpp.GGML_TYPE_Q8_0
            cp.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        self.ctx = llama_cpp.llama_init_from_model(self.model, cp)
        if not self.ctx:
            raise SystemExit("llama_peer: cannot create the context")
        self.load_ms = (time.monotonic_ns() - t0) / 1e6
        self.ready_ns = time.monotonic_ns()
        self.n_batch = n_batch
        self.n_ctx = n_ctx
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.mem = llama_cpp.llama_get_memory(self.ctx)
        self.n_past = 0

    def describe(self):
        size = llama_cpp.llama_model_size(self.model)
        params = llama_cpp.llama_model_n_params(self.model)
        return {"weight_bytes": size, "parameters": params, "bits_per_weight": 8.0 * size / params,
                "n_vocab": self.n_vocab, "settings": settings(self.kv)}

    def reset(self):
        llama_cpp.llama_memory_clear(self.mem, True)
        self.n_past = 0

    def feed(self, ids):
        """Run ids (in n_batch chunks) after what the cache holds; logits of the last stay."""
        for i in range(0, len(ids), self.n_batch):
            chunk = ids[i:i + self.n_batch]
            arr = (llama_cpp.llama_token * len(chunk))(*chunk)
            rc = llama_cpp.llama_decode(self.ctx, llama_cpp.llama_batch_get_one(arr, len(chunk)))
            if rc != 0:
                raise SystemExit(f"llama_peer: llama_decode returned {rc} at position {self.n_past}")
            self.n_past += len(chunk)

    def argmax(self):
        ptr = llama_cpp.llama_get_logits_ith(self.ctx, -1)
        return int(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).argmax())


def percentile(values, p):
    """Nearest rank, as tern-bench."""
    if not values:
        return 0.0
    s = sorted(values)
    rank = min(len(s), max(1, int(p / 100.0 * len(s) + 0.999999)))
    return s[rank - 1]


def median(values):
    s = sorted(values)
    n = len(s)
    if not n:
        return 0.0
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def read_ids(path):
    with open(path) as f:
        return [int(x) for x in f.read().replace(",", " ").split()]


def prompt_round(peer, ids, length):
    peer.reset()
    t0 = time.monotonic_ns()
    peer.feed(ids[:length])
    t1 = time.monotonic_ns()
    peer.argmax()
    t2 = time.monotonic_ns()
    return {"tokens": length, "ttft_ms": (t2 - t0) / 1e6, "prefill_tok_s": length * 1e9 / (t1 - t0)}


def decode_sweep(peer, ids, contexts, tg, tg_ctx):
    """tern-bench's sweep: one sequence, grown to each context, then n greedy tokens.
    The first token after a (re)fill is sampled from the prefill; each later token
    costs one llama_decode + argmax, timed per token."""
    peer.reset()
    hist = []
    pending_token = None
    out = []
    for c in contexts:
        target = max(c, 1)
        fill = []
        if pending_token is not None:
            fill.append(pending_token)
            hist.append(pending_token)
        while len(hist) < target:
            hist.append(ids[len(hist)])
            fill.append(hist[-1])
        n = tg if c in (0, 1024) else tg_ctx
        peer.feed(fill)
        token = peer.argmax()
        times = []
        t_first = time.monotonic_ns()
        for _ in range(n):
            ts = time.monotonic_ns()
            peer.feed([token])
            hist.append(token)
            token = peer.argmax()
            times.append((time.monotonic_ns() - ts) / 1e6)
        t_end = time.monotonic_ns()
        pending_token = token
        out.append({"context": c, "tokens": n, "tok_s": n * 1e9 / (t_end - t_first),
                    "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95),
                    "p99_ms": percentile(times, 99), "token_ms": [round(t, 4) for t in times]})
    return out


def cmd_bench(a):
    ids = read_ids(a.ids_file)
    prompts = [int(x) for x in a.prompts.split(",")]
    contexts = sorted({int(x) for x in a.contexts.split(",")})
    need = max(max(prompts) + 1, max(contexts) + max(a.tg, a.tg_ctx) + 2)
    if len(ids) < need:
        raise SystemExit(f"llama_peer: {a.ids_file} has {len(ids)} ids, this run needs {need}")
    n_ctx = a.ctx or (need + 15) // 16 * 16
    peer = Peer(a.model, n_ctx, a.threads, kv=a.kv)
    emit({"event": "ready", "ready_mono_ns": peer.ready_ns})
    for _ in range(a.warmup):
        prompt_round(peer, ids, min(64, need - 1))
        decode_sweep(peer, ids, [0], 16, 16)
    reps = []
    for r in range(a.reps):
        rep = {"rep": r, "prompts": [prompt_round(peer, ids, n) for n in prompts],
               "decodes": decode_sweep(peer, ids, contexts, a.tg, a.tg_ctx)}
        emit(rep)
        reps.append(rep)
    summary = {"summary": True, "reps": a.reps, "import_ms": (T_IMPORTED - T_MAIN) / 1e6, "load_ms": peer.load_ms,
               "ready_ms": (peer.ready_ns - T_MAIN) / 1e6, "threads": a.threads, "max_context": n_ctx,
               "peak_rss_bytes": peak_rss_bytes(), "system_info": llama_cpp.llama_print_system_info().decode(),
               "llama_cpp_python": llama_cpp.__version__}
    summary.update(peer.describe())
    summary["prompts"] = [{"tokens": n, "ttft_ms": median([r["prompts"][i]["ttft_ms"] for r in reps]),
                           "prefill_tok_s": median([r["prompts"][i]["prefill_tok_s"] for r in reps])}
                          for i, n in enumerate(prompts)]
    summary["decodes"] = [{"context": c, **{k: median([r["decodes"][i][k] for r in reps])
                                            for k in ("tok_s", "p50_ms", "p95_ms", "p99_ms")}}
                          for i, c in enumerate(contexts)]
    emit(summary)


def cmd_footprint(a):
    ids = read_ids(a.ids_file)[:a.prompt_tokens]
    rss_before = peak_rss_bytes()  # interpreter + numpy + the llama library, no model yet
    peer = Peer(a.model, a.ctx, a.threads, kv=a.kv)
    emit({"event": "ready", "ready_mono_ns": peer.ready_ns})
    t0 = time.monotonic_ns()
    peer.feed(ids)
    token = peer.argmax()
    t_first = time.monotonic_ns()
    emit({"event": "first_token", "id": token, "mono_ns": t_first})
    for _ in range(a.n - 1):
        peer.feed([token])
        token = peer.argmax()
    summary = {"summary": True, "max_context": a.ctx, "threads": a.threads, "import_ms": (T_IMPORTED - T_MAIN) / 1e6,
               "load_ms": peer.load_ms, "ttft_ms": (t_first - t0) / 1e6, "generated_tokens": a.n,
               "peak_rss_bytes": peak_rss_bytes(), "peak_rss_before_model_bytes": rss_before}
    summary.update(peer.describe())
    emit(summary)


def cmd_greedy(a):
    ids = read_ids(a.ids_file)
    peer = Peer(a.model, max(512, (len(ids) + a.n + 15) // 16 * 16), a.threads)
    peer.feed(ids)
    out = []
    token = peer.argmax()
    for i in range(a.n):
        out.append(token)
        if i + 1 < a.n:
            peer.feed([token])
            token = peer.argmax()
    emit({"generated": out})


def batched_round(peer, prompts, gen):
    """All prompts prefilled (rows of several sequences per llama_decode, n_batch at a
    time), then `gen` tokens per sequence: one llama_decode per step with one row per
    sequence, greedy argmax of each row's logits. Returns (decode seconds, decode tokens,
    wall seconds, ttft seconds per sequence)."""
    n = len(prompts)
    peer.reset()
    cap = max(peer.n_batch, n)
    batch = llama_cpp.llama_batch_init(cap, 0, 1)
    try:
        t0 = time.monotonic_ns()
        rows = [(s, p, tok) for s, pr in enumerate(prompts) for p, tok in enumerate(pr)]
        last_row = {}  # sequence -> its prompt's last row's index in the batch that holds it
        tokens = [None] * n
        ttft = [0.0] * n
        for start in range(0, len(rows), peer.n_batch):
            chunk = rows[start:start + peer.n_batch]
            batch.n_tokens = len(chunk)
            for i, (s, p, tok) in enumerate(chunk):
                batch.token[i] = tok
                batch.pos[i] = p
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = s
                is_last = p == len(prompts[s]) - 1
                batch.logits[i] = 1 if is_last else 0
                if is_last:
                    last_row[s] = i
            rc = llama_cpp.llama_decode(peer.ctx, batch)
            if rc != 0:
                raise SystemExit(f"llama_peer: llama_decode returned {rc} in the prompts")
            for s, i in list(last_row.items()):
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(peer.ctx, i), shape=(peer.n_vocab,))
                tokens[s] = int(logits.argmax())
                ttft[s] = (time.monotonic_ns() - t0) / 1e9
            last_row.clear()
        pos = [len(pr) for pr in prompts]
        t_dec = time.monotonic_ns()
        for _ in range(gen - 1):
            batch.n_tokens = n
            for s in range(n):
                batch.token[s] = tokens[s]
                batch.pos[s] = pos[s]
                batch.n_seq_id[s] = 1
                batch.seq_id[s][0] = s
                batch.logits[s] = 1
            rc = llama_cpp.llama_decode(peer.ctx, batch)
            if rc != 0:
                raise SystemExit(f"llama_peer: llama_decode returned {rc} in a decode step")
            for s in range(n):
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(peer.ctx, s), shape=(peer.n_vocab,))
                tokens[s] = int(logits.argmax())
                pos[s] += 1
        t_end = time.monotonic_ns()
    finally:
        llama_cpp.llama_batch_free(batch)
    return (t_end - t_dec) / 1e9, n * (gen - 1), (t_end - t0) / 1e9, ttft


def cmd_batched(a):
    ids = read_ids(a.ids_file)
    n = a.sequences
    if len(ids) < a.prompt + 7 * n:
        raise SystemExit(f"llama_peer: {a.ids_file} has {len(ids)} ids, this run needs {a.prompt + 7 * n}")
    prompts = [ids[7 * i:7 * i + a.prompt] for i in range(n)]  # as tern-bench --sequences
    n_ctx = n * ((a.prompt + a.gen + 16 + 15) // 16 * 16)
    peer = Peer(a.model, n_ctx, a.threads, n_seq_max=n)
    emit({"event": "ready", "ready_mono_ns": peer.ready_ns})
    for _ in range(a.warmup):
        batched_round(peer, prompts, min(a.gen, 8))
    reps = []
    for r in range(a.reps):
        dec_s, dec_tokens, wall_s, ttft = batched_round(peer, prompts, a.gen)
        rep = {"rep": r, "aggregate_decode_tok_s": dec_tokens / dec_s, "overall_tok_s": n * a.gen / wall_s,
               "per_seq_tok_s": (a.gen - 1) / dec_s, "ttft_ms_p50": percentile([t * 1e3 for t in ttft], 50)}
        emit(rep)
        reps.append(rep)
    summary = {"summary": True, "sequences": n, "prompt": a.prompt, "generate": a.gen, "threads": a.threads,
               "reps": a.reps, "n_ctx": n_ctx, "llama_cpp_python": llama_cpp.__version__,
               "aggregate_decode_tok_s": median([r["aggregate_decode_tok_s"] for r in reps]),
               "overall_tok_s": median([r["overall_tok_s"] for r in reps]),
               "per_seq_tok_s": median([r["per_seq_tok_s"] for r in reps]),
               "ttft_ms_p50": median([r["ttft_ms_p50"] for r in reps]), "peak_rss_bytes": peak_rss_bytes()}
    summary.update(peer.describe())
    emit(summary)


def cmd_quantize(a):
    llama_cpp.llama_backend_init()
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{a.type}")
    p.allow_requantize = True  # the source is already quantized (Q4_1): dequantize, then quantize
    p.nthread = a.threads
    rc = llama_cpp.llama_model_quantize(a.model.encode(), a.out.encode(), ctypes.byref(p))
    if rc != 0:
        raise SystemExit(f"llama_peer: llama_model_quantize returned {rc}")
    emit({"quantized": a.out, "type": a.type, "bytes": os.path.getsize(a.out)})


def cmd_settings(a):  # noqa: ARG001
    emit({**settings(), "llama_cpp_python": llama_cpp.__version__,
          "system_info": llama_cpp.llama_print_system_info().decode().strip()})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--prompts", default="16,128,512")
    b.add_argument("--contexts", default="0,512,1024,2048,4096")
    b.add_argument("--tg", type=int, default=128)
    b.add_argument("--tg-ctx", type=int, default=64)
    b.add_argument("--reps", type=int, default=1)
    b.add_argument("--warmup", type=int, default=1)
    b.add_argument("--ctx", type=int, default=0, help="n_ctx (default: what the run needs, as tern-bench)")
    f = sub.add_parser("footprint")
    f.add_argument("--ctx", type=int, required=True)
    f.add_argument("--prompt-tokens", type=int, default=16)
    f.add_argument("-n", type=int, default=32)
    m = sub.add_parser("batched")
    m.add_argument("--sequences", type=int, required=True)
    m.add_argument("--prompt", type=int, default=64)
    m.add_argument("--gen", type=int, default=64)
    m.add_argument("--reps", type=int, default=3)
    m.add_argument("--warmup", type=int, default=1)
    g = sub.add_parser("greedy")
    g.add_argument("-n", type=int, default=64)
    q = sub.add_parser("quantize")
    q.add_argument("--out", required=True)
    q.add_argument("--type", default="Q8_0")
    sub.add_parser("settings", help="print the llama.cpp settings this peer uses on this CPU")
    for p in (b, f, m, g, q):
        p.add_argument("--model", required=True)
        p.add_argument("--threads", type=int, default=1)
    for p in (b, f, m, g):
        p.add_argument("--ids-file", required=True)
    for p in (b, f):
        p.add_argument("--kv", choices=("f16", "q8_0"), default="f16",
                       help="KV cache type (q8_0: K and V, flash attention on)")
    a = ap.parse_args()
    {"bench": cmd_bench, "footprint": cmd_footprint, "batched": cmd_batched, "greedy": cmd_greedy,
     "quantize": cmd_quantize, "settings": cmd_settings}[a.cmd](a)


if __name__ == "__main__":
    main()
