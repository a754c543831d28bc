//! Producer building blocks: partitioners (the producer itself lands later).

pub mod partitioner;
