#!/usr/bin/env python3
"""Turns <raw>/*.json (from bench/peer/bench.py) into <out>/README.md and PNG plots, one section
(and one set of plots: <model>-*.png, SmolLM2's without the prefix) per model. Every figure is the median over the non-warm-up rounds.

  python bench/report.py bench/results/raw bench/results
"""
import json
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MIB = 1048576.0
COLORS = {"tern int4": "#1f77b4", "tern int8": "#6baed6", "llama.cpp Q4_1": "#d62728", "llama.cpp Q8_0": "#fc9272",
          "llama.cpp Q4_K_M": "#d62728"}
# Raw files from before the per-model runs hold SmolLM2 only.
LEGACY_MODELS = {"smollm2": {"title": "SmolLM2-135M-Instruct",
                             "pairs": [["tern int4", "llama.cpp Q4_1"], ["tern int8", "llama.cpp Q8_0"]]}}
# Targets per model, tern / llama.cpp on the same CPU (each model's issue states its own).
TARGETS = {
    "smollm2": {"decode": 1.3, "pp512": 2.0, "bw": 0.85, "first_token": 0.5, "rss": 0.7, "rss_contexts": (2048,)},
    "gemma3": {"decode": 1.5, "pp512": 1.5, "bw": 0.80, "first_token": None, "rss": 0.7,
               "rss_contexts": (2048, 8192)},
}


def model_of(x):
    return x.get("model", "smollm2")


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=1):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def load(raw, name):
    p = os.path.join(raw, name)
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def prompt_metric(row, tokens, key):
    for p in row["rep"]["prompts"]:
        if p["tokens"] == tokens:
            return p[key]
    return None


def decode_metric(row, context, key):
    for d in row["rep"]["decodes"]:
        if d["context"] == context:
            return d[key]
    return None


def library_load_ms(row):
    s = row["summary"]
    if "open_ms" in s:  # tern: Engine::open (map, validate, plan, arena, threads, tokenizer)
        return s["open_ms"]
    return s.get("load_ms", 0) + s.get("import_ms", 0)  # llama.cpp: import llama_cpp + model + context


def machine_section(meta, bw_rows):
    m = meta["machine"]
    lines = ["## Machine and settings", ""]
    lines.append(f"- CPU: {m.get('cpu_model', '?')}, {m.get('cores', '?')} logical cores; "
                 f"memory {m.get('mem_total_kb', 0) / 1048576:.1f} GiB")
    lines.append(f"- SIMD flags: {' '.join(m.get('flags', []))}")
    lines.append(f"- OS: {m.get('platform', '?')}; load average at start {' '.join(m.get('loadavg_at_start', []))}")
    for t in sorted({r["threads"] for r in bw_rows}):
        vs = [r["read_bw_gbs"] for r in bw_rows if r["threads"] == t and not r["warmup"]]
        if any("read_bw_method" in r for r in bw_rows):
            mib = next(r["read_bw_buffer_bytes"] for r in bw_rows if "read_bw_buffer_bytes" in r) / MIB
            lines.append(f"- read bandwidth, {t} thread(s): {len(vs)} probes (`tern-bench --bw-only`: the best of 5 "
                         f"trials x 3 access patterns over a {mib:.0f} MiB buffer), one right before and one right "
                         f"after every run: best {fmt(max(vs) if vs else None, 2)} GB/s, median "
                         f"{fmt(med(vs), 2)}, lowest {fmt(min(vs) if vs else None, 2)}")
        else:  # raw files from before the windowed probe: one median streaming sum per round
            lines.append(f"- read bandwidth (256 MiB streaming sum, 4 interleaved streams per thread with prefetch: "
                         f"tern-bench --bw-only, once per round, median), {t} thread(s): {fmt(med(vs), 2)} GB/s")
    lines.append(f"- run: {meta.get('started', '?')} to {meta.get('finished', '?')}; {meta['reps']} repetitions "
                 f"after {meta['warmup_rounds']} warm-up round(s), systems alternated run by run, one process per run")
    ls = meta.get("llama_settings")
    if ls:
        bufts = ("use_extra_bufts=false (this CPU has AMX: with its AMX/repacked weight buffers llama.cpp "
                 "0.3.36 segfaults in llama_decode on quantized models, so weights stay in their GGUF layout, "
                 "without CPU_REPACK either)" if not ls.get("use_extra_bufts") else
                 "use_extra_bufts=true (llama.cpp's default: weight repacking where it has it)")
        lines.append(f"- llama.cpp settings: llama-cpp-python {ls.get('llama_cpp_python', '?')}, GGML_NATIVE build; "
                     f"{bufts}; swa_full={'true' if ls.get('swa_full') else 'false'} (sliding-window layers cache "
                     f"only their window, llama.cpp's CLI default); KV cache {ls.get('kv_cache', 'f16')}, flash "
                     f"attention {ls.get('flash_attn', 'auto')}, n_batch {ls.get('n_batch', 512)}, mmap on")
        if ls.get("system_info"):
            lines.append(f"- llama.cpp system info: `{ls['system_info']}`")
    return lines


def systems_section(meta, model, bench_rows):
    lines = ["### What each side runs", "",
             "| system | weights | bits/weight | parameters | file bytes |", "|---|---|---:|---:|---:|"]
    for s in meta["systems"]:
        if model_of(s) != model:
            continue
        rows = [r for r in bench_rows if r["name"] == s["name"]]
        bpw = rows[0]["summary"].get("bits_per_weight") if rows else None
        params = rows[0]["summary"].get("parameters") if rows else None
        lines.append(f"| {s['name']} | {s['weights']} | {fmt(bpw, 2)} | {fmt(params, 0)} | "
                     f"{s['file_bytes']:,} |")
    lines += ["", "bits/weight = weight bytes x 8 / parameters (tern: its tensors; llama.cpp: llama_model_size / "
              "llama_model_n_params), over all weights, so tensors kept at higher precision (the tied "
              "embedding/output matrix, f32 norms, 5- to 8-bit sources that tern stores as int8) raise it above the "
              "nominal bits of the main type.", "",
              "tern's kernels are picked at run time for the CPU (see the ISA column below); llama.cpp is compiled "
              "with GGML_NATIVE for this CPU by llama-cpp-python's source build (its settings: see above)."]
    return lines


def roofline_bytes(table, name, t, tern_ref, context):
    """Bytes one decode token must read at `context`: the weights (each matrix once; the tied head reads the
    whole [vocab, dim] matrix) + K/V of the context (sliding-window layers: at most their window).
    tern: tern-bench's own count. llama.cpp: llama_model_size (its tensors once; our models have tied heads)
    + the same KV bytes, taken from the tern run of this model (same architecture, f16 KV on both)."""
    v = table.get((name, t))
    if not v:
        return None
    s = v["summary"]
    if "decode_weight_bytes_per_token" in s:
        d = next((d for d in s.get("decodes", []) if d["context"] == context), None)
        return d["bytes_per_token"] if d and "bytes_per_token" in d else None
    ref = table.get((tern_ref, t)) if tern_ref else None
    if not ref or "weight_bytes" not in s:
        return None
    rs = ref["summary"]
    d = next((d for d in rs.get("decodes", []) if d["context"] == context), None)
    if not d or "bytes_per_token" not in d:
        return None
    return s["weight_bytes"] + d["bytes_per_token"] - rs["decode_weight_bytes_per_token"]


def throughput_sections(meta, model, rows):
    bench = [r for r in rows if r["kind"] == "bench" and not r["warmup"] and model_of(r) == model]
    bw_rows = [r for r in rows if r["kind"] == "bandwidth"]
    names = [s["name"] for s in meta["systems"] if model_of(s) == model]
    pairs = meta_models(meta)[model]["pairs"]
    threads = sorted({r["threads"] for r in bench})
    contexts = sorted({d["context"] for r in bench for d in r["rep"]["decodes"]})
    table = {}
    if not bench:
        return table, [], threads, contexts, names
    for t in threads:
        for n in names:
            rs = [r for r in bench if r["name"] == n and r["threads"] == t]
            if not rs:
                continue
            lat0 = [x for r in rs for x in (next(d for d in r["rep"]["decodes"] if d["context"] == contexts[0])
                                            ["token_ms"])]
            table[(n, t)] = {
                "ready": med([r["spawn_to_ready_ms"] for r in rs]),
                "libload": med([library_load_ms(r) for r in rs]),
                "ttft16": med([prompt_metric(r, 16, "ttft_ms") for r in rs]),
                "ttft512": med([prompt_metric(r, 512, "ttft_ms") for r in rs]),
                "pp128": med([prompt_metric(r, 128, "prefill_tok_s") for r in rs]),
                "pp512": med([prompt_metric(r, 512, "prefill_tok_s") for r in rs]),
                "tg0": med([decode_metric(r, 0, "tok_s") for r in rs]),
                "tg1024": med([decode_metric(r, 1024, "tok_s") for r in rs]),
                "p50": med([decode_metric(r, 0, "p50_ms") for r in rs]),
                "p95": med([decode_metric(r, 0, "p95_ms") for r in rs]),
                "p99": med([decode_metric(r, 0, "p99_ms") for r in rs]),
                "rss": med([r["peak_rss_bytes"] for r in rs]),
                "ctx": {c: med([decode_metric(r, c, "tok_s") for r in rs]) for c in contexts},
                "lat0": lat0,
                "summary": rs[-1]["summary"],
                "bw": med([b["read_bw_gbs"] for b in bw_rows if b["threads"] == t and not b["warmup"]]),
                # Per run, the best read bandwidth of the probes right before and after it (bench.py).
                "bw_windows": [(r, r["read_bw_window_gbs"]) for r in rs if r.get("read_bw_window_gbs")],
            }
            if table[(n, t)]["bw_windows"]:
                table[(n, t)]["bw"] = med([w for _, w in table[(n, t)]["bw_windows"]])
    lines = ["### Throughput and latency", "",
             "Medians. *ready* = process spawn to model ready, measured by the driver for both (llama.cpp's includes "
             "starting the Python interpreter); *library load* = inside the process: tern's Engine::open, llama.cpp's "
             "`import llama_cpp` + model load + context creation. TTFT = prefill of the prompt + first greedy token, "
             "after an in-process warm-up. Latency percentiles: per decode step at context 0 (tg128). Peak RSS: the "
             "whole benchmark process (wait4), including llama.cpp's Python interpreter.", ""]
    hdr = ("| system | threads | ready ms | library load ms | TTFT 16 ms | TTFT 512 ms | pp128 tok/s | pp512 tok/s | "
           "tg128 @0 tok/s | tg128 @1024 tok/s | p50 ms | p95 ms | p99 ms | peak RSS MiB |")
    lines += [hdr, "|---|---:|" + "---:|" * 12]
    for t in threads:
        for n in names:
            v = table.get((n, t))
            if not v:
                continue
            lines.append(f"| {n} | {t} | {fmt(v['ready'])} | {fmt(v['libload'])} | {fmt(v['ttft16'], 2)} | "
                         f"{fmt(v['ttft512'])} | {fmt(v['pp128'])} | {fmt(v['pp512'])} | {fmt(v['tg0'])} | "
                         f"{fmt(v['tg1024'])} | {fmt(v['p50'], 2)} | {fmt(v['p95'], 2)} | {fmt(v['p99'], 2)} | "
                         f"{fmt(v['rss'] / MIB if v['rss'] else None)} |")
    # Side by side: tern / llama.cpp per pair.
    lines += ["", "Side by side (tern / llama.cpp, medians):", "",
              "| pair | threads | pp512 tok/s | pp512 ratio | decode @0 tok/s | decode @0 ratio | decode @"
              f"{contexts[-1]} tok/s | decode @{contexts[-1]} ratio |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for t in threads:
        for a, b in pairs:
            x, y = table.get((a, t)), table.get((b, t))
            if not x or not y:
                continue
            cl = contexts[-1]
            lines.append(f"| {a} / {b} | {t} | {fmt(x['pp512'])} / {fmt(y['pp512'])} | {ratio(x['pp512'], y['pp512'])} | "
                         f"{fmt(x['tg0'])} / {fmt(y['tg0'])} | {ratio(x['tg0'], y['tg0'])} | "
                         f"{fmt(x['ctx'][cl])} / {fmt(y['ctx'][cl])} | {ratio(x['ctx'][cl], y['ctx'][cl])} |")
    tern_of = {b: a for a, b in pairs}
    lines += ["", "### Bytes roofline", "",
              "Bytes a decode token must read = every weight matrix once (the tied head reads the whole "
              "[vocab, dim] matrix) + K/V (f16) of the context, sliding-window layers at most their window. tern: "
              "its blob's weights (tern-bench's count); llama.cpp: llama_model_size of its GGUF + the same KV bytes. " +
              ("% of read BW = bytes/token x tok/s / the read bandwidth of the same window with the same thread "
               "count: per run, the best of the probes right before and right after it (each the best of 5 trials "
               "x 3 access patterns, STREAM-style, so it bounds what a kernel streams), then the median over the "
               "runs; read BW GB/s is the median of those window bests."
               if any(v.get("bw_windows") for v in table.values()) else
               "% of read BW = bytes/token x tok/s / read bandwidth measured in the same run with the same thread "
               "count (median probe of the run)."), "",
              "| system | threads | ISA | MiB/token @0 | GB/s @0 | % of read BW @0 | "
              f"MiB/token @{contexts[-1]} | % of read BW @{contexts[-1]} | read BW GB/s |",
              "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    over = []  # rows above 100%: a DRAM probe does not bound them
    for t in threads:
        for n in names:
            v = table.get((n, t))
            if not v:
                continue
            cells = []
            for c, tok in ((contexts[0], v["ctx"][contexts[0]]), (contexts[-1], v["ctx"][contexts[-1]])):
                b = roofline_bytes(table, n, t, tern_of.get(n), c)
                gbs = b * tok / 1e9 if b and tok else None
                if b and v["bw_windows"]:
                    pct = med([100 * b * decode_metric(r, c, "tok_s") / 1e9 / w for r, w in v["bw_windows"]
                               if decode_metric(r, c, "tok_s")])
                else:
                    pct = 100 * gbs / v["bw"] if gbs and v["bw"] else None
                cells.append((b, gbs, pct))
            v["roof"] = cells
            isa = v["summary"].get("isa", "-") if n.startswith("tern") else "ggml"
            (b0, g0, f0), (b1, _, f1) = cells
            over += [f"{n}, {t} thread(s)" for f in (f0, f1) if f and f > 100]
            lines.append(f"| {n} | {t} | {isa} | {fmt(b0 / MIB if b0 else None, 2)} | {fmt(g0, 2)} | "
                         f"{fmt(f0, 0)}% | {fmt(b1 / MIB if b1 else None, 2)} | {fmt(f1, 0)}% | {fmt(v['bw'], 2)} |")
    if over:
        llc = next((r["llc_bytes"] for r in bw_rows if r.get("llc_bytes")), None)
        lines += ["", f"Above 100% ({'; '.join(sorted(set(over)))}): part of a token's bytes came from the "
                  f"last-level cache{f' ({llc / MIB:.0f} MiB as sysfs reports it)' if llc else ''}, not DRAM; a DRAM "
                  "probe does not bound that row."]
    lines += ["", "### Decode speed vs context", "",
              "| system | threads | " + " | ".join(f"ctx {c}" for c in contexts) + " |",
              "|---|---:|" + "---:|" * len(contexts)]
    for t in threads:
        for n in names:
            v = table.get((n, t))
            if v:
                lines.append(f"| {n} | {t} | " + " | ".join(fmt(v["ctx"][c]) for c in contexts) + " |")
    return table, lines, threads, contexts, names


def ratio(x, y):
    return f"{x / y:.2f}x" if x and y else "-"


def footprint_section(fp, model):
    rows = [r for r in fp["rows"] if not r["warmup"] and model_of(r) == model]
    systems = [s for s in fp["meta"]["systems"] if model_of(s) == model]
    names = [s["name"] for s in systems]
    ctxs = sorted({r["context"] for r in rows})
    table = {}
    for c in ctxs:
        for n in names:
            rs = [r for r in rows if r["name"] == n and r["context"] == c]
            if not rs:
                continue
            s = rs[-1]["summary"]
            table[(n, c)] = {
                "rss": med([r["peak_rss_bytes"] for r in rs]),
                "first": med([r["spawn_to_first_token_ms"] for r in rs]),
                "arena": s.get("arena_bytes"),
                "blob": s.get("blob_bytes") or s.get("weight_bytes"),
                "before": med([r["summary"].get("peak_rss_before_model_bytes") for r in rs]),
                "file": next(x["file_bytes"] for x in systems if x["name"] == n),
            }
    n_tok = fp["meta"].get("footprint_n", 32)
    lines = ["### Footprint", "",
             f"A 16-token prompt then {n_tok} greedy tokens, one thread, mmap on for both (tern-run; llama.cpp "
             "through llama_peer.py footprint), the context sized to the column. Peak RSS from wait4 for the whole "
             "process. *first token* = process spawn to the first generated token's line reaching the driver. "
             "llama.cpp's *baseline* is the interpreter + numpy + libllama before the model is loaded (part of its "
             "peak RSS).", "",
             "| system | context | peak RSS MiB | file MiB | tern arena MiB | blob + arena + 4 MiB | llama.cpp baseline MiB | "
             "spawn to first token ms |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in ctxs:
        for n in names:
            v = table.get((n, c))
            if not v:
                continue
            tern = n.startswith("tern")
            bound = (v["blob"] + v["arena"]) / MIB + 4 if tern and v["arena"] else None
            lines.append(f"| {n} | {c} | {fmt(v['rss'] / MIB)} | {fmt(v['file'] / MIB)} | "
                         f"{fmt(v['arena'] / MIB if tern and v['arena'] else None, 2)} | {fmt(bound)} | "
                         f"{fmt(v['before'] / MIB if v['before'] else None)} | {fmt(v['first'])} |")
    return table, lines, ctxs, names


def targets_section(model, pairs, tp, fp):
    goal = TARGETS.get(model, TARGETS["gemma3"])
    lines = ["### Targets", "", "| target | pair | threads | measured | met |", "|---|---|---:|---:|---|"]
    if tp:
        table, threads = tp
        for t in threads:
            for a, b in pairs:
                x, y = table.get((a, t)), table.get((b, t))
                if not x or not y:
                    continue
                for label, key, g in ((f"decode tg128 >= {goal['decode']}x", "tg0", goal["decode"]),
                                      (f"pp512 >= {goal['pp512']}x", "pp512", goal["pp512"])):
                    if x[key] and y[key]:
                        r = x[key] / y[key]
                        lines.append(f"| {label} | {a} / {b} | {t} | {r:.2f}x | {'yes' if r >= g else 'no'} |")
                roof = x.get("roof")
                if roof and roof[0][2] is not None:
                    f = roof[0][2] / 100
                    lines.append(f"| decode >= {100 * goal['bw']:.0f}% of read BW | {a} | {t} | {100 * f:.0f}% | "
                                 f"{'yes' if f >= goal['bw'] else 'no'} |")
    if fp:
        table = fp
        for a, b in pairs:
            for c in sorted({k[1] for k in table}):
                x, y = table.get((a, c)), table.get((b, c))
                if goal["first_token"] and x and y and x["first"] and y["first"] and c == 2048:
                    r = x["first"] / y["first"]
                    lines.append(f"| start to first token <= {goal['first_token']}x (short prompt) | {a} / {b} | 1 | "
                                 f"{r:.2f}x | {'yes' if r <= goal['first_token'] else 'no'} |")
                if x and y and c in goal["rss_contexts"]:
                    r = x["rss"] / y["rss"]
                    lines.append(f"| peak RSS ctx {c} <= {goal['rss']}x | {a} / {b} | 1 | {r:.2f}x | "
                                 f"{'yes' if r <= goal['rss'] else 'no'} |")
                if x and x["arena"] and c in goal["rss_contexts"]:
                    bound = x["blob"] + x["arena"] + 4 * MIB
                    lines.append(f"| peak RSS ctx {c} <= blob + arena + 4 MiB | {a} | 1 | "
                                 f"{x['rss'] / MIB:.1f} / {bound / MIB:.1f} MiB | {'yes' if x['rss'] <= bound else 'no'} |")
    return lines


def plots(out, model, title, tp, fp):
    made = []
    # SmolLM2 keeps the plot names it had before the per-model report (the top-level README links them).
    pre = "" if model == "smollm2" else f"{model}-"
    if tp:
        table, threads, contexts, names = tp
        # Bars per metric.
        metrics = [("pp128", "prefill pp128"), ("pp512", "prefill pp512"), ("tg0", "decode tg128 @0"),
                   ("tg1024", "decode tg128 @1024")]
        fig, axes = plt.subplots(1, len(threads), figsize=(6 * len(threads), 4.5), squeeze=False)
        for ax, t in zip(axes[0], threads):
            w = 0.8 / max(1, len(names))
            for i, n in enumerate(names):
                v = table.get((n, t))
                if not v:
                    continue
                vals = [v[k] or 0 for k, _ in metrics]
                xs = [j + i * w for j in range(len(metrics))]
                ax.bar(xs, vals, w, label=n, color=COLORS.get(n))
            ax.set_xticks([j + 0.4 - w / 2 for j in range(len(metrics))])
            ax.set_xticklabels([m for _, m in metrics], fontsize=8)
            ax.set_ylabel("tokens/s")
            ax.set_yscale("log")
            ax.set_title(f"{t} thread(s)")
            ax.legend(fontsize=8)
        fig.suptitle(f"{title}: tokens/s (median; log scale)")
        fig.tight_layout()
        fig.savefig(os.path.join(out, pre + "throughput.png"), dpi=110)
        plt.close(fig)
        made.append(pre + "throughput.png")
        # Per-token latency distribution at context 0.
        fig, axes = plt.subplots(1, len(threads), figsize=(6 * len(threads), 4.5), squeeze=False)
        for ax, t in zip(axes[0], threads):
            data, labels = [], []
            for n in names:
                v = table.get((n, t))
                if v and v["lat0"]:
                    data.append(v["lat0"])
                    labels.append(n)
            if data:
                parts = ax.violinplot(data, showmedians=True, quantiles=[[0.95, 0.99]] * len(data))
                for body, n in zip(parts["bodies"], labels):
                    body.set_facecolor(COLORS.get(n, "#888"))
                ax.set_xticks(range(1, len(labels) + 1))
                ax.set_xticklabels(labels, fontsize=8)
            ax.set_ylabel("ms per decoded token")
            ax.set_title(f"{title}: per-token decode latency, context {contexts[0]}, {t} thread(s)\n"
                         "(median, p95, p99 marked)", fontsize=9)
        fig.tight_layout()
        fig.savefig(os.path.join(out, pre + "latency.png"), dpi=110)
        plt.close(fig)
        made.append(pre + "latency.png")
        # Decode tok/s vs context.
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for n in names:
            for t in threads:
                v = table.get((n, t))
                if v:
                    ax.plot(contexts, [v["ctx"][c] for c in contexts], marker="o", color=COLORS.get(n),
                            linestyle="-" if t == threads[-1] else "--", label=f"{n}, {t}T")
        ax.set_xlabel("context (tokens in the KV cache)")
        ax.set_ylabel("decode tokens/s")
        ax.set_title(f"{title}: decode speed vs context length (median)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(os.path.join(out, pre + "context_scaling.png"), dpi=110)
        plt.close(fig)
        made.append(pre + "context_scaling.png")
    if fp:
        table, ctxs, names = fp
        fig, ax = plt.subplots(figsize=(8, 4.5))
        w = 0.8 / max(1, len(names))
        for i, n in enumerate(names):
            xs = [j + i * w for j in range(len(ctxs))]
            vals = [(table.get((n, c)) or {}).get("rss", 0) / MIB for c in ctxs]
            ax.bar(xs, vals, w, label=n, color=COLORS.get(n))
            for x, c in zip(xs, ctxs):
                v = table.get((n, c))
                if v and v.get("arena"):
                    ax.plot([x - w / 2, x + w / 2], [(v["blob"] + v["arena"]) / MIB] * 2, color="k", lw=1)
        ax.set_xticks([j + 0.4 - w / 2 for j in range(len(ctxs))])
        ax.set_xticklabels([f"context {c}" for c in ctxs])
        ax.set_ylabel("peak RSS, MiB")
        ax.set_title(f"{title}: peak RSS, short prompt + decode (black line: tern blob + arena)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, pre + "footprint.png"), dpi=110)
        plt.close(fig)
        made.append(pre + "footprint.png")
    return made


def meta_models(meta):
    return meta.get("models") or LEGACY_MODELS


def overhead_lines(raw, model):
    ov = os.path.join(raw, f"overhead-{model}.txt")
    if not os.path.exists(ov) and model == "smollm2":
        ov = os.path.join(raw, "overhead.txt")  # the file's name before the per-model runs
    if not os.path.exists(ov):
        return []
    with open(ov) as f:
        first, *table = f.read().splitlines()
    o = json.loads(first)
    return ["### Per-token work outside the matrix kernels", "",
            f"callgrind over Model::forward and Engine::sample of an 8-token prompt + 16 greedy tokens "
            f"(`bench/overhead.sh`, int4 blob, 1 thread): **{100 * o['outside_matmul_fraction']:.1f}%** of the "
            f"instructions are outside the quantized matrix kernels (target < 5%). Instructions, not time; "
            f"top functions:", ""] + table[:12] + [""]


def main():
    raw, out = sys.argv[1], sys.argv[2]
    tpj, fpj, eqj = load(raw, "throughput.json"), load(raw, "footprint.json"), load(raw, "equivalence.json")
    meta = dict((tpj or fpj or eqj)["meta"])
    last = load(raw, "meta.json")
    if last and last.get("finished"):
        meta["finished"] = last["finished"]
    models = meta_models(meta)
    titles = [m["title"] for m in models.values()]
    lines = [f"# tern vs llama.cpp on {' and '.join(titles)}", "",
             "Made by `bench/run.sh` (raw data in `raw/`, not committed). Numbers are medians of "
             f"{meta['reps']} run{'s' if meta['reps'] != 1 else ''} per configuration. One section per model: tern and llama.cpp on the same GGUF.", ""]
    if os.environ.get("BENCH_NOTE"):
        lines += [f"**Note:** {os.environ['BENCH_NOTE']}", ""]
    lines += machine_section(meta, [r for r in (tpj or {"rows": []})["rows"] if r.get("kind") == "bandwidth"]) + [""]
    made = []
    for model, info in models.items():
        lines += [f"## {info['title']}", ""]
        if info.get("gguf"):
            lines += [f"GGUF: `{info['gguf']}`.", ""]
        tp = fp = None
        if tpj:
            lines += systems_section(tpj["meta"], model, [r for r in tpj["rows"]
                                                          if r["kind"] == "bench" and model_of(r) == model]) + [""]
            table, tl, threads, contexts, names = throughput_sections(tpj["meta"], model, tpj["rows"])
            if table:
                lines += tl + [""]
                tp = (table, threads, contexts, names)
        if fpj:
            ftable, fl, ctxs, fnames = footprint_section(fpj, model)
            if ftable:
                lines += fl + [""]
                fp = (ftable, ctxs, fnames)
        lines += targets_section(model, info["pairs"], (tp[0], tp[1]) if tp else None, fp[0] if fp else None) + [""]
        eq_rows = [r for r in (eqj or {"rows": []})["rows"] if model_of(r) == model]
        if eq_rows:
            lines += ["### Decoding equivalence", "",
                      f"The same prompt token ids, greedy decoding, {eq_rows[0]['n']} tokens: how many agree before "
                      "the first divergence (and at how many positions the two agree in all).", "",
                      "| prompt | tokens | tern | llama.cpp | agree before divergence | same positions |",
                      "|---:|---:|---|---|---:|---:|"]
            for r in eq_rows:
                lines.append(f"| {r['prompt']} | {r['prompt_tokens']} | {r['tern']} | {r['llama']} | "
                             f"{r['agree_prefix']}/{r['n']} | {r['same_positions']}/{r['n']} |")
            lines.append("")
        lines += overhead_lines(raw, model)
        pm = plots(out, model, info["title"], tp, fp)
        if pm:
            lines += ["### Plots", ""] + [f"![{m}]({m})" for m in pm] + [""]
        made += pm
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {os.path.join(out, 'README.md')} and {', '.join(made)}")


if __name__ == "__main__":
    main()
