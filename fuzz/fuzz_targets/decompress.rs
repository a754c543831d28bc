#![no_main]

use kafka_sdk_fuzz::harness::{self, GuardAlloc};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static GLOBAL: GuardAlloc = GuardAlloc;

fuzz_target!(|data: &[u8]| harness::fuzz_decompress(data));
