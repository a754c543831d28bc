#!/usr/bin/env bash
# Short libFuzzer smoke run of every fuzz target (for CI): each target runs for
# FUZZ_SECONDS (default 20) from the committed seeds, at low priority; any crash,
# leak, timeout or out-of-memory fails the script, and its input lands in
# fuzz/artifacts/<target>/.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Uses a nightly toolchain when rustup
# has one; otherwise stable with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Z flags).
#
#   fuzz/smoke.sh                 # all targets, 20 s each
#   FUZZ_SECONDS=60 fuzz/smoke.sh responses
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-20}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(record_batches decompress responses consumer_protocol)
fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "smoke.sh: cargo-fuzz is not installed (cargo install cargo-fuzz)" >&2
    exit 1
fi
if rustup run nightly rustc --version >/dev/null 2>&1; then
    cargo=(cargo +nightly fuzz)
    toolchain="nightly"
else
    export RUSTC_BOOTSTRAP=1
    cargo=(cargo fuzz)
    toolchain="stable with RUSTC_BOOTSTRAP=1"
fi

# A dev build at opt-level 1 without debug info (debug assertions and overflow checks on,
# as in cargo-fuzz's release builds; a crash's backtrace keeps function names, its input is
# saved): ~4.5 min from scratch on the 2-core CI machine against ~6.5 for the release
# profile, with 60-90 % of its executions per second (opt-level 0 ran 25x fewer). Long runs
# stay on the release profile (README).
export CARGO_PROFILE_DEV_OPT_LEVEL="${CARGO_PROFILE_DEV_OPT_LEVEL:-1}"
export CARGO_PROFILE_DEV_DEBUG=0
mode=(--dev)
start=$(date +%s)
echo "smoke.sh: building ${targets[*]} ($toolchain)"
# `cargo fuzz build` takes one target or none (= all of them).
if [ ${#targets[@]} -eq 1 ]; then
    nice -n 19 "${cargo[@]}" build "${mode[@]}" "${targets[0]}"
else
    nice -n 19 "${cargo[@]}" build "${mode[@]}"
fi
built=$(date +%s)

run_dir=$(mktemp -d)
trap 'rm -rf "$run_dir"' EXIT
failed=()
for t in "${targets[@]}"; do
    mkdir -p "$run_dir/$t"
    echo "smoke.sh: fuzzing $t for ${seconds}s"
    if ! nice -n 19 "${cargo[@]}" run "${mode[@]}" "$t" "$run_dir/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 >"$run_dir/$t.log" 2>&1; then
        failed+=("$t")
        tail -n 60 "$run_dir/$t.log"
    else
        grep -E "^(Done|stat::number_of_executed_units)" "$run_dir/$t.log" || true
    fi
done
end=$(date +%s)
echo "smoke.sh: build $((built - start))s, fuzzing $((end - built))s, total $((end - start))s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "smoke.sh: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "smoke.sh: ${#targets[@]} passed, 0 failed"
