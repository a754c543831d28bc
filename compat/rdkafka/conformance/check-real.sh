#!/usr/bin/env bash
# Builds the conformance programs, unchanged, against the real rust-rdkafka 0.39 (librdkafka
# built from source by rdkafka-sys: needs cmake and a C/C++ toolchain; takes minutes). Not
# part of CI. Proves that code written against rdkafka's API compiles against both crates:
# only the `rdkafka = ...` dependency line differs.
#
# Last run 2026-12-01 (issue 16 branch i16-facade): builds against rdkafka 0.39.0
# (librdkafka 2.12.1, 15 min from scratch on the loaded machine); with --run, every program's
# report equals the drop-in crate's against the same broker, but for the commit callback
# count and the revoke at close (the timing differences MIGRATING_FROM_RDKAFKA.md names).
#
# Usage: compat/rdkafka/conformance/check-real.sh [--run BROKERS]
#   --run BROKERS  also run each program against BROKERS with the real rdkafka.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${CHECK_REAL_DIR:-${TMPDIR:-/tmp}/kafka-sdk-rdkafka-check-real}"
mkdir -p "$work"
cp "$here"/*.rs "$work"/
# The same manifest, with the one dependency line switched to the real crate (the features
# the peer benchmark uses, so a shared target dir can be reused).
sed -e 's|^rdkafka = { package = "kafka-sdk-rdkafka", version = "0.1.0", path = ".." }|rdkafka = { version = "0.39", default-features = false, features = ["cmake-build", "tokio", "zstd", "libz-static"] }|' \
    -e 's|^\[package\]|[workspace]\n\n[package]|' \
    "$here/Cargo.toml" > "$work/Cargo.toml"
if ! grep -q '^rdkafka = { version = "0.39"' "$work/Cargo.toml"; then
    echo "check-real: the rdkafka dependency line was not found in Cargo.toml" >&2
    exit 1
fi
# librdkafka 2.12's CMake build includes <curl/curl.h> even without curl: use the peer
# benchmark's empty stand-in header (see integration/peer-bench/build-shim/curl/curl.h).
export CPATH="$here/../../../integration/peer-bench/build-shim${CPATH:+:$CPATH}"
cd "$work"
CARGO_INCREMENTAL=0 nice cargo build --bins
echo "check-real: the conformance programs build against rdkafka 0.39"
if [[ "${1:-}" == "--run" ]]; then
    brokers="$2"
    suffix="$$"
    ./target/debug/admin --brokers "$brokers" --topic "real-admin-$suffix"
    ./target/debug/produce --brokers "$brokers" --topic "real-produce-$suffix" --count 200
    ./target/debug/consume --brokers "$brokers" --topic "real-produce-$suffix" --count 400 --group "real-$suffix"
    ./target/debug/metadata --brokers "$brokers" --topic "real-produce-$suffix"
    ./target/debug/transactional --brokers "$brokers" --topic "real-txn-$suffix" --count 20
fi
