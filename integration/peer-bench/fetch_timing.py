#!/usr/bin/env python3
"""Summarises bench-sdk's `BENCH_FETCH_TIMING=1` lines (stderr): where a consumer's fetch
cycle goes, per broker and fetch lane.

    BENCH_FETCH_TIMING=1 bench-sdk consume ... 2> timing.txt
    python3 integration/peer-bench/fetch_timing.py timing.txt

`held` is the time from a fetch's answer to the lane's next request (the client
decoding the answer's predecessor, or waiting for the application to make room: the broker
has nothing of this client's to do meanwhile); `request` is a request's round trip (the
broker reading the log and writing the answer, the client reading it off the socket). The
shares are of the sum of both, i.e. of the wall time one lane's fetch cycle took.
"""
import argparse
import re


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    args = ap.parse_args()
    nodes = {}
    with open(args.file) as fh:
        for line in fh:
            if not line.startswith("timing "):
                continue
            f = dict(re.findall(r"(\w+)=(\S+)", line))
            if "max_bytes" not in f:
                continue
            key = f["node"] + ("/%s" % f["lane"] if "lane" in f else "")
            nodes.setdefault(key, []).append({
                "bytes": int(f["bytes"]), "max_bytes": int(f["max_bytes"]),
                "partitions": int(f["partitions"]), "request": int(f["request_us"]),
                "held": int(f["held_us"]) if "held_us" in f else None})
    if not nodes:
        raise SystemExit("no fetch timing lines")
    print("| node/lane | fetches | KB per answer (median) | held p50 / p90 / p99 ms | request p50 / p90 / p99 ms | held share | request share |")
    print("|---|---|---|---|---|---|---|")
    for node, rows in sorted(nodes.items()):
        held = [r["held"] for r in rows if r["held"] is not None]
        req = [r["request"] for r in rows]
        total = sum(held) + sum(req)
        print("| %s | %d | %.0f | %.2f / %.2f / %.2f | %.2f / %.2f / %.2f | %.0f %% | %.0f %% |" % (
            node, len(rows), pct([r["bytes"] for r in rows], .5) / 1e3,
            pct(held, .5) / 1e3, pct(held, .9) / 1e3, pct(held, .99) / 1e3,
            pct(req, .5) / 1e3, pct(req, .9) / 1e3, pct(req, .99) / 1e3,
            100.0 * sum(held) / total if total else 0, 100.0 * sum(req) / total if total else 0))


if __name__ == "__main__":
    main()
