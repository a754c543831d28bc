//! Raw reads of a partition's log through the cluster layer (unstable internals), for tests
//! that check the batches themselves: producer ids, epochs, sequences, control markers,
//! compression. Not every test file uses it.
#![allow(dead_code)]

use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_sdk::backoff::Deadline;
use kafka_sdk::cluster::{Cluster, ClusterOptions};
use kafka_sdk::record::{decode_batches, DecodeOptions, RecordBatch};

/// A cluster-layer client of its own for `bootstrap`, to read raw batches with.
pub async fn reader(bootstrap: &str) -> Cluster {
    Cluster::connect(ClusterOptions::new(vec![bootstrap.to_string()]))
        .await
        .expect("raw reader connect")
}

/// Every batch of `topic`-`partition` (data and control batches, read_uncommitted), fetched
/// from offset 0 up to the high watermark, in log order.
///
/// A failed request is retried while it is retriable (up to 20 times, 100 ms apart): the
/// pooled connection may be shared with an acks=0 producer, and the broker closes a
/// connection after an acks=0 produce error. Panics on any other failure or a partition
/// error code.
pub async fn fetch_batches(cluster: &Cluster, topic: &str, partition: i32) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut offset = 0i64;
    let mut retries = 0;
    loop {
        let (_, conn) = cluster
            .leader(topic, partition, Deadline::after(Duration::from_secs(30)))
            .await
            .unwrap_or_else(|e| panic!("leader of {topic}-{partition}: {e}"));
        let req = FetchRequest::default()
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_max_bytes(64 << 20)
            .with_isolation_level(0)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(16 << 20)
                    .with_current_leader_epoch(-1)
                    .with_log_start_offset(-1)])]);
        let resp = match conn.send(&req).await {
            Ok(r) => r,
            Err(e) if e.is_retriable() && retries < 20 => {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => panic!("fetch {topic}-{partition}: {e}"),
        };
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch {topic}-{partition}");
        if let Some(records) = &p.records {
            for b in decode_batches(records.clone(), &DecodeOptions::default()) {
                let b = b.unwrap_or_else(|e| panic!("decode {topic}-{partition}: {e}"));
                offset = b.next_offset();
                out.push(b);
            }
        }
        if offset >= p.high_watermark {
            return out;
        }
    }
}
