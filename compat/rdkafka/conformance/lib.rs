//! The conformance programs as modules, so that a test can run them in-process.
#![allow(missing_docs)]

pub mod admin;
pub mod at_least_once;
pub mod consume;
pub mod metadata;
pub mod produce;
pub mod transactional;
