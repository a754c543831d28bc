//! Outbox relay and inbox consumer against real Kafka (kafka-testkit) and a real PostgreSQL
//! (kafka-testkit's throwaway server). One Kafka and one PostgreSQL server for the file; each
//! test has its own database and topics.
//!
//! The crash tests run the relay / inbox consumer in a child process (this test binary again,
//! entry point `child_main`, configured through environment variables) and SIGKILL or abort
//! it at random points.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use kafka_sdk::{
    ClientConfig, Consumer, Message, Offset, Producer, ProducerRecord, TopicPartition,
};
use kafka_sdk_outbox::{
    HandlerError, Inbox, Outbox, OutboxEvent, Outcome, Relay, RelayConfig, MESSAGE_ID_HEADER,
};
use kafka_testkit::{KafkaCluster, PostgresServer};
use tokio_postgres::{Client, NoTls, Transaction};

fn kafka() -> &'static KafkaCluster {
    kafka_testkit::shared()
}

fn postgres() -> &'static PostgresServer {
    static PG: OnceLock<PostgresServer> = OnceLock::new();
    PG.get_or_init(|| PostgresServer::start().expect("start PostgreSQL"))
}

/// A fresh database named `name`; returns its URL.
fn database(name: &str) -> String {
    let pg = postgres();
    pg.create_database(name).expect("createdb");
    pg.url_for(name)
}

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

fn kafka_config() -> ClientConfig {
    ClientConfig::new().with("bootstrap.servers", kafka().bootstrap())
}

fn topic(name: &str, partitions: i32) -> String {
    let t = format!("{name}-{}", std::process::id());
    kafka()
        .create_topic(&t, partitions, 1, &[])
        .expect("create topic");
    t
}

/// Reads every record of `topic` (all partitions, from the beginning) until `done` says the
/// set is complete, then until 3 s pass without a record (to catch late duplicates).
async fn read_all(
    topic: &str,
    partitions: i32,
    read_committed: bool,
    done: impl Fn(&[Message]) -> bool,
) -> Vec<Message> {
    let consumer = Consumer::new(&kafka_config().with(
        "isolation.level",
        if read_committed {
            "read_committed"
        } else {
            "read_uncommitted"
        },
    ))
    .await
    .unwrap();
    consumer
        .assign(
            (0..partitions)
                .map(|p| (TopicPartition::new(topic, p), Offset::Beginning))
                .collect(),
        )
        .unwrap();
    let mut all = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut complete_at: Option<Instant> = None;
    loop {
        assert!(
            Instant::now() < deadline,
            "timed out reading {topic}: got {} records",
            all.len()
        );
        let batch = consumer
            .recv_batch(1000, Duration::from_millis(500))
            .await
            .unwrap();
        let empty = batch.is_empty();
        all.extend(batch);
        if complete_at.is_none() && done(&all) {
            complete_at = Some(Instant::now());
        }
        if let Some(t) = complete_at {
            if empty && t.elapsed() > Duration::from_secs(3) {
                break;
            }
        }
    }
    consumer.close().await.unwrap();
    all
}

fn text(b: Option<&[u8]>) -> String {
    String::from_utf8_lossy(b.unwrap_or_default()).to_string()
}

/// Inserts `n` orders over `keys` aggregates, one database transaction each; every 7th is
/// rolled back (payload `rollback-...`). Payloads are `agg-K:SEQ` with SEQ counting per key
/// over the committed ones. Returns the committed payloads.
async fn create_orders(
    url: &str,
    outbox: &Outbox,
    topic: &str,
    n: usize,
    keys: usize,
    pace: Duration,
) -> Vec<String> {
    let mut db = connect(url).await;
    let mut seq: HashMap<usize, u32> = HashMap::new();
    let mut committed = Vec::new();
    for i in 0..n {
        let k = i % keys;
        let tx = db.transaction().await.unwrap();
        tx.execute(
            "INSERT INTO orders (aggregate_id, n) VALUES ($1, $2)",
            &[&format!("agg-{k}"), &(i as i64)],
        )
        .await
        .unwrap();
        if i % 7 == 3 {
            let ev = OutboxEvent::new(topic, format!("agg-{k}")).payload(format!("rollback-{i}"));
            outbox.insert(&tx, &ev).await.unwrap();
            tx.rollback().await.unwrap();
        } else {
            let s = seq.entry(k).or_insert(0);
            *s += 1;
            let payload = format!("agg-{k}:{s}");
            let ev = OutboxEvent::new(topic, format!("agg-{k}")).payload(payload.clone());
            outbox.insert(&tx, &ev).await.unwrap();
            tx.commit().await.unwrap();
            committed.push(payload);
        }
        if i % 10 == 9 {
            tokio::time::sleep(pace).await;
        }
    }
    committed
}

async fn setup_outbox(url: &str) -> Outbox {
    let mut db = connect(url).await;
    let outbox = Outbox::new("outbox").unwrap();
    outbox.migrate(&mut db).await.unwrap();
    // Twice: the migration is idempotent.
    outbox.migrate(&mut db).await.unwrap();
    db.batch_execute("CREATE TABLE IF NOT EXISTS orders (aggregate_id TEXT, n BIGINT)")
        .await
        .unwrap();
    outbox
}

/// Checks the published records against the committed payloads: all there, none rolled
/// back, first copies in per-key order. Returns the number of duplicates.
fn check_published(records: &[Message], committed: &[String]) -> usize {
    let mut seen = HashSet::new();
    let mut last: HashMap<String, u32> = HashMap::new();
    let mut dups = 0;
    for m in records {
        let p = text(m.payload());
        assert!(
            !p.starts_with("rollback"),
            "rolled-back event published: {p}"
        );
        let id = m
            .header(MESSAGE_ID_HEADER)
            .flatten()
            .expect("message-id header");
        assert_eq!(id.len(), 36, "message id is a UUID");
        let key = text(m.key().map(|k| k.as_ref()));
        let (agg, s) = p.split_once(':').expect("payload agg:seq");
        assert_eq!(agg, key, "record key is the aggregate id");
        if !seen.insert(p.clone()) {
            dups += 1;
            continue;
        }
        let s: u32 = s.parse().unwrap();
        let prev = last.insert(key.clone(), s).unwrap_or(0);
        assert_eq!(
            s,
            prev + 1,
            "per-key order broken for {key}: {prev} then {s}"
        );
    }
    let missing: Vec<_> = committed.iter().filter(|p| !seen.contains(*p)).collect();
    assert!(
        missing.is_empty(),
        "committed events never published: {missing:?}"
    );
    dups
}

fn child(env: &[(&str, String)]) -> Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "child_main",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("spawn child")
}

async fn wait_empty(url: &str, outbox: &Outbox, timeout: Duration) {
    let db = connect(url).await;
    let deadline = Instant::now() + timeout;
    loop {
        let n = outbox.pending(&db).await.unwrap();
        if n == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "outbox still holds {n} rows");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn relay_sigkill(name: &str, transactional: bool) {
    let url = database(name);
    let outbox = setup_outbox(&url).await;
    let topic = topic(name, 3);
    let mut env = vec![
        ("OUTBOX_CHILD", "relay".to_string()),
        ("OUTBOX_DB", url.clone()),
        ("OUTBOX_BOOTSTRAP", kafka().bootstrap()),
    ];
    if transactional {
        env.push(("OUTBOX_TXN", format!("{name}-{}", std::process::id())));
    }
    let writer = {
        let (url, outbox, topic) = (url.clone(), outbox.clone(), topic.clone());
        tokio::spawn(async move {
            create_orders(&url, &outbox, &topic, 600, 12, Duration::from_millis(60)).await
        })
    };
    let mut kills = 0;
    // While orders are created, and at least four times.
    while !writer.is_finished() || kills < 4 {
        let mut c = child(&env);
        tokio::time::sleep(Duration::from_millis(fastrand::u64(500..2500))).await;
        c.kill().unwrap(); // SIGKILL
        c.wait().unwrap();
        kills += 1;
    }
    let committed = writer.await.unwrap();
    let mut last = child(&env);
    wait_empty(&url, &outbox, Duration::from_secs(240)).await;
    let records = read_all(&topic, 3, transactional, |got| {
        let have: HashSet<String> = got.iter().map(|m| text(m.payload())).collect();
        committed.iter().all(|p| have.contains(p))
    })
    .await;
    last.kill().unwrap();
    last.wait().unwrap();
    let dups = check_published(&records, &committed);
    eprintln!(
        "{name}: {} committed events, {} records, {dups} duplicates, {kills} relay kills",
        committed.len(),
        records.len()
    );
    if transactional {
        assert_eq!(
            dups, 0,
            "read_committed saw duplicates with a transactional relay"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_at_random_points_idempotent() {
    relay_sigkill("relay_kill_idem", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_at_random_points_transactional_exactly_once() {
    relay_sigkill("relay_kill_txn", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_backs_off_wakes_on_notify_and_shuts_down() {
    let name = "relay_notify";
    let url = database(name);
    let topic = topic(name, 1);
    let outbox = Outbox::new("outbox").unwrap();
    // Polling once a minute: only a NOTIFY can make it publish within the bounds below.
    let relay = Relay::spawn(
        &outbox,
        RelayConfig::new(url.clone(), kafka_config())
            .poll_interval(Duration::from_secs(60))
            .backoff(Duration::from_millis(50), Duration::from_millis(200)),
    );
    // No table yet: every look fails (lag never measured), the relay backs off and retries.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(relay.lag(), None);
    let outbox = setup_outbox(&url).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while relay.lag().is_none() {
        assert!(
            Instant::now() < deadline,
            "relay did not recover after the table appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(relay.lag(), Some(Duration::ZERO), "empty outbox: no lag");
    // Idle now; a committed insert NOTIFYs it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut db = connect(&url).await;
    let tx = db.transaction().await.unwrap();
    let id = outbox
        .insert(
            &tx,
            &OutboxEvent::new(topic.as_str(), "agg-1").payload("agg-1:1"),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    wait_empty(&url, &outbox, Duration::from_secs(30)).await;
    assert_eq!(relay.published(), 1);
    // Graceful shutdown; nothing is published afterwards.
    tokio::time::timeout(Duration::from_secs(30), relay.shutdown())
        .await
        .expect("shutdown is bounded")
        .unwrap();
    let tx = db.transaction().await.unwrap();
    outbox
        .insert(
            &tx,
            &OutboxEvent::new(topic.as_str(), "agg-1").payload("agg-1:2"),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let records = read_all(&topic, 1, false, |got| !got.is_empty()).await;
    assert_eq!(records.len(), 1);
    let header = records[0].header(MESSAGE_ID_HEADER).flatten().unwrap();
    assert_eq!(
        text(Some(header)),
        id,
        "the message-id header is the row's id"
    );
    assert_eq!(
        outbox.pending(&db).await.unwrap(),
        1,
        "a stopped relay publishes nothing"
    );
    // Bad input: an event without topic is a typed error, nothing inserted.
    let tx = db.transaction().await.unwrap();
    let err = outbox
        .insert(&tx, &OutboxEvent::new("", "agg-1"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("empty topic"), "{err}");
}

/// Relays of same-named tables in two databases of one server do not count each other
/// (advisory locks are per database): each takes every lane of its own table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_of_different_databases_do_not_share_lanes() {
    let mut relays = Vec::new();
    for name in ["lanes_db_a", "lanes_db_b"] {
        let url = database(name);
        let outbox = setup_outbox(&url).await;
        let cfg = RelayConfig::new(url, kafka_config())
            .lanes(4)
            .poll_interval(Duration::from_millis(100));
        relays.push(Relay::spawn(&outbox, cfg));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lanes: Vec<Vec<u32>> = relays.iter().map(|r| r.lanes()).collect();
        // Once both are up, each must hold all four lanes (stable for a few balance rounds).
        if lanes.iter().all(|l| *l == [0, 1, 2, 3]) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let again: Vec<Vec<u32>> = relays.iter().map(|r| r.lanes()).collect();
            assert_eq!(again, lanes, "lanes changed");
            break;
        }
        assert!(Instant::now() < deadline, "lanes per relay: {lanes:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for r in relays {
        r.shutdown().await.unwrap();
    }
}

/// The handler of the inbox tests: records the payload in `effects` (no unique constraint:
/// a second application would show as a second row); rejects payloads starting with `bad`.
async fn apply(tx: &Transaction<'_>, m: &Message) -> Result<(), HandlerError> {
    let p = text(m.payload());
    if p.starts_with("bad") {
        return Err(format!("cannot parse payload {p:?}").into());
    }
    tx.execute("INSERT INTO effects (payload) VALUES ($1)", &[&p])
        .await?;
    Ok(())
}

async fn setup_inbox(url: &str) -> Inbox {
    let mut db = connect(url).await;
    let inbox = Inbox::new("inbox").unwrap();
    inbox.migrate(&mut db).await.unwrap();
    db.batch_execute("CREATE TABLE IF NOT EXISTS effects (payload TEXT NOT NULL)")
        .await
        .unwrap();
    inbox
}

/// Payloads applied more than once, and the number applied.
async fn effects(db: &Client) -> (Vec<(String, i64)>, i64) {
    let dup = db
        .query(
            "SELECT payload, count(*) FROM effects GROUP BY payload HAVING count(*) > 1",
            &[],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let n: i64 = db
        .query_one("SELECT count(DISTINCT payload) FROM effects", &[])
        .await
        .unwrap()
        .get(0);
    (dup, n)
}

/// Produces `n` records `msg-i` with message ids `id-i` over the topic's partitions.
async fn produce(topic: &str, range: std::ops::Range<usize>) {
    let p = Producer::new(&kafka_config()).await.unwrap();
    let mut fs = Vec::new();
    for i in range {
        let r = ProducerRecord::new(topic)
            .key(format!("k{}", i % 13))
            .value(format!("msg-{i}"))
            .header(MESSAGE_ID_HEADER, Some(format!("id-{i}")));
        fs.push(p.send(r).await.unwrap());
    }
    for f in fs {
        f.await.unwrap();
    }
    p.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_killed_between_commits_applies_each_effect_once() {
    let name = "inbox_kill";
    let url = database(name);
    setup_inbox(&url).await;
    let topic = topic(name, 2);
    const N: usize = 300;
    produce(&topic, 0..N).await;
    let db = connect(&url).await;
    let base = [
        ("OUTBOX_CHILD", "inbox".to_string()),
        ("OUTBOX_DB", url.clone()),
        ("OUTBOX_BOOTSTRAP", kafka().bootstrap()),
        ("OUTBOX_TOPIC", topic.clone()),
        ("OUTBOX_GROUP", format!("{topic}-g")),
    ];
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut crashes = BTreeMap::new();
    for round in 0.. {
        assert!(Instant::now() < deadline, "inbox did not finish");
        if effects(&db).await.1 as usize == N {
            break;
        }
        // Alternate the crash point; a late round runs without crash to finish.
        let mode = match round % 5 {
            _ if round >= 15 => "none",
            0 | 2 => "after-commit",
            1 | 3 => "in-handler",
            _ => "none-kill",
        };
        let mut env = base.to_vec();
        env.push(("OUTBOX_CRASH", mode.to_string()));
        env.push(("OUTBOX_CRASH_AT", fastrand::usize(3..25).to_string()));
        let mut c = child(&env);
        if mode == "none-kill" {
            // SIGKILL at a random moment instead.
            tokio::time::sleep(Duration::from_millis(fastrand::u64(100..500))).await;
            c.kill().unwrap();
            c.wait().unwrap();
        } else {
            // Wait for the child to crash, or for the work to be done.
            loop {
                if let Some(status) = c.try_wait().unwrap() {
                    if !status.success() {
                        *crashes.entry(mode).or_insert(0) += 1;
                    }
                    break;
                }
                if effects(&db).await.1 as usize == N {
                    c.kill().unwrap();
                    c.wait().unwrap();
                    break;
                }
                assert!(Instant::now() < deadline, "inbox child did not finish");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let (dups, n) = effects(&db).await;
    assert!(dups.is_empty(), "effects applied twice: {dups:?}");
    assert_eq!(n as usize, N);
    let inbox_rows: i64 = db
        .query_one("SELECT count(*) FROM inbox", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(inbox_rows as usize, N);
    eprintln!("{name}: crashes {crashes:?}");
    assert!(
        crashes.get("after-commit").copied().unwrap_or(0) >= 2
            && crashes.get("in-handler").copied().unwrap_or(0) >= 2,
        "both crash points must have been hit: {crashes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_and_two_inbox_consumers() {
    let name = "two_each";
    let url = database(name);
    let outbox = setup_outbox(&url).await;
    let inbox = setup_inbox(&url).await;
    let topic = topic(name, 4);
    let cfg = RelayConfig::new(url.clone(), kafka_config())
        .lanes(8)
        .poll_interval(Duration::from_millis(200));
    let r1 = Relay::spawn(&outbox, cfg.clone());
    let r2 = Relay::spawn(&outbox, cfg);
    let committed = create_orders(&url, &outbox, &topic, 700, 20, Duration::from_millis(20)).await;
    wait_empty(&url, &outbox, Duration::from_secs(240)).await;
    let lag = r1.lag().expect("lag measured");
    assert!(lag < Duration::from_secs(60), "lag {lag:?}");
    let (p1, p2) = (r1.published(), r2.published());
    eprintln!(
        "{name}: relay 1 published {p1}, relay 2 {p2}, lanes {:?} / {:?}",
        r1.lanes(),
        r2.lanes()
    );
    assert_eq!(p1 + p2, committed.len() as u64, "each row published once");
    assert!(p1 > 0 && p2 > 0, "both relays worked: {p1} / {p2}");
    r1.shutdown().await.unwrap();
    r2.shutdown().await.unwrap();
    let records = read_all(&topic, 4, false, |got| got.len() >= committed.len()).await;
    assert_eq!(
        check_published(&records, &committed),
        0,
        "a row was published twice"
    );
    assert_eq!(records.len(), committed.len());

    // The first 100 records again (a relay's re-publication: same message ids).
    let p = Producer::new(&kafka_config()).await.unwrap();
    for m in records.iter().take(100) {
        let (key, value, headers) = m.clone().into_parts();
        let headers = headers
            .into_iter()
            .map(|h| (String::from_utf8_lossy(&h.key).to_string(), h.value))
            .collect();
        p.send_and_wait(
            ProducerRecord::new(topic.as_str())
                .opt_key(key)
                .opt_value(value)
                .headers(headers),
        )
        .await
        .unwrap();
    }
    p.close(Duration::from_secs(10)).await.unwrap();

    // Two inbox consumers of one group, each with its own database session.
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (url, inbox, topic, stop) = (url.clone(), inbox.clone(), topic.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut db = connect(&url).await;
            let consumer = Consumer::new(
                &kafka_config()
                    .with("group.id", format!("{topic}-inbox"))
                    .with("auto.offset.reset", "earliest")
                    .with("enable.auto.commit", "false"),
            )
            .await
            .unwrap();
            consumer.subscribe(&[&topic]).unwrap();
            let stopped = stop.notified();
            inbox.run(&mut db, &consumer, apply, stopped).await.unwrap();
            consumer.close().await.unwrap();
        }));
    }
    let db = connect(&url).await;
    let deadline = Instant::now() + Duration::from_secs(240);
    while (effects(&db).await.1 as usize) < committed.len() {
        assert!(
            Instant::now() < deadline,
            "inbox consumers did not apply every event"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let the duplicates (if still unread) arrive, then stop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.notify_waiters();
    for t in tasks {
        t.await.unwrap();
    }
    let (dups, n) = effects(&db).await;
    assert!(dups.is_empty(), "effects applied twice: {dups:?}");
    assert_eq!(n as usize, committed.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payload_goes_to_dead_letter_and_partition_moves_on() {
    let name = "dead_letter";
    let url = database(name);
    let inbox = setup_inbox(&url).await;
    let topic = topic(name, 1);
    let p = Producer::new(&kafka_config()).await.unwrap();
    for v in ["ok-1", "bad-2", "ok-3", "bad-4", "ok-5"] {
        p.send_and_wait(ProducerRecord::new(topic.as_str()).key("k").value(v))
            .await
            .unwrap();
    }
    p.close(Duration::from_secs(10)).await.unwrap();
    let mut db = connect(&url).await;
    let consumer = Consumer::new(
        &kafka_config()
            .with("group.id", format!("{topic}-g"))
            .with("auto.offset.reset", "earliest")
            .with("enable.auto.commit", "false"),
    )
    .await
    .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    // No message-id header: the id is topic-partition-offset.
    let mut outcomes = Vec::new();
    let mut handler = apply;
    while outcomes.len() < 5 {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("record")
            .unwrap();
        outcomes.push(inbox.process(&mut db, &m, &mut handler).await.unwrap());
        consumer.store_offset_from_message(&m).unwrap();
        // The same message again: a duplicate, whatever its first outcome.
        assert_eq!(
            inbox.process(&mut db, &m, &mut handler).await.unwrap(),
            Outcome::Duplicate
        );
    }
    consumer
        .commit_stored(kafka_sdk::CommitMode::Sync)
        .await
        .unwrap();
    assert_eq!(outcomes[0], Outcome::Processed);
    assert!(
        matches!(&outcomes[1], Outcome::DeadLettered(e) if e.contains("cannot parse payload \"bad-2\"")),
        "{:?}",
        outcomes[1]
    );
    assert_eq!(outcomes[2], Outcome::Processed);
    let dl = inbox.dead_letters(&db).await.unwrap();
    assert_eq!(
        dl.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        [format!("{topic}-0-1"), format!("{topic}-0-3")]
    );
    let tp = TopicPartition::new(topic.as_str(), 0);
    let committed = consumer
        .committed(Some(std::slice::from_ref(&tp)), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        committed,
        vec![(tp, Some(5))],
        "the partition moved past the bad records"
    );
    let (dups, n) = effects(&db).await;
    assert!(dups.is_empty());
    assert_eq!(n, 3);
    // Retention: nothing is older than an hour; everything is older than 0 s.
    assert_eq!(
        inbox
            .purge_older_than(&db, Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        inbox.purge_older_than(&db, Duration::ZERO).await.unwrap(),
        5
    );
    consumer.close().await.unwrap();
}

/// Entry point of the child processes of the crash tests (not a test of its own: it does
/// nothing without `OUTBOX_CHILD`).
#[test]
#[ignore = "child process of the crash tests"]
fn child_main() {
    let Ok(role) = std::env::var("OUTBOX_CHILD") else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Never outlive the test process (a failed test does not kill its children).
    let parent = std::os::unix::process::parent_id();
    rt.spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(3);
            }
        }
    });
    rt.block_on(async {
        let url = var("OUTBOX_DB");
        let kafka = ClientConfig::new().with("bootstrap.servers", var("OUTBOX_BOOTSTRAP"));
        match role.as_str() {
            "relay" => {
                let mut cfg = RelayConfig::new(url, kafka)
                    .lanes(4)
                    .batch_size(50)
                    .poll_interval(Duration::from_millis(200));
                if let Ok(prefix) = std::env::var("OUTBOX_TXN") {
                    cfg = cfg.transactional(prefix);
                }
                let relay = Relay::spawn(&Outbox::new("outbox").unwrap(), cfg);
                // Runs until killed.
                loop {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    let _ = relay.published();
                }
            }
            "inbox" => {
                let crash = var("OUTBOX_CRASH");
                let at: usize = var("OUTBOX_CRASH_AT").parse().unwrap_or(usize::MAX);
                let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let mut inbox = Inbox::new("inbox").unwrap().batch_size(10);
                if crash == "after-commit" {
                    let count = count.clone();
                    inbox = inbox.after_commit(Arc::new(move |_, outcome| {
                        if *outcome == Outcome::Processed
                            && count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 >= at
                        {
                            // Database committed, offset neither stored nor committed.
                            std::process::abort();
                        }
                    }));
                }
                let mut db = connect(&url).await;
                let consumer = Consumer::new(
                    &kafka
                        .with("group.id", var("OUTBOX_GROUP"))
                        .with("auto.offset.reset", "earliest")
                        .with("enable.auto.commit", "false"),
                )
                .await
                .unwrap();
                let topic = var("OUTBOX_TOPIC");
                // Manual assignment from the committed offsets: no rebalance wait after a crash.
                let parts = consumer.partitions_for(&topic).await.unwrap();
                consumer
                    .assign(
                        parts
                            .iter()
                            .map(|p| {
                                (
                                    TopicPartition::new(topic.as_str(), p.partition),
                                    Offset::Stored,
                                )
                            })
                            .collect(),
                    )
                    .unwrap();
                let in_handler = crash == "in-handler";
                let handler =
                    async |tx: &Transaction<'_>, m: &Message| -> Result<(), HandlerError> {
                        apply(tx, m).await?;
                        if in_handler
                            && count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 >= at
                        {
                            // Effect written in the transaction, which never commits.
                            std::process::abort();
                        }
                        Ok(())
                    };
                inbox
                    .run(&mut db, &consumer, handler, std::future::pending())
                    .await
                    .unwrap();
            }
            other => panic!("unknown child role {other}"),
        }
    });
}
