#!/usr/bin/env python3
"""Auto commit through group churn (issue 18 side check): on scale.py's 3-node cluster, a
topic of 1,000 and one of 100 partitions, 2M keyed records each (kafka-sdk producer,
profile D), then groups of 10 and 3 kafka-sdk members, 3 times each, started together as
scale.py starts them but committing with `enable.auto.commit=true` (every
`auto.commit.interval.ms`, default 5000, on revoke and on close) instead of scale.py's one
commit at exit. Members stop 3 s after their last record, so partitions change owner while
the group forms and again as members stop. Each group must deliver every record
(`received` >= produced, every partition read to its high watermark); the printed
`received` shows duplicates (received > produced) if a revocation lost its commit.

    python3 integration/peer-bench/scale_autocommit.py [--interval-ms 5000]

Builds nothing: uses the bench binaries that run.py / scale.py built. Prints one line per
group; writes nothing.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402
import scale  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--interval-ms", type=int, default=5000, help="auto.commit.interval.ms")
    ap.add_argument("--count", type=int, default=2_000_000)
    a = ap.parse_args()
    start_member = scale.start_member

    def auto_commit_member(cmd):
        cmd = list(cmd)
        cmd[cmd.index("--commit-at-exit") + 1] = "0"
        cmd += ["-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=%d" % a.interval_ms]
        return start_member(cmd)

    scale.start_member = auto_commit_member
    cluster = scale.Cluster(3)
    run.log("3-node cluster at %s" % cluster.bootstrap)
    r = run.Runner(argparse.Namespace(pin=False, timeout=600), cluster)
    failed = 0
    try:
        for parts in (1000, 100):
            topic = "autocommit-%d-%d" % (parts, os.getpid())
            run.sh([os.path.join(run.BIN, "bench-sdk"), "create-topic", "--brokers", cluster.bootstrap,
                    "--topic", topic, "--partitions", str(parts), "--replication-factor", "1"])
            cmd = run.producer_cmd("kafka-sdk", "sdk", cluster.bootstrap, topic, a.count, 100, "D", 0)
            _, out, err, _, _ = run.run_measured(cmd + ["--keys", "10000"], False, 600)
            row = {}
            r.take_report(row, out, err, topic)
            if row.get("status") != "ok":
                sys.exit("producer failed: %s" % row)
            hw = scale.partition_watermarks(cluster.bootstrap, topic)
            for rep in range(3):
                for members in (10, 3):
                    group = "autocommit-g-%d-%d-%d-%d" % (os.getpid(), parts, rep, members)
                    g = scale.run_group("kafka-sdk", "recv", cluster.bootstrap, topic, parts,
                                        row["acked"], members, group, 600, hw)
                    failed += g["status"] != "ok"
                    run.log("%4d partitions, group of %2d, round %d: %s, received %s of %s, %s members read%s" % (
                        parts, members, rep + 1, g["status"], g.get("received"), row["acked"],
                        g.get("members_with_records"), " (" + g["error"] + ")" if g.get("error") else ""))
    finally:
        cluster.stop()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
