//! The idempotent producer against the in-process mock broker (`tests/support/mock_broker.rs`)
//! with scripted faults: the KIP-360 epoch bump after UNKNOWN_PRODUCER_ID /
//! OUT_OF_ORDER_SEQUENCE_NUMBER, plain retries that must not bump, and a lost response that
//! must be re-sent unchanged and deduplicated. No real broker needed.

mod support;

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::ClientConfig;
use support::mock_broker::{code, Fault, InitPidMode, MockBroker, ProducedBatch, RequestBody};

const TOPIC: &str = "events";
const FIRST_PID: i64 = MockBroker::FIRST_PRODUCER_ID;

/// An idempotent producer (acks=all) whose batches hold 2 records of 100 B, so a burst of
/// sends keeps several requests of one partition in flight.
async fn producer(mock: &MockBroker) -> Producer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", mock.bootstrap())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "0")
        .set("batch.size", "300")
        .set("retry.backoff.ms", "10")
        .set("retry.backoff.max.ms", "50")
        .set("request.timeout.ms", "5000")
        .set("delivery.timeout.ms", "20000");
    Producer::new(&c).await.expect("producer")
}

/// Sends `n` records of 100 B to partition 0 as fast as possible, flushes, and returns each
/// record's offset (panics on a failed delivery).
async fn send_burst(p: &Producer, n: usize) -> Vec<i64> {
    let mut futs = Vec::with_capacity(n);
    for i in 0..n {
        let value = Bytes::from(format!("{i:0100}"));
        let rec = ProducerRecord::new(TOPIC).partition(0).value(value);
        futs.push(p.send(rec).await.expect("send"));
    }
    tokio::time::timeout(Duration::from_secs(20), p.flush())
        .await
        .expect("flush finished");
    let mut offsets = Vec::with_capacity(n);
    for (i, f) in futs.into_iter().enumerate() {
        let meta = f.await.unwrap_or_else(|e| panic!("record {i} failed: {e}"));
        assert_eq!(meta.partition, 0);
        offsets.push(meta.offset);
    }
    offsets
}

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
