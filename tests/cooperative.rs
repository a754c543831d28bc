//! `Producer::send` and `Consumer::recv` take part in tokio's cooperative scheduling, like
//! tokio's own channels: a loop of sends (or of receives from a full buffer) that never has
//! to wait still lets the other tasks of its worker thread run, among them the producer's
//! sender and the consumer's fetch task. Against the in-process mock broker, on a
//! current-thread runtime (one thread: another task runs only when the loop yields).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_sdk::consumer::{Consumer, Offset};
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::{ClientConfig, TopicPartition};
use support::mock_broker::MockBroker;

const TOPIC: &str = "coop";

/// A task that counts how often it got to run, yielding after each count.
fn spawn_counter() -> (Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let task = tokio::spawn(async move {
        loop {
            r.fetch_add(1, Ordering::Relaxed);
            tokio::task::yield_now().await;
        }
    });
    (runs, task)
}

#[tokio::test(flavor = "current_thread")]
async fn a_loop_of_sends_lets_other_tasks_run() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", mock.bootstrap())
        .set("linger.ms", "1000")
        .set("batch.size", "1000000");
    let p = Producer::new(&c).await.expect("producer");
    // The topic's metadata is cached after the first record: later sends never wait.
    p.send_and_wait(ProducerRecord::new(TOPIC).value(Bytes::from_static(b"first")))
        .await
        .expect("first record");
    let (runs, counter) = spawn_counter();
    tokio::task::yield_now().await;
    let before = runs.load(Ordering::Relaxed);
    let mut futs = Vec::with_capacity(2_000);
    for i in 0..2_000u32 {
        let rec = ProducerRecord::new(TOPIC).value(Bytes::from(i.to_be_bytes().to_vec()));
        futs.push(p.send(rec).await.expect("buffered"));
    }
    let during = runs.load(Ordering::Relaxed) - before;
    assert!(
        during >= 5,
        "the other task ran {during} times during 2,000 sends: send never yielded"
    );
    p.flush().await;
    for f in futs {
        f.await.expect("delivered");
    }
    counter.abort();
    p.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_loop_of_receives_lets_other_tasks_run() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    let values: Vec<String> = (0..2_000).map(|i| format!("v{i}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    mock.append(TOPIC, 0, &refs);
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", mock.bootstrap())
        .set("group.id", "coop-group")
        .set("enable.auto.commit", "false");
    let consumer = Consumer::new(&c).await.expect("consumer");
    consumer
        .assign(vec![(TopicPartition::new(TOPIC, 0), Offset::Beginning)])
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("first message within 30 s")
        .expect("a message");
    assert_eq!(first.offset(), 0);
    // The mock answered with the whole log in one batch: the rest is buffered now.
    let (runs, counter) = spawn_counter();
    let before = runs.load(Ordering::Relaxed);
    for i in 1..2_000i64 {
        let m = consumer.recv().await.expect("a message");
        assert_eq!(m.offset(), i);
    }
    let during = runs.load(Ordering::Relaxed) - before;
    assert!(
        during >= 5,
        "the other task ran {during} times during 1,999 receives: recv never yielded"
    );
    counter.abort();
    consumer.close().await.unwrap();
}
