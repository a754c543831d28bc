//! librdkafka 2.12's configuration properties that the key table (`keys.rs`) does not know,
//! classified. `resolve.rs` consults [`classify`] only for a key `keys::lookup` does not
//! find, so the table always wins (a key added to it later simply stops reaching this file).
//!
//! Every property of librdkafka's CONFIGURATION.md is either in the key table (supported,
//! ignored, partial or not supported there, under its Java name with librdkafka's as alias,
//! or under librdkafka's name) or here:
//! - [`Class::NoEffect`]: accepted, logged once at `warn` (the README lists them);
//! - [`Class::OnlyValues`]: accepted with no effect for the listed values (the ones that ask
//!   for nothing kafka-sdk does not do anyway), rejected otherwise;
//! - [`Class::Rejected`]: setting it is `ConfigError::NotSupported` with the reason;
//!
//! A security key is never accepted with no effect when ignoring it would weaken security
//! (CRLs, OpenSSL engines): those are rejected.
//!
//! The unit test checks every name of `librdkafka_keys.txt` (the property names of
//! CONFIGURATION.md, names only) is in the table or here. A key neither librdkafka nor the
//! table knows stays `ConfigError::UnknownKey`, as in librdkafka.

use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::error::ConfigError;

/// The Java client's keys that neither the key table nor this file has.
#[path = "java.rs"]
mod java;

/// What kafka-sdk does with a librdkafka property the key table does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Accepted with no effect; the detail says why.
    NoEffect(&'static str),
    /// Accepted with no effect when the value (trimmed, lower case) is one of `values`;
    /// rejected with `detail` otherwise.
    OnlyValues {
        values: &'static [&'static str],
        detail: &'static str,
    },
    /// Rejected with the reason.
    Rejected(&'static str),
}

use Class::*;

const C_API: &str = "a librdkafka C API callback or pointer, set by a C program, not a string \
                     setting; use the client's own API (contexts, listeners)";
const KERBEROS: &str = "the GSSAPI (Kerberos) SASL mechanism is not supported";
const OIDC: &str = "not supported by the built-in OIDC provider (client credentials with \
                    `sasl.oauthbearer.client.id` / `.client.secret` / `.scope` only); or set a \
                    token provider with the builders' `oauth_token_provider`";
const OPENSSL: &str = "an OpenSSL engine/provider setting; kafka-sdk's TLS is rustls";
const METADATA: &str = "kafka-sdk refreshes metadata on errors and every `metadata.max.age.ms`";
const FILE_STORE: &str = "offsets are always stored in Kafka (the file offset store was \
                          removed from librdkafka too)";

/// The classified properties, sorted by name.
const TABLE: &[(&str, Class)] = &[
    ("api.version.request.timeout.ms", NoEffect("the ApiVersions request is bounded by the connection setup timeout (`socket.connection.setup.timeout.ms`)")),
    ("background_event_cb", Rejected(C_API)),
    ("broker.address.family", NoEffect("kafka-sdk connects to the addresses the resolver returns, in order")),
    ("broker.address.ttl", NoEffect("kafka-sdk resolves a broker's name on each connection attempt")),
    ("builtin.features", NoEffect("a librdkafka build-feature check; kafka-sdk's features are its crate features")),
    ("client.dns.lookup", NoEffect("kafka-sdk always tries every address a broker name resolves to (use_all_dns_ips), moving past one that did not answer on the next attempt")),
    ("closesocket_cb", Rejected(C_API)),
    ("connect_cb", Rejected(C_API)),
    ("consume.callback.max.messages", NoEffect("there is no consume callback: messages are returned by `recv` / `poll`")),
    ("consume_cb", Rejected(C_API)),
    ("coordinator.query.interval.ms", NoEffect("kafka-sdk looks the coordinator up again when a request says it moved")),
    ("default_topic_conf", Rejected(C_API)),
    ("delivery.report.only.error", OnlyValues { values: &["false"], detail: "kafka-sdk reports every delivery, successful or not" }),
    ("dr_cb", Rejected(C_API)),
    ("dr_msg_cb", Rejected(C_API)),
    ("enable.gapless.guarantee", OnlyValues { values: &["false"], detail: "not supported: use a transactional producer for all-or-nothing delivery" }),
    ("enable.metrics.push", NoEffect("client metrics push (KIP-714) is not implemented")),
    ("enable.random.seed", NoEffect("kafka-sdk seeds its own random numbers")),
    ("enable.sasl.oauthbearer.unsecure.jwt", NoEffect("kafka-sdk builds an unsecured JWT from `sasl.oauthbearer.config` whenever that key is set (test clusters only)")),
    ("enabled_events", Rejected(C_API)),
    ("error_cb", Rejected(C_API)),
    ("fetch.error.backoff.ms", NoEffect("a fetch that failed is retried after `retry.backoff.ms` (growing to `retry.backoff.max.ms`)")),
    ("fetch.queue.backoff.ms", NoEffect("fetching pauses while the buffered bytes exceed the prefetch bounds, without a fixed backoff")),
    ("group.protocol.type", OnlyValues { values: &["consumer"], detail: "the classic protocol type is always `consumer`" }),
    ("https.ca.location", Rejected(OIDC)),
    ("https.ca.pem", Rejected(OIDC)),
    ("interceptors", Rejected("librdkafka plugin interceptors are C code; not supported")),
    ("internal.termination.signal", NoEffect("kafka-sdk's tasks stop when their client is dropped or closed")),
    ("log.queue", NoEffect("kafka-sdk logs through `tracing`")),
    ("log.thread.name", NoEffect("kafka-sdk logs through `tracing`")),
    ("log_cb", Rejected(C_API)),
    ("message.copy.max.bytes", NoEffect("records are copied once into their batch")),
    ("metadata.recovery.rebootstrap.trigger.ms", NoEffect(METADATA)),
    ("metadata.recovery.strategy", NoEffect(METADATA)),
    ("msg_order_cmp", Rejected(C_API)),
    ("oauthbearer_token_refresh_cb", Rejected(C_API)),
    ("offset.store.method", OnlyValues { values: &["broker"], detail: FILE_STORE }),
    ("offset.store.path", NoEffect(FILE_STORE)),
    ("offset.store.sync.interval.ms", NoEffect(FILE_STORE)),
    ("offset_commit_cb", Rejected(C_API)),
    ("opaque", Rejected(C_API)),
    ("open_cb", Rejected(C_API)),
    ("partitioner_cb", Rejected(C_API)),
    ("plugin.library.paths", Rejected("librdkafka plugins are C libraries; not supported")),
    ("produce.offset.report", NoEffect("the offset of every record is always reported")),
    ("queue.buffering.backpressure.threshold", NoEffect("kafka-sdk sends a batch as soon as it is ready, within `max.in.flight.requests.per.connection`")),
    ("queuing.strategy", OnlyValues { values: &["fifo"], detail: "records are always sent in the order they were produced" }),
    ("rebalance_cb", Rejected(C_API)),
    ("reconnect.backoff.jitter.ms", NoEffect("reconnect backoff is jittered by kafka-sdk itself (`reconnect.backoff.ms`, `reconnect.backoff.max.ms`)")),
    ("resolve_cb", Rejected(C_API)),
    ("sasl.kerberos.keytab", Rejected(KERBEROS)),
    ("sasl.kerberos.kinit.cmd", Rejected(KERBEROS)),
    ("sasl.kerberos.min.time.before.relogin", Rejected(KERBEROS)),
    ("sasl.kerberos.principal", Rejected(KERBEROS)),
    ("sasl.oauthbearer.assertion.algorithm", Rejected(OIDC)),
    ("sasl.oauthbearer.assertion.claim.aud", Rejected(OIDC)),
    ("sasl.oauthbearer.assertion.claim.exp.seconds", Rejected(OIDC)),
    ("sasl.oauthbearer.assertion.claim.iss", Rejected(OIDC)),
    ("sasl.oauthbearer.assertion.claim.jti.include", Rejected(OIDC)),
    ("sasl.oauthbearer.assertion.claim.nbf.seconds", Rejected(OIDC)),
    ("sasl.oauthbearer.assertion.claim.sub", Rejected(OIDC)),
    ("sasl.oauthbearer.assertion.file", Rejected(OIDC)),
    ("sasl.oauthbearer.assertion.jwt.template.file", Rejected(OIDC)),
    ("sasl.oauthbearer.assertion.private.key.file", Rejected(OIDC)),
    ("sasl.oauthbearer.assertion.private.key.passphrase", Rejected(OIDC)),
    ("sasl.oauthbearer.assertion.private.key.pem", Rejected(OIDC)),
    ("sasl.oauthbearer.extensions", Rejected(OIDC)),
    ("sasl.oauthbearer.grant.type", OnlyValues { values: &["client_credentials"], detail: OIDC }),
    ("sasl.oauthbearer.metadata.authentication.type", OnlyValues { values: &["none"], detail: OIDC }),
    ("socket.blocking.max.ms", NoEffect("deprecated in librdkafka; kafka-sdk's sockets are async")),
    ("socket.keepalive.enable", NoEffect("TCP keepalive is not configurable in kafka-sdk; idle connections are closed after `connections.max.idle.ms`")),
    ("socket.max.fails", NoEffect("a connection fails on its first error; requests in flight are retried per `Error::classify`")),
    ("socket.receive.buffer.bytes", NoEffect("the operating system's socket buffer sizes are used")),
    ("socket.send.buffer.bytes", NoEffect("the operating system's socket buffer sizes are used")),
    ("socket_cb", Rejected(C_API)),
    ("ssl.ca.certificate.stores", Rejected("a Windows certificate store; give the CA with `ssl.ca.location` / `ssl.ca.pem` (system roots are used when none is given)")),
    ("ssl.certificate.verify_cb", Rejected(C_API)),
    ("ssl.crl.location", Rejected("certificate revocation lists are not supported yet (rustls)")),
    ("ssl.curves.list", NoEffect("rustls negotiates its own safe key-exchange groups")),
    ("ssl.engine.id", Rejected(OPENSSL)),
    ("ssl.engine.location", Rejected(OPENSSL)),
    ("ssl.providers", Rejected(OPENSSL)),
    ("ssl.sigalgs.list", NoEffect("rustls negotiates its own safe signature algorithms")),
    ("ssl_ca", Rejected(C_API)),
    ("ssl_certificate", Rejected(C_API)),
    ("ssl_engine_callback_data", Rejected(C_API)),
    ("ssl_key", Rejected(C_API)),
    ("stats_cb", Rejected(C_API)),
    ("throttle_cb", Rejected(C_API)),
    ("topic.blacklist", Rejected("not supported: it would change which topics a regex subscription matches; exclude the topics in the pattern instead")),
    ("topic.metadata.propagation.max.ms", NoEffect(METADATA)),
    ("topic.metadata.refresh.fast.cnt", NoEffect(METADATA)),
    ("topic.metadata.refresh.fast.interval.ms", NoEffect(METADATA)),
    ("topic.metadata.refresh.sparse", NoEffect(METADATA)),
];

/// A classification table: keys sorted by name, each with its class.
pub(crate) type Table = [(&'static str, Class)];

/// The class of `key` in `table`, if it is there.
pub(crate) fn class_in(table: &Table, key: &str) -> Option<Class> {
    table
        .binary_search_by(|(name, _)| (*name).cmp(key))
        .ok()
        .map(|i| table[i].1)
}

/// The keys of `table` accepted with no effect (for any value or for some), with why.
#[cfg(test)]
pub(crate) fn no_effect_in(
    table: &'static Table,
) -> impl Iterator<Item = (&'static str, &'static str)> {
    table.iter().filter_map(|(k, c)| match c {
        NoEffect(d) | OnlyValues { detail: d, .. } => Some((*k, *d)),
        _ => None,
    })
}

/// The class of librdkafka property `key`, if this file classifies it.
pub(crate) fn classify(key: &str) -> Option<Class> {
    class_in(TABLE, key)
}

/// The librdkafka keys accepted with no effect, with why.
#[cfg(test)]
pub(crate) fn no_effect_keys() -> impl Iterator<Item = (&'static str, &'static str)> {
    no_effect_in(TABLE)
}

/// Handles a key the key table does not know: `Ok` = accepted with no effect (warned once
/// per key and process), else the error (`UnknownKey` when neither librdkafka nor the Java
/// client knows it).
pub(crate) fn accept(key: &str, raw: &str) -> Result<(), ConfigError> {
    let not_supported = |detail: &str| ConfigError::NotSupported {
        key: key.to_string(),
        detail: Some(detail.to_string()),
    };
    match classify(key).or_else(|| java::classify(key)) {
        None => Err(ConfigError::UnknownKey {
            key: key.to_string(),
        }),
        Some(Rejected(detail)) => Err(not_supported(detail)),
        Some(OnlyValues { values, detail }) => {
            if values.contains(&raw.trim().to_ascii_lowercase().as_str()) {
                warn_once(key, detail);
                Ok(())
            } else {
                Err(not_supported(detail))
            }
        }
        Some(NoEffect(detail)) => {
            warn_once(key, detail);
            Ok(())
        }
    }
}

fn warn_once(key: &str, detail: &str) {
    static WARNED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let first = WARNED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key.to_string());
    if first {
        tracing::warn!(
            key,
            "configuration key has no effect in kafka-sdk: {detail}"
        );
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::keys::lookup;
    use crate::config::ClientConfig;

    const LIBRDKAFKA_KEYS: &str = include_str!("librdkafka_keys.txt");

    /// Checks a classification `table` against the fixture of its client's key names: the
    /// table is sorted, holds only fixture names that the key table (and `shadowed`) does
    /// not, and with the key table and `known` covers every fixture name.
    pub(crate) fn check_table(
        client: &str,
        table: &Table,
        fixture: &str,
        at_least: usize,
        shadowed: impl Fn(&str) -> bool,
        known: impl Fn(&str) -> bool,
    ) {
        for w in table.windows(2) {
            assert!(w[0].0 < w[1].0, "{} before {}", w[0].0, w[1].0);
        }
        let names: Vec<&str> = fixture.lines().filter(|l| !l.is_empty()).collect();
        assert!(names.len() >= at_least, "fixture has {} names", names.len());
        for (k, _) in table {
            // A key the key table gained shadows the classification: drop it there.
            assert!(
                lookup(k).is_none(),
                "`{k}` is in the key table now; remove it"
            );
            assert!(!shadowed(k), "`{k}` is classified elsewhere; remove it");
            assert!(names.contains(k), "`{k}` is not a {client} key");
        }
        let missing: Vec<&&str> = names
            .iter()
            .filter(|k| lookup(k).is_none() && class_in(table, k).is_none() && !known(k))
            .collect();
        assert!(
            missing.is_empty(),
            "unclassified {client} keys: {missing:?}"
        );
    }

    #[test]
    fn every_librdkafka_property_is_classified() {
        check_table(
            "librdkafka 2.12",
            TABLE,
            LIBRDKAFKA_KEYS,
            190,
            |_| false,
            |_| false,
        );
    }

    #[test]
    fn classes_decide_acceptance() {
        assert_eq!(accept("socket.keepalive.enable", "true"), Ok(()));
        assert_eq!(accept("offset.store.method", "broker"), Ok(()));
        let e = accept("offset.store.method", "file").unwrap_err();
        assert!(matches!(e, ConfigError::NotSupported { .. }), "{e}");
        let e = accept("dr_msg_cb", "x").unwrap_err();
        assert!(e.to_string().contains("callback"), "{e}");
        let e = accept("ssl.engine.id", "pkcs11").unwrap_err();
        assert!(e.to_string().contains("rustls"), "{e}");
        let e = accept("sasl.kerberos.principal", "kafka").unwrap_err();
        assert!(e.to_string().contains("Kerberos"), "{e}");
        let e = accept("no.such.key", "1").unwrap_err();
        assert!(matches!(e, ConfigError::UnknownKey { .. }), "{e}");
    }

    #[test]
    fn no_effect_keys_through_the_client_config() {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", "127.0.0.1:9092")
            .set("socket.keepalive.enable", "true")
            .set("fetch.error.backoff.ms", "500")
            .set("client.dns.lookup", "use_all_dns_ips");
        c.consumer().unwrap();
        c.producer().unwrap();
        c.set("topic.blacklist", "^internal");
        let e = c.consumer().unwrap_err().to_string();
        assert!(e.contains("topic.blacklist"), "{e}");
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", "127.0.0.1:9092")
            .set("socket.keepalive.enabled", "true");
        let e = c.common().unwrap_err().to_string();
        assert!(e.contains("unknown configuration key"), "{e}");
    }

    #[test]
    fn readme_lists_the_no_effect_keys() {
        let readme = include_str!("../../README.md");
        for (k, _) in no_effect_keys().chain(java::no_effect_keys()) {
            assert!(
                readme.contains(&format!("`{k}`")),
                "README does not list `{k}`"
            );
        }
    }

    /// A configuration as real services write it for librdkafka (rust-rdkafka users'
    /// producer and consumer settings, librdkafka's spellings): accepted as a whole.
    #[test]
    fn typical_librdkafka_service_config_is_accepted() {
        let keys: &[(&str, &str)] = &[
            ("bootstrap.servers", "kafka-1:9092,kafka-2:9092"),
            ("client.id", "orders-service"),
            ("group.id", "orders"),
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "5000"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "45000"),
            ("heartbeat.interval.ms", "3000"),
            ("max.poll.interval.ms", "300000"),
            ("enable.partition.eof", "false"),
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("isolation.level", "read_committed"),
            ("fetch.min.bytes", "1"),
            ("fetch.wait.max.ms", "500"),
            ("fetch.max.bytes", "52428800"),
            ("max.partition.fetch.bytes", "1048576"),
            ("queued.min.messages", "100000"),
            ("queued.max.messages.kbytes", "65536"),
            ("fetch.error.backoff.ms", "500"),
            ("check.crcs", "false"),
            ("socket.keepalive.enable", "true"),
            ("socket.timeout.ms", "30000"),
            ("socket.connection.setup.timeout.ms", "30000"),
            ("connections.max.idle.ms", "540000"),
            ("broker.address.family", "v4"),
            ("client.dns.lookup", "use_all_dns_ips"),
            ("reconnect.backoff.ms", "100"),
            ("reconnect.backoff.max.ms", "10000"),
            ("retry.backoff.ms", "100"),
            ("retry.backoff.max.ms", "1000"),
            ("topic.metadata.refresh.interval.ms", "300000"),
            ("topic.metadata.refresh.fast.interval.ms", "100"),
            ("api.version.request", "true"),
            ("security.protocol", "plaintext"),
            ("statistics.interval.ms", "0"),
            ("message.max.bytes", "1000000"),
            ("allow.auto.create.topics", "false"),
            ("log.connection.close", "false"),
            ("socket.send.buffer.bytes", "0"),
            ("socket.receive.buffer.bytes", "0"),
            ("acks", "all"),
            ("enable.idempotence", "true"),
            // (A build without the `lz4` feature refuses the codec, by design.)
            (
                "compression.type",
                if cfg!(feature = "lz4") { "lz4" } else { "none" },
            ),
            ("linger.ms", "5"),
            ("batch.num.messages", "10000"),
            ("batch.size", "1000000"),
            ("queue.buffering.max.messages", "100000"),
            ("queue.buffering.max.kbytes", "1048576"),
            ("message.timeout.ms", "300000"),
            ("request.timeout.ms", "30000"),
            ("message.send.max.retries", "2147483647"),
            ("max.in.flight.requests.per.connection", "5"),
            ("partitioner", "murmur2_random"),
            ("sticky.partitioning.linger.ms", "10"),
            ("queue.buffering.backpressure.threshold", "1"),
            ("delivery.report.only.error", "false"),
        ];
        assert!(keys.len() >= 40);
        let mut c = ClientConfig::new();
        for (k, v) in keys {
            c.set(*k, *v);
        }
        if let Err(e) = c.consumer() {
            panic!("consumer: {e}");
        }
        if let Err(e) = c.producer() {
            panic!("producer: {e}");
        }
    }
}
