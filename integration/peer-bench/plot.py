#!/usr/bin/env python3
"""Plots of a peer-bench results.json (PNG), for BENCHMARKS.md.

    python3 plot.py [results.json] [--out DIR]

Writes, for what the results hold:
- producer-<profile>.png: median msgs/s per client (API) and size, one chart per profile;
- consumer.png: median msgs/s per client (API), size and group/no group;
- scale-<metric>.png: throughput, client CPU-s per 1M records, max RSS and rebalance time
  against the partition count, one line per client and group size, from the `scale_runs`
  rows (each: client, partitions, members, msgs_per_sec, cpu_s_per_1m, max_rss_mb,
  rebalance_secs; written by scale.py);
- memory-burst-idle.png: RSS over time of each client in the burst-then-idle run
  (`memory_runs`, written by memory.py), the end of each burst marked;
- memory-consume-burst-idle.png: the same for the consumers (`memory_consume_runs`,
  memory.py --consume), the end of each burst's reading marked;
- tls.png: client CPU µs per record, plaintext vs SASL_SSL (`tls_runs`, tls_cost.py).
`--only peer,scale,memory,memory_consume,tls` limits what is drawn.
Needs matplotlib (`pip install matplotlib`); exits with status 2 and a message without it.
"""
import argparse
import json
import os
import statistics
import sys
from collections import defaultdict


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ok(r):
    return r.get("status") == "ok" and r.get("verified", True)


def bars(plt, title, groups, path, ylabel="msgs/s (median)"):
    """groups: {series label: {x label: value}} -> grouped bar chart."""
    xs = sorted({x for s in groups.values() for x in s})
    if not xs:
        return False
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(xs) * max(1, len(groups)) / 3), 4))
    width = 0.8 / max(1, len(groups))
    for i, (label, values) in enumerate(sorted(groups.items())):
        pos = [j + i * width for j in range(len(xs))]
        ax.bar(pos, [values.get(x, 0) or 0 for x in xs], width, label=label)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(xs))])
    ax.set_xticklabels(xs)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_memory(plt, doc, out, key="memory"):
    runs = [r for r in doc.get(key + "_runs", []) if r.get("rss_mb")]
    if not runs:
        return []
    consume = key == "memory_consume"
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for r in runs:
        label = f'{r["client"]} ({r["api"]})' + (f' {r["settings"]}' if r.get("settings") else "")
        line, = ax.plot(r["t"], r["rss_mb"], label=label)
        if r.get("burst_end_secs") is not None:
            ax.axvline(r["burst_end_secs"], color=line.get_color(), linestyle=":", linewidth=1)
    meta = doc.get(key + "_meta", {})
    ax.set_xlabel("seconds since the client started (dotted: burst %s, idle from there)" % (
        "read" if consume else "flushed"))
    ax.set_ylabel("RSS MB (VmRSS)")
    smoke = " (smoke size)" if "smoke" in meta.get("label", "") else ""
    if consume:
        ax.set_title("consumers: %s x %d B (%s) read, then polling an idle topic%s" % (
            "{:,}".format(meta.get("count", 0)), meta.get("size", 0), meta.get("profile", "D"),
            smoke))
    else:
        ax.set_title("burst of %s x %d B, then %d records/s%s" % (
            "{:,}".format(meta.get("count", 0)), meta.get("size", 0), meta.get("idle_rate", 0),
            smoke))
    ax.legend(fontsize="small")
    fig.tight_layout()
    path = os.path.join(out, "memory-consume-burst-idle.png" if consume else "memory-burst-idle.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def plot_tls(plt, doc, out):
    series = defaultdict(lambda: defaultdict(list))
    for r in doc.get("tls_runs", []):
        if r.get("status") == "ok" and r.get("cpu_us_per_rec") is not None:
            series[r["transport"]][r["client"]].append(r["cpu_us_per_rec"])
    if not series:
        return []
    groups = {t: {c: median(v) for c, v in cs.items()} for t, cs in series.items()}
    path = os.path.join(out, "tls.png")
    if not bars(plt, "client CPU µs per record, profile D, 100 B", groups, path, "CPU µs / record (median)"):
        return []
    return [path]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="?", default=os.path.join(os.path.dirname(__file__) or ".", "results.json"))
    ap.add_argument("--out", default=None, help="output directory (default: next to results.json)")
    ap.add_argument("--only", default="peer,scale,memory,memory_consume,tls")
    a = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot.py needs matplotlib: pip install matplotlib", file=sys.stderr)
        sys.exit(2)
    with open(a.results) as f:
        doc = json.load(f)
    out = a.out or os.path.dirname(os.path.abspath(a.results))
    os.makedirs(out, exist_ok=True)
    written = []
    only = set(a.only.split(","))
    if "memory" in only:
        written += plot_memory(plt, doc, out)
    if "memory_consume" in only:
        written += plot_memory(plt, doc, out, "memory_consume")
    if "tls" in only:
        written += plot_tls(plt, doc, out)
    if "peer" not in only:
        doc = {"scale_runs": doc.get("scale_runs", [])}
    if "scale" not in only:
        doc.pop("scale_runs", None)

    by_profile = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in doc.get("producer_runs", []):
        if ok(r):
            by_profile[r["profile"]][f'{r["client"]} ({r["api"]})'][f'{r["size"]} B'].append(r["msgs_per_sec"])
    for prof, series in sorted(by_profile.items()):
        groups = {k: {x: median(v) for x, v in s.items()} for k, s in series.items()}
        path = os.path.join(out, f"producer-{prof}.png")
        if bars(plt, f"producer, profile {prof}", groups, path):
            written.append(path)

    series = defaultdict(lambda: defaultdict(list))
    for r in doc.get("consumer_runs", []):
        if ok(r):
            x = f'{r["size"]} B {"group" if r.get("grouped") else "assign"}'
            series[f'{r["client"]} ({r["api"]})'][x].append(r["msgs_per_sec"])
    groups = {k: {x: median(v) for x, v in s.items()} for k, s in series.items()}
    path = os.path.join(out, "consumer.png")
    if bars(plt, "consumer", groups, path):
        written.append(path)

    scale = [r for r in doc.get("scale_runs", []) if ok(r)]
    metrics = [("msgs_per_sec", "msgs/s"), ("cpu_s_per_1m", "client CPU-s / 1M records"),
               ("max_rss_mb", "max RSS MB"), ("rebalance_secs", "rebalance s")]
    for key, ylabel in metrics:
        lines = defaultdict(lambda: defaultdict(list))
        for r in scale:
            if r.get(key) is not None:
                who = (f'{r["client"]} producer' if r.get("role") == "produce"
                       else f'{r["client"]}, group of {r.get("members", 1)}')
                lines[who][r["partitions"]].append(r[key])
        if not lines:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        clients = sorted({label.split(" ")[0].rstrip(",") for label in lines})
        color = {c: f"C{i}" for i, c in enumerate(clients)}
        for label, pts in sorted(lines.items()):
            xs = sorted(pts)
            client = label.split(" ")[0].rstrip(",")
            style = "-" if "producer" in label else {"1": "--", "3": "-.", "10": ":"}.get(
                label.rsplit(" ", 1)[-1], "--")
            ax.plot(xs, [median(pts[x]) for x in xs], marker="o", label=label,
                    color=color[client], linestyle=style)
        ax.set_xscale("log")
        ax.set_xlabel("partitions")
        ax.set_ylabel(ylabel)
        ax.set_title(f"scale: {ylabel}")
        ax.legend(fontsize="small")
        fig.tight_layout()
        path = os.path.join(out, f"scale-{key}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    print(json.dumps({"written": written}))


if __name__ == "__main__":
    main()
