//! Table-driven tests of the configuration module.

use std::collections::HashSet;
use std::time::Duration;

use super::keys::{Kind, Status, Value};
use super::resolve::{Resolved, Target};
use super::*;
use crate::error::{ConfigError, Error};

const BOOT: &str = "localhost:9092";

fn base() -> ClientConfig {
    ClientConfig::new().with("bootstrap.servers", BOOT)
}

fn config_err<T: fmt::Debug>(r: Result<T>) -> ConfigError {
    match r {
        Err(Error::Config(e)) => e,
        other => panic!("expected a config error, got {other:?}"),
    }
}

/// Whether this build has the codec (its crate feature is on; all are by default).
fn built(c: Compression) -> bool {
    match c {
        Compression::None => true,
        Compression::Gzip => cfg!(feature = "gzip"),
        Compression::Snappy => cfg!(feature = "snappy"),
        Compression::Lz4 => cfg!(feature = "lz4"),
        Compression::Zstd => cfg!(feature = "zstd"),
    }
}

fn conflict<T: fmt::Debug>(r: Result<T>) -> String {
    match config_err(r) {
        ConfigError::Conflict(msg) => msg,
        other => panic!("expected Conflict, got {other:?}"),
    }
}

/// Builds the typed config of the first client that reads `def` (common for admin keys), as
/// `Debug` text without the set of explicit keys.
fn build_for(def: &KeyDef, cfg: &ClientConfig) -> Result<String> {
    if def.clients.admin {
        cfg.common().map(|mut c| {
            c.explicit_keys.clear();
            format!("{c:?}")
        })
    } else if def.clients.producer {
        cfg.producer().map(|mut c| {
            c.common.explicit_keys.clear();
            format!("{c:?}")
        })
    } else {
        cfg.consumer().map(|mut c| {
            c.common.explicit_keys.clear();
            format!("{c:?}")
        })
    }
}

/// Two different valid values of a key (as text).
fn samples(def: &KeyDef) -> [String; 2] {
    match def.kind {
        Kind::Int { min, max } => [min.to_string(), max.to_string()],
        Kind::Bool => ["true".into(), "false".into()],
        Kind::Enum { values, .. } | Kind::List { values } => {
            [values[0].name.into(), values[1].name.into()]
        }
        Kind::String { .. } => ["a".into(), "b".into()],
        Kind::HostList => ["a:1".into(), "b:2".into()],
        Kind::EnumOrDuration { values, prefix } => [values[0].name.into(), format!("{prefix}PT1H")],
    }
}

fn is_usable(def: &KeyDef, value: &Value) -> bool {
    match def.status {
        Status::Supported | Status::Ignored { .. } => true,
        Status::Partial { supported, .. } => supported.contains(&value.text().as_str()),
        Status::NotSupported { .. } => false,
    }
}

// ---- the table ---------------------------------------------------------------------------

#[test]
fn config_table_is_consistent() {
    let mut names = HashSet::new();
    for def in known_keys() {
        for name in std::iter::once(&def.name).chain(def.aliases) {
            assert!(names.insert(*name), "`{name}` declared twice");
        }
        assert!(!def.doc.is_empty(), "{} has no doc", def.name);
        let c = def.clients;
        assert!(
            c.producer || c.consumer || c.admin,
            "{} has no client",
            def.name
        );
        if let Kind::Int { min, max } = def.kind {
            assert!(min <= max, "{}", def.name);
        }
        if let Status::Partial { supported, .. } = def.status {
            for s in supported {
                def.parse(def.name, s)
                    .unwrap_or_else(|e| panic!("{}: supported value {s}: {e}", def.name));
            }
        }
    }
    assert!(known_keys().count() > 60);
    assert!(keys::lookup("metadata.broker.list").is_some_and(|d| d.name == "bootstrap.servers"));
}

#[test]
fn config_every_default_parses_and_builds_the_same_config() {
    for def in known_keys() {
        let Some(default) = def.default else { continue };
        let value = def
            .parse(def.name, default)
            .unwrap_or_else(|e| panic!("default of {} does not parse: {e}", def.name));
        assert!(
            is_usable(def, &value),
            "default of {} is not supported",
            def.name
        );
        if def.name == "bootstrap.servers" {
            continue;
        }
        let implicit = build_for(def, &base()).unwrap();
        let explicit = build_for(def, &base().with(def.name, default))
            .unwrap_or_else(|e| panic!("{} = {default}: {e}", def.name));
        assert_eq!(implicit, explicit, "{}", def.name);
    }
    // Every typed config builds from defaults alone.
    base().common().unwrap();
    base().producer().unwrap();
    base().consumer().unwrap();
    base().admin().unwrap();
}

#[test]
fn config_defaults() {
    let p = base().producer().unwrap();
    let c = &p.common;
    assert_eq!(c.bootstrap_servers, vec![BOOT.to_string()]);
    assert_eq!(c.client_id, "kafka-sdk");
    assert_eq!(c.client_software_name, "kafka-sdk");
    assert_eq!(c.client_software_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(c.request_timeout, Duration::from_millis(30_000));
    assert_eq!(
        c.socket_connection_setup_timeout,
        Duration::from_millis(10_000)
    );
    assert_eq!(
        c.socket_connection_setup_timeout_max,
        Duration::from_millis(30_000)
    );
    assert_eq!(c.reconnect_backoff, Duration::from_millis(50));
    assert_eq!(c.reconnect_backoff_max, Duration::from_millis(1000));
    assert_eq!(c.retry_backoff, Duration::from_millis(100));
    assert_eq!(c.retry_backoff_max, Duration::from_millis(1000));
    assert_eq!(c.metadata_max_age, Duration::from_millis(300_000));
    assert_eq!(c.max_response_size, 100_000_000);
    assert_eq!(c.connections_max_idle, Duration::from_millis(540_000));
    assert!(c.socket_nodelay);
    assert_eq!(c.client_rack, None);
    assert!(c.allow_auto_create_topics);
    assert_eq!(c.security_protocol, SecurityProtocol::Plaintext);
    assert_eq!(
        c.explicit_keys.iter().copied().collect::<Vec<_>>(),
        ["bootstrap.servers"]
    );

    assert_eq!(p.acks, Acks::All);
    assert_eq!(p.linger, Duration::from_millis(5));
    assert_eq!(p.batch_size, 16384);
    assert_eq!(p.batch_num_messages, 10_000);
    assert_eq!(p.buffer_memory, 33_554_432);
    // librdkafka's default count cap (a librdkafka key, so librdkafka's default).
    assert_eq!(p.queue_buffering_max_messages, Some(100_000));
    assert_eq!(p.max_block, Duration::from_millis(60_000));
    assert_eq!(p.max_request_size, 1_048_576);
    assert_eq!(p.compression, Compression::None);
    assert_eq!(p.compression_level, None);
    assert!(p.enable_idempotence);
    assert_eq!(p.max_in_flight, 5);
    assert_eq!(p.retries, 2_147_483_647);
    assert_eq!(p.delivery_timeout, Duration::from_millis(120_000));
    assert_eq!(p.partitioner, PartitionerKind::Murmur2Random);
    assert_eq!(p.sticky_partitioning_linger, Duration::ZERO);
    assert_eq!(p.transactional_id, None);
    assert_eq!(p.transaction_timeout, Duration::from_millis(60_000));
    assert!(!p.partitioner_ignore_keys);

    let k = base().consumer().unwrap();
    assert_eq!(k.group_id, None);
    assert_eq!(k.group_instance_id, None);
    assert_eq!(k.group_protocol, GroupProtocol::Classic);
    assert_eq!(k.session_timeout, Duration::from_millis(45_000));
    assert_eq!(k.heartbeat_interval, Duration::from_millis(3000));
    assert_eq!(k.max_poll_interval, Duration::from_millis(300_000));
    assert!(k.enable_auto_commit);
    assert_eq!(k.auto_commit_interval, Duration::from_millis(5000));
    assert!(k.enable_auto_offset_store);
    assert_eq!(k.auto_offset_reset, OffsetReset::Latest);
    assert_eq!(k.fetch_min_bytes, 1);
    assert_eq!(k.fetch_max_bytes, 52_428_800);
    assert_eq!(k.fetch_max_wait, Duration::from_millis(500));
    assert_eq!(k.max_partition_fetch_bytes, 1_048_576);
    assert_eq!(k.isolation_level, IsolationLevel::ReadUncommitted);
    assert!(k.check_crcs);
    assert_eq!(
        k.assignment_strategies,
        [
            AssignmentStrategy::Range,
            AssignmentStrategy::CooperativeSticky
        ]
    );
    assert_eq!(k.max_poll_records, 500);
    assert!(!k.enable_partition_eof);
    assert_eq!(k.queued_max_messages_kbytes, 65_536);
}

// ---- aliases -----------------------------------------------------------------------------

#[test]
fn config_every_alias_resolves_to_its_key() {
    let mut checked = 0;
    for def in known_keys() {
        let [a, b] = samples(def);
        for alias in def.aliases {
            // get() sees through aliases both ways.
            let cfg = ClientConfig::new().with(*alias, a.clone());
            assert_eq!(cfg.get(def.name), Some(a.as_str()), "{alias}");
            let cfg2 = ClientConfig::new().with(def.name, a.clone());
            assert_eq!(cfg2.get(alias), Some(a.as_str()), "{alias}");

            // Resolution gives the canonical key the alias's value.
            if def.name != "bootstrap.servers" {
                let via_alias = [("bootstrap.servers", BOOT), (*alias, a.as_str())];
                let via_name = [("bootstrap.servers", BOOT), (def.name, a.as_str())];
                match (
                    Resolved::new(via_alias.into_iter(), Target::Common),
                    Resolved::new(via_name.into_iter(), Target::Common),
                ) {
                    (Ok(x), Ok(y)) => {
                        assert_eq!(x.value(def), y.value(def), "{alias}");
                        assert!(x.explicit_keys().contains(def.name));
                    }
                    (Err(x), Err(y)) => {
                        // Not-supported keys fail the same way under either spelling.
                        let (x, y) = (x.to_string(), y.to_string());
                        assert_eq!(x.replace(*alias, def.name), y, "{alias}");
                    }
                    (x, y) => panic!("{alias}: {x:?} vs {y:?}"),
                }
            }

            // Same value twice is fine; different values conflict, naming both spellings.
            let both = base().with(def.name, a.clone()).with(*alias, a.clone());
            let r = Resolved::new(both.iter(), Target::Common);
            assert!(
                r.is_ok() || !matches!(config_err(r), ConfigError::Conflict(_)),
                "{alias}"
            );
            let clash = ClientConfig::new()
                .with(def.name, a.clone())
                .with(*alias, b.clone());
            let r = Resolved::new(clash.iter(), Target::Common).map(|_| ());
            if is_usable(def, &def.parse(def.name, &a).unwrap()) {
                let msg = conflict(r);
                assert!(msg.contains(def.name) && msg.contains(alias), "{msg}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked}");
}

#[test]
fn config_librdkafka_spellings_map_right() {
    let c = |k: &str, v: &str| base().with(k, v);
    for (v, want) in [
        ("smallest", OffsetReset::Earliest),
        ("beginning", OffsetReset::Earliest),
        ("earliest", OffsetReset::Earliest),
        ("EARLIEST", OffsetReset::Earliest),
        ("largest", OffsetReset::Latest),
        ("end", OffsetReset::Latest),
        ("latest", OffsetReset::Latest),
        ("error", OffsetReset::None),
        ("none", OffsetReset::None),
    ] {
        let k = c("auto.offset.reset", v).consumer().unwrap();
        assert_eq!(k.auto_offset_reset, want, "{v}");
    }
    for (v, want) in [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
        ("ZSTD", Compression::Zstd),
    ]
    .into_iter()
    .filter(|&(_, c)| built(c))
    {
        assert_eq!(
            c("compression.codec", v).producer().unwrap().compression,
            want
        );
        assert_eq!(
            c("compression.type", v).producer().unwrap().compression,
            want
        );
    }
    for (v, want) in [
        ("0", Acks::None),
        ("1", Acks::Leader),
        ("all", Acks::All),
        ("-1", Acks::All),
    ] {
        let p = c("request.required.acks", v)
            .with("enable.idempotence", "false")
            .producer()
            .unwrap();
        assert_eq!(p.acks, want);
    }
    assert_eq!(
        (
            Acks::None.as_i16(),
            Acks::Leader.as_i16(),
            Acks::All.as_i16()
        ),
        (0, 1, -1)
    );

    let p = c("queue.buffering.max.ms", "100").producer().unwrap();
    assert_eq!(p.linger, Duration::from_millis(100));
    let p = c("message.timeout.ms", "300000").producer().unwrap();
    assert_eq!(p.delivery_timeout, Duration::from_millis(300_000));
    let p = c("queue.buffering.max.kbytes", "1024").producer().unwrap();
    assert_eq!(p.buffer_memory, 1024 * 1024);
    let p = c("queue.buffering.max.messages", "7").producer().unwrap();
    assert_eq!(p.queue_buffering_max_messages, Some(7));
    let p = c("queue.buffering.max.messages", "0").producer().unwrap();
    assert_eq!(p.queue_buffering_max_messages, None);
    let p = c("message.max.bytes", "2000").producer().unwrap();
    assert_eq!(p.max_request_size, 2000);
    let p = c("message.send.max.retries", "3").producer().unwrap();
    assert_eq!(p.retries, 3);
    let p = c("max.in.flight", "2").producer().unwrap();
    assert_eq!(p.max_in_flight, 2);

    let cfg = ClientConfig::new().with("metadata.broker.list", "b1:9092,b2:9093");
    assert_eq!(
        cfg.common().unwrap().bootstrap_servers,
        ["b1:9092", "b2:9093"]
    );
    assert_eq!(cfg.get("bootstrap.servers"), Some("b1:9092,b2:9093"));
    let k = c("socket.timeout.ms", "1234").common().unwrap();
    assert_eq!(k.request_timeout, Duration::from_millis(1234));
    let k = c("topic.metadata.refresh.interval.ms", "1000")
        .common()
        .unwrap();
    assert_eq!(k.metadata_max_age, Duration::from_millis(1000));
    let k = c("fetch.wait.max.ms", "10").consumer().unwrap();
    assert_eq!(k.fetch_max_wait, Duration::from_millis(10));
    let k = c("fetch.message.max.bytes", "4096").consumer().unwrap();
    assert_eq!(k.max_partition_fetch_bytes, 4096);
    let k = c("auto.commit.enable", "false").consumer().unwrap();
    assert!(!k.enable_auto_commit);
    let k = c("socket.nagle.disable", "false").common().unwrap();
    assert!(!k.socket_nodelay);
    let k = c("tcp.nodelay", "false").common().unwrap();
    assert!(!k.socket_nodelay);
}

#[test]
fn config_partitioners_and_assignors_map_right() {
    for (v, want) in [
        ("murmur2", PartitionerKind::Murmur2),
        ("murmur2_random", PartitionerKind::Murmur2Random),
        ("consistent", PartitionerKind::Consistent),
        ("consistent_random", PartitionerKind::ConsistentRandom),
        ("random", PartitionerKind::Random),
        ("round_robin", PartitionerKind::RoundRobin),
        ("fnv1a", PartitionerKind::Fnv1a),
        ("fnv1a_random", PartitionerKind::Fnv1aRandom),
        (
            "org.apache.kafka.clients.producer.RoundRobinPartitioner",
            PartitionerKind::RoundRobin,
        ),
        (
            "org.apache.kafka.clients.producer.internals.DefaultPartitioner",
            PartitionerKind::Murmur2Random,
        ),
    ] {
        let p = base().with("partitioner", v).producer().unwrap();
        assert_eq!(p.partitioner, want, "{v}");
        let p = base().with("partitioner.class", v).producer().unwrap();
        assert_eq!(p.partitioner, want, "{v}");
    }
    let k = base()
        .with(
            "partition.assignment.strategy",
            "org.apache.kafka.clients.consumer.StickyAssignor, roundrobin,\
             org.apache.kafka.clients.consumer.CooperativeStickyAssignor,\
             org.apache.kafka.clients.consumer.RangeAssignor,range",
        )
        .consumer()
        .unwrap();
    use AssignmentStrategy::*;
    assert_eq!(
        k.assignment_strategies,
        [Sticky, RoundRobin, CooperativeSticky, Range]
    );
    let names: Vec<_> = k
        .assignment_strategies
        .iter()
        .map(|s| s.protocol_name())
        .collect();
    assert_eq!(
        names,
        ["sticky", "roundrobin", "cooperative-sticky", "range"]
    );
    for (v, want) in [
        ("read_committed", IsolationLevel::ReadCommitted),
        ("read_uncommitted", IsolationLevel::ReadUncommitted),
    ] {
        let k = base().with("isolation.level", v).consumer().unwrap();
        assert_eq!(k.isolation_level, want);
    }
    assert_eq!(IsolationLevel::ReadCommitted.as_i8(), 1);
    assert_eq!(IsolationLevel::ReadUncommitted.as_i8(), 0);
    // Java accepts lowercase only.
    let e = config_err(base().with("isolation.level", "READ_COMMITTED").consumer());
    assert!(matches!(e, ConfigError::InvalidValue { .. }), "{e:?}");
}

// ---- bad input ---------------------------------------------------------------------------

#[test]
fn config_unknown_key_is_named() {
    let e = config_err(base().with("linger.msec", "5").producer());
    assert_eq!(
        e,
        ConfigError::UnknownKey {
            key: "linger.msec".into()
        }
    );
    assert!(Error::from(e).to_string().contains("linger.msec"));
    // Key names are case-sensitive, as in Java and librdkafka.
    let e = config_err(base().with("Linger.ms", "5").common());
    assert!(matches!(e, ConfigError::UnknownKey { .. }));
}

/// Invalid values for a key's kind (the seed of the bad-input matrix).
fn bad_values(kind: Kind) -> Vec<String> {
    let mut v: Vec<String> = match kind {
        Kind::Int { min, max } => {
            let mut v = vec!["abc".into(), "".into(), "1.5".into(), "12ms".into()];
            if let Some(below) = min.checked_sub(1) {
                v.push(below.to_string());
            }
            match max.checked_add(1) {
                Some(above) => v.push(above.to_string()),
                None => v.push("9223372036854775808".into()),
            }
            v
        }
        Kind::Bool => vec!["maybe".into(), "yes".into(), "".into(), "2".into()],
        Kind::Enum { .. } => vec!["bogus".into(), "".into()],
        Kind::EnumOrDuration { prefix, .. } => vec![
            "bogus".into(),
            "".into(),
            prefix.into(),
            format!("{prefix}-PT1H"),
            format!("{prefix}P1Y"),
            format!("{prefix}1h"),
        ],
        Kind::List { .. } => vec!["bogus".into(), "range,bogus".into(), "".into(), ",".into()],
        Kind::String { allow_empty: false } => vec!["".into(), "  ".into()],
        Kind::String { allow_empty: true } => vec![],
        Kind::HostList => vec![
            "h:0".into(),
            "h:65536".into(),
            "h:abc".into(),
            ":9092".into(),
            "::1:9092".into(),
            "[::1".into(),
            "ftp://h:1".into(),
            "good:1,bad:".into(),
        ],
    };
    v.dedup();
    v
}

#[test]
fn config_bad_input_matrix() {
    let mut cases = 0;
    for def in known_keys() {
        for spelling in std::iter::once(&def.name).chain(def.aliases) {
            for bad in bad_values(def.kind) {
                let cfg = base().with(*spelling, bad.clone());
                let e = config_err(cfg.common());
                assert_eq!(
                    e,
                    ConfigError::InvalidValue {
                        key: spelling.to_string(),
                        value: bad.clone(),
                        expected: def.expected(),
                    },
                    "{spelling} = {bad:?}"
                );
                let msg = Error::from(e).to_string();
                assert!(msg.contains(*spelling) && msg.contains(&bad), "{msg}");
                cases += 1;
            }
        }
    }
    assert!(cases > 250, "{cases}");
}

#[test]
fn config_expected_texts() {
    let exp = |k: &str| keys::lookup(k).unwrap().expected();
    assert_eq!(exp("linger.ms"), "an integer in 0..=900000");
    assert_eq!(
        exp("compression.type"),
        "one of: none, gzip, snappy, lz4, zstd"
    );
    assert_eq!(exp("enable.idempotence"), "true or false");
    assert_eq!(exp("acks"), "one of: 0, 1, all");
}

#[test]
fn config_booleans() {
    for (v, want) in [
        ("true", true),
        ("TRUE", true),
        ("True", true),
        (" true ", true),
        ("1", true),
        ("false", false),
        ("FALSE", false),
        ("0", false),
    ] {
        let k = base().with("enable.partition.eof", v).consumer().unwrap();
        assert_eq!(k.enable_partition_eof, want, "{v}");
    }
}

#[test]
fn config_not_supported_keys_and_values() {
    for def in known_keys() {
        let spellings = std::iter::once(&def.name).chain(def.aliases);
        match def.status {
            Status::NotSupported { detail } => {
                for spelling in spellings {
                    let [a, _] = samples(def);
                    let e = config_err(base().with(*spelling, a).common());
                    assert_eq!(
                        e,
                        ConfigError::NotSupported {
                            key: spelling.to_string(),
                            detail: Some(detail.to_string())
                        }
                    );
                }
            }
            Status::Partial { supported, detail } => {
                let values: Vec<String> = match def.kind {
                    Kind::Enum { values, .. } => values.iter().map(|v| v.name.into()).collect(),
                    _ => samples(def).into(),
                };
                for v in values {
                    let r = base().with(def.name, v.clone()).common();
                    if supported.contains(&v.as_str()) {
                        r.unwrap();
                    } else {
                        assert_eq!(
                            config_err(r),
                            ConfigError::NotSupported {
                                key: def.name.into(),
                                detail: Some(detail.into())
                            },
                            "{} = {v}",
                            def.name
                        );
                    }
                }
            }
            _ => {}
        }
    }
    // Security (issue 14): the Kerberos and OIDC keys are still refused, naming themselves.
    #[allow(clippy::single_element_loop)] // one element with the `oidc` feature
    for (k, v) in [
        ("sasl.kerberos.service.name", "kafka"),
        // Without the `oidc` feature the built-in OIDC provider is refused.
        #[cfg(not(feature = "oidc"))]
        ("sasl.oauthbearer.token.endpoint.url", "https://idp/token"),
        #[cfg(not(feature = "oidc"))]
        ("sasl.oauthbearer.method", "oidc"),
    ] {
        let e = config_err(base().with(k, v).common());
        assert!(
            matches!(&e, ConfigError::NotSupported { key, .. } if key == k),
            "{k}: {e:?}"
        );
    }
    let c = base()
        .with("security.protocol", "PLAINTEXT")
        .common()
        .unwrap();
    assert_eq!(c.security_protocol, SecurityProtocol::Plaintext);
    for k in ["key.serializer", "value.deserializer"] {
        let e = config_err(base().with(k, "org.Foo").common());
        assert_eq!(
            e,
            ConfigError::NotSupported {
                key: k.into(),
                detail: Some("kafka-sdk takes bytes; serialize in your code".into())
            }
        );
    }
    let k = base()
        .with("group.protocol", "consumer")
        .consumer()
        .unwrap();
    assert_eq!(k.group_protocol, GroupProtocol::Consumer);
    let e = config_err(base().with("api.version.request", "false").common());
    assert!(matches!(e, ConfigError::NotSupported { .. }), "{e:?}");
    base()
        .with("api.version.request", "true")
        .producer()
        .unwrap();
    base()
        .with("statistics.interval.ms", "0")
        .producer()
        .unwrap();
    let p = base()
        .with("statistics.interval.ms", "1000")
        .producer()
        .unwrap();
    assert_eq!(p.common.statistics_interval, Duration::from_millis(1000));
    let e = config_err(base().with("statistics.interval.ms", "-1").producer());
    assert!(matches!(e, ConfigError::InvalidValue { .. }), "{e:?}");
}

#[test]
fn config_ignored_keys_are_accepted() {
    let cfg = base()
        .with("debug", "broker,topic,msg")
        .with("log_level", "7")
        .with("log.connection.close", "false")
        .with("queued.min.messages", "1000")
        .with("broker.version.fallback", "2.0.0")
        .with("api.version.fallback.ms", "0");
    cfg.producer().unwrap();
    cfg.consumer().unwrap();
    cfg.admin().unwrap();
}

#[test]
fn config_other_clients_keys_are_ignored() {
    let cfg = base()
        .with("group.id", "g")
        .with("auto.offset.reset", "earliest")
        .with("acks", "1")
        .with("linger.ms", "20");
    let p = cfg.producer().unwrap();
    assert_eq!(p.acks, Acks::Leader);
    assert!(!p.enable_idempotence); // defaulted idempotence turned off by acks=1
    let k = cfg.consumer().unwrap();
    assert_eq!(k.group_id.as_deref(), Some("g"));
    cfg.admin().unwrap();
    // ... but still validated.
    let e = config_err(base().with("session.timeout.ms", "soon").producer());
    assert!(matches!(e, ConfigError::InvalidValue { .. }));
}

// ---- bootstrap.servers ---------------------------------------------------------------------

#[test]
fn config_bootstrap_servers() {
    let servers = |v: &str| {
        ClientConfig::new()
            .with("bootstrap.servers", v)
            .common()
            .map(|c| c.bootstrap_servers)
    };
    assert_eq!(
        servers(" a:1 , PLAINTEXT://b:2,plaintext://c:3,,").unwrap(),
        ["a:1", "b:2", "c:3"]
    );
    assert_eq!(servers("localhost").unwrap(), ["localhost:9092"]);
    assert_eq!(
        servers("[::1]:9093,[fe80::1]").unwrap(),
        ["[::1]:9093", "[fe80::1]:9092"]
    );
    assert_eq!(servers("h:65535").unwrap(), ["h:65535"]);
    for v in ["", " ", ",", " , "] {
        assert_eq!(
            config_err(servers(v)),
            ConfigError::Missing {
                key: "bootstrap.servers".into()
            },
            "{v:?}"
        );
    }
    assert_eq!(
        config_err(ClientConfig::new().producer()),
        ConfigError::Missing {
            key: "bootstrap.servers".into()
        }
    );
    // Java's listener-name prefixes are accepted (the protocol is `security.protocol`'s).
    for v in [
        "SSL://h:9093",
        "sasl_ssl://h:9093",
        "SASL_PLAINTEXT://h:9093",
    ] {
        assert_eq!(servers(v).unwrap(), ["h:9093"], "{v}");
    }
    let e = config_err(servers("HTTP://h:9093"));
    assert!(matches!(e, ConfigError::InvalidValue { .. }), "{e:?}");
}

// ---- producer rules ------------------------------------------------------------------------

#[test]
fn config_explicit_idempotence_conflicts() {
    for (k, v) in [
        ("acks", "1"),
        ("acks", "0"),
        ("request.required.acks", "1"),
        ("max.in.flight.requests.per.connection", "6"),
        ("max.in.flight", "6"),
        ("retries", "0"),
        ("message.send.max.retries", "0"),
    ] {
        let msg = conflict(
            base()
                .with("enable.idempotence", "true")
                .with(k, v)
                .producer(),
        );
        assert!(
            msg.contains("enable.idempotence") && msg.contains(k),
            "{msg}"
        );
    }
    // Explicitly off: anything goes.
    let p = base()
        .with("enable.idempotence", "false")
        .with("acks", "0")
        .with("max.in.flight", "100")
        .with("retries", "0")
        .producer()
        .unwrap();
    assert!(!p.enable_idempotence);
    assert!(p.common.is_explicit("enable.idempotence"));
    // Explicitly on with compatible settings.
    let p = base()
        .with("enable.idempotence", "true")
        .with("acks", "-1")
        .with("max.in.flight", "5")
        .with("retries", "1")
        .producer()
        .unwrap();
    assert!(p.enable_idempotence);
}

#[test]
fn config_defaulted_idempotence_is_turned_off() {
    for (k, v) in [
        ("acks", "1"),
        ("acks", "0"),
        ("max.in.flight.requests.per.connection", "6"),
        ("retries", "0"),
    ] {
        let p = base().with(k, v).producer().unwrap();
        assert!(!p.enable_idempotence, "{k}={v}");
        assert!(!p.common.is_explicit("enable.idempotence"));
    }
    assert!(
        base()
            .with("acks", "all")
            .producer()
            .unwrap()
            .enable_idempotence
    );
}

#[test]
fn config_transactional_rules() {
    let p = base().with("transactional.id", "tx-1").producer().unwrap();
    assert_eq!(p.transactional_id.as_deref(), Some("tx-1"));
    assert!(p.enable_idempotence);

    let msg = conflict(
        base()
            .with("transactional.id", "tx-1")
            .with("enable.idempotence", "false")
            .producer(),
    );
    assert!(
        msg.contains("transactional.id") && msg.contains("enable.idempotence"),
        "{msg}"
    );
    // Defaulted idempotence turned off by acks=1: Java refuses the transactional id.
    let msg = conflict(
        base()
            .with("transactional.id", "tx-1")
            .with("acks", "1")
            .producer(),
    );
    assert!(
        msg.contains("transactional.id") && msg.contains("acks"),
        "{msg}"
    );
    let e = config_err(base().with("transactional.id", "").producer());
    assert!(matches!(e, ConfigError::InvalidValue { .. }));
}

#[test]
fn config_delivery_timeout_rule() {
    let msg = conflict(base().with("delivery.timeout.ms", "30004").producer());
    for k in ["delivery.timeout.ms", "linger.ms", "request.timeout.ms"] {
        assert!(msg.contains(k), "{msg}");
    }
    // The boundary is allowed.
    let p = base()
        .with("delivery.timeout.ms", "30005")
        .producer()
        .unwrap();
    assert_eq!(p.delivery_timeout, Duration::from_millis(30_005));
    // Aliases are named as spelled.
    let msg = conflict(
        base()
            .with("queue.buffering.max.ms", "1000")
            .with("socket.timeout.ms", "60000")
            .with("delivery.timeout.ms", "60000")
            .producer(),
    );
    assert!(
        msg.contains("queue.buffering.max.ms") && msg.contains("socket.timeout.ms"),
        "{msg}"
    );
    // Defaulted delivery timeout is raised (Java).
    let p = base()
        .with("request.timeout.ms", "200000")
        .producer()
        .unwrap();
    assert_eq!(p.delivery_timeout, Duration::from_millis(200_005));
    // librdkafka's message.timeout.ms keeps its meaning (rust-rdkafka examples use 5000).
    let p = base()
        .with("message.timeout.ms", "5000")
        .producer()
        .unwrap();
    assert_eq!(p.delivery_timeout, Duration::from_millis(5000));
}

#[test]
#[cfg(all(
    feature = "gzip",
    feature = "snappy",
    feature = "lz4",
    feature = "zstd"
))]
fn config_compression_level_per_codec() {
    let lvl = |codec: &str, level: &str| {
        base()
            .with("compression.type", codec)
            .with("compression.level", level)
            .producer()
            .map(|p| p.compression_level)
    };
    assert_eq!(lvl("gzip", "-1").unwrap(), None);
    assert_eq!(lvl("gzip", "0").unwrap(), Some(0));
    assert_eq!(lvl("gzip", "9").unwrap(), Some(9));
    assert_eq!(lvl("lz4", "12").unwrap(), Some(12));
    assert_eq!(lvl("zstd", "22").unwrap(), Some(22));
    assert_eq!(lvl("zstd", "-131072").unwrap(), Some(-131_072));
    assert_eq!(lvl("snappy", "-1").unwrap(), None);
    assert_eq!(lvl("none", "5").unwrap(), None);
    for (codec, level) in [
        ("gzip", "10"),
        ("gzip", "-5"),
        ("lz4", "13"),
        ("snappy", "1"),
    ] {
        match config_err(lvl(codec, level)) {
            ConfigError::InvalidValue {
                key,
                value,
                expected,
            } => {
                assert_eq!((key.as_str(), value.as_str()), ("compression.level", level));
                assert!(expected.contains(codec), "{expected}");
            }
            e => panic!("{codec} {level}: {e:?}"),
        }
    }
}

/// A build without some codec: choosing it (under either spelling, any case) is
/// `NotSupported` naming the key as given and the missing crate feature.
#[test]
#[cfg(not(all(
    feature = "gzip",
    feature = "snappy",
    feature = "lz4",
    feature = "zstd"
)))]
fn config_disabled_codec_is_not_supported() {
    let off: Vec<(&str, Compression)> = [
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ]
    .into_iter()
    .filter(|&(_, c)| !built(c))
    .collect();
    assert!(!off.is_empty());
    for (name, _) in off {
        for key in ["compression.type", "compression.codec"] {
            for value in [name.to_string(), name.to_uppercase()] {
                match config_err(base().with(key, &value).producer()) {
                    ConfigError::NotSupported { key: k, detail } => {
                        assert_eq!(k, key);
                        let detail = detail.unwrap_or_default();
                        assert!(detail.contains(&format!("`{name}` feature")), "{detail}");
                    }
                    e => panic!("{key}={value}: {e:?}"),
                }
            }
        }
    }
    // `none` needs no feature.
    let p = base().with("compression.type", "none").producer().unwrap();
    assert_eq!(p.compression, Compression::None);
}

#[test]
fn config_buffer_memory_spellings() {
    let p = base()
        .with("buffer.memory", "2048")
        .with("queue.buffering.max.kbytes", "2")
        .producer()
        .unwrap();
    assert_eq!(p.buffer_memory, 2048);
    let msg = conflict(
        base()
            .with("buffer.memory", "2048")
            .with("queue.buffering.max.kbytes", "3")
            .producer(),
    );
    assert!(
        msg.contains("buffer.memory") && msg.contains("queue.buffering.max.kbytes"),
        "{msg}"
    );
    // Smaller than batch.size only warns.
    base().with("buffer.memory", "100").producer().unwrap();
}

#[test]
fn config_backoff_maxima() {
    let msg = conflict(
        base()
            .with("retry.backoff.ms", "500")
            .with("retry.backoff.max.ms", "400")
            .common(),
    );
    assert!(
        msg.contains("retry.backoff.max.ms") && msg.contains("retry.backoff.ms"),
        "{msg}"
    );
    let c = base()
        .with("reconnect.backoff.ms", "5000")
        .common()
        .unwrap();
    assert_eq!(c.reconnect_backoff_max, Duration::from_millis(5000));
    let c = base()
        .with("socket.connection.setup.timeout.ms", "45000")
        .common()
        .unwrap();
    assert_eq!(
        c.socket_connection_setup_timeout_max,
        Duration::from_millis(45_000)
    );
}

// ---- consumer rules ------------------------------------------------------------------------

#[test]
fn config_consumer_rules() {
    let msg = conflict(
        base()
            .with("session.timeout.ms", "6000")
            .with("heartbeat.interval.ms", "6000")
            .consumer(),
    );
    assert!(
        msg.contains("heartbeat.interval.ms") && msg.contains("session.timeout.ms"),
        "{msg}"
    );
    base()
        .with("session.timeout.ms", "6000")
        .with("heartbeat.interval.ms", "2000")
        .consumer()
        .unwrap();

    let msg = conflict(base().with("group.instance.id", "i-1").consumer());
    assert!(
        msg.contains("group.instance.id") && msg.contains("group.id"),
        "{msg}"
    );
    let k = base()
        .with("group.id", "g")
        .with("group.instance.id", "i-1")
        .consumer()
        .unwrap();
    assert_eq!(k.group_instance_id.as_deref(), Some("i-1"));

    let msg = conflict(
        base()
            .with("fetch.min.bytes", "1000")
            .with("fetch.max.bytes", "999")
            .consumer(),
    );
    assert!(
        msg.contains("fetch.min.bytes") && msg.contains("fetch.max.bytes"),
        "{msg}"
    );

    let e = config_err(base().with("group.id", "").consumer());
    assert!(
        matches!(&e, ConfigError::InvalidValue { key, .. } if key == "group.id"),
        "{e:?}"
    );
    // Auto-commit without a group is allowed (nothing is committed).
    let k = base()
        .with("enable.auto.commit", "true")
        .consumer()
        .unwrap();
    assert!(k.enable_auto_commit && k.group_id.is_none());
    // The rust-rdkafka examples' consumer config.
    let k = base()
        .with("group.id", "example_consumer_group_id")
        .with("enable.partition.eof", "false")
        .with("session.timeout.ms", "6000")
        .with("enable.auto.commit", "true")
        .with("statistics.interval.ms", "0")
        .with("auto.offset.reset", "smallest")
        .consumer()
        .unwrap();
    assert_eq!(k.auto_offset_reset, OffsetReset::Earliest);
}

// ---- the map -------------------------------------------------------------------------------

#[test]
fn config_map_behaviour() {
    let mut cfg = ClientConfig::new();
    cfg.set("b", "1").set("a", "2").set("b", "3");
    assert_eq!(cfg.iter().collect::<Vec<_>>(), [("b", "3"), ("a", "2")]);
    assert_eq!(cfg.get("b"), Some("3"));
    assert_eq!(cfg.get("c"), None);
    assert_eq!(cfg.remove("b"), Some("3".into()));
    assert_eq!(cfg.remove("b"), None);

    let mut cfg: ClientConfig = [
        ("metadata.broker.list", "x:1"),
        ("linger.ms", "7"),
        ("bootstrap.servers", "y:2"),
    ]
    .into_iter()
    .collect();
    // Exact spelling first, then canonical, then aliases.
    assert_eq!(cfg.get("metadata.broker.list"), Some("x:1"));
    assert_eq!(cfg.get("bootstrap.servers"), Some("y:2"));
    assert_eq!(cfg.get("queue.buffering.max.ms"), Some("7"));
    assert_eq!(cfg.get("linger.ms"), Some("7"));
    // Different values under two spellings: conflict naming both.
    let msg = conflict(cfg.common());
    assert!(
        msg.contains("metadata.broker.list") && msg.contains("bootstrap.servers"),
        "{msg}"
    );
    // remove() drops every spelling.
    assert_eq!(cfg.remove("bootstrap.servers"), Some("y:2".into()));
    assert_eq!(cfg.get("metadata.broker.list"), None);
    assert_eq!(cfg.iter().count(), 1);

    // Same value under two spellings is fine.
    let cfg = base().with("metadata.broker.list", BOOT);
    cfg.common().unwrap();
    let cfg = base()
        .with("auto.offset.reset", "smallest")
        .with("auto.offset.reset", "earliest");
    assert_eq!(cfg.iter().count(), 2);

    let cfg = base()
        .with("sasl.password", "hunter2")
        .with("ssl.key.password", "k")
        .with("client.id", "me");
    let dbg = format!("{cfg:?}");
    assert!(!dbg.contains("hunter2") && dbg.contains("me"), "{dbg}");
    assert_eq!(cfg.get("sasl.password"), Some("hunter2"));
}

#[test]
fn config_reexported_from_crate_root() {
    let cfg = crate::ClientConfig::new().with("bootstrap.servers", BOOT);
    assert_eq!(cfg.admin().unwrap().common.bootstrap_servers, [BOOT]);
}

// ---- enums through the table ---------------------------------------------------------------

/// Every spelling of every value parses (`FromStr`) to the variant the table pairs it with,
/// and the variant's name is the canonical spelling; values without a variant are refused as
/// not supported; anything else is an invalid value of the enum's key.
fn check_enum<E>() -> usize
where
    E: keys::TableEnum + std::str::FromStr<Err = ConfigError> + fmt::Debug,
{
    let mut checked = 0;
    assert_eq!(E::VALUES.len(), E::VARIANTS.len());
    for (value, variant) in E::VALUES.iter().zip(E::VARIANTS) {
        for spelling in std::iter::once(&value.name).chain(value.synonyms) {
            let parsed = spelling.parse::<E>();
            match variant {
                Some(v) => assert_eq!(parsed.unwrap(), *v, "{spelling}"),
                None => assert!(
                    matches!(&parsed, Err(ConfigError::NotSupported { key, detail: Some(_) })
                        if key == E::KEY.name),
                    "{spelling}: {parsed:?}"
                ),
            }
            checked += 1;
        }
        if let Some(v) = variant {
            assert_eq!(keys::enum_name(*v), value.name);
        }
    }
    match "bogus".parse::<E>() {
        Err(ConfigError::InvalidValue { key, value, .. }) => {
            assert_eq!((key.as_str(), value.as_str()), (E::KEY.name, "bogus"))
        }
        other => panic!("{other:?}"),
    }
    checked
}

#[test]
fn config_enums_parse_and_print_through_the_table() {
    let n = check_enum::<Acks>()
        + check_enum::<Compression>()
        + check_enum::<OffsetReset>()
        + check_enum::<IsolationLevel>()
        + check_enum::<AssignmentStrategy>()
        + check_enum::<SecurityProtocol>()
        + check_enum::<GroupProtocol>();
    assert!(n >= 30, "{n}");

    // Display and name() give the canonical spelling.
    assert_eq!(Acks::All.to_string(), "all");
    assert_eq!("-1".parse::<Acks>().unwrap().name(), "all");
    assert_eq!(OffsetReset::Earliest.to_string(), "earliest");
    assert_eq!(IsolationLevel::ReadCommitted.name(), "read_committed");
    assert_eq!(
        AssignmentStrategy::CooperativeSticky.to_string(),
        "cooperative-sticky"
    );
    assert_eq!(SecurityProtocol::Plaintext.to_string(), "plaintext");
    assert_eq!(GroupProtocol::Classic.to_string(), "classic");
    // The record layer's own codec names agree with the table.
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        assert_eq!(c.name(), keys::enum_name(c));
        assert_eq!(c.to_string().parse::<Compression>().unwrap(), c);
    }
    // Case rules are the key's: any case for most, exact for isolation.level and assignors.
    assert_eq!("GZIP".parse::<Compression>().unwrap(), Compression::Gzip);
    assert_eq!(
        "Smallest".parse::<OffsetReset>().unwrap(),
        OffsetReset::Earliest
    );
    assert_eq!(
        "PLAINTEXT".parse::<SecurityProtocol>().unwrap(),
        SecurityProtocol::Plaintext
    );
    assert!(matches!(
        "READ_COMMITTED".parse::<IsolationLevel>(),
        Err(ConfigError::InvalidValue { .. })
    ));
    assert!(matches!(
        "RangeAssignor".parse::<AssignmentStrategy>(),
        Err(ConfigError::InvalidValue { .. })
    ));
    // A list key's item parses alone, not as a list.
    assert!("range,sticky".parse::<AssignmentStrategy>().is_err());
    assert_eq!(
        "org.apache.kafka.clients.consumer.StickyAssignor"
            .parse::<AssignmentStrategy>()
            .unwrap(),
        AssignmentStrategy::Sticky
    );
    assert_eq!(
        "SASL_SSL".parse::<SecurityProtocol>().unwrap(),
        SecurityProtocol::SaslSsl
    );
    assert_eq!(
        "Sasl_Plaintext".parse::<SecurityProtocol>().unwrap(),
        SecurityProtocol::SaslPlaintext
    );
    assert_eq!(
        "ssl".parse::<SecurityProtocol>().unwrap(),
        SecurityProtocol::Ssl
    );
}

#[test]
fn config_typed_handles_read_the_table() {
    let d = Resolved::defaults();
    assert_eq!(d.get(keys::LINGER_MS), Duration::from_millis(5));
    assert_eq!(d.get(keys::ACKS), Acks::All);
    assert_eq!(
        d.get(keys::ISOLATION_LEVEL),
        IsolationLevel::ReadUncommitted
    );
    assert_eq!(d.get(keys::TRANSACTIONAL_ID), None);
    assert_eq!(d.get(keys::BOOTSTRAP_SERVERS), None);
    assert!(!d.is_explicit(keys::LINGER_MS));
    assert_eq!(d.spelling(keys::LINGER_MS), "linger.ms");

    let cfg = base()
        .with("queue.buffering.max.ms", "7")
        .with("partition.assignment.strategy", "sticky,range");
    let r = Resolved::new(cfg.iter(), Target::Consumer).unwrap();
    assert_eq!(r.get(keys::LINGER_MS), Duration::from_millis(7));
    assert!(r.is_explicit(keys::LINGER_MS));
    assert_eq!(r.spelling(keys::LINGER_MS), "queue.buffering.max.ms");
    assert_eq!(
        r.get(keys::PARTITION_ASSIGNMENT_STRATEGY),
        [AssignmentStrategy::Sticky, AssignmentStrategy::Range]
    );
    assert_eq!(r.get(keys::BOOTSTRAP_SERVERS), Some(vec![BOOT.to_string()]));

    // The defaults constructor is what a map with only bootstrap.servers builds.
    let mut built = base().common().unwrap();
    built.explicit_keys.clear();
    assert_eq!(CommonConfig::with_defaults(vec![BOOT.to_string()]), built);
}

// ---- security (issue 14) -------------------------------------------------------------------

/// A test PKI: a CA, and a client certificate and key signed by it, as PEM text.
struct Pki {
    ca: String,
    cert: String,
    key: String,
    /// The key as PKCS#8 DER (for the encrypted-key test, which needs the `tls` feature).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    key_der: Vec<u8>,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["client".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    Pki {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
        key_der: key.serialize_der(),
    }
}

/// `der` (PKCS#8) encrypted with `password` (PBES2, PBKDF2-SHA256, AES-256-CBC), as PEM.
#[cfg(feature = "tls")]
fn encrypted_key(der: &[u8], password: &str) -> String {
    use pkcs8::der::pem::LineEnding;
    let info = pkcs8::PrivateKeyInfo::try_from(der).unwrap();
    let params =
        pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, b"saltsalt", &[7u8; 16])
            .unwrap();
    info.encrypt_with_params(params, password)
        .unwrap()
        .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
        .unwrap()
        .to_string()
}

fn sasl_base(mech: &str) -> ClientConfig {
    base()
        .with("security.protocol", "SASL_PLAINTEXT")
        .with("sasl.mechanism", mech)
}

#[test]
fn config_sasl_mechanisms_and_credentials() {
    // librdkafka's keys, any case of the protocol and the mechanism.
    for (m, want) in [
        ("PLAIN", SaslMechanism::Plain),
        ("scram-sha-256", SaslMechanism::ScramSha256),
        ("SCRAM-SHA-512", SaslMechanism::ScramSha512),
    ] {
        let c = sasl_base(m)
            .with("sasl.username", "alice")
            .with("sasl.password", "alice-secret")
            .common()
            .unwrap();
        assert_eq!(c.security.sasl_mechanism(), Some(want));
        let s = c.security.sasl.as_ref().unwrap();
        assert_eq!(
            (s.username.as_str(), s.password.0.as_str()),
            ("alice", "alice-secret")
        );
    }
    // librdkafka's `sasl.mechanisms` alias; Java's JAAS line.
    let c = base()
        .with("security.protocol", "Sasl_Plaintext")
        .with("sasl.mechanisms", "SCRAM-SHA-256")
        .with(
            "sasl.jaas.config",
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="bob" password="bob-secret";"#,
        )
        .common()
        .unwrap();
    let s = c.security.sasl.as_ref().unwrap();
    assert_eq!(
        (s.username.as_str(), s.password.0.as_str()),
        ("bob", "bob-secret")
    );
    // The JAAS module must fit the mechanism.
    let msg = conflict(
        sasl_base("PLAIN")
            .with(
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="hunter2";"#,
            )
            .common(),
    );
    assert!(
        msg.contains("PlainLoginModule") && !msg.contains("hunter2"),
        "{msg}"
    );
    // Missing pieces are named.
    let e = config_err(sasl_base("PLAIN").with("sasl.username", "u").common());
    assert!(
        matches!(&e, ConfigError::Missing { key } if key.starts_with("sasl.password")),
        "{e:?}"
    );
    let msg = conflict(base().with("security.protocol", "sasl_plaintext").common());
    assert!(msg.contains("sasl.mechanism"), "{msg}");
    // Unsupported and unknown mechanisms.
    for m in ["GSSAPI", "AWS_MSK_IAM"] {
        let e = config_err(sasl_base(m).common());
        assert!(
            matches!(&e, ConfigError::NotSupported { key, detail: Some(d) } if key == "sasl.mechanism" && d.contains(m)),
            "{e:?}"
        );
    }
    let e = config_err(sasl_base("MAGIC").common());
    assert!(
        matches!(&e, ConfigError::InvalidValue { key, .. } if key == "sasl.mechanism"),
        "{e:?}"
    );
    // SASL keys are ignored without a SASL protocol (as in Java and librdkafka).
    let c = base().with("sasl.mechanism", "GSSAPI").common().unwrap();
    assert_eq!(c.security.sasl_mechanism(), None);
}

#[test]
fn config_oauthbearer_unsecured_settings() {
    let c = sasl_base("OAUTHBEARER")
        .with(
            "sasl.oauthbearer.config",
            "principal=alice scope=a,b lifeSeconds=30",
        )
        .common()
        .unwrap();
    let jwt = c
        .security
        .sasl
        .as_ref()
        .unwrap()
        .unsecured_jwt
        .clone()
        .unwrap();
    assert_eq!(jwt.principal, "alice");
    assert_eq!(jwt.lifetime, Duration::from_secs(30));
    let c = sasl_base("OAUTHBEARER")
        .with(
            "sasl.jaas.config",
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="bob";"#,
        )
        .common()
        .unwrap();
    let jwt = c
        .security
        .sasl
        .as_ref()
        .unwrap()
        .unsecured_jwt
        .clone()
        .unwrap();
    assert_eq!(jwt.principal, "bob");
    // Nothing configured is fine at config time: a provider may come from the builder.
    let c = sasl_base("OAUTHBEARER").common().unwrap();
    assert!(c.security.sasl.as_ref().unwrap().unsecured_jwt.is_none());
    let e = config_err(
        sasl_base("OAUTHBEARER")
            .with("sasl.oauthbearer.config", "scope=x")
            .common(),
    );
    assert!(
        matches!(&e, ConfigError::InvalidValue { key, .. } if key == "sasl.oauthbearer.config"),
        "{e:?}"
    );
}

#[test]
fn config_secrets_never_shown() {
    let secret = "s3cr3t-Pa55";
    let pki = pki();
    let cfgs = [
        sasl_base("PLAIN")
            .with("sasl.username", "u")
            .with("sasl.password", secret),
        sasl_base("SCRAM-SHA-512").with(
            "sasl.jaas.config",
            format!(r#"x.ScramLoginModule required username="u" password="{secret}";"#),
        ),
        // A JAAS line that does not parse: the error must not quote it.
        sasl_base("PLAIN").with(
            "sasl.jaas.config",
            format!(r#"x.PlainLoginModule required password="{secret}"#),
        ),
        base()
            .with("security.protocol", "ssl")
            .with("ssl.ca.pem", pki.ca.clone())
            .with("ssl.certificate.pem", pki.cert.clone())
            .with("ssl.key.pem", pki.key.clone())
            .with("ssl.key.password", secret),
    ];
    for cfg in cfgs {
        assert!(!format!("{cfg:?}").contains(secret), "{cfg:?}");
        match cfg.common() {
            Ok(c) => {
                let shown = format!("{c:?}");
                assert!(!shown.contains(secret), "{shown}");
                assert!(!shown.contains("PRIVATE KEY"), "{shown}");
            }
            Err(e) => {
                assert!(!e.to_string().contains(secret), "{e}");
                assert!(!format!("{e:?}").contains(secret), "{e:?}");
            }
        }
    }
}

#[cfg(feature = "tls")]
#[test]
fn config_tls_material() {
    let pki = pki();
    let dir = std::env::temp_dir().join(format!("kafka-sdk-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let ca = write("ca.pem", &pki.ca);
    let cert = write("client.pem", &pki.cert);
    let key = write("client.key", &pki.key);
    let enc = write("client-enc.key", &encrypted_key(&pki.key_der, "key-pass"));
    let ssl = || base().with("security.protocol", "SSL");
    // librdkafka files, mTLS, an encrypted PKCS#8 key with its password.
    ssl().with("ssl.ca.location", &ca).common().unwrap();
    ssl()
        .with("ssl.ca.location", &ca)
        .with("ssl.certificate.location", &cert)
        .with("ssl.key.location", &enc)
        .with("ssl.key.password", "key-pass")
        .common()
        .unwrap();
    // Java's PEM stores: a truststore file, a keystore file holding key and chain.
    let keystore = write("keystore.pem", &format!("{}{}", pki.key, pki.cert));
    ssl()
        .with("ssl.truststore.type", "PEM")
        .with("ssl.truststore.location", &ca)
        .with("ssl.keystore.type", "PEM")
        .with("ssl.keystore.location", &keystore)
        .common()
        .unwrap();
    ssl()
        .with("ssl.truststore.certificates", pki.ca.clone())
        .with("ssl.keystore.key", pki.key.clone())
        .with("ssl.keystore.certificate.chain", pki.cert.clone())
        .common()
        .unwrap();
    // Wrong key password, missing password, unreadable files: typed, naming the key.
    let e = config_err(
        ssl()
            .with("ssl.certificate.location", &cert)
            .with("ssl.key.location", &enc)
            .with("ssl.key.password", "wrong")
            .common(),
    );
    assert!(
        matches!(&e, ConfigError::InvalidValue { key, value, .. } if key == "ssl.key.password" && value == "<redacted>"),
        "{e:?}"
    );
    let e = config_err(
        ssl()
            .with("ssl.certificate.location", &cert)
            .with("ssl.key.location", &enc)
            .common(),
    );
    assert!(
        matches!(&e, ConfigError::Missing { key } if key.starts_with("ssl.key.password")),
        "{e:?}"
    );
    for k in [
        "ssl.ca.location",
        "ssl.certificate.location",
        "ssl.key.location",
        "ssl.truststore.location",
    ] {
        let e = config_err(ssl().with(k, "/nonexistent/file.pem").common());
        assert!(
            matches!(&e, ConfigError::InvalidValue { key, expected, .. } if key == k && expected.contains("readable")),
            "{k}: {e:?}"
        );
    }
    // Not PEM, a key without a certificate, a key that does not match the certificate.
    let e = config_err(ssl().with("ssl.ca.pem", "garbage").common());
    assert!(
        matches!(&e, ConfigError::InvalidValue { key, .. } if key == "ssl.ca.pem"),
        "{e:?}"
    );
    assert!(
        conflict(ssl().with("ssl.key.location", &key).common()).contains("no client certificate")
    );
    let other = super::tests::pki();
    let msg = conflict(
        ssl()
            .with("ssl.certificate.pem", pki.cert.clone())
            .with("ssl.key.pem", other.key.clone())
            .common(),
    );
    assert!(msg.contains("cannot be used"), "{msg}");
    // JKS / PKCS12 stores: refused with how to convert.
    for t in ["JKS", "PKCS12"] {
        let e = config_err(ssl().with("ssl.truststore.type", t).common());
        assert!(
            matches!(&e, ConfigError::NotSupported { detail: Some(d), .. } if d.contains("convert")),
            "{e:?}"
        );
    }
    let jks = write("store.jks", "\u{feed}binary");
    let e = config_err(ssl().with("ssl.keystore.location", &jks).common());
    assert!(
        matches!(&e, ConfigError::NotSupported { key, .. } if key == "ssl.keystore.location"),
        "{e:?}"
    );
    // Host name verification switch.
    for v in ["https", "none", "", "HTTPS"] {
        ssl()
            .with("ssl.endpoint.identification.algorithm", v)
            .common()
            .unwrap();
    }
    let e = config_err(
        ssl()
            .with("ssl.endpoint.identification.algorithm", "dns")
            .common(),
    );
    assert!(matches!(&e, ConfigError::InvalidValue { .. }), "{e:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(not(feature = "tls"))]
#[test]
fn config_tls_needs_the_feature() {
    for p in ["ssl", "SASL_SSL"] {
        let e = config_err(
            base()
                .with("security.protocol", p)
                .with("sasl.mechanism", "PLAIN")
                .with("sasl.username", "u")
                .with("sasl.password", "p")
                .common(),
        );
        assert!(
            matches!(&e, ConfigError::NotSupported { detail: Some(d), .. } if d.contains("`tls` feature")),
            "{e:?}"
        );
    }
}

/// KIP-1106: `auto.offset.reset=by_duration:<ISO-8601 duration>`, read as Java's
/// `Duration.parse` reads it (days to fractional seconds, signed parts, any case), never
/// negative; printed back in a form that parses to the same duration.
#[test]
fn auto_offset_reset_by_duration_parses_as_java_does() {
    use std::time::Duration;
    let by = |s: &str| s.parse::<OffsetReset>();
    let secs = |s: u64| OffsetReset::ByDuration(Duration::from_secs(s));
    for (text, want) in [
        ("by_duration:PT1H", secs(3_600)),
        ("by_duration:P1D", secs(86_400)),
        (
            "BY_DURATION:p2dt3h4m5s",
            secs(2 * 86_400 + 3 * 3_600 + 4 * 60 + 5),
        ),
        ("by_duration:PT0S", secs(0)),
        ("by_duration:PT1H-30M", secs(1_800)),
        ("by_duration:+PT90M", secs(5_400)),
        (
            " by_duration:PT1.5S ",
            OffsetReset::ByDuration(Duration::from_millis(1_500)),
        ),
        (
            "by_duration:PT0,000000001S",
            OffsetReset::ByDuration(Duration::from_nanos(1)),
        ),
    ] {
        let got = by(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(got, want, "{text}");
        assert_eq!(got.name(), "by_duration");
        assert_eq!(by(&got.to_string()).unwrap(), got, "{got} round trips");
    }
    assert_eq!(secs(3_600).to_string(), "by_duration:PT3600S");
    for bad in [
        "by_duration:",
        "by_duration:P",
        "by_duration:PT",
        "by_duration:1H",
        "by_duration:-PT1H",
        "by_duration:PT-1H",
        "by_duration:P1Y",
        "by_duration:P1W",
        "by_duration:PT1M1H",
        "by_duration:PT1.5M",
        "by_duration:PT1.1234567891S",
        "by_duration:P1DT",
        "by_duration:PT1H ago",
        "by_duration PT1H",
    ] {
        match by(bad) {
            Err(ConfigError::InvalidValue { key, expected, .. }) => {
                assert_eq!(key, "auto.offset.reset", "{bad}");
                assert!(
                    expected.contains("by_duration:<ISO-8601"),
                    "{bad}: {expected}"
                );
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    // Through a consumer config, as any other key.
    let c = base()
        .with("auto.offset.reset", "by_duration:P7D")
        .consumer()
        .unwrap();
    assert_eq!(c.auto_offset_reset, secs(7 * 86_400));
}
