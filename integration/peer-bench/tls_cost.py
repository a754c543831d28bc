#!/usr/bin/env python3
"""kafka-sdk's own TLS cost (issue 14): client CPU per record, profile D, plaintext vs
SASL_SSL (SCRAM-SHA-512 and PLAIN), against ONE broker in the same run.

    cargo build --release --example producer && cargo build -p kafka-testkit
    python3 integration/peer-bench/tls_cost.py [--count 300000] [--rounds 3]

Starts `kafka-testkit up --security sasl_ssl` (one node: a SASL_SSL client listener and the
PLAINTEXT `INTERNAL` listener of the same broker), then runs the `producer` example
(100-byte values, acks=all, idempotence on, linger.ms 5, batch.size 1000000, 3 partitions)
once per transport and round, alternating, and reads each child's CPU time (user + system,
`resource.getrusage(RUSAGE_CHILDREN)` deltas). Prints one line per run and the medians, with
the load average: the comparison with rust-rdkafka over SASL_SSL needs librdkafka built with
OpenSSL (`rdkafka/ssl`), which this script does not do.
"""
import argparse
import glob
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PRODUCER = os.path.join(ROOT, "target", "release", "examples", "producer")
TESTKIT = os.path.join(ROOT, "target", "debug", "kafka-testkit")


def start_kit():
    log = tempfile.NamedTemporaryFile("w+", prefix="tls-cost-kit-", suffix=".log", delete=False)
    p = subprocess.Popen([TESTKIT, "up", "--security", "sasl_ssl"], stdout=subprocess.PIPE,
                         stderr=log, text=True)
    info = {"users": []}
    while True:
        line = p.stdout.readline()
        if not line:
            sys.exit("kafka-testkit exited: " + open(log.name).read()[-2000:])
        line = line.strip()
        if line.startswith("BOOTSTRAP="):
            info["bootstrap"] = line.split("=", 1)[1]
        elif line.startswith("CA="):
            info["ca"] = line.split("=", 1)[1]
        elif line.startswith("USER="):
            info["users"].append(line.split("=", 1)[1].split(":", 2))
            if len(info["users"]) >= 1 and "ca" in info:
                # The super user comes first; read the rest without blocking on it.
                break
    # The data dir is on stderr ("... ready in ... (dir /tmp/...)").
    deadline = time.time() + 30
    data = None
    while data is None and time.time() < deadline:
        m = re.search(r"\(dir ([^)]+)\)", open(log.name).read())
        if m:
            data = m.group(1)
        else:
            time.sleep(0.2)
    internal = None
    for props in glob.glob(os.path.join(data or "/nonexistent", "**", "server.properties"),
                           recursive=True):
        m = re.search(r"INTERNAL://([0-9.]+:\d+)", open(props).read())
        if m:
            internal = m.group(1)
    if not internal:
        sys.exit("no INTERNAL listener found under %s" % data)
    info["plaintext"] = internal
    return p, info


def run(brokers, props, count, topic):
    args = [PRODUCER, "--brokers", brokers, "--topic", topic, "--count", str(count),
            "--size", "100", "--acks", "all", "--idempotence", "true", "--linger-ms", "5",
            "--batch-size", "1000000", "-X", "max.in.flight.requests.per.connection=5"]
    for k, v in props:
        args += ["-X", "%s=%s" % (k, v)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(args, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        sys.exit("producer failed: " + out.stderr[-2000:])
    line = out.stdout.strip().splitlines()[-1]
    fields = dict(kv.split("=", 1) for kv in line.split())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    acked = int(fields["acked"])
    if acked != count or int(fields["failed"]) != 0:
        sys.exit("run incomplete: " + line)
    return {"cpu_us_per_rec": cpu * 1e6 / acked, "msgs_per_sec": float(fields["msgs_per_sec"]),
            "p50_ms": float(fields["p50_ms"])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    kit, info = start_kit()
    try:
        user = next(u for u in info["users"] if u[0] in ("PLAIN", "SCRAM-SHA-512"))
        name, password = user[1], user[2]
        tls = [("security.protocol", "sasl_ssl"), ("ssl.ca.location", info["ca"]),
               ("sasl.username", name), ("sasl.password", password)]
        variants = [
            ("plaintext", info["plaintext"], []),
            ("sasl_ssl SCRAM-SHA-512", info["bootstrap"], tls + [("sasl.mechanism", "SCRAM-SHA-512")]),
            ("sasl_ssl PLAIN", info["bootstrap"], tls + [("sasl.mechanism", "PLAIN")]),
        ]
        res = {v[0]: [] for v in variants}
        for r in range(a.rounds):
            for i, (label, brokers, props) in enumerate(variants):
                x = run(brokers, props, a.count, "tls-cost-%d-%d" % (r, i))
                res[label].append(x)
                print("round %d %-24s cpu %.2f us/rec  %.0f rec/s  p50 %.1f ms  load %.1f" % (
                    r, label, x["cpu_us_per_rec"], x["msgs_per_sec"], x["p50_ms"],
                    os.getloadavg()[0]), flush=True)
        base = statistics.median(x["cpu_us_per_rec"] for x in res["plaintext"])
        print("\n| transport | CPU µs/record (median of %d) | vs plaintext | rec/s (median) |" % a.rounds)
        print("|---|---|---|---|")
        for label, xs in res.items():
            cpu = statistics.median(x["cpu_us_per_rec"] for x in xs)
            rate = statistics.median(x["msgs_per_sec"] for x in xs)
            print("| %s | %.2f | %+.0f %% | %.0f |" % (label, cpu, (cpu / base - 1) * 100, rate))
        print("load average: %.1f %.1f %.1f" % os.getloadavg())
    finally:
        kit.terminate()
        kit.wait(timeout=60)


if __name__ == "__main__":
    main()
