//! The idempotent producer against the in-process mock broker (`tests/support/mock_broker.rs`)
//! with scripted faults: the KIP-360 epoch bump after UNKNOWN_PRODUCER_ID /
//! OUT_OF_ORDER_SEQUENCE_NUMBER, plain retries that must not bump, and a lost response that
//! must be re-sent unchanged and deduplicated. No real broker needed.

mod support;

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::ClientConfig;
use support::mock_broker::{code, Fault, InitPidMode, MockBroker, ProducedBatch, RequestBody};
use support::mock_producer::{producer, send_burst, TOPIC};

const FIRST_PID: i64 = MockBroker::FIRST_PRODUCER_ID;

/// A mock with `TOPIC` (3 partitions) whose InitProducerId answers bumps per `mode` and
/// with `fault` queued; a [`producer`] sends a burst of `n` records through it. Every record
/// must be delivered once, in send order (offsets 0..n).
async fn burst_with_fault(fault: Fault, mode: InitPidMode, n: usize) -> (MockBroker, Producer) {
    let mock = MockBroker::start(&[(TOPIC, 3)]).await;
    mock.init_pid_mode(mode);
    mock.inject(fault);
    let p = producer(&mock).await;
    let offsets = send_burst(&p, n).await;
    assert_eq!(
        offsets,
        (0..n as i64).collect::<Vec<_>>(),
        "every record delivered once, in send order"
    );
    (mock, p)
}

/// InitProducerId calls as (sent id, sent epoch, answered id, answered epoch).
fn init_calls(mock: &MockBroker) -> Vec<(i64, i16, i64, i16)> {
    mock.requests()
        .into_iter()
        .filter_map(|r| match r.body {
            RequestBody::InitProducerId {
                producer_id,
                producer_epoch,
                error_code,
                new_producer_id,
                new_epoch,
                ..
            } => {
                assert_eq!(error_code, code::NONE, "InitProducerId refused");
                Some((producer_id, producer_epoch, new_producer_id, new_epoch))
            }
            _ => None,
        })
        .collect()
}

/// The accepted batches of partition 0 in log order: contiguous offsets from 0, contiguous
/// sequences from `first_seq` under one producer id and epoch.
fn assert_accepted_log(batches: &[ProducedBatch], pid: i64, epoch: i16, records: usize) {
    let mut accepted: Vec<&ProducedBatch> = batches
        .iter()
        .filter(|b| b.partition == 0 && b.error_code == code::NONE)
        .collect();
    accepted.sort_by_key(|b| b.base_offset);
    accepted.dedup_by_key(|b| b.base_offset); // a duplicate answered with the original offset
    let mut offset = 0i64;
    let mut seq = 0i32;
    for b in &accepted {
        assert_eq!(
            (b.producer_id, b.producer_epoch),
            (pid, epoch),
            "accepted batch under the wrong producer id/epoch: {b:?}"
        );
        assert_eq!(b.base_offset, offset, "gap in the log: {b:?}");
        assert_eq!(b.base_sequence, seq, "sequence gap: {b:?}");
        offset += b.record_count as i64;
        seq += b.record_count;
    }
    assert_eq!(offset as usize, records, "records in the log");
}

/// The earliest in-flight batch is refused with a sequence error: the producer must stop
/// sending, bump its epoch with InitProducerId carrying its current id and epoch, restart
/// sequences at 0 and re-send every batch in the original order.
async fn epoch_bump_after(error: i16, mode: InitPidMode) {
    // Delay the refusal a little so later batches are in flight behind it (the mock then
    // refuses those too: their sequences no longer follow the log).
    let fault = Fault::produce_partition(TOPIC, 0, error).after(Duration::from_millis(50));
    let n = 40;
    let (mock, p) = burst_with_fault(fault, mode, n).await;
    assert!(mock.pending_faults().is_empty());

    let (new_pid, new_epoch) = match mode {
        InitPidMode::BumpEpoch => (FIRST_PID, 1),
        InitPidMode::NewId => (FIRST_PID + 1, 0),
    };
    assert_eq!(
        init_calls(&mock),
        vec![(-1, -1, FIRST_PID, 0), (FIRST_PID, 0, new_pid, new_epoch)],
        "one InitProducerId at start, one bump with the current id and epoch"
    );
    let batches = mock.produced();
    let first = &batches[0];
    assert_eq!(
        (
            first.producer_id,
            first.producer_epoch,
            first.base_sequence,
            first.error_code
        ),
        (FIRST_PID, 0, 0, error),
        "{batches:#?}"
    );
    assert!(
        batches
            .iter()
            .filter(|b| (b.producer_id, b.producer_epoch) == (FIRST_PID, 0))
            .all(|b| b.error_code != code::NONE),
        "nothing is accepted under the old epoch: {batches:#?}"
    );
    // After the bump: every batch under the new epoch, sequences from 0, no out-of-order
    // refusal (the producer re-sent in order).
    let after: Vec<&ProducedBatch> = batches
        .iter()
        .filter(|b| (b.producer_id, b.producer_epoch) == (new_pid, new_epoch))
        .collect();
    assert!(
        after.iter().all(|b| b.error_code == code::NONE),
        "{after:#?}"
    );
    assert_accepted_log(&batches, new_pid, new_epoch, n);
    assert_eq!(mock.log_end(TOPIC, 0), n as i64);
    p.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn unknown_producer_id_bumps_the_epoch() {
    epoch_bump_after(code::UNKNOWN_PRODUCER_ID, InitPidMode::BumpEpoch).await;
}

#[tokio::test]
async fn out_of_order_sequence_bumps_the_epoch() {
    epoch_bump_after(code::OUT_OF_ORDER_SEQUENCE_NUMBER, InitPidMode::BumpEpoch).await;
}

/// Kafka answers a non-transactional InitProducerId with a fresh producer id (epoch 0): the
/// producer must take it and restart sequences under it.
#[tokio::test]
async fn epoch_bump_accepts_a_new_producer_id() {
    epoch_bump_after(code::UNKNOWN_PRODUCER_ID, InitPidMode::NewId).await;
}

/// A retriable error is retried with the same producer id, epoch and sequence: no bump.
#[tokio::test]
async fn retriable_error_retries_without_a_bump() {
    let fault = Fault::produce_partition(TOPIC, 0, code::NOT_ENOUGH_REPLICAS);
    let n = 20;
    let (mock, p) = burst_with_fault(fault, InitPidMode::BumpEpoch, n).await;
    assert_eq!(init_calls(&mock), vec![(-1, -1, FIRST_PID, 0)]);
    let batches = mock.produced();
    assert_eq!(batches[0].error_code, code::NOT_ENOUGH_REPLICAS);
    // The refused batch came back with its original sequence.
    assert!(batches[1..]
        .iter()
        .any(|b| b.base_sequence == 0 && b.error_code == code::NONE));
    assert_accepted_log(&batches, FIRST_PID, 0, n);
    p.close(Duration::from_secs(5)).await.unwrap();
}

/// The first batch of a new producer id is refused with a retriable error while later
/// batches of the partition are already on their way: a broker takes the first batch it
/// sees of a producer id it has no state for at any sequence, so a later batch would be
/// written first and the refused one after it (found as a reorder right after start in
/// tests/producer.rs' broker-restart test). The producer must send a partition's first
/// batch alone until the broker has acknowledged one of its current producer id.
#[tokio::test]
async fn a_refused_first_batch_is_not_overtaken() {
    for mode in [InitPidMode::BumpEpoch, InitPidMode::NewId] {
        let fault = Fault::produce_partition(TOPIC, 0, code::NOT_LEADER_OR_FOLLOWER)
            .after(Duration::from_millis(200));
        let n = 40;
        let (mock, p) = burst_with_fault(fault, mode, n).await;
        assert_eq!(init_calls(&mock), vec![(-1, -1, FIRST_PID, 0)], "no bump");
        let batches = mock.produced();
        assert_eq!(batches[0].error_code, code::NOT_LEADER_OR_FOLLOWER);
        assert_accepted_log(&batches, FIRST_PID, 0, n);
        p.close(Duration::from_secs(5)).await.unwrap();
    }
}

/// The connection drops after the broker wrote the first batch but before it answered:
/// the outcome is unknown, so the batch must be re-sent with the same id, epoch and
/// sequence (the broker deduplicates it), never re-stamped; every record lands once.
#[tokio::test]
async fn lost_response_is_resent_unchanged_and_deduplicated() {
    let n = 20;
    let (mock, p) = burst_with_fault(
        Fault::disconnect(ApiKey::Produce),
        InitPidMode::BumpEpoch,
        n,
    )
    .await;
    assert_eq!(init_calls(&mock), vec![(-1, -1, FIRST_PID, 0)]);
    let batches = mock.produced();
    let first = batches[0].clone();
    assert_eq!((first.base_sequence, first.error_code), (0, code::NONE));
    let resends: Vec<&ProducedBatch> = batches[1..]
        .iter()
        .filter(|b| b.base_sequence == 0)
        .collect();
    assert!(
        !resends.is_empty(),
        "the first batch was re-sent: {batches:#?}"
    );
    for r in resends {
        assert_eq!(
            (
                r.producer_id,
                r.producer_epoch,
                r.record_count,
                r.base_offset
            ),
            (
                first.producer_id,
                first.producer_epoch,
                first.record_count,
                0
            ),
            "re-sent unchanged and answered as a duplicate"
        );
    }
    assert_accepted_log(&batches, FIRST_PID, 0, n);
    assert_eq!(mock.log_end(TOPIC, 0), n as i64);
    p.close(Duration::from_secs(5)).await.unwrap();
}

/// CPU time (user + system) the calling thread used so far, from /proc/thread-self/stat.
/// The tests below run the producer and the mock broker on a current-thread runtime, i.e.
/// on this thread, so this is the producer's CPU, unaffected by tests running in parallel
/// in the same process.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("/proc/thread-self/stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // The kernel reports clock ticks (USER_HZ), 100 per second on Linux.
    Duration::from_millis(ticks * 10)
}

/// Polls `cond` every 10 ms until it holds, failing after `bound`.
async fn wait_until(what: &str, bound: Duration, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < bound, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn metadata_requests(mock: &MockBroker) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.api_key == ApiKey::Metadata)
        .count()
}

/// Issue 13, items 11 and 12: a partition loses its leader while a batch of it waits for a
/// re-send. The sender must neither spin (CPU near idle while the leader is missing) nor
/// stall (it keeps asking for metadata, rate-limited by `retry.backoff.ms`), and delivers
/// the batch soon after the leader is back.
#[tokio::test]
async fn leaderless_partition_neither_spins_nor_stalls() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", mock.bootstrap())
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .set("retry.backoff.ms", "100")
        .set("retry.backoff.max.ms", "1000")
        .set("request.timeout.ms", "10000")
        .set("delivery.timeout.ms", "120000");
    let p = Producer::new(&c).await.expect("producer");
    p.send_and_wait(ProducerRecord::new(TOPIC).partition(0).value("warm"))
        .await
        .expect("first record");

    mock.set_leader(TOPIC, 0, None);
    let fut = p
        .send(ProducerRecord::new(TOPIC).partition(0).value("waits"))
        .await
        .expect("send");
    // The producer tried the old leader, was refused, and saw the leaderless metadata.
    wait_until("the refused Produce", Duration::from_secs(30), || {
        mock.produced()
            .iter()
            .any(|b| b.error_code == code::NOT_LEADER_OR_FOLLOWER)
    })
    .await;
    let refused_at = mock.requests().len();
    wait_until("a metadata refresh", Duration::from_secs(30), || {
        mock.requests()[refused_at..]
            .iter()
            .any(|r| r.api_key == ApiKey::Metadata)
    })
    .await;

    let window = Duration::from_secs(3);
    let (cpu0, meta0) = (thread_cpu(), metadata_requests(&mock));
    tokio::time::sleep(window).await;
    let (cpu, meta) = (thread_cpu() - cpu0, metadata_requests(&mock) - meta0);
    // A busy loop burns about one CPU-second per second (less on a loaded machine, but far
    // more than this); waiting costs a few milliseconds.
    assert!(
        cpu < Duration::from_millis(300),
        "the sender spins while the leader is missing: {cpu:?} of CPU in {window:?}"
    );
    // Keeps looking for the leader (not stalled), at most once per retry.backoff.ms.
    assert!(
        meta >= 3,
        "the sender stopped asking for the leader: {meta} metadata requests in {window:?}"
    );
    assert!(meta <= 45, "{meta} metadata requests in {window:?}");
    assert!(!fut.is_done(), "resolved while leaderless");

    mock.set_leader(TOPIC, 0, Some(MockBroker::NODE_ID));
    let meta = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("delivered soon after the leader came back")
        .expect("delivered");
    assert_eq!(meta.offset, 1);
    p.close(Duration::from_secs(10)).await.unwrap();
}

/// A tracing subscriber that, once armed, stops the thread that emits the producer's
/// "record accepted" event (inside `send`, after its last closed check and before the
/// append) until released or `hold` passed: it places a `close` deterministically inside
/// that window.
struct SendHook {
    armed: std::sync::atomic::AtomicBool,
    entered: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    released: std::sync::Mutex<bool>,
    release: std::sync::Condvar,
    hold: Duration,
}

impl SendHook {
    fn release(&self) {
        *self.released.lock().unwrap() = true;
        self.release.notify_all();
    }
}

struct Message(bool);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" && format!("{value:?}") == "record accepted" {
            self.0 = true;
        }
    }
}

impl tracing::Subscriber for SendHook {
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if self.enabled(meta) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }
    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        meta.is_event() && meta.target().starts_with("kafka_sdk::producer")
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut m = Message(false);
        event.record(&mut m);
        if !m.0 || !self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if let Some(tx) = self.entered.lock().unwrap().take() {
            let _ = tx.send(());
        }
        let guard = self.released.lock().unwrap();
        let _ = self
            .release
            .wait_timeout_while(guard, self.hold, |released| !*released)
            .unwrap();
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Issue 13, item 13: `close` runs while a `send` is between its closed check and the
/// append. Either the send fails with `Closed` (and gives its buffer memory back) or the
/// record is accepted and then delivered: its delivery future, `flush` and `close` all
/// finish. Before the fix the sender stopped in that window and the accepted record's
/// future (and any flush) waited forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn send_racing_close_always_resolves() {
    use tracing::instrument::WithSubscriber;
    let mock = MockBroker::start(&[(TOPIC, 3)]).await;
    let p = producer(&mock).await;
    p.send_and_wait(ProducerRecord::new(TOPIC).partition(0).value("warm"))
        .await
        .expect("first record");

    let (tx, entered) = tokio::sync::oneshot::channel();
    let hook = Arc::new(SendHook {
        armed: true.into(),
        entered: std::sync::Mutex::new(Some(tx)),
        released: std::sync::Mutex::new(false),
        release: std::sync::Condvar::new(),
        // Long enough for a close to finish when nothing holds it back.
        hold: Duration::from_secs(2),
    });
    let dispatch = tracing::Dispatch::from(hook.clone());
    let p2 = p.clone();
    let send = tokio::spawn(
        async move {
            p2.send(ProducerRecord::new(TOPIC).partition(1).value("racing"))
                .await
        }
        .with_subscriber(dispatch),
    );
    tokio::time::timeout(Duration::from_secs(30), entered)
        .await
        .expect("send reached the append")
        .expect("hook signalled");
    let p3 = p.clone();
    let mut close = tokio::spawn(async move { p3.close(Duration::from_secs(30)).await });
    // Give the close every chance to finish while the send is held (it finishes at once
    // when it does not wait for the send); then let the send go on.
    let closed_early = tokio::time::timeout(Duration::from_millis(1500), &mut close)
        .await
        .is_ok();
    hook.release();
    let sent = tokio::time::timeout(Duration::from_secs(30), send)
        .await
        .expect("send returned")
        .expect("send task");
    match sent {
        Ok(fut) => {
            let r = tokio::time::timeout(Duration::from_secs(30), fut)
                .await
                .unwrap_or_else(|_| {
                    panic!("accepted record never resolved (close finished early: {closed_early})")
                });
            r.expect("accepted before close: delivered");
        }
        Err(e) => assert!(
            matches!(e, kafka_sdk::Error::Closed),
            "unexpected send error {e}"
        ),
    }
    tokio::time::timeout(Duration::from_secs(30), p.flush())
        .await
        .expect("flush finished");
    if !closed_early {
        tokio::time::timeout(Duration::from_secs(30), close)
            .await
            .expect("close finished")
            .expect("close task")
            .expect("close ok");
    }
    assert_eq!(mock.log_end(TOPIC, 1), 1, "the accepted record was written");
}

/// Many sends from several tasks racing a close, repeated: every accepted record resolves
/// and `flush` returns (a hang fails by timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn many_sends_racing_close_all_resolve() {
    let mock = MockBroker::start(&[(TOPIC, 3)]).await;
    for round in 0..30 {
        let p = producer(&mock).await;
        let mut tasks = Vec::new();
        for t in 0..3 {
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                let mut futs = Vec::new();
                for i in 0.. {
                    let rec = ProducerRecord::new(TOPIC)
                        .partition(t)
                        .value(format!("{i}"));
                    match p.send(rec).await {
                        Ok(f) => futs.push(f),
                        Err(kafka_sdk::Error::Closed) => break,
                        Err(e) => panic!("send: {e}"),
                    }
                }
                futs
            }));
        }
        tokio::task::yield_now().await;
        p.close(Duration::from_secs(30)).await.expect("close");
        for t in tasks {
            for f in t.await.expect("task") {
                tokio::time::timeout(Duration::from_secs(30), f)
                    .await
                    .unwrap_or_else(|_| panic!("round {round}: an accepted record never resolved"))
                    .expect("delivered");
            }
        }
        tokio::time::timeout(Duration::from_secs(30), p.flush())
            .await
            .unwrap_or_else(|_| panic!("round {round}: flush hangs"));
    }
}

/// Issue 13, item 14: without idempotence, `max.in.flight.requests.per.connection=1` must
/// keep a partition's records in order across a leader change: a batch drained while an
/// earlier one is in flight to the old leader must not overtake it at the new leader.
#[tokio::test]
async fn max_in_flight_one_keeps_order_across_a_leader_change() {
    const OTHER: &str = "other";
    for attempt in 0.. {
        // Each attempt's metadata request goes to node 0 (and waits behind A) half the time:
        // 40 attempts all unlucky is 2^-40.
        assert!(
            attempt < 40,
            "never got the metadata refresh past the held response"
        );
        let mock = MockBroker::start_nodes(2, &[(TOPIC, 3), (OTHER, 1)]).await;
        mock.set_leader(TOPIC, 1, Some(1));
        mock.set_leader(TOPIC, 2, Some(1));
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", mock.bootstrap())
            .set("enable.idempotence", "false")
            .set("acks", "1")
            .set("max.in.flight.requests.per.connection", "1")
            .set("linger.ms", "0")
            .set("retry.backoff.ms", "10")
            .set("request.timeout.ms", "30000")
            .set("delivery.timeout.ms", "60000");
        let p = Producer::new(&c).await.expect("producer");
        // Connections to both nodes: the cluster's (lane 0 of each node, dealt first:
        // partition 0 on node 0, partition 1 on node 1; the metadata request below may use
        // either) and the producer's own to node 1 (lane 1: partition 2).
        for part in [0, 1, 2] {
            p.send_and_wait(ProducerRecord::new(TOPIC).partition(part).value("warm"))
                .await
                .expect("warm-up");
        }
        // A: held by node 0 for a while, then refused (its leadership moved meanwhile).
        let hold = Duration::from_secs(3);
        mock.inject(Fault::produce_partition(TOPIC, 0, code::NOT_LEADER_OR_FOLLOWER).after(hold));
        let a = p
            .send(ProducerRecord::new(TOPIC).partition(0).value("A"))
            .await
            .expect("send A");
        wait_until("A at node 0", Duration::from_secs(30), || {
            mock.pending_faults().is_empty()
        })
        .await;
        mock.set_leader(TOPIC, 0, Some(1));
        // The producer learns the new leader while A is still in flight (a metadata request
        // that went to node 0 waits behind A: try again).
        let asked = std::time::Instant::now();
        p.partitions_for(OTHER).await.expect("metadata");
        if a.is_done() || asked.elapsed() >= hold / 2 {
            let _ = p.close(Duration::from_secs(10)).await;
            continue;
        }
        let b = p
            .send(ProducerRecord::new(TOPIC).partition(0).value("B"))
            .await
            .expect("send B");
        let (a, b) = (a.await.expect("A"), b.await.expect("B"));
        assert!(
            a.offset < b.offset,
            "B overtook A: A at {}, B at {}",
            a.offset,
            b.offset
        );
        p.close(Duration::from_secs(10)).await.unwrap();
        return;
    }
}

/// Issue 13, item 15: a Produce response that lacks a partition says nothing about whether
/// the broker wrote it: ambiguous, so the batch is re-sent unchanged (and deduplicated),
/// not failed.
#[tokio::test]
async fn produce_response_lacking_the_partition_is_ambiguous() {
    let (mock, p) =
        burst_with_fault(Fault::omit_partition(TOPIC, 0), InitPidMode::BumpEpoch, 10).await;
    assert!(mock.pending_faults().is_empty());
    assert_accepted_log(&mock.produced(), FIRST_PID, 0, 10);
    assert_eq!(mock.log_end(TOPIC, 0), 10);
    p.close(Duration::from_secs(5)).await.unwrap();
}

/// Issue 13, item 15: a Produce response that does not decode is ambiguous too.
#[tokio::test]
async fn undecodable_produce_response_is_ambiguous() {
    let (mock, p) =
        burst_with_fault(Fault::garbage(ApiKey::Produce), InitPidMode::BumpEpoch, 10).await;
    assert!(mock.pending_faults().is_empty());
    assert_accepted_log(&mock.produced(), FIRST_PID, 0, 10);
    assert_eq!(mock.log_end(TOPIC, 0), 10);
    p.close(Duration::from_secs(5)).await.unwrap();
}

/// Issue 13, item 15: an epoch bump whose InitProducerId keeps failing makes the producer
/// fatal after `delivery.timeout.ms`: later sends fail at once with an error that says the
/// producer must be recreated, instead of being buffered and expiring one by one.
#[tokio::test]
async fn failing_epoch_bump_becomes_fatal() {
    let mock = MockBroker::start(&[(TOPIC, 3)]).await;
    mock.fail_bumps(Some(code::COORDINATOR_LOAD_IN_PROGRESS));
    mock.inject(Fault::produce_partition(
        TOPIC,
        0,
        code::UNKNOWN_PRODUCER_ID,
    ));
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", mock.bootstrap())
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .set("retry.backoff.ms", "10")
        .set("retry.backoff.max.ms", "100")
        .set("request.timeout.ms", "1000")
        .set("delivery.timeout.ms", "2000");
    let p = Producer::new(&c).await.expect("producer");
    let first = p
        .send_and_wait(ProducerRecord::new(TOPIC).partition(0).value("x"))
        .await;
    assert!(first.is_err(), "the refused record cannot be delivered");
    let start = std::time::Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the producer never became fatal"
        );
        let err = match p
            .send(ProducerRecord::new(TOPIC).partition(1).value("y"))
            .await
        {
            Err(e) => e,
            Ok(f) => match tokio::time::timeout(Duration::from_secs(30), f)
                .await
                .expect("resolves")
            {
                Err(e) => e,
                Ok(m) => panic!("delivered without a producer id: {m:?}"),
            },
        };
        if err.is_fatal() {
            assert!(!err.is_retriable(), "{err}");
            break;
        }
    }
    // Fatal for good: the next send fails at once.
    let e = tokio::time::timeout(
        Duration::from_secs(1),
        p.send(ProducerRecord::new(TOPIC).partition(2).value("z")),
    )
    .await
    .expect("send fails at once")
    .expect_err("fatal producer refuses records");
    assert!(e.is_fatal(), "{e}");
    let _ = p.close(Duration::from_secs(5)).await;
}

/// A record counts among the producer's completed records (`Producer::completed_records`,
/// from which the rdkafka facade derives `in_flight_count`) by the time anyone can learn its
/// outcome: here the delivery handler, which runs when the batch completes, already sees it
/// counted, delivered or refused. The count used to be taken after the outcome was handed
/// out, so an application that awaited a record and then asked for the records in flight
/// could still find it there (the facade's `borrowed_send` test failed that way once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_is_counted_complete_before_its_outcome_is_reported() {
    use kafka_sdk::producer::{DeliveryHandler, DeliveryReport};
    use std::sync::{Mutex, OnceLock};
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    let seen: Arc<Mutex<Vec<(u64, bool, u64)>>> = Arc::default();
    let me: Arc<OnceLock<Producer>> = Arc::default();
    let (s, m) = (seen.clone(), me.clone());
    let handler: DeliveryHandler = Arc::new(move |r: &DeliveryReport<'_>| {
        let done = m.get().map_or(u64::MAX, Producer::completed_records);
        s.lock().unwrap().push((r.opaque, r.result.is_ok(), done));
    });
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", mock.bootstrap())
        .set("enable.idempotence", "false")
        .set("linger.ms", "0");
    let p = Producer::builder(&c)
        .delivery_handler(handler)
        .build()
        .await
        .expect("producer");
    assert!(me.set(p.clone()).is_ok());
    let send = |v: &'static str| p.send(ProducerRecord::new(TOPIC).partition(0).value(v));
    send("delivered").await.unwrap().report(1);
    tokio::time::timeout(Duration::from_secs(20), p.flush())
        .await
        .unwrap();
    // INVALID_RECORD: not retried.
    mock.inject(Fault::produce(87));
    send("refused").await.unwrap().report(2);
    tokio::time::timeout(Duration::from_secs(20), p.flush())
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(1, true, 1), (2, false, 2)],
        "(opaque, delivered, completed records when reported)"
    );
    p.close(Duration::from_secs(10)).await.unwrap();
}
