#!/usr/bin/env python3
"""Generates the shared payload corpus (deterministic; no dependencies).

    python3 benches/corpus/generate.py     # rewrites events-100.jsonl and events-1k.jsonl

Each line is one record value of EXACTLY 100 (resp. 1024) bytes: JSON-ish application log /
event records, the typical content of a Kafka topic. The micro-benchmarks (codecs, record
batches) and every client of the peer comparison (kafka-sdk, rust-rdkafka, franz-go, Java
`--payload-file`) use these files, so compression ratios are comparable across clients.
Same script => byte-identical files (own LCG, no `random` module).
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


class Lcg:
    def __init__(self, seed):
        self.s = seed & 0xFFFFFFFFFFFFFFFF

    def next(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return self.s >> 33

    def below(self, n):
        return self.next() % n

    def pick(self, xs):
        return xs[self.below(len(xs))]

    def hex(self, n):
        return "".join("0123456789abcdef"[self.below(16)] for _ in range(n))


SERVICES = ["checkout", "cart", "payments", "search", "auth", "inventory", "shipping", "ads"]
LEVELS = ["INFO"] * 6 + ["DEBUG"] * 2 + ["WARN", "ERROR"]
EVENTS = ["order_placed", "item_added", "login", "logout", "page_view", "search", "refund",
          "payment_authorized", "payment_declined", "stock_reserved", "label_printed"]
MSGS = ["request completed", "cache miss for key", "retrying upstream call", "user session renewed",
        "slow query detected", "payment provider responded", "inventory level below threshold",
        "rate limit applied", "token refreshed", "shipment dispatched to carrier"]
PATHS = ["/api/v1/orders", "/api/v1/cart/items", "/api/v2/search", "/login", "/api/v1/payments",
         "/static/app.js", "/api/v1/inventory/sku", "/health"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
          "okhttp/4.12.0", "python-requests/2.31.0", "Go-http-client/1.1"]
COUNTRIES = ["DE", "US", "FR", "GB", "JP", "BR", "IN", "NL", "SE", "ES"]


def fit(prefix, filler_key, rng, size, suffix="}"):
    """`prefix` + `"filler_key":"<text>"` + suffix, padded/truncated to exactly `size` bytes."""
    head = prefix + '"' + filler_key + '":"'
    room = size - len(head) - 1 - len(suffix)
    if room < 0:
        raise ValueError("record prefix too long")
    words = []
    while len(" ".join(words)) < room:
        words.append(rng.pick(MSGS))
    text = " ".join(words)[:room]
    out = head + text + '"' + suffix
    assert len(out.encode()) == size, (len(out), size)
    return out


def small(rng, i):
    ts = 1714564800000 + i * 37 + rng.below(30)
    p = ('{"ts":%d,"lvl":"%s","svc":"%s","host":"web-%02d","trace":"%s",'
         % (ts, rng.pick(LEVELS), rng.pick(SERVICES), rng.below(16), rng.hex(8)))
    return fit(p, "msg", rng, 100)


def large(rng, i):
    ts = 1714564800000 + i * 211 + rng.below(200)
    items = ",".join('{"sku":"SKU-%05d","qty":%d,"price_cents":%d}'
                     % (rng.below(50000), 1 + rng.below(4), 199 + rng.below(20000))
                     for _ in range(1 + rng.below(4)))
    p = ('{"ts":%d,"level":"%s","service":"%s","host":"web-%02d.eu-central-1.internal",'
         '"trace_id":"%s","span_id":"%s","event":"%s","user":{"id":%d,"country":"%s",'
         '"session":"%s"},"http":{"method":"%s","path":"%s","status":%d,"duration_ms":%d,'
         '"user_agent":"%s"},"items":[%s],"tags":["%s","%s"],'
         % (ts, rng.pick(LEVELS), rng.pick(SERVICES), rng.below(16), rng.hex(32), rng.hex(16),
            rng.pick(EVENTS), rng.below(10_000_000), rng.pick(COUNTRIES), rng.hex(24),
            rng.pick(["GET", "GET", "POST", "PUT"]), rng.pick(PATHS),
            rng.pick([200, 200, 200, 201, 204, 304, 404, 500]), rng.below(900),
            rng.pick(AGENTS), items, rng.pick(SERVICES), rng.pick(EVENTS)))
    return fit(p, "message", rng, 1024)


def write(name, lines):
    path = os.path.join(HERE, name)
    with open(path, "w", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")
    print("wrote %s (%d records, %d bytes)" % (path, len(lines), os.path.getsize(path)))


if __name__ == "__main__":
    rng = Lcg(0x6b61666b61)  # "kafka"
    write("events-100.jsonl", [small(rng, i) for i in range(1024)])
    write("events-1k.jsonl", [large(rng, i) for i in range(128)])
