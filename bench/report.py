#!/usr/bin/env python3
"""Turns bench/results/raw/*.json (from bench/peer/bench.py) into bench/results/README.md
and PNG plots. Every figure is the median over the non-warm-up rounds.

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
COLORS = {"tern int4": "#1f77b4", "tern int8": "#6baed6", "llama.cpp Q4_1": "#d62728", "llama.cpp Q8_0": "#fc9272"}


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
    lines = ["## Machine", ""]
    lines.append(f"- CPU: {m.get('cpu_model', '?')}, {m.get('cores', '?')} logical cores; "
                 f"memory {m.get('mem_total_kb', 0) / 1048576:.1f} GiB")
    lines.append(f"- SIMD flags: {' '.join(m.get('flags', []))}")
    lines.append(f"- OS: {m.get('platform', '?')}; load average at start {' '.join(m.get('loadavg_at_start', []))}")
    for t in sorted({r["threads"] for r in bw_rows}):
        v = med([r["read_bw_gbs"] for r in bw_rows if r["threads"] == t and not r["warmup"]])
        lines.append(f"- read bandwidth (256 MiB streaming sum, tern-bench --bw-only, same run), {t} thread(s): "
                     f"{fmt(v, 2)} GB/s")
    lines.append(f"- run: {meta.get('started', '?')} to {meta.get('finished', '?')}; {meta['reps']} repetitions "
                 f"after {meta['warmup_rounds']} warm-up round(s), systems alternated run by run, one process per run")
    return lines


def systems_section(meta, bench_rows):
    lines = ["## What each side runs", "",
             "| system | weights | bits/weight | parameters | file bytes |", "|---|---|---:|---:|---:|"]
    for s in meta["systems"]:
        rows = [r for r in bench_rows if r["name"] == s["name"]]
        bpw = rows[0]["summary"].get("bits_per_weight") if rows else None
        params = rows[0]["summary"].get("parameters") if rows else None
        lines.append(f"| {s['name']} | {s['weights']} | {fmt(bpw, 2)} | {fmt(params, 0)} | "
                     f"{s['file_bytes']:,} |")
    lines += ["", "bits/weight = weight bytes x 8 / parameters (tern: its tensors; llama.cpp: llama_model_size / "
              "llama_model_n_params), over all weights: values above the nominal 4.5-5 / 8.5 bits come from tensors "
              "kept at higher precision (tern: the tied embedding/output matrix at int8 and f32 norms; llama.cpp: "
              "whatever types the GGUF stores).", "",
              "tern's kernels are picked at run time for the CPU (see the ISA column below); llama.cpp is compiled "
              "with GGML_NATIVE for this CPU by llama-cpp-python's source build, with its default CPU settings "
              "(f16 KV cache, flash attention auto, weight repacking where it has it)."]
    return lines


def throughput_sections(meta, rows):
    bench = [r for r in rows if r["kind"] == "bench" and not r["warmup"]]
    bw_rows = [r for r in rows if r["kind"] == "bandwidth"]
    names = [s["name"] for s in meta["systems"]]
    threads = sorted({r["threads"] for r in bench})
    contexts = sorted({d["context"] for r in bench for d in r["rep"]["decodes"]})
    table = {}
    for t in threads:
        for n in names:
            rs = [r for r in bench if r["name"] == n and r["threads"] == t]
            if not rs:
                continue
            lat0 = [x for r in rs for x in (next(d for d in r["rep"]["decodes"] if d["context"] == 0)["token_ms"])]
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
            }
    lines = ["## Throughput and latency", "",
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
    lines += ["", "### tern: kernels and the bandwidth roofline", "",
              "Bytes streamed per decode token = every weight matrix once (the tied head reads the whole "
              "[vocab, dim] matrix) + K/V of the context. Fraction = bytes/token x tok/s / read bandwidth measured "
              "in the same run with the same thread count.", "",
              "| system | threads | ISA | MiB/token @0 | GB/s streamed @0 | read BW GB/s | % of read BW @0 |",
              "|---|---:|---|---:|---:|---:|---:|"]
    for t in threads:
        for n in names:
            v = table.get((n, t))
            if not v or "decode_weight_bytes_per_token" not in v["summary"]:
                continue
            b = v["summary"]["decode_weight_bytes_per_token"]
            gbs = b * v["tg0"] / 1e9 if v["tg0"] else None
            frac = 100 * gbs / v["bw"] if gbs and v["bw"] else None
            lines.append(f"| {n} | {t} | {v['summary'].get('isa', '?')} | {b / MIB:.2f} | {fmt(gbs, 2)} | "
                         f"{fmt(v['bw'], 2)} | {fmt(frac, 0)}% |")
    lines += ["", "## Decode speed vs context", "",
              "| system | threads | " + " | ".join(f"ctx {c}" for c in contexts) + " |",
              "|---|---:|" + "---:|" * len(contexts)]
    for t in threads:
        for n in names:
            v = table.get((n, t))
            if v:
                lines.append(f"| {n} | {t} | " + " | ".join(fmt(v["ctx"][c]) for c in contexts) + " |")
    return table, lines, threads, contexts, names


def footprint_section(fp):
    rows = [r for r in fp["rows"] if not r["warmup"]]
    names = [s["name"] for s in fp["meta"]["systems"]]
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
                "file": next(x["file_bytes"] for x in fp["meta"]["systems"] if x["name"] == n),
            }
    lines = ["## Footprint", "",
             "A 16-token prompt then 32 greedy tokens, one thread, mmap on for both (tern-run; llama.cpp through "
             "llama_peer.py footprint). Peak RSS from wait4 for the whole process. *first token* = process spawn "
             "to the first generated token's line reaching the driver. llama.cpp's *baseline* is the interpreter + "
             "numpy + libllama before the model is loaded (part of its peak RSS).", "",
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


def targets_section(tp, fp):
    lines = ["## Targets", "", "| target | pair | threads | measured | met |", "|---|---|---:|---:|---|"]
    pairs = [("tern int4", "llama.cpp Q4_1"), ("tern int8", "llama.cpp Q8_0")]
    if tp:
        table, threads = tp
        for t in threads:
            for a, b in pairs:
                x, y = table.get((a, t)), table.get((b, t))
                if not x or not y:
                    continue
                for label, key, goal in (("decode tg128 >= 1.3x", "tg0", 1.3), ("pp512 >= 2x", "pp512", 2.0)):
                    if x[key] and y[key]:
                        r = x[key] / y[key]
                        lines.append(f"| {label} | {a} / {b} | {t} | {r:.2f}x | {'yes' if r >= goal else 'no'} |")
                s = x["summary"]
                if "decode_weight_bytes_per_token" in s and x["bw"] and x["tg0"]:
                    f = s["decode_weight_bytes_per_token"] * x["tg0"] / 1e9 / x["bw"]
                    lines.append(f"| decode >= 85% of read BW | {a} | {t} | {100 * f:.0f}% | "
                                 f"{'yes' if f >= 0.85 else 'no'} |")
    if fp:
        table = fp
        for a, b in pairs:
            for c in (512, 2048, 8192):
                x, y = table.get((a, c)), table.get((b, c))
                if x and y and x["first"] and y["first"] and c == 2048:
                    r = x["first"] / y["first"]
                    lines.append(f"| start to first token <= 0.5x (short prompt) | {a} / {b} | 1 | {r:.2f}x | "
                                 f"{'yes' if r <= 0.5 else 'no'} |")
                if x and y and c == 2048:
                    r = x["rss"] / y["rss"]
                    lines.append(f"| peak RSS ctx 2048 <= 0.7x | {a} / {b} | 1 | {r:.2f}x | "
                                 f"{'yes' if r <= 0.7 else 'no'} |")
                if x and x["arena"] and c == 2048:
                    bound = x["blob"] + x["arena"] + 4 * MIB
                    lines.append(f"| peak RSS ctx 2048 <= blob + arena + 4 MiB | {a} | 1 | "
                                 f"{x['rss'] / MIB:.1f} / {bound / MIB:.1f} MiB | {'yes' if x['rss'] <= bound else 'no'} |")
    return lines


def plots(out, tp, fp):
    made = []
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
        fig.suptitle("SmolLM2-135M-Instruct: tokens/s (median; log scale)")
        fig.tight_layout()
        fig.savefig(os.path.join(out, "throughput.png"), dpi=110)
        plt.close(fig)
        made.append("throughput.png")
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
            ax.set_title(f"per-token decode latency, context 0, {t} thread(s)\n(median, p95, p99 marked)", fontsize=9)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "latency.png"), dpi=110)
        plt.close(fig)
        made.append("latency.png")
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
        ax.set_title("Decode speed vs context length (median)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "context_scaling.png"), dpi=110)
        plt.close(fig)
        made.append("context_scaling.png")
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
        ax.set_title("Peak RSS, short prompt + 32 tokens (black line: tern blob + arena)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "footprint.png"), dpi=110)
        plt.close(fig)
        made.append("footprint.png")
    return made


def main():
    raw, out = sys.argv[1], sys.argv[2]
    tpj, fpj, eqj = load(raw, "throughput.json"), load(raw, "footprint.json"), load(raw, "equivalence.json")
    meta = dict((tpj or fpj or eqj)["meta"])
    last = load(raw, "meta.json")
    if last and last.get("finished"):
        meta["finished"] = last["finished"]
    lines = ["# tern vs llama.cpp on SmolLM2-135M-Instruct", "",
             "Made by `bench/run.sh` (raw data in `raw/`, not committed). Numbers are medians of "
             f"{meta['reps']} runs per configuration.", ""]
    if os.environ.get("BENCH_NOTE"):
        lines += [f"**Note:** {os.environ['BENCH_NOTE']}", ""]
    lines += machine_section(meta, [r for r in (tpj or {"rows": []})["rows"] if r.get("kind") == "bandwidth"]) + [""]
    tp = fp = None
    if tpj:
        lines += systems_section(meta, [r for r in tpj["rows"] if r["kind"] == "bench"]) + [""]
        table, tl, threads, contexts, names = throughput_sections(meta, tpj["rows"])
        lines += tl + [""]
        tp = (table, threads, contexts, names)
    if fpj:
        ftable, fl, ctxs, fnames = footprint_section(fpj)
        lines += fl + [""]
        fp = (ftable, ctxs, fnames)
    lines += targets_section((tp[0], tp[1]) if tp else None, fp[0] if fp else None) + [""]
    if eqj:
        lines += ["## Decoding equivalence", "",
                  "The same prompt token ids, greedy decoding, "
                  f"{eqj['rows'][0]['n'] if eqj['rows'] else 0} tokens: how many agree before the first divergence "
                  "(and at how many positions the two agree in all).", "",
                  "| prompt | tokens | tern | llama.cpp | agree before divergence | same positions |",
                  "|---:|---:|---|---|---:|---:|"]
        for r in eqj["rows"]:
            lines.append(f"| {r['prompt']} | {r['prompt_tokens']} | {r['tern']} | {r['llama']} | "
                         f"{r['agree_prefix']}/{r['n']} | {r['same_positions']}/{r['n']} |")
        lines.append("")
    ov = os.path.join(raw, "overhead.txt")
    if os.path.exists(ov):
        with open(ov) as f:
            first, *table = f.read().splitlines()
        o = json.loads(first)
        lines += ["## Per-token work outside the matrix kernels", "",
                  f"callgrind over Model::forward and Engine::sample of an 8-token prompt + 16 greedy tokens "
                  f"(`bench/overhead.sh`, int4, 1 thread): **{100 * o['outside_matmul_fraction']:.1f}%** of the "
                  f"instructions are outside the quantized matrix kernels (target < 5%). Instructions, not time; "
                  f"top functions:", ""] + table[:12] + [""]
    made = plots(out, tp, fp)
    if made:
        lines += ["## Plots", ""] + [f"![{m}]({m})" for m in made] + [""]
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {os.path.join(out, 'README.md')} and {', '.join(made)}")


if __name__ == "__main__":
    main()
