//! The conformance programs as modules, so that a test can run them in-process.
#![allow(missing_docs)]
// Each program includes `common.rs` itself, so that it also builds alone as a binary.
#![allow(clippy::duplicate_mod)]

pub mod admin;
pub mod at_least_once;
pub mod consume;
pub mod metadata;
pub mod produce;
pub mod transactional;
