#!/usr/bin/env python3
"""A/B comparison of two kafka-sdk builds with the peer harness, side by side.

    python3 integration/peer-bench/ab.py --a DIR_A --b DIR_B [--pairs 5] [--profile D] [--size 100]

DIR_A and DIR_B each hold a `bench-sdk` binary (built from integration/peer-bench at the two
commits, e.g. `cargo build --release` with CARGO_TARGET_DIR set, then copied). One broker is
started with the test kit (pinned like run.py does), and producer runs of the chosen profile
alternate A, B, A, B, ... on fresh topics, so machine noise hits both builds alike. Every run
is verified as run.py verifies it (sum of high watermarks == records acknowledged). With
`--consume [none|group]` the builds' consumers (`recv`) alternate instead, each reading the
whole of one topic filled once (as run.py fills it; 3 partitions, or `--partitions N`)
from offset 0. Prints a
table (median and spread per build) and writes the runs as JSON (--out). It does not touch
results.json or BENCHMARKS.md: paste what it prints where it belongs.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the peer harness: Broker, Runner, producer_cmd, run_measured)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="directory with build A's bench-sdk")
    ap.add_argument("--b", required=True, help="directory with build B's bench-sdk")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--profile", default="D", choices=sorted(run.PROFILES))
    ap.add_argument("--size", type=int, default=100, choices=run.SIZES)
    ap.add_argument("--count", type=int, default=0, help="records per run (default: run.py's)")
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--no-pin", dest="pin", action="store_false")
    ap.add_argument("--out", default="", help="write the runs here as JSON")
    ap.add_argument("--consume", nargs="?", const="none", default=None, choices=["none", "group"],
                    help="compare consumers (without a group by default) instead of producers")
    ap.add_argument("--fill", default="kafka-sdk", choices=["kafka-sdk", "rdkafka"],
                    help="--consume: the producer that fills the topic (rdkafka: librdkafka's "
                         "BaseProducer, as run.py fills its consumer topics; needs peer-bench's "
                         "bench-rdkafka next to build A's bench-sdk or in peer-bench's target)")
    ap.add_argument("--a-set", action="append", default=[], metavar="KEY=VALUE",
                    help="a client setting for build A's runs only (repeatable; e.g. the same "
                         "binary against itself with one setting changed)")
    ap.add_argument("--b-set", action="append", default=[], metavar="KEY=VALUE",
                    help="a client setting for build B's runs only (repeatable)")
    ap.add_argument("--partitions", type=int, default=3,
                    help="partitions of the topics (default 3, as run.py)")
    args = ap.parse_args()
    for d in (args.a, args.b):
        if not os.access(os.path.join(d, "bench-sdk"), os.X_OK):
            sys.exit("no executable bench-sdk in %s" % d)
    if not os.access(run.TESTKIT, os.X_OK):
        sys.exit("build the test kit first: cargo build --release -p kafka-testkit")
    if args.pin and not run.shutil.which("taskset"):
        args.pin = False
    count = args.count or {100: 5_000_000, 1024: 2_000_000}[args.size]

    broker = run.Broker(args.pin)
    run.log("broker at %s" % broker.bootstrap)
    runner = run.Runner(args, broker)
    runs = {"A": [], "B": []}
    topic = None
    try:
        if args.consume:
            run.BIN = args.a
            if args.fill == "rdkafka" and not os.access(os.path.join(args.a, "bench-rdkafka"), os.X_OK):
                run.BIN = os.path.join(run.HERE, "target", "release")
            api = "sdk" if args.fill == "kafka-sdk" else "base"
            fill = runner.produce(args.fill, api, args.profile, args.size, count, keep_topic=True)
            if fill.get("status") != "ok":
                sys.exit("filling the topic failed: %s" % fill)
            topic = fill["topic"]
        for i in range(args.pairs):
            for label, d in (("A", args.a), ("B", args.b)) if i % 2 == 0 else (("B", args.b), ("A", args.a)):
                run.BIN = d
                extra = args.a_set if label == "A" else args.b_set
                if args.consume:
                    res = runner.consume("kafka-sdk", "recv", topic, args.size, count,
                                         args.consume == "group", args.profile, extra)
                else:
                    res = runner.produce("kafka-sdk", "sdk", args.profile, args.size, count,
                                         extra=extra)
                res["build"] = label
                runs[label].append(res)
                run.log("%s pair %d: %s msgs/s, %s CPU-s/1M, %s MB, %s faults, %s" % (
                    label, i + 1, res.get("msgs_per_sec"), res.get("cpu_s_per_1m"),
                    res.get("max_rss_mb"), res.get("minor_faults"), res.get("status")))
    finally:
        broker.stop()

    def col(label, key):
        return [r[key] for r in runs[label] if r.get("status") == "ok" and r.get(key) is not None]

    print("| build | ok runs | msgs/s median (min-max) | client CPU-s/1M median (min-max) | "
          "max RSS MB median | minor page faults median (max) | broker CPU-s/1M median |")
    print("|---|---|---|---|---|---|---|")
    for label, d in (("A", args.a), ("B", args.b)):
        t, c = col(label, "msgs_per_sec"), col(label, "cpu_s_per_1m")
        rss, bc = col(label, "max_rss_mb"), col(label, "broker_cpu_s_per_1m")
        flt = col(label, "minor_faults")
        if not t:
            print("| %s (%s) | 0 | - | - | - | - | - |" % (label, d))
            continue
        print("| %s (%s) | %d | %s (%s-%s) | %.3f (%.3f-%.3f) | %.0f | %s | %s |" % (
            label, d, len(t), run.fmt(run.med(t)), run.fmt(min(t)), run.fmt(max(t)),
            run.med(c), min(c), max(c), run.med(rss),
            "%s (%s)" % (run.fmt(run.med(flt)), run.fmt(max(flt))) if flt else "-",
            "%.3f" % run.med(bc) if bc else "-"))
    ta, tb = col("A", "msgs_per_sec"), col("B", "msgs_per_sec")
    if ta and tb:
        print("\nB/A throughput %.3f, B/A CPU per record %.3f (%s, %d B, %d records/run)" % (
            run.med(tb) / run.med(ta), run.med(col("B", "cpu_s_per_1m")) / run.med(col("A", "cpu_s_per_1m")),
            "consumer, %s" % ("group" if args.consume == "group" else "no group") if args.consume
            else "profile " + args.profile, args.size, count))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(runs, fh, indent=1)


if __name__ == "__main__":
    main()
