#!/usr/bin/env python3
"""Summarises bench-sdk's `BENCH_BATCH_TIMING=1` lines (stderr): per stage, percentiles
weighted by records (what a record's latency sees), and the batches of the slowest records.

    BENCH_BATCH_TIMING=1 bench-sdk produce ... 2> timing.txt
    python3 integration/peer-bench/batch_timing.py timing.txt [--window-ms 100]

`queued` is a batch's time from its first record to its (last) Produce request: linger.ms,
waiting for an in-flight slot, retries; `request` is that request's round trip (the broker's
append, its answer, the client's reading of it); `total` is both.
"""
import argparse
import re


def pct(pairs, q):
    """Weighted percentile of (value, weight) pairs."""
    pairs = sorted(pairs)
    total = sum(w for _, w in pairs)
    if not total:
        return 0
    acc = 0
    for v, w in pairs:
        acc += w
        if acc >= q * total:
            return v
    return pairs[-1][0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--window-ms", type=int, default=0, help="also print per-window p99s")
    ap.add_argument("--top", type=int, default=5, help="slowest batches to list")
    args = ap.parse_args()
    rows = []
    with open(args.file) as fh:
        for line in fh:
            if not line.startswith("timing "):
                continue
            parts = line.split()
            f = dict(re.findall(r"(\w+)=(\S+)", line))
            rows.append({"t": float(parts[1]), "records": int(f["records"]), "bytes": int(f["bytes"]),
                         "queued": int(f["queued_us"]), "request": int(f["request_us"]),
                         "total": int(f["total_us"]), "partition": f.get("partition")})
    if not rows:
        raise SystemExit("no timing lines")
    recs = sum(r["records"] for r in rows)
    print("%d batches, %d records, %.0f records/batch, %.0f KB/batch" % (
        len(rows), recs, recs / len(rows), sum(r["bytes"] for r in rows) / len(rows) / 1e3))
    print("| stage | p50 ms | p99 ms | p99.9 ms | max ms |")
    print("|---|---|---|---|---|")
    for k in ("queued", "request", "total"):
        pairs = [(r[k], r["records"]) for r in rows]
        print("| %s | %.1f | %.1f | %.1f | %.1f |" % (
            k, pct(pairs, .5) / 1e3, pct(pairs, .99) / 1e3, pct(pairs, .999) / 1e3,
            max(v for v, _ in pairs) / 1e3))
    print("\nslowest batches (ack time s, partition, records, KB, queued ms, request ms):")
    for r in sorted(rows, key=lambda r: -r["total"])[:args.top]:
        print("  %.3f p%s %d %.0f %.1f %.1f" % (r["t"], r["partition"], r["records"], r["bytes"] / 1e3,
                                             r["queued"] / 1e3, r["request"] / 1e3))
    if args.window_ms:
        print("\nper %d ms of ack time: records, p99 queued / request / total ms" % args.window_ms)
        win = {}
        for r in rows:
            win.setdefault(int(r["t"] * 1000 // args.window_ms), []).append(r)
        for w in sorted(win):
            rs = win[w]
            print("  %6d %7d %6.1f %6.1f %6.1f" % (
                w * args.window_ms, sum(r["records"] for r in rs),
                *(pct([(r[k], r["records"]) for r in rs], .99) / 1e3 for k in ("queued", "request", "total"))))


if __name__ == "__main__":
    main()
