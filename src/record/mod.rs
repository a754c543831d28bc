//! Record layer (no I/O): compression codecs and zigzag varints.

pub mod compression;
pub mod varint;

pub use compression::{compress, decompress, Compression};
