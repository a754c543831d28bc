//! The Java client's (kafka-clients 4.3.1) configuration keys that neither the key table
//! (`keys.rs`) nor librdkafka's classification (`librdkafka.rs`) has, classified the same
//! way: accepted with no effect (warned once, listed in README) or rejected with the reason.
//! `librdkafka::accept` consults [`classify`] last, so a key one of the others knows never
//! reaches this file.
//!
//! `java_keys.txt` holds every config name of kafka-clients 4.3.1: the names of
//! `ProducerConfig`, `ConsumerConfig` and `AdminClientConfig`'s `configNames()` and the
//! `*_CONFIG` constants of `CommonClientConfigs` (read from the jar with a few lines of Java;
//! names only). The unit test fails on any of them that nobody classifies. A key neither
//! librdkafka nor Java knows stays `ConfigError::UnknownKey`.

use super::Class::{self, *};

const JAVA_CLASS: &str = "a Java class name: kafka-sdk has no plug-in classes; use the \
                          builders' Rust hooks (partitioner, rebalance listener, OAuth \
                          token provider, `tracing`/`metrics` for observability)";
const KERBEROS: &str = "the GSSAPI (Kerberos) SASL mechanism is not supported";
const PER_CODEC_LEVEL: &str = "set `compression.level`: the level of the codec of \
                               `compression.type`";
const METRICS: &str = "kafka-sdk's metrics go through the `metrics` crate facade (feature \
                       `metrics`); sampling and reporting are the recorder's";
const SOCKET_BUFFERS: &str = "the operating system's socket buffer sizes are used";
const OIDC_HTTP: &str = "the built-in OIDC provider's token request has its own timeouts \
                         and retries";
const TOKEN_REFRESH: &str = "kafka-sdk refreshes an OAUTHBEARER token at a fixed share of \
                             its lifetime";
const TOKEN_VALIDATION: &str = "the broker validates tokens; kafka-sdk does not validate \
                                the token it sends";
const JWT_RETRIEVER: &str = "Java's JWT retrievers (KIP-1139): kafka-sdk's OIDC provider is the \
                             client-credentials one, what Java's default picks for an http(s) \
                             `sasl.oauthbearer.token.endpoint.url`; for any other token source \
                             set a token provider with the builders' `oauth_token_provider`";
const JSSE: &str = "a JSSE setting; kafka-sdk's TLS is rustls";

/// The classified keys, sorted by name.
const TABLE: &[(&str, Class)] = &[
    ("bootstrap.controllers", OnlyValues { values: &[""], detail: "connecting to the KRaft controller quorum is not supported; use `bootstrap.servers`" }),
    ("compression.gzip.level", NoEffect(PER_CODEC_LEVEL)),
    ("compression.lz4.level", NoEffect(PER_CODEC_LEVEL)),
    ("compression.zstd.level", NoEffect(PER_CODEC_LEVEL)),
    ("config.providers", Rejected("Java config providers (`${provider:path:key}` values) are not supported; resolve the values before building the configuration")),
    ("default.api.timeout.ms", NoEffect("kafka-sdk's calls take their timeout as an argument, or are bounded by `request.timeout.ms`")),
    ("exclude.internal.topics", OnlyValues { values: &["true"], detail: "a pattern subscription never matches internal topics (subscribe to one by name)" }),
    ("internal.throw.on.fetch.stable.offset.unsupported", NoEffect("a Java-internal switch")),
    ("metadata.max.idle.ms", NoEffect("not configurable: kafka-sdk keeps the metadata of the topics it produced to")),
    ("metric.reporters", NoEffect(METRICS)),
    ("metrics.num.samples", NoEffect(METRICS)),
    ("metrics.recording.level", NoEffect(METRICS)),
    ("metrics.sample.window.ms", NoEffect(METRICS)),
    ("rebalance.timeout.ms", NoEffect("the consumer's rebalance timeout is `max.poll.interval.ms`, as in the Java consumer")),
    ("receive.buffer.bytes", NoEffect(SOCKET_BUFFERS)),
    ("sasl.client.callback.handler.class", Rejected(JAVA_CLASS)),
    ("sasl.kerberos.ticket.renew.jitter", Rejected(KERBEROS)),
    ("sasl.kerberos.ticket.renew.window.factor", Rejected(KERBEROS)),
    ("sasl.login.class", Rejected(JAVA_CLASS)),
    ("sasl.login.connect.timeout.ms", NoEffect(OIDC_HTTP)),
    ("sasl.login.read.timeout.ms", NoEffect(OIDC_HTTP)),
    ("sasl.login.refresh.buffer.seconds", NoEffect(TOKEN_REFRESH)),
    ("sasl.login.refresh.min.period.seconds", NoEffect(TOKEN_REFRESH)),
    ("sasl.login.refresh.window.factor", NoEffect(TOKEN_REFRESH)),
    ("sasl.login.refresh.window.jitter", NoEffect(TOKEN_REFRESH)),
    ("sasl.login.retry.backoff.max.ms", NoEffect(OIDC_HTTP)),
    ("sasl.login.retry.backoff.ms", NoEffect(OIDC_HTTP)),
    ("sasl.oauthbearer.assertion.template.file", Rejected("JWT bearer assertions are not supported by the built-in OIDC provider (client credentials only); or set a token provider with the builders' `oauth_token_provider`")),
    ("sasl.oauthbearer.clock.skew.seconds", NoEffect(TOKEN_VALIDATION)),
    ("sasl.oauthbearer.expected.audience", NoEffect(TOKEN_VALIDATION)),
    ("sasl.oauthbearer.expected.issuer", NoEffect(TOKEN_VALIDATION)),
    ("sasl.oauthbearer.header.urlencode", OnlyValues { values: &["false"], detail: "the built-in OIDC provider sends the client id and secret as given, not URL-encoded" }),
    ("sasl.oauthbearer.jwks.endpoint.refresh.ms", NoEffect(TOKEN_VALIDATION)),
    ("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", NoEffect(TOKEN_VALIDATION)),
    ("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", NoEffect(TOKEN_VALIDATION)),
    ("sasl.oauthbearer.jwks.endpoint.url", NoEffect(TOKEN_VALIDATION)),
    ("sasl.oauthbearer.jwt.retriever.class", OnlyValues { values: &["org.apache.kafka.common.security.oauthbearer.defaultjwtretriever", "org.apache.kafka.common.security.oauthbearer.clientcredentialsjwtretriever"], detail: JWT_RETRIEVER }),
    ("sasl.oauthbearer.jwt.validator.class", OnlyValues { values: &["org.apache.kafka.common.security.oauthbearer.defaultjwtvalidator", "org.apache.kafka.common.security.oauthbearer.clientjwtvalidator"], detail: TOKEN_VALIDATION }),
    ("sasl.oauthbearer.scope.claim.name", NoEffect(TOKEN_VALIDATION)),
    ("sasl.oauthbearer.sub.claim.name", NoEffect(TOKEN_VALIDATION)),
    ("security.providers", Rejected(JAVA_CLASS)),
    ("send.buffer.bytes", NoEffect(SOCKET_BUFFERS)),
    ("share.acquire.mode", OnlyValues { values: &["batch_optimized"], detail: "the share consumer acquires whole batches; `record_limit` is not supported yet" }),
    ("ssl.engine.factory.class", Rejected(JAVA_CLASS)),
    ("ssl.keymanager.algorithm", NoEffect(JSSE)),
    ("ssl.provider", NoEffect(JSSE)),
    ("ssl.secure.random.implementation", NoEffect("rustls uses the operating system's random source")),
    ("ssl.trustmanager.algorithm", NoEffect("a JSSE setting; rustls validates certificate chains itself (WebPKI)")),
    ("transaction.two.phase.commit.enable", OnlyValues { values: &["false"], detail: "two-phase commit transactions (KIP-939) are not supported" }),
];

/// The class of Java client key `key`, if this file classifies it.
pub(crate) fn classify(key: &str) -> Option<Class> {
    super::class_in(TABLE, key)
}

/// The Java keys accepted with no effect, with why.
#[cfg(test)]
pub(crate) fn no_effect_keys() -> impl Iterator<Item = (&'static str, &'static str)> {
    super::no_effect_in(TABLE)
}

#[cfg(test)]
mod tests {
    use super::super::tests::check_table;
    use super::*;

    const JAVA_KEYS: &str = include_str!("java_keys.txt");

    #[test]
    fn every_java_client_key_is_classified() {
        let librdkafka = |k: &str| super::super::classify(k).is_some();
        check_table(
            "kafka-clients 4.3.1",
            TABLE,
            JAVA_KEYS,
            140,
            librdkafka,
            librdkafka,
        );
    }

    #[test]
    fn java_keys_through_the_client_config() {
        use crate::config::ClientConfig;
        use crate::error::ConfigError;

        // A Java producer's and consumer's typical extra settings: accepted.
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", "127.0.0.1:9092")
            .set("send.buffer.bytes", "131072")
            .set("receive.buffer.bytes", "65536")
            .set(
                "metric.reporters",
                "org.apache.kafka.common.metrics.JmxReporter",
            )
            .set("default.api.timeout.ms", "60000")
            .set("exclude.internal.topics", "true")
            .set("ssl.trustmanager.algorithm", "PKIX");
        c.consumer().unwrap();
        c.producer().unwrap();
        let err = |key: &str, value: &str| {
            let mut c = ClientConfig::new();
            c.set("bootstrap.servers", "127.0.0.1:9092").set(key, value);
            c.common().unwrap_err()
        };
        let e = err("exclude.internal.topics", "false");
        assert!(
            e.to_string().contains("internal topics"),
            "a refused value names why: {e}"
        );
        let e = err("sasl.login.class", "com.example.Login");
        assert!(e.to_string().contains("Java class"), "{e}");
        let e = err("config.providers", "file");
        assert!(e.to_string().contains("config providers"), "{e}");
        let e = err("transaction.two.phase.commit.enable", "true");
        assert!(e.to_string().contains("KIP-939"), "{e}");
        // Known to neither librdkafka nor Java: still an unknown key.
        let e = err("send.buffer.byte", "1");
        assert!(
            matches!(e, crate::Error::Config(ConfigError::UnknownKey { .. })),
            "{e}"
        );
    }
}
