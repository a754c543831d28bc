#!/usr/bin/env python3
"""Broker CPU per record with every producer held to the same rate (issue 18).

In the unpaced runs kafka-sdk sends faster than franz-go, so a difference in the broker's CPU
per record may come from the rate (more requests per second, more writeback at once) rather
than from the batches themselves. Here each client sends at one fixed rate (the harness's
`--rate`, below the slower client's unpaced rate), alternating the order every round, on one
broker pinned as run.py pins it:

    python3 integration/peer-bench/same_rate.py --cell C-lz4/1024/600000 \
        [--cell T/1024/1200000 ...] [--rounds 5] [--unpaced] [--out FILE]

`--unpaced` adds an unpaced run of each client per round (rate 0), as run.py measures.
Every run is verified as run.py verifies it (sum of high watermarks == records acknowledged).
Prints a table per cell (median and spread of msgs/s, client and broker CPU-s per 1M records,
records per stored batch). It does not touch results.json or BENCHMARKS.md.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the peer harness: Broker, Runner, producer_cmd, run_measured)

CLIENTS = [("kafka-sdk", "report"), ("franz-go", "kgo")]


def parse_cell(text):
    prof, size, rate = text.split("/")
    if prof not in run.PROFILES:
        sys.exit("unknown profile %s" % prof)
    if int(size) not in run.SIZES:
        sys.exit("size must be one of %s" % run.SIZES)
    return prof, int(size), int(rate)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cell", action="append", required=True, metavar="PROFILE/SIZE/RATE")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--unpaced", action="store_true", help="also one unpaced run per client")
    ap.add_argument("--count", type=int, default=0, help="records per run (default: run.py's)")
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--no-pin", dest="pin", action="store_false")
    ap.add_argument("--out", default="", help="write the runs here as JSON")
    args = ap.parse_args()
    cells = [parse_cell(c) for c in args.cell]
    run.side_run_ready(args, [c for c, _ in CLIENTS])
    rates = lambda r: [r, 0] if args.unpaced else [r]  # noqa: E731

    runs = []
    with run.side_broker(args) as runner:
        for i in range(args.rounds):
            for prof, size, rate in cells:
                count = args.count or {100: 5_000_000, 1024: 2_000_000}[size]
                order = CLIENTS[i % 2:] + CLIENTS[:i % 2]
                for r in rates(rate):
                    for client, api in order:
                        res = runner.produce(client, api, prof, size, count, rate=r)
                        res["cell_rate"] = rate
                        runs.append(res)
                        run.log("%s/%d at %s, %s round %d: %s msgs/s, %s CPU-s/1M, broker %s, %s"
                                % (prof, size, r or "max", client, i + 1,
                                   res.get("msgs_per_sec"), res.get("cpu_s_per_1m"),
                                   res.get("broker_cpu_s_per_1m"), res.get("status")))

    print("\n| cell | rate | client | ok runs | msgs/s median (min-max) | client CPU-s/1M | "
          "broker CPU-s/1M | records per batch |")
    print("|---|---|---|---|---|---|---|---|")
    for prof, size, rate in cells:
        for r in rates(rate):
            for client, _api in CLIENTS:
                rows = [x for x in runs if x["profile"] == prof and x["size"] == size
                        and x["cell_rate"] == rate and x["rate"] == r and x["client"] == client]
                head = ["%s / %d B" % (prof, size), run.fmt(r) if r else "unpaced", client]
                print("| %s |" % " | ".join(head + run.side_run_columns(rows, 3)))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"cells": args.cell, "rounds": args.rounds, "runs": runs}, fh, indent=1)


if __name__ == "__main__":
    main()
