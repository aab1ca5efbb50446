#!/usr/bin/env python3
"""Drives the tern vs llama.cpp benchmark (bench/run.sh calls it inside the bench venv).

Every measurement is its own process, and the systems alternate run by run
(round r runs every configuration once, in turn), so slow drifts of a shared
machine spread over all of them. Round 0 is a warm-up and is dropped (it also
fills the page cache with every model file). Per configuration the report
takes the median over the remaining REPS rounds.

Measured the same way for both systems, from this driver:
  spawn -> ready        time from Popen to the child's CLOCK_MONOTONIC stamp at "model ready"
  spawn -> first token  footprint runs: time from Popen to the arrival of the child's first generated
                        token line (tern-run under stdbuf -oL, llama_peer.py flushes it)
  peak RSS              the child's ru_maxrss from wait4() (the kernel's count, whole process)
Inside each process (tern-bench / tern-run, and bench/peer/llama_peer.py):
  TTFT, prefill tok/s, decode tok/s, per-token latencies.

Models: MODELS below (--models smollm2,gemma3); every row of the raw files names its model.
Raw results: one JSON file per phase in bench/results/raw/ (or run.sh's BENCH_OUT/raw).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, timeout=1800):
    """Run cmd; return (json lines, spawn->ready ms, spawn->first token ms, peak RSS bytes, wall s)."""
    errf = tempfile.TemporaryFile(mode="w+")
    t_spawn = time.monotonic_ns()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, text=True)
    lines = []
    first = None
    for raw in p.stdout:
        if first is None and (raw.startswith('{"id"') or raw.startswith('{"event": "first_token"')):
            first = time.monotonic_ns()  # a generated token's line arrived (both systems flush it at once)
        raw = raw.strip()
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                pass
    _, status, ru = os.wait4(p.pid, 0)
    errf.seek(0)
    err = errf.read()
    p.returncode = os.waitstatus_to_exitcode(status)
    t_end = time.monotonic_ns()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {err.strip()[-2000:]}")
    ready = next((l["ready_mono_ns"] for l in lines if l.get("event") == "ready"), None)
    return {"lines": lines, "spawn_to_ready_ms": (ready - t_spawn) / 1e6 if ready else None,
            "spawn_to_first_token_ms": (first - t_spawn) / 1e6 if first else None,
            "peak_rss_bytes": ru.ru_maxrss * 1024, "wall_s": (t_end - t_spawn) / 1e9}


def machine():
    info = {"platform": platform.platform(), "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            txt = f.read()
        for line in txt.splitlines():
            if line.startswith("model name") and "cpu_model" not in info:
                info["cpu_model"] = line.split(":", 1)[1].strip()
            if line.startswith("flags") and "flags" not in info:
                flags = line.split(":", 1)[1].split()
                keep = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl",
                        "avx512_vnni", "avx512_bf16", "amx_int8", "asimd", "asimddp", "sve", "i8mm")
                info["flags"] = [x for x in flags if x in keep]
                info["flags_all_count"] = len(flags)
        with open("/proc/meminfo") as f:
            info["mem_total_kb"] = int(f.readline().split()[1])
        with open("/proc/loadavg") as f:
            info["loadavg_at_start"] = f.read().split()[:3]
    except OSError:
        pass
    try:
        info["lscpu"] = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        pass
    return info


# The models this benchmark knows: per model, the GGUF both systems start from, the pairs it
# compares (tern blob vs llama.cpp on the same weights), and what the report calls them.
# Files are relative to --model-dir, except "work:" ones (made here, in --work).
MODELS = {
    "smollm2": {
        "title": "SmolLM2-135M-Instruct",
        "gguf": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "systems": [
            ("tern int4", "tern", "smollm2-135m-int4.tern", "int4 g32 (Q4_1-like, f16 d+m)"),
            ("llama.cpp Q4_1", "llama.cpp", "SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1 (GGUF as published)"),
            ("tern int8", "tern", "smollm2-135m-int8.tern", "int8 g32 (f16 d)"),
            ("llama.cpp Q8_0", "llama.cpp", "work:SmolLM2-135M-Instruct.Q8_0.gguf", "Q8_0 (llama_model_quantize)"),
        ],
        "pairs": [("tern int4", "llama.cpp Q4_1"), ("tern int8", "llama.cpp Q8_0")],
    },
    "gemma3": {
        "title": "Gemma 3 270M (base)",
        "gguf": "gemma-3-270m-q4_k_m.gguf",
        "systems": [
            ("tern int4", "tern", "gemma3-270m-int4.tern",
             "tern-pack --weights int4: Q4_K as int4 g32, Q5_0/Q6_K/Q8_0 (tied head) as int8 g32"),
            ("llama.cpp Q4_K_M", "llama.cpp", "gemma-3-270m-q4_k_m.gguf",
             "Q4_K_M (GGUF as published: Q4_K, Q5_0, Q6_K, Q8_0 tied head)"),
        ],
        "pairs": [("tern int4", "llama.cpp Q4_K_M")],
    },
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--model-dir", required=True, help="folder with the GGUFs and the tern blobs")
    ap.add_argument("--models", default="smollm2,gemma3", help="which models: " + ",".join(MODELS))
    ap.add_argument("--work", required=True, help="folder for the Q8_0 GGUF and the ids files")
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--prompts", default="16,128,512")
    ap.add_argument("--contexts", default="0,512,1024,2048,4096")
    ap.add_argument("--tg", type=int, default=128)
    ap.add_argument("--tg-ctx", type=int, default=64)
    ap.add_argument("--footprint-contexts", default="512,2048,8192")
    ap.add_argument("--footprint-n", type=int, default=32)
    ap.add_argument("--equiv-n", type=int, default=64)
    ap.add_argument("--phases", default="throughput,footprint,equivalence")
    ap.add_argument("--systems", default="tern,llama.cpp", help="which systems to run (tern alone needs no peer)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.work, exist_ok=True)
    py = sys.executable
    peer = os.path.join(HERE, "llama_peer.py")
    tern_bench = os.path.join(a.build, "bin", "tern-bench")
    tern_run = os.path.join(a.build, "bin", "tern-run")
    models = [m for m in a.models.split(",") if m]
    for m in models:
        if m not in MODELS:
            raise SystemExit(f"bench.py: unknown model '{m}' (known: {', '.join(MODELS)})")
    want = a.systems.split(",")

    def path(f):
        return os.path.join(a.work, f[5:]) if f.startswith("work:") else os.path.join(a.model_dir, f)

    systems = []  # every configuration of every model, in order; "model" says whose
    ids_files = {}
    for m in models:
        spec = MODELS[m]
        q80 = path("work:SmolLM2-135M-Instruct.Q8_0.gguf")
        if m == "smollm2" and "llama.cpp" in want and not os.path.exists(q80):
            print(f"making {q80} with llama.cpp's quantizer (Q4_1 -> Q8_0, allow_requantize)", flush=True)
            run([py, peer, "quantize", "--model", path(spec["gguf"]), "--out", q80 + ".tmp", "--type", "Q8_0",
                 "--threads", "2"])
            os.replace(q80 + ".tmp", q80)
        # The very same token ids for both systems: tern's tokenization (with BOS when the model wants one)
        # of tern-bench's built-in text, from this model's first tern blob.
        blob = path(next(f for _, system, f, _ in spec["systems"] if system == "tern"))
        ids_files[m] = os.path.join(a.work, f"bench_ids_{m}.txt")
        need = 8192 + 256
        ids = subprocess.run([tern_bench, "--model", blob, "--print-ids", str(need)], capture_output=True,
                             text=True, check=True).stdout.strip()
        with open(ids_files[m], "w") as f:
            f.write(ids + "\n")
        for name, system, f, weights in spec["systems"]:
            if system in want:
                systems.append({"model": m, "name": name, "system": system, "file": path(f), "weights": weights,
                                "file_bytes": os.path.getsize(path(f))})
    threads = [int(t) for t in a.threads.split(",")]
    meta = {"machine": machine(), "systems": systems, "reps": a.reps, "warmup_rounds": a.warmup,
            "models": {m: {"title": MODELS[m]["title"], "gguf": MODELS[m]["gguf"], "pairs": MODELS[m]["pairs"]}
                       for m in models},
            "threads": threads, "prompts": a.prompts, "contexts": a.contexts, "tg": a.tg, "tg_ctx": a.tg_ctx,
            "footprint_n": a.footprint_n,
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    if "llama.cpp" in want:
        peer_settings = run([py, peer, "settings"])["lines"][-1]
        meta["llama_settings"] = peer_settings
    phases = a.phases.split(",")

    if "throughput" in phases:
        rows = []
        for rnd in range(a.warmup + a.reps):
            warm = rnd < a.warmup
            for t in threads:
                # The roofline's denominator, in the window of each run: tern-bench --bw-only (the best of
                # trials x access patterns) right before and right after it; the row keeps the best of the two.
                def bandwidth():
                    b = run([tern_bench, "--bw-only", "--threads", str(t), "--json"])["lines"][-1]
                    rows.append({"round": rnd, "warmup": warm, "kind": "bandwidth", "threads": t, **b})
                    return b["read_bw_gbs"]
                bw_before = bandwidth()
                order = systems if rnd % 2 == 0 else list(reversed(systems))
                for s in order:
                    common = ["--prompts", a.prompts, "--contexts", a.contexts, "--tg", str(a.tg),
                              "--tg-ctx", str(a.tg_ctx), "--threads", str(t), "--ids-file", ids_files[s["model"]]]
                    if s["system"] == "tern":
                        cmd = [tern_bench, "--model", s["file"], "--reps", "1", "--warmup", "1", "--json"] + common
                    else:
                        cmd = [py, peer, "bench", "--model", s["file"], "--reps", "1", "--warmup", "1"] + common
                    r = run(cmd)
                    bw_after = bandwidth()
                    summary = r["lines"][-1]
                    rep = next(l for l in r["lines"] if "rep" in l)
                    rows.append({"round": rnd, "warmup": warm, "kind": "bench", "model": s["model"],
                                 "name": s["name"], "threads": t,
                                 "spawn_to_ready_ms": r["spawn_to_ready_ms"], "peak_rss_bytes": r["peak_rss_bytes"],
                                 "wall_s": r["wall_s"], "rep": rep, "summary": summary,
                                 "read_bw_window_gbs": max(bw_before, bw_after)})
                    bw_before = bw_after
                    d0 = rep["decodes"][0]["tok_s"]
                    print(f"round {rnd}{' (warm-up)' if warm else ''} t={t} {s['model']} {s['name']}:"
                          f" pp{rep['prompts'][-1]['tokens']}"
                          f" {rep['prompts'][-1]['prefill_tok_s']:.0f} tok/s, tg@0 {d0:.1f} tok/s,"
                          f" ready {r['spawn_to_ready_ms']:.0f} ms, {r['wall_s']:.1f} s", flush=True)
        with open(os.path.join(a.out, "throughput.json"), "w") as f:
            json.dump({"meta": meta, "rows": rows}, f)

    if "footprint" in phases:
        rows = []
        short = {}
        for m, p in ids_files.items():
            with open(p) as f:
                short[m] = f.read().strip().split(",")[:16]
        for rnd in range(a.warmup + a.reps):
            for c in [int(x) for x in a.footprint_contexts.split(",")]:
                order = systems if rnd % 2 == 0 else list(reversed(systems))
                for s in order:
                    if s["system"] == "tern":
                        # What a user runs: tern-run, line-buffered so the first token's line arrives at once.
                        cmd = ["stdbuf", "-oL", tern_run, "--model", s["file"], "--prompt-ids", ",".join(short[s["model"]]),
                               "-n", str(a.footprint_n), "--ignore-eos", "--json", "--max-context", str(c)]
                    else:
                        cmd = [py, peer, "footprint", "--model", s["file"], "--ctx", str(c), "--ids-file",
                               ids_files[s["model"]],
                               "--prompt-tokens", "16", "-n", str(a.footprint_n)]
                    r = run(cmd)
                    summary = r["lines"][-1]
                    rows.append({"round": rnd, "warmup": rnd < a.warmup, "model": s["model"], "name": s["name"],
                                 "context": c,
                                 "peak_rss_bytes": r["peak_rss_bytes"], "wall_s": r["wall_s"],
                                 "spawn_to_ready_ms": r["spawn_to_ready_ms"],
                                 "spawn_to_first_token_ms": r["spawn_to_first_token_ms"], "summary": summary})
                    print(f"footprint round {rnd} ctx {c} {s['model']} {s['name']}: peak RSS"
                          f" {r['peak_rss_bytes'] / 2**20:.1f} MiB",
                          flush=True)
        with open(os.path.join(a.out, "footprint.json"), "w") as f:
            json.dump({"meta": meta, "rows": rows}, f)

    if "equivalence" in phases:
        rows = []
        for m in models:
            with open(ids_files[m]) as f:
                all_ids = [int(x) for x in f.read().split(",")]
            # Four prompts: windows of the benchmark text of different lengths and starts.
            prompts = [all_ids[0:8], all_ids[40:72], all_ids[100:164], all_ids[7:135]]
            by_name = {s["name"]: s for s in systems if s["model"] == m}
            pairs = [(t, l) for t, l in MODELS[m]["pairs"] if t in by_name and l in by_name]
            for i, p in enumerate(prompts):
                pf = os.path.join(a.work, f"equiv_prompt_{m}_{i}.txt")
                with open(pf, "w") as f:
                    f.write(",".join(map(str, p)))
                for tn, ln in pairs:
                    tr = run([tern_run, "--model", by_name[tn]["file"], "--prompt-ids", ",".join(map(str, p)), "-n",
                              str(a.equiv_n), "--ignore-eos", "--json"])
                    t_ids = [l["id"] for l in tr["lines"] if "id" in l]
                    lr = run([py, peer, "greedy", "--model", by_name[ln]["file"], "--ids-file", pf, "-n",
                              str(a.equiv_n)])
                    l_ids = lr["lines"][-1]["generated"]
                    agree = 0
                    while agree < min(len(t_ids), len(l_ids)) and t_ids[agree] == l_ids[agree]:
                        agree += 1
                    same = sum(x == y for x, y in zip(t_ids, l_ids))
                    rows.append({"model": m, "prompt": i, "prompt_tokens": len(p), "tern": tn, "llama": ln,
                                 "tern_ids": t_ids, "llama_ids": l_ids, "agree_prefix": agree,
                                 "same_positions": same, "n": a.equiv_n})
                    print(f"equivalence {m} prompt {i} ({len(p)} tok) {tn} vs {ln}: {agree}/{a.equiv_n} agree"
                          f" before the first divergence", flush=True)
        with open(os.path.join(a.out, "equivalence.json"), "w") as f:
            json.dump({"meta": meta, "rows": rows}, f)

    with open(os.path.join(a.out, "meta.json"), "w") as f:
        meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
