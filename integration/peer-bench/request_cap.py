#!/usr/bin/env python3
"""How many batches one Produce request carries, side by side (issue 18, D and T / 1 KiB).

The harness's profiles set `batch.size=1000000` for every client. kafka-sdk, like Java,
caps a Produce request at `max.request.size` (1 MiB by default), so each request carries one
~1 MB batch; franz-go caps a request at `BrokerMaxWriteBytes` (100 MiB by default) and packs
the batches of every ready partition into it. This script runs each client at its default cap
and at the other's, on one broker (pinned as run.py pins it), alternating the order every
round, so the difference between clients can be told apart from the difference between caps:

    kafka-sdk  default (1 MiB)      kafka-sdk  -X max.request.size=4194304
    franz-go   default (100 MiB)    franz-go   BrokerMaxWriteBytes=1048576
    java       default (1 MiB)      java       max.request.size=4194304      (with --java)

    python3 integration/peer-bench/request_cap.py [--rounds 3] [--profiles D,T] [--java]
        [--out results-request-cap.json]

Every run is verified as run.py verifies it (sum of high watermarks == records acknowledged).
Prints a table per profile (median and spread of msgs/s, client and broker CPU-s per 1M
records, records per stored batch). It does not touch results.json or BENCHMARKS.md.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the peer harness: Broker, Runner, producer_cmd, run_measured)

BIG = "max.request.size=4194304"
ONE_MIB = "max.request.size=1048576"
VARIANTS = [
    ("kafka-sdk", "sdk", (), "default (1 MiB)"),
    ("kafka-sdk", "sdk", (BIG,), "4 MiB"),
    ("franz-go", "kgo", (), "default (100 MiB)"),
    ("franz-go", "kgo", (ONE_MIB,), "1 MiB"),
]
JAVA = [
    ("java", "perf", (), "default (1 MiB)"),
    ("java", "perf", (BIG,), "4 MiB"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profiles", default="D,T")
    ap.add_argument("--size", type=int, default=1024, choices=run.SIZES)
    ap.add_argument("--count", type=int, default=0, help="records per run (default: run.py's)")
    ap.add_argument("--java", action="store_true", help="also Java's producer-perf")
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--no-pin", dest="pin", action="store_false")
    ap.add_argument("--out", default="", help="write the runs here as JSON")
    args = ap.parse_args()
    profiles = [p for p in args.profiles.split(",") if p]
    for p in profiles:
        if p not in run.PROFILES:
            sys.exit("unknown profile %s" % p)
    run.side_run_ready(args, ["kafka-sdk", "franz-go"])
    count = args.count or {100: 5_000_000, 1024: 2_000_000}[args.size]
    variants = VARIANTS + (JAVA if args.java else [])

    runs = []
    with run.side_broker(args) as runner:
        for i in range(args.rounds):
            for prof in profiles:
                order = variants[i % len(variants):] + variants[:i % len(variants)]
                for client, api, extra, label in order:
                    res = runner.produce(client, api, prof, args.size, count, extra=extra)
                    res["cap"] = label
                    res["extra"] = list(extra)
                    runs.append(res)
                    run.log("%s %s %s round %d: %s msgs/s, %s CPU-s/1M, broker %s, %s" % (
                        prof, client, label, i + 1, res.get("msgs_per_sec"),
                        res.get("cpu_s_per_1m"), res.get("broker_cpu_s_per_1m"),
                        res.get("status")))

    for prof in profiles:
        print("\nProfile %s, %d B, %d records per run, %d rounds" % (prof, args.size, count,
                                                                     args.rounds))
        print("| client | request cap | ok runs | msgs/s median (min-max) | "
              "client CPU-s/1M | broker CPU-s/1M | records per batch |")
        print("|---|---|---|---|---|---|---|")
        for client, _api, extra, label in variants:
            rows = [r for r in runs if r["profile"] == prof and r["client"] == client
                    and r["extra"] == list(extra)]
            print("| %s |" % " | ".join([client, label] + run.side_run_columns(rows)))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"count": count, "size": args.size, "rounds": args.rounds,
                       "runs": runs}, fh, indent=1)


if __name__ == "__main__":
    main()
