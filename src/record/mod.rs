//! Record layer (no I/O): record batch v2 encoding and decoding, compression codecs and
//! zigzag varints.
//!
//! - [`BatchBuilder`] accumulates records for the producer and seals them into a batch;
//! - [`decode_batches`] iterates the batches of a fetch response without copying records;
//! - [`compress`] / [`decompress`] are the codecs, written the way the Java client writes them;
//! - [`BufferPool`] holds the producer's batch buffers as memory mappings, reused and handed
//!   back to the OS after a burst.

pub mod batch;
pub mod compression;
mod crc;
#[cfg_attr(not(any(feature = "lz4", feature = "zstd")), allow(dead_code))]
pub(crate) mod out_pool;
pub mod pool;
pub mod varint;

pub use compression::{compress, decompress, Compression};
pub use pool::BufferPool;

pub use batch::{
    control_record_type, decode_batches, leading_batch, next_offset_after, records_after, rewrite_producer_state, BatchBuilder, BatchIter,
    BatchParams, ControlType, DecodeOptions, Header, KeptRecords, RawRecord, Record, RecordBatch,
    TimestampType,
    RECORD_BATCH_OVERHEAD,
};

#[cfg(test)]
mod tests;
