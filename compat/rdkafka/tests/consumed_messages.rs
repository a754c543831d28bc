//! The drop-in's received messages against the test kit's shared broker: every part of a
//! record (topic, partition, offset, key, payload, timestamp and its kind, headers or their
//! absence) reads through `StreamConsumer::recv` and `BaseConsumer::poll` exactly as
//! kafka-sdk's native consumer reads it, and the rdkafka calls that take a message
//! (`commit_message`, `store_offset_from_message`, `position`) see its topic, partition and
//! offset. Guards the per-message conversion (`BorrowedMessage::from_sdk`), which moves
//! kafka-sdk's parts and keeps received headers as decoded.

mod common;
use common::{bootstrap, unique};

use std::time::Duration;

use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::{ClientConfig, Consumer, Offset, Producer, ProducerRecord, TopicPartition};
use kafka_sdk_rdkafka::config::ClientConfig as RdConfig;
use kafka_sdk_rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, StreamConsumer};
use kafka_sdk_rdkafka::message::{Header, Headers, Message, OwnedHeaders, Timestamp};
use kafka_sdk_rdkafka::topic_partition_list::{Offset as RdOffset, TopicPartitionList};

fn native_config() -> ClientConfig {
    ClientConfig::new().with("bootstrap.servers", bootstrap())
}

fn rd_config(group: &str) -> RdConfig {
    let mut c = RdConfig::new();
    c.set("bootstrap.servers", bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    c
}

/// The facade's reading of one native message, field by field.
fn assert_same(m: &impl Message<Headers = impl Headers>, n: &kafka_sdk::Message, ts: Timestamp) {
    assert_eq!(m.topic(), n.topic());
    assert_eq!(m.partition(), n.partition());
    assert_eq!(m.offset(), n.offset());
    assert_eq!(m.key(), n.key().map(|k| &k[..]));
    assert_eq!(m.payload(), n.payload());
    assert_eq!(m.timestamp(), ts);
    match m.headers() {
        None => assert!(n.headers().is_empty(), "headers lost at {}", n.offset()),
        Some(h) => {
            let got: Vec<(String, Option<Vec<u8>>)> = h
                .iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect();
            let want: Vec<(String, Option<Vec<u8>>)> = n
                .headers()
                .iter()
                .map(|h| {
                    (
                        String::from_utf8_lossy(&h.key).into_owned(),
                        h.value.as_ref().map(|v| v.to_vec()),
                    )
                })
                .collect();
            assert_eq!(got, want);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_messages_read_as_natively_through_both_consumers() {
    let create_time = unique("consumed-ct");
    let append_time = unique("consumed-lat");
    let admin = AdminClient::new(&native_config()).await.unwrap();
    admin
        .create_topic(NewTopic::new(&create_time, 1, 1))
        .await
        .unwrap();
    admin
        .create_topic(
            NewTopic::new(&append_time, 1, 1).config("message.timestamp.type", "LogAppendTime"),
        )
        .await
        .unwrap();

    let producer = Producer::new(&native_config()).await.unwrap();
    let records = [
        ProducerRecord::new(create_time.clone())
            .key("k0")
            .value("v0")
            .timestamp(1_700_000_000_123)
            .header("trace", Some("t-1"))
            .header("null", None::<&'static str>),
        // No key, no headers.
        ProducerRecord::new(create_time.clone())
            .value("v1")
            .timestamp(1_700_000_000_124),
        // A tombstone with an empty header.
        ProducerRecord::new(create_time.clone())
            .key("k2")
            .timestamp(1_700_000_000_125)
            .header("", Some("")),
        ProducerRecord::new(append_time.clone())
            .key("b")
            .value("vb")
            .timestamp(1_700_000_000_126),
    ];
    for r in records {
        producer.send(r).await.unwrap().await.unwrap();
    }

    // What the native consumer reads.
    let native = Consumer::new(&native_config()).await.unwrap();
    native
        .assign(vec![
            (
                TopicPartition::new(create_time.as_str(), 0),
                Offset::Beginning,
            ),
            (
                TopicPartition::new(append_time.as_str(), 0),
                Offset::Beginning,
            ),
        ])
        .unwrap();
    let (mut expected, mut appended) = (Vec::new(), None);
    while expected.len() < 3 || appended.is_none() {
        let m = tokio::time::timeout(Duration::from_secs(60), native.recv())
            .await
            .expect("native consumer: records within 60 s")
            .unwrap();
        if m.topic() == create_time {
            expected.push(m);
        } else {
            appended = Some(m);
        }
    }
    let appended = appended.unwrap();
    assert_eq!(
        appended.timestamp_type(),
        kafka_sdk::TimestampType::LogAppendTime
    );

    // StreamConsumer::recv.
    let stream: StreamConsumer = rd_config(&unique("consumed-g1")).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&create_time, 0, RdOffset::Beginning)
        .unwrap();
    stream.assign(&tpl).unwrap();
    for (i, n) in expected.iter().enumerate() {
        let m = tokio::time::timeout(Duration::from_secs(60), stream.recv())
            .await
            .expect("StreamConsumer: records within 60 s")
            .unwrap();
        assert_same(&m, n, Timestamp::CreateTime(1_700_000_000_123 + i as i64));
        // The owned copy keeps every part, headers as an ordinary owned list.
        let owned = m.detach();
        assert_same(
            &owned,
            n,
            Timestamp::CreateTime(1_700_000_000_123 + i as i64),
        );
        if i == 0 {
            let want = OwnedHeaders::new()
                .insert(Header {
                    key: "trace",
                    value: Some("t-1"),
                })
                .insert::<str>(Header {
                    key: "null",
                    value: None,
                });
            assert_eq!(owned.headers(), Some(&want));
            assert_eq!(m.headers(), Some(want.as_borrowed()));
        }
        if i == 1 {
            assert!(m.headers().is_none(), "a record without headers has none");
        }
        if i == 2 {
            assert_eq!(m.payload(), None, "a tombstone has no payload");
            // The last one: commit_message commits the offset after it.
            stream.commit_message(&m, CommitMode::Sync).unwrap();
        }
    }
    let committed = stream.committed(Duration::from_secs(30)).unwrap();
    assert_eq!(
        committed
            .find_partition(&create_time, 0)
            .map(|e| e.offset()),
        Some(RdOffset::Offset(3))
    );

    // BaseConsumer::poll, a broker-set timestamp.
    let base: BaseConsumer = rd_config(&unique("consumed-g2")).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&append_time, 0, RdOffset::Beginning)
        .unwrap();
    base.assign(&tpl).unwrap();
    let m = tokio::task::block_in_place(|| loop {
        if let Some(r) = base.poll(Duration::from_secs(60)) {
            break r.unwrap();
        }
    });
    assert_same(
        &m,
        &appended,
        Timestamp::LogAppendTime(appended.timestamp()),
    );
    assert!(appended.timestamp() > 0);
    assert!(m.headers().is_none());
    base.store_offset_from_message(&m).unwrap();
    let position = base.position().unwrap();
    assert_eq!(
        position.find_partition(&append_time, 0).map(|e| e.offset()),
        Some(RdOffset::Offset(1))
    );
}

/// `BaseConsumer::poll` is synchronous (as rdkafka's): called from inside a tokio task, it
/// must hand out what is buffered however many messages that task already took in one go.
/// kafka-sdk's `poll_recv` takes part in tokio's cooperative budget (128 per task poll);
/// `poll(0)` in a loop that never yields used to get `None` after 128 messages although
/// more were buffered (and `poll(timeout)` then went through the facade's runtime).
#[tokio::test(flavor = "current_thread")]
async fn base_consumer_poll_inside_a_task_is_not_cut_off_by_the_budget() {
    const N: usize = 400;
    let topic = unique("consumed-budget");
    AdminClient::new(&native_config())
        .await
        .unwrap()
        .create_topic(NewTopic::new(&topic, 1, 1))
        .await
        .unwrap();
    let producer = Producer::new(&native_config()).await.unwrap();
    let mut acks = Vec::new();
    for i in 0..N {
        let r = ProducerRecord::new(topic.clone()).value(format!("v{i}"));
        acks.push(producer.send(r).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }

    let base: BaseConsumer = rd_config(&unique("consumed-g3")).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, RdOffset::Beginning)
        .unwrap();
    base.assign(&tpl).unwrap();
    // Never yields to the runtime: one task poll for the whole loop.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut got = 0;
    while got < N && std::time::Instant::now() < deadline {
        match base.poll(Duration::ZERO) {
            Some(Ok(m)) => {
                assert_eq!(m.offset(), got as i64);
                got += 1;
            }
            Some(Err(e)) => panic!("poll: {e}"),
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    assert_eq!(got, N, "poll(0) handed out {got} of {N} messages");
}
