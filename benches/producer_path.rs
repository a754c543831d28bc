//! The producer's path from `send` to an encoded batch, without a network.
//!
//! PENDING. `kafka_sdk::producer::Producer` is on main now, but it needs a broker to start
//! (metadata, InitProducerId) and to drain batches, and kafka-sdk builds kafka-protocol with
//! the `client` feature only (no response encoders). Until then this bench only prints that
//! it is pending, so `cargo bench` keeps working. The record-layer part of the path (append +
//! seal) is measured by `benches/record.rs`.
//!
//! TODO: an in-process mock broker on 127.0.0.1 with hand-encoded ApiVersions, Metadata
//! (itself leader of a 3-partition topic), InitProducerId and Produce responses (acknowledge
//! at once; the request's records are not decoded), then per record: `send(ProducerRecord)`
//! of 10,000 x 100 B corpus values (key-less, and keyed) followed by `flush()`, in profile D
//! settings (acks=all, idempotent, linger 5 ms, batch.size 1,000,000); throughput in records.

fn main() {
    // Criterion passes its own flags (`--bench`, filters); nothing to parse here.
    eprintln!(
        "producer_path: pending: needs an in-process mock broker (see the comment in benches/producer_path.rs)"
    );
}
