//! Leader epochs in the consumer (KIP-320), against the in-process mock broker
//! (`tests/support/mock_broker.rs`), which serves a scripted log per partition with leader
//! epochs, fences requests whose `current_leader_epoch` differs from its own, answers
//! OffsetForLeaderEpoch from its log like a broker's leader epoch cache, and can simulate an
//! unclean leader election (log truncated, epoch bumped) deterministically.
//!
//! What is proven (issue 13, item 8):
//! - Fetch and ListOffsets carry the partition's leader epoch from metadata;
//! - FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH are retried after a metadata refresh with
//!   backoff, with no record lost or duplicated and no error for the application;
//! - after a leader change, a reconnect, or a position restored from a commit, the position
//!   is validated with OffsetsForLeaderEpoch; a truncated log moves the position to the
//!   divergence point (`auto.offset.reset` earliest/latest) or is reported as
//!   `Error::LogTruncation` with the partition stopped until a seek (`none`); brokers
//!   without OffsetsForLeaderEpoch v3+ skip validation;
//! - commits carry the leader epoch of the record the committed offset follows.

mod support;

use std::time::Duration;

use kafka_sdk::consumer::{CommitMode, Consumer, Offset};
use kafka_sdk::{ClientConfig, Error, Message, TopicPartition};
use support::mock_broker::{code, EpochAnswer, Fault, MockBroker};

use kafka_protocol::messages::ApiKey;

const TOPIC: &str = "epochs";

fn tp() -> TopicPartition {
    TopicPartition::new(TOPIC, 0)
}

async fn consumer(mock: &MockBroker, extra: &[(&str, &str)]) -> Consumer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", mock.bootstrap())
        .set("group.id", "epochs-group")
        .set("enable.auto.commit", "false")
        .set("fetch.max.wait.ms", "100")
        .set("retry.backoff.ms", "50")
        .set("retry.backoff.max.ms", "200");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    Consumer::new(&c).await.expect("consumer")
}

/// The next message or error (bounded: a hang fails the test).
async fn next(c: &Consumer) -> Result<Message, Error> {
    tokio::time::timeout(Duration::from_secs(30), c.recv())
        .await
        .expect("recv within 30 s")
}

/// `n` messages as (offset, value, leader epoch); any error fails the test.
async fn take(c: &Consumer, n: usize) -> Vec<(i64, String, Option<i32>)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let m = next(c).await.expect("a message, not an error");
        out.push((
            m.offset(),
            String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            m.leader_epoch(),
        ));
    }
    out
}

/// Nothing is delivered within `wait`.
async fn quiet(c: &Consumer, wait: Duration) {
    if let Ok(r) = tokio::time::timeout(wait, c.recv()).await {
        panic!("expected nothing, got {r:?}");
    }
}

fn values(prefix: &str, range: std::ops::Range<i64>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

fn append(mock: &MockBroker, vals: &[String]) {
    let refs: Vec<&str> = vals.iter().map(String::as_str).collect();
    mock.append(TOPIC, 0, &refs);
}

fn offsets_and_values(got: &[(i64, String, Option<i32>)]) -> Vec<(i64, String)> {
    got.iter().map(|(o, v, _)| (*o, v.clone())).collect()
}

fn expected(prefix: &str, range: std::ops::Range<i64>) -> Vec<(i64, String)> {
    range.map(|i| (i, format!("{prefix}{i}"))).collect()
}

/// Item 1: Fetch and ListOffsets send the partition's leader epoch from metadata, and the
/// records carry it.
#[tokio::test]
async fn fetch_and_list_offsets_send_the_current_leader_epoch() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    mock.set_leader_epoch(TOPIC, 0, 7);
    append(&mock, &values("v", 0..3));
    let c = consumer(&mock, &[]).await;
    c.assign(vec![(tp(), Offset::Beginning)]).unwrap();
    let got = take(&c, 3).await;
    assert_eq!(offsets_and_values(&got), expected("v", 0..3));
    assert!(got.iter().all(|(_, _, e)| *e == Some(7)), "{got:?}");

    let lists: Vec<_> = mock
        .requests()
        .into_iter()
        .filter_map(|r| match r.body {
            support::mock_broker::RequestBody::ListOffsets { partitions } => Some(partitions),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(!lists.is_empty());
    assert!(
        lists.iter().all(|(_, _, _, epoch, _)| *epoch == 7),
        "ListOffsets current_leader_epoch: {lists:?}"
    );
    let fetches = mock.fetches();
    assert!(!fetches.is_empty());
    assert!(
        fetches.iter().all(|f| f.current_leader_epoch == 7),
        "Fetch current_leader_epoch: {fetches:?}"
    );
    c.close().await.unwrap();
}

/// Item 1: the leader's epoch moves on while the consumer's metadata is stale: the Fetch
/// is fenced (FENCED_LEADER_EPOCH), the consumer refreshes, validates its position (no
/// truncation: the new epoch starts where the old one ended) and resumes with the new
/// epoch: every record once, in order, no error, and only a few fenced fetches.
#[tokio::test]
async fn fenced_leader_epoch_refreshes_and_resumes_without_loss() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    mock.set_leader_epoch(TOPIC, 0, 3);
    append(&mock, &values("v", 0..3));
    let c = consumer(&mock, &[]).await;
    c.assign(vec![(tp(), Offset::Beginning)]).unwrap();
    assert_eq!(offsets_and_values(&take(&c, 3).await), expected("v", 0..3));

    mock.set_leader_epoch(TOPIC, 0, 4);
    append(&mock, &values("v", 3..6));
    let got = take(&c, 3).await;
    assert_eq!(offsets_and_values(&got), expected("v", 3..6));
    assert!(got.iter().all(|(_, _, e)| *e == Some(4)), "{got:?}");
    quiet(&c, Duration::from_millis(500)).await;

    let fetches = mock.fetches();
    let fenced = fetches
        .iter()
        .filter(|f| f.error_code == code::FENCED_LEADER_EPOCH)
        .count();
    assert!(
        (1..=5).contains(&fenced),
        "fenced fetches: {fenced} of {fetches:?}"
    );
    assert_eq!(
        fetches.last().unwrap().current_leader_epoch,
        4,
        "{fetches:?}"
    );
    // The position (3, epoch 3) was validated against the new leader before fetching.
    let queries = mock.epoch_queries();
    assert!(
        queries
            .iter()
            .any(|q| q.current_leader_epoch == 4 && q.leader_epoch == 3 && q.answer == (0, 3, 3)),
        "{queries:?}"
    );
    c.close().await.unwrap();
}

/// Item 1: UNKNOWN_LEADER_EPOCH (the broker is behind the consumer's metadata) is retried
/// with backoff, not in a busy loop, and costs no record and no error.
#[tokio::test]
async fn unknown_leader_epoch_is_retried_with_backoff() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    mock.set_leader_epoch(TOPIC, 0, 2);
    append(&mock, &values("v", 0..2));
    let c = consumer(&mock, &[("retry.backoff.ms", "100")]).await;
    c.assign(vec![(tp(), Offset::Offset(0))]).unwrap();
    assert_eq!(offsets_and_values(&take(&c, 2).await), expected("v", 0..2));
    for _ in 0..4 {
        mock.inject(Fault::error(ApiKey::Fetch, code::UNKNOWN_LEADER_EPOCH));
    }
    let start = std::time::Instant::now();
    append(&mock, &values("v", 2..4));
    assert_eq!(offsets_and_values(&take(&c, 2).await), expected("v", 2..4));
    let took = start.elapsed();
    assert!(mock.pending_faults().is_empty());
    // Four refusals, each followed by at least `retry.backoff.ms` (100 ms) of waiting.
    assert!(
        took >= Duration::from_millis(300),
        "retried too fast: {took:?}"
    );
    quiet(&c, Duration::from_millis(300)).await;
    c.close().await.unwrap();
}

/// Item 3: a validation refused by the leader (its epoch differs from ours) is retried after
/// a metadata refresh, with backoff, until it goes through; no error, nothing lost.
#[tokio::test]
async fn refused_validations_are_retried_with_backoff() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    append(&mock, &values("v", 0..3));
    let c = consumer(&mock, &[("retry.backoff.ms", "100")]).await;
    c.assign(vec![(tp(), Offset::Beginning)]).unwrap();
    take(&c, 3).await;
    for code in [
        code::UNKNOWN_LEADER_EPOCH,
        code::FENCED_LEADER_EPOCH,
        code::UNKNOWN_LEADER_EPOCH,
    ] {
        mock.inject(Fault::error(ApiKey::OffsetForLeaderEpoch, code));
    }
    let start = std::time::Instant::now();
    mock.set_leader_epoch(TOPIC, 0, 1);
    append(&mock, &values("v", 3..5));
    assert_eq!(offsets_and_values(&take(&c, 2).await), expected("v", 3..5));
    assert!(mock.pending_faults().is_empty());
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "retried too fast: {took:?}"
    );
    let queries = mock.epoch_queries();
    assert_eq!(queries.len(), 4, "{queries:?}");
    assert_eq!(queries[3].answer, (0, 0, 3), "{queries:?}");
    quiet(&c, Duration::from_millis(300)).await;
    c.close().await.unwrap();
}

/// Builds the unclean election scenario: records v0..v9 at epoch 0 (two batches), all
/// consumed; the new leader (epoch 1) lost everything from offset 6 and has n6..n11.
async fn consumed_then_truncated(mock: &MockBroker, c: &Consumer) {
    append(mock, &values("v", 0..5));
    append(mock, &values("v", 5..10));
    c.assign(vec![(tp(), Offset::Beginning)]).unwrap();
    assert_eq!(offsets_and_values(&take(c, 10).await), expected("v", 0..10));
    mock.unclean_election(TOPIC, 0, 6);
    append(mock, &values("n", 6..12));
}

/// Item 3: after an unclean leader election truncated records the consumer had received,
/// `auto.offset.reset=earliest` moves the position to the divergence point (offset 6): the
/// new leader's records 6..11 are all delivered (without validation the consumer fetched
/// at 10 and silently skipped n6..n9).
#[tokio::test]
async fn truncation_moves_the_position_to_the_divergence_point() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    let c = consumer(&mock, &[("auto.offset.reset", "earliest")]).await;
    consumed_then_truncated(&mock, &c).await;
    let got = take(&c, 6).await;
    assert_eq!(offsets_and_values(&got), expected("n", 6..12));
    assert!(got.iter().all(|(_, _, e)| *e == Some(1)), "{got:?}");
    quiet(&c, Duration::from_millis(300)).await;
    let queries = mock.epoch_queries();
    assert!(
        queries
            .iter()
            .any(|q| q.current_leader_epoch == 1 && q.leader_epoch == 0 && q.answer == (0, 0, 6)),
        "{queries:?}"
    );
    assert_eq!(c.position_of(&tp()).unwrap(), Some(12));
    c.close().await.unwrap();
}

/// Item 3: with `auto.offset.reset=none` the truncation is reported as
/// `Error::LogTruncation` (offset 10, divergent 6) and the partition stays stopped until
/// the application seeks.
#[tokio::test]
async fn truncation_with_reset_none_is_reported_and_stops_the_partition() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    let c = consumer(&mock, &[("auto.offset.reset", "none")]).await;
    consumed_then_truncated(&mock, &c).await;
    match next(&c).await {
        Err(Error::LogTruncation {
            topic,
            partition,
            offset,
            divergent,
        }) => {
            assert_eq!(
                (topic.as_str(), partition, offset, divergent),
                (TOPIC, 0, 10, Some(6))
            );
        }
        other => panic!("expected LogTruncation, got {other:?}"),
    }
    // Stopped: nothing is fetched or delivered until a seek.
    let fetches = mock.fetches().len();
    quiet(&c, Duration::from_millis(800)).await;
    assert_eq!(mock.fetches().len(), fetches, "{:?}", mock.fetches());
    c.seek(&tp(), Offset::Offset(6)).unwrap();
    assert_eq!(offsets_and_values(&take(&c, 6).await), expected("n", 6..12));
    c.close().await.unwrap();
}

/// Item 3: an OffsetsForLeaderEpoch answer without an end offset (the position's epoch is
/// older than the log start) is a truncation without a known divergence point: reported
/// with `divergent: None` under `none`.
#[tokio::test]
async fn undefined_epoch_end_is_a_truncation_without_divergence_point() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    let c = consumer(&mock, &[("auto.offset.reset", "none")]).await;
    append(&mock, &values("v", 0..4));
    c.assign(vec![(tp(), Offset::Beginning)]).unwrap();
    take(&c, 4).await;
    mock.answer_epoch(EpochAnswer {
        topic: TOPIC.into(),
        partition: 0,
        error_code: 0,
        leader_epoch: -1,
        end_offset: -1,
    });
    mock.set_leader_epoch(TOPIC, 0, 1);
    match next(&c).await {
        Err(Error::LogTruncation {
            offset, divergent, ..
        }) => assert_eq!((offset, divergent), (4, None)),
        other => panic!("expected LogTruncation, got {other:?}"),
    }
    c.close().await.unwrap();
}

/// Item 3: with `auto.offset.reset=earliest`, a truncation without a known divergence
/// point (the position's epoch is older than the leader's log) applies the reset policy, as
/// Java does: the partition starts again at the log start.
#[tokio::test]
async fn undefined_epoch_end_applies_the_reset_policy() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    let c = consumer(&mock, &[("auto.offset.reset", "earliest")]).await;
    append(&mock, &values("v", 0..4));
    c.assign(vec![(tp(), Offset::Offset(0))]).unwrap();
    take(&c, 4).await;
    mock.delete_records(TOPIC, 0, 2);
    mock.answer_epoch(EpochAnswer {
        topic: TOPIC.into(),
        partition: 0,
        error_code: 0,
        leader_epoch: -1,
        end_offset: -1,
    });
    mock.set_leader_epoch(TOPIC, 0, 1);
    let got = take(&c, 2).await;
    assert_eq!(offsets_and_values(&got), expected("v", 2..4));
    c.close().await.unwrap();
}

/// Items 2 and 3: a committed offset carries its leader epoch; the position restored from
/// it is validated (the log was truncated below it: moved to the divergence point), and
/// commits send the epoch of the record the committed offset follows.
#[tokio::test]
async fn committed_epoch_is_validated_and_commits_carry_the_record_epoch() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    append(&mock, &values("v", 0..10));
    mock.commit("epochs-group", TOPIC, 0, 8, 0);
    mock.unclean_election(TOPIC, 0, 5);
    append(&mock, &values("n", 5..10));
    let c = consumer(&mock, &[("auto.offset.reset", "earliest")]).await;
    c.assign(vec![(tp(), Offset::Stored)]).unwrap();
    let m = next(&c).await.expect("message");
    assert_eq!((m.offset(), m.payload()), (5, Some(&b"n5"[..])));
    let queries = mock.epoch_queries();
    assert!(
        queries
            .iter()
            .any(|q| q.current_leader_epoch == 1 && q.leader_epoch == 0),
        "{queries:?}"
    );
    c.commit_message(&m, CommitMode::Sync).await.unwrap();
    assert_eq!(mock.committed("epochs-group", TOPIC, 0), Some((6, 1)));
    take(&c, 1).await;
    c.commit(CommitMode::Sync).await.unwrap();
    assert_eq!(mock.committed("epochs-group", TOPIC, 0), Some((7, 1)));
    c.close().await.unwrap();
}

/// Item 3: a position restored from a commit at the current epoch validates fine and
/// resumes exactly there.
#[tokio::test]
async fn committed_position_without_truncation_resumes_there() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    mock.set_leader_epoch(TOPIC, 0, 2);
    append(&mock, &values("v", 0..6));
    mock.commit("epochs-group", TOPIC, 0, 4, 2);
    let c = consumer(&mock, &[]).await;
    c.assign(vec![(tp(), Offset::Stored)]).unwrap();
    assert_eq!(offsets_and_values(&take(&c, 2).await), expected("v", 4..6));
    let queries = mock.epoch_queries();
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert_eq!(
        (queries[0].current_leader_epoch, queries[0].leader_epoch),
        (2, 2)
    );
    c.close().await.unwrap();
}

/// Item 3: after the fetch connection to the leader breaks, the position is validated on
/// the new connection before fetching resumes; nothing is lost or repeated.
#[tokio::test]
async fn reconnecting_to_the_leader_validates_the_position() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    append(&mock, &values("v", 0..3));
    let c = consumer(&mock, &[]).await;
    c.assign(vec![(tp(), Offset::Beginning)]).unwrap();
    assert_eq!(offsets_and_values(&take(&c, 3).await), expected("v", 0..3));
    assert!(mock.epoch_queries().is_empty());
    mock.inject(Fault::disconnect(ApiKey::Fetch));
    append(&mock, &values("v", 3..5));
    assert_eq!(offsets_and_values(&take(&c, 2).await), expected("v", 3..5));
    assert!(mock.pending_faults().is_empty());
    let queries = mock.epoch_queries();
    assert!(
        queries
            .iter()
            .any(|q| q.leader_epoch == 0 && q.current_leader_epoch == 0),
        "{queries:?}"
    );
    quiet(&c, Duration::from_millis(300)).await;
    c.close().await.unwrap();
}

/// Item 3: brokers without OffsetsForLeaderEpoch v3+ give no usable epoch information:
/// validation is skipped and fetching goes on at the position (as Java does).
#[tokio::test]
async fn brokers_without_offsets_for_leader_epoch_v3_skip_validation() {
    for versions in [Some((2, 2)), None] {
        let mock = MockBroker::start(&[(TOPIC, 1)]).await;
        mock.offset_for_leader_epoch_versions(versions);
        let c = consumer(&mock, &[("auto.offset.reset", "earliest")]).await;
        consumed_then_truncated(&mock, &c).await;
        let got = take(&c, 2).await;
        assert_eq!(
            offsets_and_values(&got),
            expected("n", 10..12),
            "{versions:?}"
        );
        assert!(mock.epoch_queries().is_empty(), "{versions:?}");
        c.close().await.unwrap();
    }
}

/// Item 2/3: the position after records followed by a control batch (a transaction marker
/// written by a newer leader) carries the epoch of that last batch, not of the last record:
/// otherwise the next validation saw the position beyond the end of its epoch and reported
/// a truncation that never happened.
#[tokio::test]
async fn a_position_past_a_control_batch_takes_its_epoch() {
    for one_fetch in [true, false] {
        let mock = MockBroker::start(&[(TOPIC, 1)]).await;
        let c = consumer(&mock, &[("auto.offset.reset", "none")]).await;
        append(&mock, &values("v", 0..3));
        if !one_fetch {
            c.assign(vec![(tp(), Offset::Beginning)]).unwrap();
            take(&c, 3).await;
        }
        mock.set_leader_epoch(TOPIC, 0, 1);
        mock.append_commit_marker(TOPIC, 0);
        if one_fetch {
            c.assign(vec![(tp(), Offset::Beginning)]).unwrap();
            take(&c, 3).await;
        }
        // Wait until the marker was passed.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while c.position_of(&tp()).unwrap() != Some(4) {
            assert!(std::time::Instant::now() < deadline, "position stuck");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        mock.set_leader_epoch(TOPIC, 0, 2);
        append(&mock, &values("v", 4..6));
        let got = take(&c, 2).await;
        assert_eq!(
            offsets_and_values(&got),
            expected("v", 4..6),
            "one fetch: {one_fetch}"
        );
        // The last validation (leader epoch 2) asked for the marker's epoch.
        let queries = mock.epoch_queries();
        assert_eq!(
            queries
                .last()
                .map(|q| (q.current_leader_epoch, q.leader_epoch)),
            Some((2, 1)),
            "one fetch: {one_fetch}: {queries:?}"
        );
        c.commit(CommitMode::Sync).await.unwrap();
        assert_eq!(mock.committed("epochs-group", TOPIC, 0), Some((6, 2)));
        c.close().await.unwrap();
    }
}

/// Against a real broker (Kafka 4.3, one node of its own): the restart makes the broker
/// leader again under a new leader epoch. The consumer (`auto.offset.reset=none`, so any
/// truncation would be an error) validates its position against the real
/// OffsetsForLeaderEpoch answer, finds no truncation and goes on: every record once, the
/// later ones with the newer epoch. A second consumer restores the offset committed before
/// the restart with its older epoch, validates it and resumes exactly there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_broker_restart_validates_without_false_truncation() {
    use kafka_sdk::{Producer, ProducerRecord};
    use support::common::{blocking, config, unique};

    let cluster = std::sync::Arc::new(
        blocking(|| {
            kafka_testkit::KafkaCluster::start(kafka_testkit::ClusterOptions {
                allow_external: false,
                ..Default::default()
            })
        })
        .await
        .expect("own cluster"),
    );
    let bs = cluster.bootstrap();
    let topic = unique("epochs-real");
    {
        let (c, t) = (cluster.clone(), topic.clone());
        blocking(move || c.create_topic(&t, 1, 1, &[]))
            .await
            .unwrap();
    }
    let produce = |from: usize, n: usize| {
        let (bs, topic) = (bs.clone(), topic.clone());
        async move {
            let p = Producer::new(&config(&bs, &[("delivery.timeout.ms", "60000")]))
                .await
                .unwrap();
            let mut deliveries = Vec::new();
            for i in from..from + n {
                deliveries.push(
                    p.send(
                        ProducerRecord::new(topic.as_str())
                            .partition(0)
                            .value(format!("r{i}")),
                    )
                    .await
                    .unwrap(),
                );
            }
            for d in deliveries {
                d.await.expect("delivered");
            }
            p.flush().await;
            p.close(Duration::from_secs(10)).await.unwrap();
        }
    };
    let group = unique("epochs-real-g");
    let cfg = config(
        &bs,
        &[
            ("group.id", group.as_str()),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "none"),
            ("reconnect.backoff.max.ms", "500"),
            ("retry.backoff.max.ms", "500"),
        ],
    );
    let tp = TopicPartition::new(topic.as_str(), 0);
    produce(0, 50).await;
    let a = Consumer::new(&cfg).await.unwrap();
    a.assign(vec![(tp.clone(), Offset::Beginning)]).unwrap();
    let before = take(&a, 50).await;
    let values_before: Vec<String> = before.iter().map(|(_, v, _)| v.clone()).collect();
    assert_eq!(values_before, values("r", 0..50));
    let old_epoch = before[49].2.expect("records carry a leader epoch");
    a.commit(CommitMode::Sync).await.unwrap();

    {
        let c = cluster.clone();
        blocking(move || c.restart(c.node_ids()[0])).await.unwrap();
    }
    produce(50, 50).await;
    let after = take(&a, 50).await;
    assert_eq!(
        after
            .iter()
            .map(|(o, v, _)| (*o, v.clone()))
            .collect::<Vec<_>>(),
        expected("r", 50..100)
    );
    let new_epoch = after[0].2.expect("epoch");
    assert!(new_epoch > old_epoch, "{old_epoch} -> {new_epoch}");
    quiet(&a, Duration::from_millis(500)).await;
    a.close().await.unwrap();

    // The commit made before the restart: (50, old epoch), validated against the new one.
    let b = Consumer::new(&cfg).await.unwrap();
    b.assign(vec![(tp.clone(), Offset::Stored)]).unwrap();
    let resumed = take(&b, 50).await;
    assert_eq!(
        resumed
            .iter()
            .map(|(o, v, _)| (*o, v.clone()))
            .collect::<Vec<_>>(),
        expected("r", 50..100)
    );
    b.close().await.unwrap();
}
