//! Bad-input matrix (issue 7, item 4; RELIABILITY.md scenarios 5 and 14, bug classes "no error
//! when all brokers are down" and "100% CPU reconnect loops").
//!
//! - Configuration: every Int/Bool/Enum key with invalid values, unknown keys, not-supported
//!   keys and values, conflicting settings, all through the public constructors of the three
//!   clients, against a closed local port (the error must come before any connection).
//! - Records and topics on the shared broker: oversized records, invalid topic names, unknown
//!   topics without auto-creation, closed clients.
//! - All brokers down (own single-node cluster, node killed) for longer than the delivery
//!   timeout: pending and new sends fail with a timeout-class error within their bounds, the
//!   process stays (nearly) idle, and consumer calls, `close` and drop return.
//!
//! Every await on a client is wrapped in `tokio::time::timeout`; bounds have wide margins for
//! a loaded 2-core CI machine.

mod support;

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::config::keys::{known_keys, KeyDef, Kind, Status};
use kafka_sdk::consumer::{CommitMode, Consumer, Offset};
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::{ClientConfig, ConfigError, Error, TopicPartition};
use tokio::sync::RwLock;

use support::common::{blocking, config, unique};

/// The CPU check of `all_brokers_down` measures the whole process, so it takes this lock for
/// writing; every other test of this file holds it for reading while it uses a client.
fn cpu_lock() -> &'static RwLock<()> {
    static L: OnceLock<RwLock<()>> = OnceLock::new();
    L.get_or_init(|| RwLock::new(()))
}

/// Bound on anything that must not touch the network (config errors, argument checks).
const IMMEDIATE: Duration = Duration::from_secs(5);

/// `127.0.0.1:<port>` where nothing listens (bound, then released).
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr.to_string()
}

/// Awaits `f` with a bound; panics (naming `what`) when it does not complete in time.
async fn bounded<T>(what: &str, limit: Duration, f: impl Future<Output = T>) -> T {
    let start = Instant::now();
    match tokio::time::timeout(limit, f).await {
        Ok(v) => v,
        Err(_) => panic!(
            "{what}: did not complete within {limit:?} (waited {:?})",
            start.elapsed()
        ),
    }
}

/// An admin client for `bs` that has created `topic` (1 partition), each step within `limit`.
async fn admin_with_topic(bs: &str, topic: &str, limit: Duration) -> AdminClient {
    let admin = bounded("admin", limit, AdminClient::new(&config(bs, &[])))
        .await
        .unwrap();
    bounded(
        "create topic",
        limit,
        admin.create_topic(NewTopic::new(topic, 1, 1)),
    )
    .await
    .unwrap();
    admin
}

/// A producer for `bs` with the `extra` settings, built within `limit`.
async fn producer(bs: &str, extra: &[(&str, &str)], limit: Duration) -> Producer {
    bounded("producer", limit, Producer::new(&config(bs, extra)))
        .await
        .unwrap()
}

/// `send` (enqueue only, not the delivery) of `record`, within `limit` (`what` names it).
async fn try_send(
    p: &Producer,
    what: &str,
    limit: Duration,
    record: ProducerRecord,
) -> Result<(), Error> {
    bounded(what, limit, p.send(record)).await.map(drop)
}

/// Closes `p` (10 s for pending records) within `limit`; panics on an error.
async fn close_producer(p: &Producer, what: &str, limit: Duration) {
    bounded(what, limit, p.close(Duration::from_secs(10)))
        .await
        .unwrap();
}

/// Drops `value` (`what` names it) and asserts that the drop returned within 2 s.
fn drop_quickly<T>(what: &str, value: T) {
    let start = Instant::now();
    drop(value);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{what}: drop took {:?}",
        start.elapsed()
    );
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Producer,
    Consumer,
    Admin,
}

/// Config keys and values of one case.
type Settings<'a> = &'a [(&'a str, &'a str)];

/// Settings of one case, and the key names its error must mention.
type Case<'a> = (Settings<'a>, &'a [&'a str]);

const CLIENTS: [Client; 3] = [Client::Producer, Client::Consumer, Client::Admin];

/// Builds `client` from `cfg`, expecting a failure without any connection attempt (the
/// bootstrap is a closed port, the call must return within [`IMMEDIATE`]).
async fn build_err(client: Client, cfg: &ClientConfig) -> Error {
    let what = format!("{client:?}::new({cfg:?})");
    let r = match client {
        Client::Producer => bounded(&what, IMMEDIATE, Producer::new(cfg))
            .await
            .map(drop),
        Client::Consumer => bounded(&what, IMMEDIATE, Consumer::new(cfg))
            .await
            .map(drop),
        Client::Admin => bounded(&what, IMMEDIATE, AdminClient::new(cfg))
            .await
            .map(drop),
    };
    match r {
        Ok(()) => panic!("{what}: built a client from a bad configuration"),
        Err(e) => e,
    }
}

fn uses(def: &KeyDef, client: Client) -> bool {
    match client {
        Client::Producer => def.clients.producer,
        Client::Consumer => def.clients.consumer,
        Client::Admin => def.clients.admin,
    }
}

/// Values the key's kind refuses.
fn invalid_values(kind: &Kind) -> Vec<String> {
    match *kind {
        Kind::Int { min, max } => {
            let mut v = vec!["not-a-number".to_string(), "1.5".to_string(), String::new()];
            if max < i64::MAX {
                v.push((max + 1).to_string());
            }
            if min > i64::MIN {
                v.push((min - 1).to_string());
            }
            v.push("99999999999999999999999".to_string()); // beyond i64
            v
        }
        Kind::Bool => vec!["maybe".into(), "yes".into(), "2".into(), String::new()],
        Kind::Enum { .. } => vec!["no-such-value".into(), String::new()],
        _ => Vec::new(),
    }
}

/// A value the key's kind accepts (for keys whose status refuses it anyway).
fn some_valid_value(kind: &Kind) -> String {
    match *kind {
        Kind::Int { min, .. } => min.max(0).to_string(),
        Kind::Bool => "true".into(),
        Kind::Enum { values, .. } | Kind::List { values } => values[0].name.to_string(),
        Kind::String { .. } => "x".into(),
        Kind::HostList => "127.0.0.1:1".into(),
        _ => "x".into(),
    }
}

fn assert_invalid_value(e: &Error, key: &str, value: &str, ctx: &str) {
    match e {
        Error::Config(ConfigError::InvalidValue {
            key: k, value: v, ..
        }) if k == key && v == value => {}
        other => panic!("{ctx}: expected InvalidValue for `{key}` = `{value}`, got {other:?}"),
    }
    let s = e.to_string();
    assert!(s.contains(key) && s.contains(value), "{ctx}: message `{s}`");
}

/// Every Int/Bool/Enum key (under its canonical name and its aliases), with each invalid
/// value, fails every constructor with `InvalidValue` naming key and value, without
/// connecting. The clients that read the key are what matters; the others must refuse too
/// (every key present is validated whatever is built).
#[tokio::test]
async fn invalid_value_of_every_typed_key_fails_every_constructor() {
    let _g = cpu_lock().read().await;
    let bs = closed_port();
    let start = Instant::now();
    let (mut keys, mut calls, mut used) = (0, 0, 0);
    for def in known_keys() {
        let bad = invalid_values(&def.kind);
        if bad.is_empty() {
            continue;
        }
        keys += 1;
        for spelling in std::iter::once(&def.name).chain(def.aliases) {
            for value in &bad {
                let cfg = config(&bs, &[(spelling, value)]);
                for client in CLIENTS {
                    let e = build_err(client, &cfg).await;
                    let ctx = format!("{client:?} with `{spelling}` = `{value}`");
                    assert_invalid_value(&e, spelling, value, &ctx);
                    calls += 1;
                    used += usize::from(uses(def, client));
                }
            }
        }
    }
    assert!(keys >= 30, "only {keys} typed keys in the table?");
    assert!(used > 0);
    // Each call is a few microseconds; anything near this bound means a connection attempt.
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{calls} constructor calls took {:?}",
        start.elapsed()
    );
    println!("{keys} typed keys, {calls} constructor calls ({used} by a client reading the key)");
}

/// Unknown keys, not-supported keys and values, and a missing bootstrap list.
#[tokio::test]
async fn unknown_and_unsupported_keys_are_typed_errors() {
    let _g = cpu_lock().read().await;
    let bs = closed_port();
    for client in CLIENTS {
        for key in ["no.such.key", "bootstrap.server", "linger.msec", "Acks"] {
            let e = build_err(client, &config(&bs, &[(key, "1")])).await;
            assert!(
                matches!(&e, Error::Config(ConfigError::UnknownKey { key: k }) if k == key),
                "{client:?} `{key}`: {e:?}"
            );
            assert!(e.to_string().contains(key), "{e}");
        }
        // Security features that are still missing (issue 14 added TLS and SASL).
        for (key, value) in [
            ("sasl.kerberos.service.name", "kafka"),
            #[cfg(not(feature = "oidc"))]
            ("sasl.oauthbearer.token.endpoint.url", "https://idp/token"),
            ("sasl.mechanism", "GSSAPI"),
        ] {
            let cfg = config(
                &bs,
                &[("security.protocol", "sasl_plaintext"), (key, value)],
            );
            let e = build_err(client, &cfg).await;
            assert!(
                matches!(&e, Error::Config(ConfigError::NotSupported { key: k, .. }) if k == key),
                "{client:?} `{key}` = `{value}`: {e:?}"
            );
            assert!(e.to_string().contains(key), "{e}");
        }
        let e = build_err(client, &ClientConfig::new().with("client.id", "x")).await;
        assert!(
            matches!(&e, Error::Config(ConfigError::Missing { key }) if key == "bootstrap.servers"),
            "{client:?}: {e:?}"
        );
        let e = build_err(client, &config("", &[])).await;
        assert!(
            matches!(&e, Error::Config(_)) && e.to_string().contains("bootstrap.servers"),
            "{client:?} empty bootstrap: {e:?}"
        );
    }
    // Every key declared not supported, with a value its kind accepts; every partially
    // supported key with an accepted value it does not implement.
    let (mut n_unsupported, mut n_partial) = (0, 0);
    for def in known_keys() {
        let value = match def.status {
            Status::NotSupported { .. } => {
                n_unsupported += 1;
                some_valid_value(&def.kind)
            }
            Status::Partial { supported, .. } => {
                let candidates: Vec<String> = match def.kind {
                    Kind::Enum { values, .. } => values.iter().map(|v| v.name.into()).collect(),
                    Kind::Bool => vec!["true".into(), "false".into()],
                    Kind::Int { min, max } => vec![
                        min.to_string(),
                        max.to_string(),
                        min.saturating_add(1).min(max).to_string(),
                    ],
                    _ => Vec::new(),
                };
                match candidates
                    .into_iter()
                    .find(|c| !supported.contains(&c.as_str()))
                {
                    Some(v) => {
                        n_partial += 1;
                        v
                    }
                    None => continue,
                }
            }
            _ => continue,
        };
        let cfg = config(&bs, &[(def.name, &value)]);
        for client in CLIENTS {
            let e = build_err(client, &cfg).await;
            assert!(
                matches!(&e, Error::Config(ConfigError::NotSupported { key, .. }) if key == def.name),
                "{client:?} `{}` = `{value}`: {e:?}",
                def.name
            );
        }
    }
    assert!(
        n_unsupported > 0 && n_partial > 0,
        "{n_unsupported} {n_partial}"
    );
}

fn assert_conflict(e: &Error, names: &[&str], ctx: &str) {
    match e {
        Error::Config(ConfigError::Conflict(msg)) => {
            for n in names {
                assert!(
                    msg.contains(n),
                    "{ctx}: conflict `{msg}` does not name `{n}`"
                );
            }
        }
        other => panic!("{ctx}: expected a Conflict naming {names:?}, got {other:?}"),
    }
}

/// Settings that contradict each other: a `Conflict` naming the keys, before connecting.
#[tokio::test]
async fn conflicting_settings_are_typed_errors() {
    let _g = cpu_lock().read().await;
    let bs = closed_port();
    let producer_cases: &[Case] = &[
        (
            &[("enable.idempotence", "true"), ("acks", "0")],
            &["enable.idempotence", "acks"],
        ),
        (
            &[
                ("enable.idempotence", "true"),
                ("request.required.acks", "1"),
            ],
            &["enable.idempotence", "request.required.acks"],
        ),
        (
            &[
                ("enable.idempotence", "true"),
                ("max.in.flight.requests.per.connection", "6"),
            ],
            &[
                "enable.idempotence",
                "max.in.flight.requests.per.connection",
            ],
        ),
        (
            &[("enable.idempotence", "true"), ("retries", "0")],
            &["enable.idempotence", "retries"],
        ),
        (
            &[("transactional.id", "t1"), ("enable.idempotence", "false")],
            &["transactional.id"],
        ),
        (
            // Idempotence only defaulted, turned off by acks=0: transactions still need it.
            &[("transactional.id", "t1"), ("acks", "0")],
            &["transactional.id"],
        ),
        (
            &[
                ("delivery.timeout.ms", "1000"),
                ("linger.ms", "500"),
                ("request.timeout.ms", "1000"),
            ],
            &["delivery.timeout.ms", "linger.ms", "request.timeout.ms"],
        ),
        (
            &[("linger.ms", "5"), ("queue.buffering.max.ms", "10")],
            &["linger.ms", "queue.buffering.max.ms"],
        ),
        (
            &[
                ("buffer.memory", "1048576"),
                ("queue.buffering.max.kbytes", "2048"),
            ],
            &["buffer.memory", "queue.buffering.max.kbytes"],
        ),
    ];
    let consumer_cases: &[Case] = &[
        (
            &[
                ("group.id", "g"),
                ("heartbeat.interval.ms", "10000"),
                ("session.timeout.ms", "10000"),
            ],
            &["heartbeat.interval.ms", "session.timeout.ms"],
        ),
        (
            &[
                ("group.id", "g"),
                ("heartbeat.interval.ms", "20000"),
                ("session.timeout.ms", "10000"),
            ],
            &["heartbeat.interval.ms", "session.timeout.ms"],
        ),
        (
            &[("group.instance.id", "member-1")],
            &["group.instance.id", "group.id"],
        ),
        (
            &[
                ("fetch.min.bytes", "2000000"),
                ("fetch.max.bytes", "1000000"),
            ],
            &["fetch.min.bytes", "fetch.max.bytes"],
        ),
    ];
    // Shared rules: every client.
    let common_cases: &[Case] = &[
        (
            &[
                ("reconnect.backoff.ms", "500"),
                ("reconnect.backoff.max.ms", "100"),
            ],
            &["reconnect.backoff.ms", "reconnect.backoff.max.ms"],
        ),
        (
            &[
                ("request.timeout.ms", "1000"),
                ("socket.timeout.ms", "2000"),
            ],
            &["request.timeout.ms", "socket.timeout.ms"],
        ),
    ];
    let tables: [(&[Client], &[Case]); 3] = [
        (&[Client::Producer], producer_cases),
        (&[Client::Consumer], consumer_cases),
        (&CLIENTS, common_cases),
    ];
    for (clients, cases) in tables {
        for (settings, names) in cases {
            for &client in clients {
                let e = build_err(client, &config(&bs, settings)).await;
                assert_conflict(&e, names, &format!("{client:?} {settings:?}"));
            }
        }
    }
    // An empty group id is refused by the consumer, naming the key.
    let e = build_err(Client::Consumer, &config(&bs, &[("group.id", "")])).await;
    assert!(
        matches!(&e, Error::Config(_)) && e.to_string().contains("group.id"),
        "{e:?}"
    );
}

fn shared_bootstrap() -> String {
    kafka_testkit::shared().bootstrap()
}

/// The size in "record of N bytes" of an oversized-record error (0 when absent).
fn record_size(msg: &str) -> usize {
    msg.split("record of ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Oversized records are refused at once, naming the size and the key; the producer keeps
/// working afterwards.
#[tokio::test]
async fn oversized_records_are_invalid_arguments() {
    let bs = blocking(shared_bootstrap).await;
    let _g = cpu_lock().read().await;
    let topic = unique("big");
    let limit = Duration::from_secs(30);
    admin_with_topic(&bs, &topic, limit).await;
    // (producer settings, record size, the key and the value the error must name)
    let cases: [(Settings, usize, &str, &str); 2] = [
        (
            &[("max.request.size", "10000")],
            20_000,
            "max.request.size",
            "10000",
        ),
        (
            &[("buffer.memory", "4096"), ("max.request.size", "1048576")],
            8_000,
            "buffer.memory",
            "4096",
        ),
    ];
    for (settings, size, key, value) in cases {
        let p = producer(&bs, settings, limit).await;
        let e = try_send(
            &p,
            &format!("send larger than {key}"),
            IMMEDIATE,
            ProducerRecord::new(topic.as_str()).value(vec![7u8; size]),
        )
        .await
        .unwrap_err();
        let s = e.to_string();
        assert!(
            matches!(e, Error::InvalidArgument(_))
                && s.contains(key)
                && s.contains(value)
                && record_size(&s) > size,
            "{settings:?}: {e:?}"
        );
        // A record that fits still goes through.
        let ok = bounded(
            "send after refusal",
            limit,
            p.send_and_wait(ProducerRecord::new(topic.as_str()).value("fits")),
        )
        .await;
        assert!(ok.is_ok(), "{settings:?}: {ok:?}");
        close_producer(&p, "close", limit).await;
    }
}

/// Invalid topic names fail at once in producer send, consumer subscribe/assign and admin
/// create.
#[tokio::test]
async fn invalid_topic_names_are_refused_everywhere() {
    let bs = blocking(shared_bootstrap).await;
    let _g = cpu_lock().read().await;
    let long = "x".repeat(250);
    let names = ["", "a b", long.as_str(), "..", ".", "a/b", "ü"];
    let limit = Duration::from_secs(30);
    let p = producer(&bs, &[], limit).await;
    let c = bounded(
        "consumer",
        limit,
        Consumer::new(&config(&bs, &[("group.id", &unique("g"))])),
    )
    .await
    .unwrap();
    let c2 = bounded("consumer", limit, Consumer::new(&config(&bs, &[])))
        .await
        .unwrap();
    let admin = bounded("admin", limit, AdminClient::new(&config(&bs, &[])))
        .await
        .unwrap();
    let check = |what: &str, name: &str, r: Result<(), Error>| match r {
        Err(Error::InvalidArgument(m)) if m.contains("invalid topic name") => {}
        other => panic!("{what} `{name}`: expected InvalidArgument, got {other:?}"),
    };
    for name in names {
        let r = try_send(&p, "send", IMMEDIATE, ProducerRecord::new(name).value("v")).await;
        check("producer send", name, r);
        check("subscribe", name, c.subscribe(&[name]));
        check("subscribe (second)", name, c.subscribe(&["ok-topic", name]));
        check(
            "assign",
            name,
            c2.assign(vec![(TopicPartition::new(name, 0), Offset::Beginning)]),
        );
        let r = bounded(
            "create topic",
            IMMEDIATE,
            admin.create_topic(NewTopic::new(name, 1, 1)),
        )
        .await;
        check("admin create", name, r);
    }
    // Nothing was subscribed or assigned by the refused calls.
    assert!(c2.assignment().is_empty());
    close_producer(&p, "close", limit).await;
    let _ = bounded("consumer close", limit, c.close()).await;
    let _ = bounded("consumer close", limit, c2.close()).await;
}

/// A topic that does not exist, with auto-creation off: the producer reports
/// `UnknownTopicOrPartition` within `max.block.ms` (+ margin); a consumer assigned to it
/// reports it from `recv`.
#[tokio::test]
async fn unknown_topic_without_auto_create() {
    let bs = blocking(shared_bootstrap).await;
    let _g = cpu_lock().read().await;
    let topic = unique("missing");
    let limit = Duration::from_secs(30);
    let p = producer(
        &bs,
        &[
            ("allow.auto.create.topics", "false"),
            ("max.block.ms", "2000"),
        ],
        limit,
    )
    .await;
    let start = Instant::now();
    let r = try_send(
        &p,
        "send to unknown topic",
        Duration::from_secs(2 + 10),
        ProducerRecord::new(topic.as_str()).value("v"),
    )
    .await;
    let took = start.elapsed();
    match &r {
        Err(Error::UnknownTopicOrPartition(m)) => assert!(m.contains(&topic), "{m}"),
        other => panic!("send to unknown topic: {other:?} after {took:?}"),
    }
    // Waited for the topic (max.block.ms) but not much longer.
    assert!(took < Duration::from_secs(2 + 8), "{took:?}");
    // An explicit partition out of range of an existing topic: same error class, at once.
    let existing = unique("exists");
    let admin = admin_with_topic(&bs, &existing, limit).await;
    let r = try_send(
        &p,
        "send to partition 5 of a 1-partition topic",
        Duration::from_secs(12),
        ProducerRecord::new(existing.as_str())
            .partition(5)
            .value("v"),
    )
    .await;
    assert!(matches!(r, Err(Error::UnknownTopicOrPartition(_))), "{r:?}");
    close_producer(&p, "close", limit).await;
    // The topic was not created by the producer's metadata requests.
    let topics = bounded("list", limit, admin.list_topics(false))
        .await
        .unwrap();
    assert!(!topics.contains(&topic), "{topic} was auto-created");

    // The consumer looks the partition up for up to request.timeout.ms, then reports it.
    let c = bounded(
        "consumer",
        limit,
        Consumer::new(&config(
            &bs,
            &[
                ("allow.auto.create.topics", "false"),
                ("request.timeout.ms", "3000"),
            ],
        )),
    )
    .await
    .unwrap();
    c.assign(vec![(
        TopicPartition::new(topic.as_str(), 0),
        Offset::Beginning,
    )])
    .unwrap();
    let r = bounded(
        "recv on unknown topic",
        Duration::from_secs(3 + 20),
        c.recv(),
    )
    .await;
    assert!(
        matches!(&r, Err(Error::UnknownTopicOrPartition(m)) if m.contains(&topic)),
        "{r:?}"
    );
    let _ = bounded("consumer close", limit, c.close()).await;
}

/// Closed clients: `Error::Closed` from every later call; closing twice is harmless.
#[tokio::test]
async fn closed_clients_report_closed() {
    let bs = blocking(shared_bootstrap).await;
    let _g = cpu_lock().read().await;
    let topic = unique("closed");
    let limit = Duration::from_secs(30);
    let _admin = admin_with_topic(&bs, &topic, limit).await;

    let p = producer(&bs, &[], limit).await;
    bounded(
        "send",
        limit,
        p.send_and_wait(ProducerRecord::new(topic.as_str()).value("before close")),
    )
    .await
    .unwrap();
    close_producer(&p, "close", limit).await;
    // Twice, then with invalid input (an empty topic name): still Closed first (the client
    // is gone).
    for (to, value) in [
        (topic.as_str(), "after"),
        (topic.as_str(), "after"),
        ("", "x"),
    ] {
        let record = ProducerRecord::new(to).value(value);
        let r = try_send(&p, "send after close", IMMEDIATE, record).await;
        assert!(
            matches!(r, Err(Error::Closed)),
            "send `{value}` to `{to}`: {r:?}"
        );
    }
    close_producer(&p, "close twice", limit).await;
    bounded("flush after close", IMMEDIATE, p.flush()).await;

    for group in [true, false] {
        let mut extra = vec![("enable.auto.commit", "false")];
        let gid = unique("g");
        if group {
            extra.push(("group.id", gid.as_str()));
        }
        let c = bounded("consumer", limit, Consumer::new(&config(&bs, &extra)))
            .await
            .unwrap();
        let tp = TopicPartition::new(topic.as_str(), 0);
        c.assign(vec![(tp.clone(), Offset::Beginning)]).unwrap();
        let m = bounded("first record", limit, c.recv()).await;
        assert!(m.is_ok(), "{m:?}");
        let h = c.handle();
        let r = bounded("close", limit, c.close()).await;
        assert!(r.is_ok(), "close: {r:?}");
        let closed = |what: &str, r: Result<(), Error>| {
            assert!(matches!(r, Err(Error::Closed)), "{what} after close: {r:?}")
        };
        closed("assign", h.assign(vec![(tp.clone(), Offset::Beginning)]));
        closed("unassign", h.unassign());
        closed("subscribe", h.subscribe(&[topic.as_str()]));
        closed("unsubscribe", h.unsubscribe());
        closed("seek", h.seek(&tp, Offset::Beginning));
        closed("pause", h.pause(std::slice::from_ref(&tp)));
        closed("resume", h.resume(std::slice::from_ref(&tp)));
        closed("store_offset", h.store_offset(&tp, 1));
        if group {
            let r = bounded("commit after close", IMMEDIATE, h.commit(CommitMode::Sync)).await;
            closed("commit", r);
            let r = bounded(
                "commit_offsets after close",
                IMMEDIATE,
                h.commit_offsets(vec![(tp.clone(), 1)], CommitMode::Sync),
            )
            .await;
            closed("commit_offsets", r);
        }
        let r = bounded(
            "fetch_watermarks after close",
            IMMEDIATE,
            h.fetch_watermarks(&tp, Duration::from_secs(1)),
        )
        .await
        .map(drop);
        closed("fetch_watermarks", r);
    }
}

/// CPU time (user + system) of this process so far, from `/proc/self/stat` fields 14 and 15.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Field 2 (comm) may contain spaces; fields after the closing parenthesis start at 3.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 1000 / clock_ticks())
}

/// `sysconf(_SC_CLK_TCK)` via `getconf CLK_TCK`; 100 (Linux's value) if that fails.
fn clock_ticks() -> u64 {
    static T: OnceLock<u64> = OnceLock::new();
    *T.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

fn timeout_class(e: &Error) -> bool {
    matches!(e, Error::Timeout { .. })
}

/// A send's error while every broker is down: a timeout, or, once an epoch bump (needed
/// after an idempotent batch failed) has kept failing for `delivery.timeout.ms`, the
/// producer's documented `Error::Fatal` (README: "an epoch bump that keeps failing for
/// `delivery.timeout.ms` makes the producer fatal"). Which one a send meets depends on when
/// the first batch expired, so both are the expected outcome of a long outage.
fn down_class(e: &Error) -> bool {
    timeout_class(e) || matches!(e, Error::Fatal(m) if m.contains("epoch bump"))
}

/// All brokers down for longer than `delivery.timeout.ms` (RELIABILITY.md scenario 5):
/// pending and new sends fail with a timeout within their bounds, the process stays nearly
/// idle while the clients keep trying, and consumer `recv`, `close` and drop return.
#[tokio::test]
async fn all_brokers_down() {
    const DELIVERY_MS: u64 = 3000;
    const REQUEST_MS: u64 = 1000;
    const MAX_BLOCK_MS: u64 = 2000;
    let cluster = blocking(|| {
        kafka_testkit::KafkaCluster::start(kafka_testkit::ClusterOptions {
            allow_external: false,
            ..Default::default()
        })
        .expect("own cluster")
    })
    .await;
    let cluster = std::sync::Arc::new(cluster);
    let bs = cluster.bootstrap();
    let node = cluster.node_ids()[0];
    let topic = unique("down");
    let limit = Duration::from_secs(60);
    {
        let _g = cpu_lock().read().await;
        admin_with_topic(&bs, &topic, limit).await;
    }
    let pcfg = config(
        &bs,
        &[
            ("delivery.timeout.ms", "3000"),
            ("request.timeout.ms", "1000"),
            ("linger.ms", "0"),
            ("max.block.ms", "2000"),
            ("socket.connection.setup.timeout.ms", "1000"),
        ],
    );
    let ccfg = |group: Option<&str>| {
        let mut c = config(
            &bs,
            &[
                ("request.timeout.ms", "1000"),
                ("socket.connection.setup.timeout.ms", "1000"),
                ("enable.auto.commit", "true"),
                ("auto.offset.reset", "earliest"),
                ("session.timeout.ms", "10000"),
                ("heartbeat.interval.ms", "1000"),
            ],
        );
        if let Some(g) = group {
            c.set("group.id", g);
        }
        c
    };
    let p = bounded("producer", limit, Producer::new(&pcfg))
        .await
        .unwrap();
    bounded(
        "send while up",
        limit,
        p.send_and_wait(ProducerRecord::new(topic.as_str()).value("up")),
    )
    .await
    .unwrap();
    // A group member that has received (so joined and fetched), and a manually assigned one
    // that will only be dropped.
    let gid = unique("g");
    let c = bounded("consumer", limit, Consumer::new(&ccfg(Some(&gid))))
        .await
        .unwrap();
    c.subscribe(&[topic.as_str()]).unwrap();
    let m = bounded("recv while up", limit, c.recv()).await;
    assert!(m.is_ok(), "{m:?}");
    let dropped = bounded("consumer", limit, Consumer::new(&ccfg(None)))
        .await
        .unwrap();
    dropped
        .assign(vec![(
            TopicPartition::new(topic.as_str(), 0),
            Offset::Beginning,
        )])
        .unwrap();
    let m = bounded("recv while up", limit, dropped.recv()).await;
    assert!(m.is_ok(), "{m:?}");

    // Kill the only broker.
    let k = cluster.clone();
    blocking(move || k.kill(node).expect("kill")).await;
    let killed = Instant::now();

    // Pending sends (metadata is cached, so they are accepted) fail with a timeout within
    // delivery.timeout.ms + margin.
    let bound = Duration::from_millis(DELIVERY_MS) + Duration::from_secs(10);
    let mut pending = Vec::new();
    for i in 0..20 {
        let r = bounded(
            "send with brokers down",
            Duration::from_millis(MAX_BLOCK_MS) + Duration::from_secs(10),
            p.send(ProducerRecord::new(topic.as_str()).value(format!("pending-{i}"))),
        )
        .await;
        match r {
            Ok(f) => pending.push(f),
            Err(e) => {
                // Refused after max.block.ms (metadata lost): fine, but stop waiting on more.
                assert!(timeout_class(&e), "send with brokers down: {e:?}");
                break;
            }
        }
    }
    assert!(
        !pending.is_empty(),
        "no send was accepted right after the kill"
    );
    let sent_at = Instant::now();
    for f in pending {
        let r = bounded("pending delivery", bound, f).await;
        match r {
            Err(e) => assert!(timeout_class(&e), "pending delivery: {e:?}"),
            Ok(md) => panic!("delivered with the broker dead: {md:?}"),
        }
    }
    let took = sent_at.elapsed();
    assert!(took < bound, "pending sends failed after {took:?}");
    // flush returns once every record has its outcome.
    bounded("flush with brokers down", bound, p.flush()).await;

    // Constructors against a dead cluster fail within their connection bounds.
    let r = bounded(
        "Consumer::new with brokers down",
        Duration::from_secs(20),
        Consumer::new(&ccfg(None)),
    )
    .await;
    assert!(r.is_err(), "consumer built against a dead cluster");
    let r = bounded(
        "Producer::new with brokers down",
        Duration::from_secs(20),
        Producer::new(&pcfg),
    )
    .await;
    assert!(r.is_err(), "producer built against a dead cluster");

    // CPU while both clients keep trying (and the other consumer sits idle): measure this
    // process over ~5 s with no other test of this file running.
    let cpu_guard = bounded("CPU lock", Duration::from_secs(300), cpu_lock().write()).await;
    let window = Duration::from_secs(5);
    let cpu0 = process_cpu();
    let t0 = Instant::now();
    let (mut sends, mut send_errors, mut recvs) = (0u32, 0u32, 0u32);
    while t0.elapsed() < window {
        // New sends: either refused within max.block.ms or accepted and then failed within
        // delivery.timeout.ms; we only keep trying, the outcome bounds are checked below.
        let r = bounded(
            "send in CPU window",
            Duration::from_millis(MAX_BLOCK_MS) + Duration::from_secs(10),
            p.send(ProducerRecord::new(topic.as_str()).value("cpu")),
        )
        .await;
        sends += 1;
        if let Err(e) = r {
            assert!(down_class(&e), "send with brokers down: {e:?}");
            send_errors += 1;
        }
        let rt = Instant::now();
        match tokio::time::timeout(Duration::from_millis(500), c.recv()).await {
            Err(_) => {}
            Ok(Ok(m)) => panic!("received {m:?} with the broker dead"),
            // Connection errors are reported (once); the consumer itself stays open.
            Ok(Err(e)) => assert!(!matches!(e, Error::Closed), "recv: {e:?}"),
        }
        recvs += 1;
        // The runtime is not blocked: the timeout fired about when it should.
        assert!(
            rt.elapsed() < Duration::from_secs(5),
            "recv timeout took {:?}",
            rt.elapsed()
        );
    }
    let wall = t0.elapsed();
    let cpu = process_cpu().saturating_sub(cpu0);
    drop(cpu_guard);
    println!(
        "brokers down: {cpu:?} CPU in {wall:?} ({sends} sends, {send_errors} refused, {recvs} recv \
         polls; CLK_TCK {})",
        clock_ticks()
    );
    // A spin loop burns ~1 s per second per core; backoff keeps this near zero.
    assert!(
        cpu < Duration::from_millis(1500),
        "process used {cpu:?} CPU in {wall:?} with all brokers down"
    );

    // A new send now (metadata possibly stale): fails with a timeout, within max.block.ms +
    // delivery.timeout.ms + margin, one way or the other.
    let start = Instant::now();
    let total = Duration::from_millis(MAX_BLOCK_MS + DELIVERY_MS) + Duration::from_secs(10);
    let r = bounded("new send", total, async {
        match p
            .send(ProducerRecord::new(topic.as_str()).value("late"))
            .await
        {
            Ok(f) => f.await.map(drop),
            Err(e) => Err(e),
        }
    })
    .await;
    match r {
        Err(e) => assert!(down_class(&e), "new send: {e:?}"),
        Ok(()) => panic!("delivered with the broker dead"),
    }
    assert!(start.elapsed() < total);
    // The scenario held: the brokers have been down for longer than delivery.timeout.ms.
    assert!(killed.elapsed() > Duration::from_millis(DELIVERY_MS));

    // Calls that need a broker fail within their bounds instead of waiting for one.
    let tp = TopicPartition::new(topic.as_str(), 0);
    let r = bounded(
        "commit with brokers down",
        Duration::from_millis(REQUEST_MS) + Duration::from_secs(10),
        c.commit_offsets(vec![(tp.clone(), 1)], CommitMode::Sync),
    )
    .await;
    assert!(r.is_err(), "commit succeeded with the broker dead");
    let r = bounded(
        "fetch_watermarks with brokers down",
        Duration::from_secs(1 + 10),
        c.fetch_watermarks(&tp, Duration::from_secs(1)),
    )
    .await;
    assert!(r.is_err(), "watermarks with the broker dead: {r:?}");

    // close() returns within its bounds with the broker gone; drop never blocks.
    let start = Instant::now();
    let r = bounded(
        "consumer close with brokers down",
        Duration::from_millis(REQUEST_MS) + Duration::from_secs(10),
        c.close(),
    )
    .await;
    println!(
        "consumer close with brokers down: {r:?} after {:?}",
        start.elapsed()
    );
    drop_quickly("consumer", dropped);
    let r = bounded(
        "producer close with brokers down",
        Duration::from_secs(2 + 5 + 10),
        p.close(Duration::from_secs(2)),
    )
    .await;
    println!("producer close with brokers down: {r:?}");
    let r = try_send(
        &p,
        "send after close",
        IMMEDIATE,
        ProducerRecord::new(topic.as_str()).value("x"),
    )
    .await;
    assert!(matches!(r, Err(Error::Closed)), "{r:?}");
    drop_quickly("producer", p);
    blocking(move || drop(cluster)).await;
}
