//! Every built-in partitioner name through the whole producer (against the in-process mock
//! broker): where NULL-key, empty-key and keyed records land. The `_random` names spread
//! NULL keys over partitions (uniform sticky: one partition until `batch.size` bytes went
//! to it); `murmur2`, `consistent` and `fnv1a` send them all to the partition of the empty
//! key (librdkafka's "NULL keys are mapped to single partition").

#[path = "support/mock_broker.rs"]
mod mock_broker;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use kafka_sdk::producer::partitioner::{
    crc32_partition, fnv1a_partition, murmur2_partition, PartitionerKind,
};
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::ClientConfig;
use mock_broker::MockBroker;

const TOPIC: &str = "keys";
const PARTITIONS: i32 = 6;

/// Sends `n` records of 100 B with `key` (`None`: NULL key) and returns their partitions.
async fn partitions(p: &Producer, n: usize, key: impl Fn(usize) -> Option<Bytes>) -> Vec<i32> {
    let mut futs = Vec::with_capacity(n);
    for i in 0..n {
        let mut rec = ProducerRecord::new(TOPIC).value(Bytes::from(format!("{i:0100}")));
        if let Some(k) = key(i) {
            rec = rec.key(k);
        }
        futs.push(p.send(rec).await.expect("send"));
    }
    let mut out = Vec::with_capacity(n);
    for f in futs {
        let m = tokio::time::timeout(Duration::from_secs(20), f)
            .await
            .expect("delivered in time")
            .expect("delivered");
        out.push(m.partition);
    }
    out
}

#[tokio::test]
async fn every_name_places_null_empty_and_keyed_records_as_documented() {
    use PartitionerKind::*;
    let mock = MockBroker::start(&[(TOPIC, PARTITIONS)]).await;
    let n = PARTITIONS;
    for kind in PartitionerKind::ALL {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", mock.bootstrap())
            .set("linger.ms", "0")
            .set("batch.size", "1000")
            .set("partitioner", kind.name());
        let p = Producer::new(&c).await.expect("producer");

        // NULL keys.
        let null: HashSet<i32> = partitions(&p, 300, |_| None).await.into_iter().collect();
        let single = |want: i32| assert_eq!(null, HashSet::from([want]), "{kind}: NULL keys");
        match kind {
            Murmur2 => single(murmur2_partition(b"", n)),
            Consistent => single(0),
            Fnv1a => single(fnv1a_partition(b"", n)),
            Murmur2Random | ConsistentRandom | Fnv1aRandom | Random => {
                assert!(null.len() > 1, "{kind}: NULL keys spread, got {null:?}")
            }
            RoundRobin => assert_eq!(null.len(), n as usize, "{kind}: {null:?}"),
        }

        // Empty keys: hashed, except by consistent_random (sticky) and the key-blind names.
        let empty: HashSet<i32> = partitions(&p, 300, |_| Some(Bytes::new()))
            .await
            .into_iter()
            .collect();
        let single = |want: i32| assert_eq!(empty, HashSet::from([want]), "{kind}: empty keys");
        match kind {
            Murmur2 | Murmur2Random => single(murmur2_partition(b"", n)),
            Consistent => single(0),
            Fnv1a | Fnv1aRandom => single(fnv1a_partition(b"", n)),
            ConsistentRandom | Random | RoundRobin => {
                assert!(empty.len() > 1, "{kind}: empty keys spread, got {empty:?}")
            }
        }

        // Keyed records: the name's hash of the key.
        let keys: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
        let got = partitions(&p, keys.len(), |i| Some(Bytes::from(keys[i].clone()))).await;
        for (k, part) in keys.iter().zip(&got) {
            let k = k.as_bytes();
            let want = match kind {
                Murmur2 | Murmur2Random => Some(murmur2_partition(k, n)),
                Consistent | ConsistentRandom => Some(crc32_partition(k, n)),
                Fnv1a | Fnv1aRandom => Some(fnv1a_partition(k, n)),
                Random | RoundRobin => None,
            };
            if let Some(want) = want {
                assert_eq!(*part, want, "{kind}: key {}", String::from_utf8_lossy(k));
            }
        }
        if matches!(kind, Random | RoundRobin) {
            let used: HashSet<i32> = got.into_iter().collect();
            assert!(used.len() > 1, "{kind} ignores keys: {used:?}");
        }
        p.close(Duration::from_secs(5)).await.expect("close");
    }
}

#[tokio::test]
async fn the_default_partitioner_is_murmur2_random() {
    let mock = MockBroker::start(&[(TOPIC, PARTITIONS)]).await;
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", mock.bootstrap())
        .set("linger.ms", "0")
        .set("batch.size", "1000");
    assert_eq!(
        c.producer().expect("config").partitioner,
        PartitionerKind::Murmur2Random
    );
    assert_eq!(PartitionerKind::default(), PartitionerKind::Murmur2Random);
    let p = Producer::new(&c).await.expect("producer");
    let null: HashSet<i32> = partitions(&p, 300, |_| None).await.into_iter().collect();
    assert!(
        null.len() > 1,
        "NULL keys are sticky, spread over time: {null:?}"
    );
    let got = partitions(&p, 50, |i| Some(Bytes::from(format!("k{i}")))).await;
    for (i, part) in got.into_iter().enumerate() {
        assert_eq!(
            part,
            murmur2_partition(format!("k{i}").as_bytes(), PARTITIONS)
        );
    }
    p.close(Duration::from_secs(5)).await.expect("close");
}

/// A user's partitioner (set through the builder): asked with the topic's partition count
/// for every record without an explicit partition; its choice is used; `None` means uniform
/// sticky; an explicit partition bypasses it; a choice out of range fails the send with a
/// typed error naming the topic.
#[tokio::test]
async fn a_custom_partitioner_is_asked_and_obeyed() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[derive(Debug, Default)]
    struct ByTenant {
        calls: AtomicUsize,
    }
    impl kafka_sdk::producer::Partitioner for ByTenant {
        fn partition(&self, topic: &str, key: Option<&[u8]>, n: i32) -> Option<i32> {
            assert_eq!(
                (topic, n),
                (TOPIC, PARTITIONS),
                "asked with the partition count"
            );
            self.calls.fetch_add(1, Ordering::SeqCst);
            let key = std::str::from_utf8(key?).ok()?;
            // "tenant-<i>" goes to partition i (may be out of range on purpose).
            key.strip_prefix("tenant-")?.parse().ok()
        }
    }

    let mock = MockBroker::start(&[(TOPIC, PARTITIONS)]).await;
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", mock.bootstrap())
        .set("linger.ms", "0");
    let by_tenant = Arc::new(ByTenant::default());
    let p = Producer::builder(&c)
        .partitioner(by_tenant.clone())
        .build()
        .await
        .expect("producer");

    for t in 0..PARTITIONS {
        let got = partitions(&p, 5, |_| Some(Bytes::from(format!("tenant-{t}")))).await;
        assert_eq!(got, vec![t; 5], "tenant-{t}");
    }
    assert_eq!(
        by_tenant.calls.load(Ordering::SeqCst),
        5 * PARTITIONS as usize
    );

    // No preference (NULL key): one sticky partition for a few small records.
    let null: HashSet<i32> = partitions(&p, 5, |_| None).await.into_iter().collect();
    assert_eq!(null.len(), 1, "sticky: {null:?}");

    // An explicit partition wins without asking the partitioner.
    let before = by_tenant.calls.load(Ordering::SeqCst);
    let m = p
        .send_and_wait(
            ProducerRecord::new(TOPIC)
                .partition(4)
                .key("tenant-1")
                .value("x"),
        )
        .await
        .expect("delivered");
    assert_eq!(m.partition, 4);
    assert_eq!(by_tenant.calls.load(Ordering::SeqCst), before);

    // Out of range: a typed error naming the topic and the partition.
    let err = p
        .send(ProducerRecord::new(TOPIC).key("tenant-99").value("x"))
        .await
        .expect_err("partition 99 does not exist");
    assert!(
        matches!(err, kafka_sdk::Error::UnknownTopicOrPartition(ref m) if m.contains("99") && m.contains(TOPIC)),
        "{err:?}"
    );
    p.close(Duration::from_secs(10)).await.expect("close");
}
