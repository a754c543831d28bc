//! Incremental fetch sessions (KIP-227) in the consumer.
//!
//! Against the in-process mock broker (`tests/support/mock_broker.rs`, with
//! `MockBroker::fetch_sessions` on), which keeps sessions like a broker: the error paths and
//! the request shapes. Against a real Apache Kafka broker (test kit): records complete and in
//! order while the consumer fetches with sessions across pause/resume, seek and a rebalance.
//!
//! What is proven (issue 18, item 1):
//! - a broker's partitions are dealt to two fetch lanes, each with its own session (the
//!   first of 4 partitions and the third to one, the others to the other);
//! - each lane's first Fetch is full (epoch 0) and creates its session; later ones are
//!   incremental (epoch 1, 2, ...) and carry only partitions whose fetch offset changed;
//! - a paused (or unassigned) partition is sent as forgotten and comes back when resumed;
//! - FETCH_SESSION_ID_NOT_FOUND and INVALID_FETCH_SESSION_EPOCH reset to a full fetch with
//!   no record lost or duplicated and no error for the application;
//! - a broker with no free session slot gets full requests and the consumer still works;
//! - close sends a closing Fetch (epoch -1) that frees the broker's session.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_sdk::consumer::{Consumer, Offset};
use kafka_sdk::{ClientConfig, Error, Message, TopicPartition};
use support::mock_broker::{MockBroker, SessionFetch};

const TOPIC: &str = "sessions";

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new(TOPIC, p)
}

async fn consumer(mock: &MockBroker) -> Consumer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", mock.bootstrap())
        .set("fetch.max.wait.ms", "50")
        .set("retry.backoff.ms", "20")
        .set("retry.backoff.max.ms", "100");
    Consumer::new(&c).await.expect("consumer")
}

async fn next(c: &Consumer) -> Result<Message, Error> {
    tokio::time::timeout(Duration::from_secs(30), c.recv())
        .await
        .expect("recv within 30 s")
}

/// `n` messages as (partition, offset, value); any error fails the test.
async fn take(c: &Consumer, n: usize) -> Vec<(i32, i64, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let m = next(c).await.expect("a message, not an error");
        out.push((
            m.partition(),
            m.offset(),
            String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
        ));
    }
    out
}

fn append(mock: &MockBroker, p: i32, from: i64, n: i64) {
    let vals: Vec<String> = (from..from + n).map(|i| format!("p{p}-{i}")).collect();
    let refs: Vec<&str> = vals.iter().map(String::as_str).collect();
    mock.append(TOPIC, p, &refs);
}

/// Per partition, the offsets and values received, which must be exactly `0..n` in order.
fn assert_complete(got: &[(i32, i64, String)], expect: &[(i32, i64)]) {
    let mut by: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for (p, o, v) in got {
        by.entry(*p).or_default().push((*o, v.clone()));
    }
    for (p, n) in expect {
        let want: Vec<(i64, String)> = (0..*n).map(|i| (i, format!("p{p}-{i}"))).collect();
        assert_eq!(by.remove(p).unwrap_or_default(), want, "partition {p}");
    }
    assert!(by.is_empty(), "unexpected partitions: {by:?}");
}

/// The session log by session: each session a full fetch created (keyed by its id), with
/// that full fetch first and then the requests that named the session, in order.
fn by_session(log: &[SessionFetch]) -> BTreeMap<i32, Vec<&SessionFetch>> {
    let mut out: BTreeMap<i32, Vec<&SessionFetch>> = BTreeMap::new();
    for f in log {
        if f.session_epoch == 0 && f.answered_session_id > 0 {
            out.entry(f.answered_session_id).or_default().push(f);
        } else if f.session_id > 0 {
            out.entry(f.session_id).or_default().push(f);
        }
    }
    out
}

/// The partitions a request carried.
fn parts_of(f: &SessionFetch) -> Vec<i32> {
    f.partitions.iter().map(|(_, p, _)| *p).collect()
}

/// Waits until `cond` holds over the mock's session log.
async fn await_sessions(mock: &MockBroker, what: &str, cond: impl Fn(&[SessionFetch]) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if cond(&mock.session_fetches()) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {:#?}",
            mock.session_fetches()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn full_then_incremental_with_only_changed_partitions_and_forgotten_on_pause() {
    let mock = MockBroker::start(&[(TOPIC, 4)]).await;
    mock.fetch_sessions(10);
    for p in 0..4 {
        append(&mock, p, 0, 3);
    }
    let c = consumer(&mock).await;
    c.assign((0..4).map(|p| (tp(p), Offset::Beginning)).collect())
        .unwrap();
    let mut got = take(&c, 12).await;

    // Only partition 1 gets new records: incremental requests carry it alone.
    await_sessions(&mock, "incremental fetches", |l| {
        l.iter().filter(|f| f.session_epoch > 0).count() >= 2
    })
    .await;
    let before = mock.session_fetches().len();
    append(&mock, 1, 3, 2);
    got.extend(take(&c, 2).await);
    await_sessions(&mock, "fetch after the append", |l| l.len() > before + 1).await;
    // Lane 1 (partitions 1 and 3) sends partition 1 alone at its new offset.
    await_sessions(&mock, "partition 1 alone resent at 5", |l| {
        l.iter()
            .any(|f| f.session_epoch > 0 && f.partitions == vec![(TOPIC.to_string(), 1, 5)])
    })
    .await;

    let log = mock.session_fetches();
    // Two lanes, two sessions: each made by a full fetch of that lane's partitions.
    let sessions = by_session(&log);
    let firsts: Vec<Vec<i32>> = sessions.values().map(|s| parts_of(s[0])).collect();
    assert_eq!(firsts.len(), 2, "{log:#?}");
    assert!(firsts.contains(&vec![0, 2]), "{log:#?}");
    assert!(firsts.contains(&vec![1, 3]), "{log:#?}");
    for (id, fetches) in &sessions {
        let first = fetches[0];
        assert_eq!((first.session_id, first.session_epoch), (0, 0), "{first:?}");
        let incremental = &fetches[1..];
        for (i, f) in incremental.iter().enumerate() {
            assert_eq!(f.session_id, *id, "{f:?}");
            assert_eq!(f.session_epoch, i as i32 + 1, "epochs count up: {log:#?}");
            assert_eq!(f.error_code, 0, "{f:?}");
        }
        // After records came back, the partitions with new offsets are sent, others are
        // not: no incremental request carries a partition at an offset its session has.
        let mut known: BTreeMap<i32, i64> =
            first.partitions.iter().map(|(_, p, o)| (*p, *o)).collect();
        for f in incremental {
            for (_, p, o) in &f.partitions {
                assert_ne!(known.get(p), Some(o), "unchanged partition resent: {f:?}");
                known.insert(*p, *o);
            }
        }
    }
    let incremental: Vec<&SessionFetch> = log.iter().filter(|f| f.session_epoch > 0).collect();
    assert!(
        incremental.iter().any(|f| f.partitions.is_empty()),
        "idle incremental fetches carry no partitions: {log:#?}"
    );

    // Pause partition 2: forgotten; records appended while paused are not delivered; on
    // resume it is sent again and its records arrive.
    c.pause(&[tp(2)]).unwrap();
    await_sessions(&mock, "partition 2 forgotten", |l| {
        l.iter()
            .any(|f| f.forgotten.contains(&(TOPIC.to_string(), 2)))
    })
    .await;
    append(&mock, 2, 3, 2);
    append(&mock, 0, 3, 1);
    let more = take(&c, 1).await;
    assert_eq!(
        more[0].0, 0,
        "only partition 0 is delivered while 2 is paused"
    );
    got.extend(more);
    c.resume(&[tp(2)]).unwrap();
    got.extend(take(&c, 2).await);
    assert_complete(&got, &[(0, 4), (1, 5), (2, 5), (3, 3)]);
    let log = mock.session_fetches();
    let forgot = log
        .iter()
        .position(|f| f.forgotten.contains(&(TOPIC.to_string(), 2)))
        .unwrap();
    assert!(
        log[forgot..]
            .iter()
            .any(|f| f.partitions.contains(&(TOPIC.to_string(), 2, 3))),
        "partition 2 sent again on resume: {log:#?}"
    );
    assert!(log.iter().all(|f| f.error_code == 0), "{log:#?}");

    // Close: both sessions are closed on the broker (epoch -1).
    c.close().await.unwrap();
    for id in sessions.keys() {
        await_sessions(&mock, "closing fetch", |l| {
            l.iter()
                .any(|f| f.session_id == *id && f.session_epoch == -1)
        })
        .await;
    }
    assert!(mock.open_fetch_sessions().is_empty());
}

/// FETCH_SESSION_ID_NOT_FOUND and INVALID_FETCH_SESSION_EPOCH: a full fetch follows, no
/// record is lost or duplicated, the application sees no error.
#[tokio::test]
async fn session_errors_reset_to_a_full_fetch() {
    let mock = MockBroker::start(&[(TOPIC, 2)]).await;
    mock.fetch_sessions(10);
    append(&mock, 0, 0, 3);
    append(&mock, 1, 0, 3);
    let c = consumer(&mock).await;
    c.assign(vec![(tp(0), Offset::Beginning), (tp(1), Offset::Beginning)])
        .unwrap();
    let mut got = take(&c, 6).await;
    await_sessions(&mock, "incremental", |l| {
        l.iter().any(|f| f.session_epoch > 1)
    })
    .await;

    for (round, expect_code) in [(0, 70i16), (1, 71i16)] {
        if round == 0 {
            mock.evict_fetch_sessions();
        } else {
            mock.skew_fetch_session_epochs();
        }
        await_sessions(&mock, "session error", |l| {
            l.iter().any(|f| f.error_code == expect_code)
        })
        .await;
        // For each lane (one partition each here), a full fetch (epoch 0) follows the
        // error and creates a new session.
        await_sessions(&mock, "full fetches after the error", |l| {
            let at = l.iter().position(|f| f.error_code == expect_code).unwrap();
            (0..2).all(|p| {
                l[at + 1..].iter().any(|f| {
                    f.session_epoch == 0 && f.answered_session_id > 0 && parts_of(f) == [p]
                })
            })
        })
        .await;
        let base = 3 + round as i64 * 2;
        append(&mock, 0, base, 2);
        append(&mock, 1, base, 2);
        got.extend(take(&c, 4).await);
    }
    assert_complete(&got, &[(0, 7), (1, 7)]);
    // Nothing more (no duplicates) arrives.
    assert!(tokio::time::timeout(Duration::from_millis(500), c.recv())
        .await
        .is_err());
    c.close().await.unwrap();
}

/// A broker with no free session slot (`max.incremental.fetch.session.cache.slots` taken):
/// every fetch is full, records still arrive complete, and no incremental request is sent.
#[tokio::test]
async fn no_free_session_slot_keeps_fetching_with_full_requests() {
    let mock = MockBroker::start(&[(TOPIC, 2)]).await;
    mock.fetch_sessions(0);
    append(&mock, 0, 0, 3);
    append(&mock, 1, 0, 3);
    let c = consumer(&mock).await;
    c.assign(vec![(tp(0), Offset::Beginning), (tp(1), Offset::Beginning)])
        .unwrap();
    let mut got = take(&c, 6).await;
    append(&mock, 1, 3, 2);
    got.extend(take(&c, 2).await);
    assert_complete(&got, &[(0, 3), (1, 5)]);
    let log = mock.session_fetches();
    assert!(log.len() >= 2, "{log:#?}");
    // Every request full, of its lane's one partition, both lanes fetching.
    assert!(
        log.iter().all(|f| f.session_epoch == 0
            && f.session_id == 0
            && f.answered_session_id == 0
            && f.partitions.len() == 1
            && f.error_code == 0),
        "{log:#?}"
    );
    for p in 0..2 {
        assert!(log.iter().any(|f| parts_of(f) == [p]), "{log:#?}");
    }
    // A slot frees up: the next full fetch creates a session and incremental ones follow.
    mock.fetch_sessions(1);
    await_sessions(&mock, "session once a slot is free", |l| {
        l.iter().any(|f| f.session_epoch > 0 && f.error_code == 0)
    })
    .await;
    c.close().await.unwrap();
}

/// Seeking a partition sends its new offset in the next incremental request; unassigning
/// one forgets it.
#[tokio::test]
async fn seek_and_unassign_update_the_session() {
    let mock = MockBroker::start(&[(TOPIC, 2)]).await;
    mock.fetch_sessions(10);
    append(&mock, 0, 0, 5);
    append(&mock, 1, 0, 5);
    let c = consumer(&mock).await;
    c.assign(vec![(tp(0), Offset::Beginning), (tp(1), Offset::Beginning)])
        .unwrap();
    take(&c, 10).await;
    await_sessions(&mock, "incremental", |l| {
        l.iter().any(|f| f.session_epoch > 1)
    })
    .await;
    c.seek(&tp(0), Offset::Offset(2)).unwrap();
    let again = take(&c, 3).await;
    assert_eq!(
        again,
        (2..5)
            .map(|i| (0, i, format!("p0-{i}")))
            .collect::<Vec<_>>()
    );
    let log = mock.session_fetches();
    assert!(
        log.iter()
            .any(|f| f.session_epoch > 0 && f.partitions.contains(&(TOPIC.to_string(), 0, 2))),
        "the seek is sent incrementally: {log:#?}"
    );
    c.assign(vec![(tp(1), Offset::End)]).unwrap();
    await_sessions(&mock, "partition 0 forgotten", |l| {
        l.iter()
            .any(|f| f.forgotten.contains(&(TOPIC.to_string(), 0)))
    })
    .await;
    c.close().await.unwrap();
}

/// Each lane asks for its share of `fetch.min.bytes` (rounded up), so the broker holds the
/// two lanes' fetches until about `fetch.min.bytes` came in all, as it holds Java's one
/// fetch; a broker with a single partition of the consumer has one lane, which asks for the
/// whole minimum.
#[tokio::test]
async fn lanes_share_fetch_min_bytes() {
    let mock = MockBroker::start(&[(TOPIC, 3)]).await;
    mock.fetch_sessions(10);
    for p in 0..3 {
        append(&mock, p, 0, 1);
    }
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", mock.bootstrap())
        .set("fetch.min.bytes", "1001")
        .set("fetch.max.wait.ms", "50");
    let c = Consumer::new(&cfg).await.expect("consumer");
    c.assign(vec![(tp(0), Offset::Beginning), (tp(2), Offset::Beginning)])
        .unwrap();
    take(&c, 2).await;
    // One partition: one lane.
    c.assign(vec![(tp(1), Offset::Beginning)]).unwrap();
    let last = take(&c, 1).await;
    assert_eq!(last[0].0, 1);
    c.close().await.unwrap();
    let reqs = mock.fetch_requests();
    let of = |p: i32| -> Vec<i32> {
        reqs.iter()
            .filter(|(parts, _)| parts.contains(&p))
            .map(|(_, min)| *min)
            .collect()
    };
    // Partitions 0 and 2: two lanes (dealt in turn), 501 bytes each.
    for p in [0, 2] {
        assert!(
            !of(p).is_empty() && of(p).iter().all(|&m| m == 501),
            "{reqs:?}"
        );
    }
    assert!(
        !of(1).is_empty() && of(1).iter().all(|&m| m == 1001),
        "{reqs:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Real broker (test kit). Kafka creates sessions for Fetch v7+; the consumer fetches with
// them throughout (the mock tests above prove the request shapes).

mod real {
    use super::*;
    use kafka_sdk::producer::{Producer, ProducerRecord};
    use support::common::{self, unique};

    const PARTS: i32 = 6;

    fn bootstrap() -> String {
        kafka_testkit::shared().bootstrap()
    }

    async fn produce(topic: &str, per_partition: std::ops::Range<i64>) {
        let p = Producer::new(&common::config(&bootstrap(), &[("linger.ms", "5")]))
            .await
            .expect("producer");
        let mut acks = Vec::new();
        for i in per_partition {
            for part in 0..PARTS {
                let rec = ProducerRecord::new(topic.to_string())
                    .partition(part)
                    .value(format!("p{part}-{i}"));
                acks.push(p.send(rec).await.expect("send"));
            }
        }
        for a in acks {
            a.await.expect("acked");
        }
        p.close(Duration::from_secs(30)).await.expect("close");
    }

    /// Receives until `done` holds, failing after 60 s.
    async fn recv_until(
        c: &Consumer,
        got: &mut Vec<(i32, i64, String)>,
        done: impl Fn(&[(i32, i64, String)]) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !done(got) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = tokio::time::timeout(left, c.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out; {} received", got.len()))
                .expect("a message, not an error");
            got.push((
                m.partition(),
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            ));
        }
    }

    fn count(got: &[(i32, i64, String)], part: i32) -> usize {
        got.iter().filter(|(p, _, _)| *p == part).count()
    }

    /// Assign mode: records complete and in order across pause/resume and a seek, with the
    /// session's incremental requests in between.
    #[tokio::test]
    async fn records_complete_and_in_order_across_pause_resume_and_seek() {
        let topic = unique("fs-assign");
        common::create_topic(&bootstrap(), &topic, PARTS).await;
        produce(&topic, 0..50).await;
        let c = Consumer::new(&common::config(
            &bootstrap(),
            &[
                ("fetch.max.wait.ms", "100"),
                ("max.partition.fetch.bytes", "2048"),
            ],
        ))
        .await
        .unwrap();
        let tps: Vec<TopicPartition> = (0..PARTS)
            .map(|p| TopicPartition::new(topic.as_str(), p))
            .collect();
        c.assign(tps.iter().map(|t| (t.clone(), Offset::Beginning)).collect())
            .unwrap();
        let mut got = Vec::new();
        recv_until(&c, &mut got, |g| g.len() >= 60).await;
        // Pause two partitions, produce more, drain the others.
        c.pause(&tps[0..2]).unwrap();
        let paused_at: Vec<usize> = (0..2).map(|p| count(&got, p)).collect();
        produce(&topic, 50..100).await;
        recv_until(&c, &mut got, |g| (2..PARTS).all(|p| count(g, p) >= 100)).await;
        // Records buffered before the pause may still come out; nothing fetched after it.
        for p in 0..2 {
            assert!(
                count(&got, p) <= paused_at[p as usize] + 60,
                "partition {p} while paused"
            );
        }
        c.resume(&tps[0..2]).unwrap();
        recv_until(&c, &mut got, |g| (0..PARTS).all(|p| count(g, p) >= 100)).await;
        // Every partition: exactly 0..100 in order.
        let expect: Vec<(i32, i64)> = (0..PARTS).map(|p| (p, 100)).collect();
        for p in 0..PARTS {
            let seq: Vec<i64> = got.iter().filter(|g| g.0 == p).map(|g| g.1).collect();
            assert_eq!(seq, (0..100).collect::<Vec<_>>(), "partition {p} in order");
        }
        assert_complete(&got, &expect);

        // Seek partition 3 back to 40: exactly 40..100 again, then new records.
        c.seek(&tps[3], Offset::Offset(40)).unwrap();
        let mut again = Vec::new();
        recv_until(&c, &mut again, |g| g.len() >= 60).await;
        assert!(
            again
                .iter()
                .map(|(p, o, _)| (*p, *o))
                .eq((40..100).map(|o| (3, o))),
            "after the seek: {again:?}"
        );
        produce(&topic, 100..110).await;
        let mut tail = Vec::new();
        recv_until(&c, &mut tail, |g| g.len() >= 10 * PARTS as usize).await;
        for p in 0..PARTS {
            let seq: Vec<i64> = tail.iter().filter(|g| g.0 == p).map(|g| g.1).collect();
            assert_eq!(
                seq,
                (100..110).collect::<Vec<_>>(),
                "partition {p} after seek"
            );
        }
        c.close().await.unwrap();
    }

    /// Group mode: a second member joins (rebalance: partitions move, sessions forget and
    /// add them); every record is received, in order per member and partition.
    #[tokio::test]
    async fn records_complete_across_a_rebalance() {
        let topic = unique("fs-group");
        let group = unique("fs-g");
        common::create_topic(&bootstrap(), &topic, PARTS).await;
        produce(&topic, 0..40).await;
        let cfg = common::config(
            &bootstrap(),
            &[
                ("group.id", group.as_str()),
                ("auto.offset.reset", "earliest"),
                ("fetch.max.wait.ms", "100"),
                ("auto.commit.interval.ms", "100"),
            ],
        );
        let a = Consumer::new(&cfg).await.unwrap();
        a.subscribe(&[topic.as_str()]).unwrap();
        let mut got_a = Vec::new();
        recv_until(&a, &mut got_a, |g| g.len() >= 120).await;
        let b = Consumer::new(&cfg).await.unwrap();
        b.subscribe(&[topic.as_str()]).unwrap();
        produce(&topic, 40..80).await;
        // Both poll until every offset 0..80 of every partition was seen by someone.
        let mut got_b = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let all = |a: &[(i32, i64, String)], b: &[(i32, i64, String)]| {
            let seen: std::collections::BTreeSet<(i32, i64)> =
                a.iter().chain(b).map(|(p, o, _)| (*p, *o)).collect();
            seen.len() == (PARTS as usize) * 80
        };
        while !all(&got_a, &got_b) {
            assert!(tokio::time::Instant::now() < deadline, "incomplete");
            for (c, got) in [(&a, &mut got_a), (&b, &mut got_b)] {
                if let Ok(m) = tokio::time::timeout(Duration::from_millis(50), c.recv()).await {
                    let m = m.expect("a message, not an error");
                    got.push((m.partition(), m.offset(), String::new()));
                }
            }
        }
        // Values match offsets, and each member's offsets per partition only go forward
        // by one, except where a partition came back after a rebalance (at its commit).
        for got in [&got_a, &got_b] {
            let mut last: BTreeMap<i32, i64> = BTreeMap::new();
            for (p, o, _) in got {
                if let Some(prev) = last.insert(*p, *o) {
                    assert!(
                        *o == prev + 1 || *o <= prev,
                        "gap in partition {p}: {prev} -> {o}"
                    );
                }
            }
        }
        assert!(!got_b.is_empty(), "the second member got partitions");
        a.close().await.unwrap();
        b.close().await.unwrap();
    }
}
