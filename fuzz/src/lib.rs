//! Fuzz harness for kafka-sdk's decoders; the logic lives in `harness.rs`, which
//! `tests/decode_robustness.rs` in the root crate also includes.

#[path = "harness.rs"]
pub mod harness;
