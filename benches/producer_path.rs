//! The producer's path from `send` to an encoded batch, without a network.
//!
//! PENDING: `kafka_sdk::producer::Producer` is not on this branch yet (the producer lands
//! from branch `producer`). Until then this bench only prints that it is pending, so
//! `cargo bench` keeps working.
//!
//! HOOK (kafka-sdk side, when the producer lands): start an in-process mock broker on
//! 127.0.0.1 (answers ApiVersions, Metadata with itself as leader of a 3-partition topic,
//! InitProducerId, and acknowledges every Produce at once), then measure per record:
//! `send(ProducerRecord)` of 10,000 x 100 B corpus values (key-less, and keyed) followed by
//! `flush()`, in profile D settings (acks=all, idempotent, linger 5 ms, batch.size 1,000,000);
//! throughput in records. The record-layer part alone (append + seal) is `benches/record.rs`.

fn main() {
    // Criterion passes its own flags (`--bench`, filters); nothing to parse here.
    eprintln!(
        "producer_path: pending: kafka_sdk::producer::Producer is not available on this branch yet"
    );
}
