#!/usr/bin/env python3
"""Instructions per record of record-batch encode/decode, kafka-sdk vs kafka-protocol, with
callgrind (instruction counts do not depend on machine load, unlike criterion's wall clock).

    python3 benches/callgrind.py        # builds the `record` bench, prints a Markdown table

Each case runs twice under `valgrind --tool=callgrind` (RECORD_BENCH_ITERS = 5 and 25, see
`instruction_count_mode` in benches/record.rs); the difference divided by the extra records
is the per-record cost, setup excluded.
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETS = ["1000x100B", "1000x100B+hdrs", "100x1KiB", "100x1KiB+hdrs"]
LO, HI = 5, 25


def bench_binary():
    out = subprocess.run(["cargo", "bench", "--bench", "record", "--no-run", "--message-format=json"],
                         cwd=ROOT, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True).stdout
    for line in out.splitlines():
        if '"executable"' in line and '"record"' in line:
            m = re.search(r'"executable":"([^"]+)"', line)
            if m:
                return m.group(1)
    sys.exit("record bench executable not found")


def instructions(exe, case, iters):
    env = dict(os.environ, RECORD_BENCH_CASE=case, RECORD_BENCH_ITERS=str(iters))
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", exe],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    m = re.search(r"Collected\s*:\s*(\d+)", r.stderr)
    if r.returncode != 0 or not m:
        sys.exit("callgrind failed for %s:\n%s" % (case, r.stderr[-2000:]))
    return int(m.group(1))


def main():
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
