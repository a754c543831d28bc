#!/usr/bin/env python3
"""Instructions per record with callgrind (instruction counts do not depend on machine load,
unlike criterion's wall clock).

    python3 benches/callgrind.py            # record-batch encode/decode, kafka-sdk vs kafka-protocol
    python3 benches/callgrind.py producer   # the producer path against the mock broker
    python3 benches/callgrind.py facade     # the rdkafka drop-in's producers and consumers vs native (same mock)
    python3 benches/callgrind.py producer-scale  # keyed producer over 3 / 100 / 1,000 partitions

Each case runs twice under `valgrind --tool=callgrind` (record: RECORD_BENCH_ITERS = 5 and 25,
see `instruction_count_mode` in benches/record.rs; producer: PRODUCER_BENCH_ITERS = 1 and 4,
see benches/producer_path.rs; facade: FACADE_BENCH_ITERS = 1 and 4, see
compat/rdkafka/benches/facade_path.rs); the difference divided by the extra records is the per-record
cost, setup excluded. The producer numbers include the in-process mock broker's per-request
work and the tokio runtime (everything in the process), and vary by a few percent between
runs because linger and wake-up timing shift batch boundaries.
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETS = ["1000x100B", "1000x100B+hdrs", "100x1KiB", "100x1KiB+hdrs"]
LO, HI = 5, 25


def bench_binary(name="record", package=None):
    pkg = ["-p", package] if package else []
    out = subprocess.run(["cargo", "bench"] + pkg + ["--bench", name, "--no-run", "--message-format=json"],
                         cwd=ROOT, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True).stdout
    for line in out.splitlines():
        if '"executable"' in line and '"%s"' % name in line:
            m = re.search(r'"executable":"([^"]+)"', line)
            if m:
                return m.group(1)
    sys.exit("%s bench executable not found" % name)


def instructions(exe, case, iters, prefix="RECORD", extra=None):
    env = dict(os.environ, **{prefix + "_BENCH_CASE": case, prefix + "_BENCH_ITERS": str(iters)})
    env.update(extra or {})
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", exe],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    m = re.search(r"Collected\s*:\s*(\d+)", r.stderr)
    if r.returncode != 0 or not m:
        sys.exit("callgrind failed for %s:\n%s" % (case, r.stderr[-2000:]))
    return int(m.group(1))


def producer():
    exe = bench_binary("producer_path")
    records, lo, hi = 10000, 1, 4
    print("| case | instr/record |")
    print("|---|---|")
    for case in ("keyless", "keyed"):
        per = (instructions(exe, case, hi, "PRODUCER") - instructions(exe, case, lo, "PRODUCER")) / ((hi - lo) * records)
        print("| %s 10000x100B | %.0f |" % (case, per))
        sys.stdout.flush()


def producer_scale():
    """Keyed records (10,000 keys) over 3, 100 and 1,000 partitions, 100,000 records per
    iteration and a linger long enough that every batch holds what an iteration sent to its
    partition (~33,000 / 1,000 / 100 records: the batch.size of 1 MB caps the first at ~8,000
    per batch), so the difference between rows is the per-partition and per-batch cost."""
    exe = bench_binary("producer_path")
    records, lo, hi = 100000, 1, 3
    print("| partitions | records/batch (about) | instr/record |")
    print("|---|---|---|")
    for parts in (3, 100, 1000):
        extra = {"PRODUCER_BENCH_PARTITIONS": str(parts), "PRODUCER_BENCH_RECORDS": str(records),
                 "PRODUCER_BENCH_KEYS": "10000", "PRODUCER_BENCH_LINGER_MS": "60000"}
        per = (instructions(exe, "keyed", hi, "PRODUCER", extra)
               - instructions(exe, "keyed", lo, "PRODUCER", extra)) / ((hi - lo) * records)
        print("| %d | %d | %.0f |" % (parts, min(records // parts, 8000), per))
        sys.stdout.flush()


def facade():
    """kafka-sdk's `send` vs the drop-in's FutureProducer (send_result + await) and
    BaseProducer (send + poll(0)), then kafka-sdk's `Consumer::recv` vs the drop-in's
    StreamConsumer::recv and BaseConsumer::poll; same mock broker, same build.
    FACADE_BENCH_KEYED=1 in the environment: keyed records; FACADE_BENCH_HEADERS=1: two
    headers per record. (The consumer rows include the mock's building of the fetch log,
    which grows with the iterations: compare the differences to native, not the absolute
    numbers.)"""
    exe = bench_binary("facade_path", "kafka-sdk-rdkafka")
    records, lo, hi = 10000, 1, 4
    print("| case | instr/record | vs native |")
    print("|---|---|---|")
    for group in (("native", "future", "base"), ("native-recv", "stream", "base-consumer")):
        native = None
        for case in group:
            per = (instructions(exe, case, hi, "FACADE") - instructions(exe, case, lo, "FACADE")) / ((hi - lo) * records)
            native = native or per
            print("| %s 10000x100B | %.0f | %+.0f (%.2fx) |" % (case, per, per - native, per / native))
            sys.stdout.flush()


def main():
    if sys.argv[1:] == ["producer"]:
        return producer()
    if sys.argv[1:] == ["facade"]:
        return facade()
    if sys.argv[1:] == ["producer-scale"]:
        return producer_scale()
    exe = bench_binary()
    print("| op | records | kafka-sdk instr/record | kafka-protocol instr/record | kafka-protocol / kafka-sdk |")
    print("|---|---|---|---|---|")
    for op in ("encode", "decode"):
        for s in SETS:
            n = int(s.split("x")[0])
            per = {}
            for lib in ("kafka-sdk", "kafka-protocol"):
                case = "%s/%s/%s" % (op, lib, s)
                per[lib] = (instructions(exe, case, HI) - instructions(exe, case, LO)) / ((HI - LO) * n)
            print("| %s | %s | %.0f | %.0f | %.2fx |" % (op, s, per["kafka-sdk"], per["kafka-protocol"],
                                                        per["kafka-protocol"] / per["kafka-sdk"]))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
