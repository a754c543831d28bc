#!/usr/bin/env python3
"""Side runs on the 3-node cluster of scale.py: one topic written once, then groups of each
client (or of several kafka-sdk builds) reading it in alternation, with the brokers' CPU.

    python3 integration/peer-bench/scale_ab.py [--partitions 100] [--members 1] [--rounds 3]
        [--clients kafka-sdk,franz-go] [--sdk NAME=PATH ...]

`--sdk NAME=PATH` adds a kafka-sdk build (a `bench-sdk` binary, or a script that execs one)
as a row of its own, so builds compare on the same topic and cluster, side by side with the
peers. Each round runs every row once, in the same order; a row is one group of `--members`
members (`scale.run_group`: every partition must be read up to its high watermark). Besides
the group's numbers it prints the CPU seconds the three brokers spent during the run (from
/proc), per run and per 1M records. The first row of the first round also pays the new
cluster's warm-up (JIT, the group coordinator's first group): compare from round 2, or
alternate the row order between sittings. Prints only; nothing is written.
"""
import argparse
import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402
import scale  # noqa: E402

APIS = {"kafka-sdk": "recv", "franz-go": "kgo", "rdkafka": "base"}


def broker_pids(cluster):
    with open(cluster.err.name) as fh:
        m = re.search(r"\(dir ([^)]+)\)", fh.read())
    if not m:
        return []
    pids = []
    for f in sorted(glob.glob(os.path.join(m.group(1), "pids", "*"))):
        with open(f) as fh:
            pids.append(int(fh.read().strip()))
    return pids


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--partitions", type=int, default=100)
    ap.add_argument("--count", type=int, default=2_000_000, help="records written (100 B)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--members", type=int, default=1)
    ap.add_argument("--clients", default="kafka-sdk,franz-go", help="comma list of peers' rows ('' for none)")
    ap.add_argument("--sdk", action="append", default=[], help="NAME=PATH of a bench-sdk build")
    ap.add_argument("--timeout", type=int, default=300)
    a = ap.parse_args()
    rows = [(c, c, None) for c in a.clients.split(",") if c]
    rows += [(name, "kafka-sdk", path) for name, path in (s.split("=", 1) for s in a.sdk)]
    cluster = scale.Cluster(3)
    pids = broker_pids(cluster)

    def broker_cpu():
        return sum(run.proc_cpu_secs(p) or 0 for p in pids)

    try:
        topic = "scale-ab-%d" % os.getpid()
        run.sh([os.path.join(run.BIN, "bench-sdk"), "create-topic", "--brokers", cluster.bootstrap,
                "--topic", topic, "--partitions", str(a.partitions), "--replication-factor", "1"])
        _, out, _, _, _ = run.run_measured(
            run.producer_cmd("kafka-sdk", "sdk", cluster.bootstrap, topic, a.count, 100, "D", 0)
            + ["--keys", "10000"], False, a.timeout)
        acked = run.last_json(out)["acked"]  # the records asked for plus the warm-up record
        hw = scale.partition_watermarks(cluster.bootstrap, topic)
        run.log("%s: %d records over %d partitions, brokers %s" % (topic, acked, a.partitions, pids))
        seq = 0
        base_cmd = run.consumer_cmd
        for i in range(a.rounds):
            for name, client, path in rows:
                seq += 1
                if path:
                    run.consumer_cmd = lambda *x, **k: [path] + base_cmd(*x, **k)[1:]
                b0 = broker_cpu()
                try:
                    g = scale.run_group(client, APIS[client], cluster.bootstrap, topic, a.partitions,
                                        acked, a.members, "scale-ab-g-%d-%d" % (os.getpid(), seq),
                                        a.timeout, hw)
                finally:
                    run.consumer_cmd = base_cmd
                b = broker_cpu() - b0
                run.log("%-12s round %d: %s %s msgs/s, %s CPU-s/1M, rss %s MB, rebalance %s s, "
                        "brokers %.2f CPU-s (%.2f per 1M)%s" % (
                            name, i + 1, g.get("status"), run.fmt(g.get("msgs_per_sec")),
                            g.get("cpu_s_per_1m"), g.get("max_rss_mb"), g.get("rebalance_secs"),
                            b, b / acked * 1e6,
                            "" if g.get("status") == "ok" else " (%s)" % g.get("error")))
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
