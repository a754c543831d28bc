//! kafka-sdk against secured Apache Kafka (issue 14), on clusters of the test kit:
//! - `sasl_ssl()`: SASL_SSL (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER unsecured JWT), the
//!   StandardAuthorizer (super user `admin`; `alice` and `bob` get only the ACLs a test adds),
//!   the bad-certificate listeners, and `connections.max.reauth.ms` = 10 s, so every test of
//!   this cluster that lasts longer also re-authenticates (KIP-368);
//! - `sasl_plaintext()`: SASL_PLAINTEXT with SCRAM-SHA-512 left out of the enabled mechanisms;
//! - `mtls()`: SSL with required client certificates.
//!
//! Every failure is checked for its typed error and for the time it took.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::config::{OAuthToken, OAuthTokenFuture, OAuthTokenProvider};
use kafka_sdk::consumer::Consumer;
use kafka_sdk::error::{AclResource as Denied, TlsFailure};
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::{ClientConfig, Error};
use kafka_testkit::{
    Acl, AclOperation, AclResource, BadTls, ClusterOptions, KafkaCluster, SaslMechanism, Security,
    CLIENT_KEY_PASSWORD, SUPER_USER,
};
use support::common::{blocking, unique};

fn start(opts: ClusterOptions, what: &str) -> KafkaCluster {
    let t0 = Instant::now();
    let c = KafkaCluster::start(ClusterOptions {
        allow_external: false,
        heap_mb: 384,
        ..opts
    })
    .unwrap_or_else(|e| panic!("start the {what} cluster: {e}"));
    eprintln!("{what} cluster started in {:.1?}", t0.elapsed());
    c
}

fn sasl_ssl() -> &'static KafkaCluster {
    static C: OnceLock<KafkaCluster> = OnceLock::new();
    C.get_or_init(|| {
        start(
            ClusterOptions {
                bad_tls_listeners: true,
                ..ClusterOptions::default()
                    .security(Security::SaslSsl)
                    .max_reauth(Duration::from_secs(10))
            },
            "SASL_SSL",
        )
    })
}

fn sasl_plaintext() -> &'static KafkaCluster {
    static C: OnceLock<KafkaCluster> = OnceLock::new();
    C.get_or_init(|| {
        start(
            ClusterOptions::default()
                .security(Security::SaslPlaintext)
                .broker_prop(
                    "listener.name.sasl_plaintext.sasl.enabled.mechanisms",
                    "PLAIN,SCRAM-SHA-256,OAUTHBEARER",
                ),
            "SASL_PLAINTEXT",
        )
    })
}

fn mtls() -> &'static KafkaCluster {
    static C: OnceLock<KafkaCluster> = OnceLock::new();
    C.get_or_init(|| {
        start(
            ClusterOptions::default().security(Security::SslClientAuth),
            "mTLS",
        )
    })
}

async fn cluster(f: fn() -> &'static KafkaCluster) -> &'static KafkaCluster {
    blocking(f).await
}

/// Our client config for `user` with `mech` (the kit's keys: protocol, mechanism, username,
/// password, CA), plus `extra`.
fn sasl_config(
    c: &KafkaCluster,
    user: &str,
    mech: SaslMechanism,
    extra: &[(&str, &str)],
) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", c.bootstrap());
    if mech == SaslMechanism::OAuthBearer {
        for (k, v) in c.client_config(user, SaslMechanism::Plain).unwrap() {
            if !k.starts_with("sasl.") {
                cfg.set(k, v);
            }
        }
        cfg.set("sasl.mechanism", "OAUTHBEARER");
        cfg.set("sasl.oauthbearer.config", format!("principal={user}"));
    } else {
        for (k, v) in c.client_config(user, mech).unwrap() {
            cfg.set(k, v);
        }
    }
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg
}

fn with(mut cfg: ClientConfig, extra: &[(&str, &str)]) -> ClientConfig {
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg
}

/// Produces `n` records `<topic>-<i>` and reads them back with a fresh group; asserts the
/// values in order.
async fn round_trip(cfg: &ClientConfig, topic: &str, n: usize) {
    let admin = AdminClient::new(cfg).await.expect("admin client");
    admin
        .create_topic(NewTopic::new(topic, 1, 1))
        .await
        .unwrap_or_else(|e| panic!("create {topic}: {e}"));
    let producer = Producer::new(cfg).await.expect("producer");
    for i in 0..n {
        producer
            .send_and_wait(ProducerRecord::new(topic).value(format!("{topic}-{i}")))
            .await
            .unwrap_or_else(|e| panic!("send {i}: {e}"));
    }
    let consumer = Consumer::new(&with(
        cfg.clone(),
        &[
            ("group.id", &unique("sec-g")),
            ("auto.offset.reset", "earliest"),
        ],
    ))
    .await
    .expect("consumer");
    consumer.subscribe(&[topic]).unwrap();
    let mut got = Vec::new();
    while got.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("records within 60s")
            .expect("recv");
        got.push(String::from_utf8_lossy(m.value().unwrap()).into_owned());
    }
    let want: Vec<String> = (0..n).map(|i| format!("{topic}-{i}")).collect();
    assert_eq!(got, want);
    consumer.close().await.unwrap();
    producer.close(Duration::from_secs(10)).await.unwrap();
}

/// `f`'s error, which must come within `bound`.
async fn fails_within<T: std::fmt::Debug>(
    bound: Duration,
    f: impl std::future::Future<Output = kafka_sdk::Result<T>>,
) -> Error {
    let t0 = Instant::now();
    let r = tokio::time::timeout(bound + Duration::from_secs(5), f)
        .await
        .unwrap_or_else(|_| panic!("no answer within {bound:?}"));
    let e = r.expect_err("expected an error");
    assert!(t0.elapsed() <= bound, "took {:?}: {e}", t0.elapsed());
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mechanism_over_sasl_ssl() {
    let c = cluster(sasl_ssl).await;
    for mech in [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
        SaslMechanism::OAuthBearer,
    ] {
        let cfg = sasl_config(c, SUPER_USER, mech, &[]);
        round_trip(&cfg, &unique(&format!("sec-{}", mech.name())), 5).await;
    }
}

/// A token provider set through the builders (OAUTHBEARER); it is called per connection.
struct Unsecured(std::sync::atomic::AtomicUsize);

impl OAuthTokenProvider for Unsecured {
    fn token(&self) -> OAuthTokenFuture<'_> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let payload = format!(r#"{{"sub":"admin","iat":{now},"exp":{}}}"#, now + 600);
            Ok(OAuthToken::new(format!(
                "{}.{}.",
                b64.encode(br#"{"alg":"none"}"#),
                b64.encode(payload)
            )))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_token_provider_through_the_builders() {
    let c = cluster(sasl_ssl).await;
    let mut cfg = sasl_config(c, SUPER_USER, SaslMechanism::OAuthBearer, &[]);
    cfg.remove("sasl.oauthbearer.config");
    // Without a provider and without sasl.oauthbearer.config: a config error naming the key.
    let e = fails_within(Duration::from_secs(10), AdminClient::new(&cfg)).await;
    assert!(
        matches!(&e, Error::Config(_)) && e.to_string().contains("sasl.oauthbearer.config"),
        "{e}"
    );
    let provider = Arc::new(Unsecured(Default::default()));
    let admin = AdminClient::builder(&cfg)
        .oauth_token_provider(provider.clone())
        .build()
        .await
        .expect("admin with a token provider");
    let topic = unique("sec-oauth-provider");
    admin
        .create_topic(NewTopic::new(&topic, 1, 1))
        .await
        .unwrap();
    let producer = Producer::builder(&cfg)
        .oauth_token_provider(provider.clone())
        .build()
        .await
        .unwrap();
    producer
        .send_and_wait(ProducerRecord::new(topic.as_str()).value("v"))
        .await
        .unwrap();
    assert!(provider.0.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plaintext_and_a_mechanism_the_broker_does_not_enable() {
    let c = cluster(sasl_plaintext).await;
    let cfg = sasl_config(c, SUPER_USER, SaslMechanism::ScramSha256, &[]);
    round_trip(&cfg, &unique("sec-plaintext-scram"), 3).await;
    let cfg = sasl_config(c, SUPER_USER, SaslMechanism::ScramSha512, &[]);
    let e = fails_within(Duration::from_secs(10), AdminClient::new(&cfg)).await;
    match &e {
        Error::Authentication { mechanism, message } => {
            assert_eq!(mechanism, "SCRAM-SHA-512");
            assert!(
                message.contains("PLAIN") && message.contains("SCRAM-SHA-256"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    // TLS to this plaintext port: a typed TLS error, quickly.
    let tls = with(
        sasl_config(c, SUPER_USER, SaslMechanism::Plain, &[]),
        &[
            ("security.protocol", "sasl_ssl"),
            ("ssl.endpoint.identification.algorithm", "none"),
            ("enable.ssl.certificate.verification", "false"),
        ],
    );
    let e = fails_within(Duration::from_secs(15), AdminClient::new(&tls)).await;
    assert!(
        matches!(
            &e,
            Error::Tls {
                failure: TlsFailure::NotTls,
                ..
            }
        ),
        "{e:?}"
    );
}

/// SCRAM credentials managed with the admin client (KIP-554), as `kafka-configs
/// --entity-type users` does: a new user's SCRAM-SHA-256 and -512 credentials authenticate
/// once created (the password itself is never sent: salt and salted password are), are
/// described without secrets, and once deleted the next authentication fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_credentials_created_and_deleted_with_the_admin_client() {
    use kafka_sdk::admin::ScramAlteration;
    use kafka_sdk::config::SaslMechanism as Mech;
    let c = cluster(sasl_ssl).await;
    let admin = AdminClient::new(&sasl_config(c, SUPER_USER, SaslMechanism::Plain, &[]))
        .await
        .unwrap();
    let user = unique("carol");
    let password = "carol-s3cret";
    let as_user = |mech: &str| {
        let mut cfg = sasl_config(c, SUPER_USER, SaslMechanism::Plain, &[]);
        cfg.set("sasl.mechanism", mech)
            .set("sasl.username", user.as_str())
            .set("sasl.password", password);
        cfg
    };
    let upserts = vec![
        ScramAlteration::Upsert {
            user: user.clone(),
            mechanism: Mech::ScramSha256,
            iterations: 4096,
            password: password.into(),
        },
        ScramAlteration::Upsert {
            user: user.clone(),
            mechanism: Mech::ScramSha512,
            iterations: 8192,
            password: password.into(),
        },
    ];
    assert!(!format!("{upserts:?}").contains(password), "Debug hides it");
    let r = admin.alter_user_scram_credentials(&upserts).await.unwrap();
    r[&user].as_ref().expect("credentials stored");
    let described = admin
        .describe_user_scram_credentials(&[user.as_str()])
        .await
        .unwrap();
    let mut infos: Vec<(Option<Mech>, i32)> = described[&user]
        .as_ref()
        .unwrap()
        .iter()
        .map(|i| (i.mechanism, i.iterations))
        .collect();
    infos.sort_by_key(|i| i.1);
    assert_eq!(
        infos,
        vec![
            (Some(Mech::ScramSha256), 4096),
            (Some(Mech::ScramSha512), 8192)
        ]
    );
    // The credentials authenticate (the metadata of no topic needs no ACL).
    for mech in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let a = AdminClient::new(&as_user(mech))
            .await
            .unwrap_or_else(|e| panic!("{mech}: {e}"));
        a.fetch_metadata(None)
            .await
            .unwrap_or_else(|e| panic!("{mech} as {user}: {e}"));
    }
    // Bounds are checked before anything is sent.
    let bad = admin
        .alter_user_scram_credentials(&[ScramAlteration::Upsert {
            user: user.clone(),
            mechanism: Mech::ScramSha256,
            iterations: 100,
            password: password.into(),
        }])
        .await
        .expect_err("too few iterations");
    assert!(matches!(bad, Error::InvalidArgument(_)), "{bad:?}");
    // Deleted: the next authentication with it fails, typed.
    let r = admin
        .alter_user_scram_credentials(&[ScramAlteration::Delete {
            user: user.clone(),
            mechanism: Mech::ScramSha256,
        }])
        .await
        .unwrap();
    r[&user].as_ref().expect("credential deleted");
    let e = tokio::time::timeout(Duration::from_secs(30), async {
        AdminClient::new(&as_user("SCRAM-SHA-256"))
            .await?
            .fetch_metadata(None)
            .await
    })
    .await
    .expect("an answer")
    .expect_err("the deleted credential no longer authenticates");
    assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
    let left = admin
        .describe_user_scram_credentials(&[user.as_str()])
        .await
        .unwrap();
    assert_eq!(left[&user].as_ref().unwrap().len(), 1, "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_fast_naming_the_mechanism() {
    let c = cluster(sasl_ssl).await;
    for (user, password, mech) in [
        ("alice", "wrong", "PLAIN"),
        ("alice", "wrong", "SCRAM-SHA-256"),
        ("mallory", "nobody", "SCRAM-SHA-512"),
        ("mallory", "nobody", "PLAIN"),
    ] {
        let cfg = with(
            sasl_config(c, "alice", SaslMechanism::Plain, &[]),
            &[
                ("sasl.mechanism", mech),
                ("sasl.username", user),
                ("sasl.password", password),
            ],
        );
        let e = fails_within(Duration::from_secs(10), Producer::new(&cfg)).await;
        match &e {
            Error::Authentication { mechanism, .. } => assert_eq!(mechanism, mech, "{e}"),
            other => panic!("{user}/{mech}: {other:?}"),
        }
        assert!(!e.is_retriable(), "{e}");
        assert!(!e.to_string().contains(password), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_failures_are_typed_and_bounded() {
    let c = cluster(sasl_ssl).await;
    let tls = c.tls().expect("TLS files").clone();
    let good = sasl_config(c, SUPER_USER, SaslMechanism::Plain, &[]);
    let bound = Duration::from_secs(15);
    // Plaintext to the TLS port.
    let e = fails_within(
        bound,
        AdminClient::new(&with(
            good.clone(),
            &[("security.protocol", "sasl_plaintext")],
        )),
    )
    .await;
    assert!(
        matches!(
            &e,
            Error::Tls {
                failure: TlsFailure::NotTls,
                ..
            }
        ),
        "{e:?}"
    );
    // A CA that did not sign the broker's certificate.
    let untrusted = tls.untrusted_ca_cert.to_string_lossy().into_owned();
    let e = fails_within(
        bound,
        AdminClient::new(&with(good.clone(), &[("ssl.ca.location", &untrusted)])),
    )
    .await;
    assert!(
        matches!(
            &e,
            Error::Tls {
                failure: TlsFailure::UntrustedCertificate,
                ..
            }
        ),
        "{e:?}"
    );
    // The bad-certificate listeners speak SSL (no SASL).
    let ssl = |addr: String, extra: &[(&str, &str)]| {
        with(
            ClientConfig::new()
                .with("bootstrap.servers", addr)
                .with("security.protocol", "ssl")
                .with("ssl.ca.location", tls.ca_cert.to_string_lossy()),
            extra,
        )
    };
    let wrong_host = c.bad_tls_addr(1, BadTls::WrongHost).unwrap();
    let e = fails_within(bound, AdminClient::new(&ssl(wrong_host.clone(), &[]))).await;
    assert!(
        matches!(
            &e,
            Error::Tls {
                failure: TlsFailure::HostnameMismatch,
                ..
            }
        ),
        "{e:?}"
    );
    // With host name verification off, the same listener gets past TLS.
    let r = AdminClient::builder(&ssl(
        wrong_host,
        &[("ssl.endpoint.identification.algorithm", "none")],
    ))
    .build()
    .await;
    assert!(!matches!(&r, Err(Error::Tls { .. })), "{:?}", r.err());
    let expired = c.bad_tls_addr(1, BadTls::Expired).unwrap();
    let e = fails_within(bound, AdminClient::new(&ssl(expired.clone(), &[]))).await;
    assert!(
        matches!(
            &e,
            Error::Tls {
                failure: TlsFailure::ExpiredCertificate,
                ..
            }
        ),
        "{e:?}"
    );
    // With certificate verification off, the expired certificate and an untrusted CA pass
    // (handshake signatures are still checked, so the connection works).
    let off = [("enable.ssl.certificate.verification", "false")];
    let r = AdminClient::builder(&ssl(expired, &off)).build().await;
    assert!(!matches!(&r, Err(Error::Tls { .. })), "{:?}", r.err());
    let r = AdminClient::builder(&with(
        good.clone(),
        &[("ssl.ca.location", &untrusted), off[0]],
    ))
    .build()
    .await;
    // Building bootstraps: a metadata request went over that TLS connection.
    r.expect("untrusted CA with verification off connects");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_denials_are_typed_and_name_the_resource() {
    let c = cluster(sasl_ssl).await;
    let admin_cfg = sasl_config(c, SUPER_USER, SaslMechanism::ScramSha256, &[]);
    let topic = unique("sec-acl");
    let admin = AdminClient::new(&admin_cfg).await.unwrap();
    admin
        .create_topic(NewTopic::new(&topic, 1, 1))
        .await
        .unwrap();
    let admin_producer = Producer::new(&admin_cfg).await.unwrap();
    admin_producer
        .send_and_wait(ProducerRecord::new(topic.as_str()).value("x"))
        .await
        .unwrap();
    let bound = Duration::from_secs(20);
    let bob = sasl_config(
        c,
        "bob",
        SaslMechanism::ScramSha512,
        &[
            ("max.block.ms", "10000"),
            ("request.timeout.ms", "10000"),
            ("delivery.timeout.ms", "15000"),
        ],
    );
    // Produce: the delivery result (or send itself) says which topic.
    let producer = Producer::new(&with(bob.clone(), &[("enable.idempotence", "false")]))
        .await
        .unwrap();
    let e = fails_within(
        bound,
        producer.send_and_wait(ProducerRecord::new(topic.as_str()).value("v")),
    )
    .await;
    assert!(
        matches!(
            &e,
            Error::Authorization {
                resource: Denied::Topic,
                ..
            }
        ) && e.to_string().contains(&topic),
        "{e:?}"
    );
    assert!(!e.is_retriable());
    // Consume: recv fails on the topic (bob may describe the group but not read the topic).
    let group = unique("sec-acl-g");
    blocking({
        let (group, topic) = (group.clone(), topic.clone());
        move || {
            sasl_ssl()
                .add_acls(&[
                    Acl::allow("bob", AclResource::Group(group), AclOperation::Read),
                    Acl::allow("bob", AclResource::Topic(topic), AclOperation::Describe),
                ])
                .unwrap()
        }
    })
    .await;
    let consumer = Consumer::new(&with(
        bob.clone(),
        &[("group.id", &group), ("auto.offset.reset", "earliest")],
    ))
    .await
    .unwrap();
    consumer.subscribe(&[topic.as_str()]).unwrap();
    let e = fails_within(bound, consumer.recv()).await;
    assert!(
        matches!(
            &e,
            Error::Authorization {
                resource: Denied::Topic,
                ..
            }
        ),
        "{e:?}"
    );
    // Group: a group bob may not use.
    let other = Consumer::new(&with(
        bob.clone(),
        &[
            ("group.id", "sec-acl-forbidden"),
            ("auto.offset.reset", "earliest"),
        ],
    ))
    .await
    .unwrap();
    other.subscribe(&[topic.as_str()]).unwrap();
    let e = fails_within(bound, other.recv()).await;
    assert!(
        matches!(
            &e,
            Error::Authorization {
                resource: Denied::Group,
                ..
            }
        ),
        "{e:?}"
    );
    // Transactional id.
    let txn = Producer::new(&with(bob.clone(), &[("transactional.id", "sec-acl-txn")]))
        .await
        .unwrap();
    let e = fails_within(bound, txn.init_transactions()).await;
    assert!(
        matches!(
            &e,
            Error::Authorization {
                resource: Denied::TransactionalId,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_fatal());
    // Admin: creating a topic.
    let bob_admin = AdminClient::new(&bob).await.unwrap();
    let e = fails_within(
        bound,
        bob_admin.create_topic(NewTopic::new(unique("sec-acl-new"), 1, 1)),
    )
    .await;
    assert!(
        matches!(
            &e,
            Error::Authorization {
                resource: Denied::Topic | Denied::Cluster,
                ..
            }
        ),
        "{e:?}"
    );
}

/// A lazily built idempotent producer (`lazy_bootstrap`, what the rdkafka drop-in uses) gets
/// its producer id in the background: a user without the right to one (no ACL at all) builds
/// it fine, and its records then fail with the typed authorization error at once, as does
/// every later send (the error ends the producer), instead of waiting for
/// `delivery.timeout.ms`. Built eagerly, the same producer fails at `build`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazily_built_producer_without_rights_fails_its_records_with_the_denial() {
    let c = cluster(sasl_ssl).await;
    let bob = sasl_config(
        c,
        "bob",
        SaslMechanism::ScramSha256,
        &[("delivery.timeout.ms", "60000"), ("max.block.ms", "60000")],
    );
    let denied = |e: &Error| {
        matches!(
            e,
            Error::Authorization {
                resource: Denied::Cluster,
                ..
            }
        )
    };
    let e = Producer::new(&bob)
        .await
        .expect_err("eager build without rights");
    assert!(denied(&e), "{e:?}");
    // bob may see the topic (its metadata), not write to it: no producer id for him.
    let topic = unique("sec-lazy");
    AdminClient::new(&sasl_config(c, SUPER_USER, SaslMechanism::ScramSha256, &[]))
        .await
        .unwrap()
        .create_topic(NewTopic::new(&topic, 1, 1))
        .await
        .unwrap();
    blocking({
        let topic = topic.clone();
        move || {
            sasl_ssl()
                .add_acls(&[Acl::allow(
                    "bob",
                    AclResource::Topic(topic),
                    AclOperation::Describe,
                )])
                .unwrap()
        }
    })
    .await;

    let t0 = Instant::now();
    let producer = Producer::builder(&bob)
        .lazy_bootstrap(true)
        .build()
        .await
        .expect("a lazy build does not ask for the producer id");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let bound = Duration::from_secs(20);
    let e = fails_within(
        bound,
        producer.send_and_wait(ProducerRecord::new(topic.as_str()).value("v")),
    )
    .await;
    assert!(denied(&e), "{e:?}");
    let again = fails_within(
        Duration::from_secs(2),
        producer.send_and_wait(ProducerRecord::new(topic.as_str()).value("w")),
    )
    .await;
    assert!(denied(&again) && again.is_fatal(), "{again:?}");
}

/// KIP-368: the broker's sessions last 10 s; 30 s of continuous produce and consume must see
/// no error, no duplicate and no loss while every connection re-authenticates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauthentication_during_continuous_produce_and_consume() {
    let c = cluster(sasl_ssl).await;
    let reauths_before = kafka_sdk::connection::reauthentications();
    let mut handles = Vec::new();
    for mech in [SaslMechanism::ScramSha512, SaslMechanism::OAuthBearer] {
        let cfg = sasl_config(c, SUPER_USER, mech, &[]);
        handles.push(tokio::spawn(async move {
            let topic = unique(&format!("sec-reauth-{}", mech.name()));
            let admin = AdminClient::new(&cfg).await.unwrap();
            admin
                .create_topic(NewTopic::new(&topic, 2, 1))
                .await
                .unwrap();
            let producer = Producer::new(&cfg).await.unwrap();
            let consumer = Consumer::new(&with(
                cfg.clone(),
                &[
                    ("group.id", &unique("sec-reauth-g")),
                    ("auto.offset.reset", "earliest"),
                ],
            ))
            .await
            .unwrap();
            consumer.subscribe(&[topic.as_str()]).unwrap();
            let run = Duration::from_secs(30);
            let t0 = Instant::now();
            let mut sent = 0u64;
            let mut seen = BTreeSet::new();
            let mut dups = 0;
            while t0.elapsed() < run {
                producer
                    .send_and_wait(
                        ProducerRecord::new(topic.as_str())
                            .key(sent.to_string())
                            .value(sent.to_string()),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{mech:?}: send {sent} at {:?}: {e}", t0.elapsed()));
                sent += 1;
                while let Ok(r) =
                    tokio::time::timeout(Duration::from_millis(5), consumer.recv()).await
                {
                    let m =
                        r.unwrap_or_else(|e| panic!("{mech:?}: recv at {:?}: {e}", t0.elapsed()));
                    let v: u64 = String::from_utf8_lossy(m.value().unwrap()).parse().unwrap();
                    if !seen.insert(v) {
                        dups += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while (seen.len() as u64) < sent && Instant::now() < deadline {
                if let Ok(r) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
                    let m = r.unwrap();
                    let v: u64 = String::from_utf8_lossy(m.value().unwrap()).parse().unwrap();
                    if !seen.insert(v) {
                        dups += 1;
                    }
                }
            }
            assert_eq!(dups, 0, "{mech:?}: duplicates");
            assert_eq!(seen.len() as u64, sent, "{mech:?}: lost records");
            assert!(sent > 100, "{mech:?}: only {sent} records in {run:?}");
            eprintln!("{mech:?}: {sent} records through re-authentications, no error");
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    // Sessions of 10 s over 30 s: each client's connections renewed on the same socket
    // (producer, consumer fetch and coordinator connections, two clients of each kind).
    let reauths = kafka_sdk::connection::reauthentications() - reauths_before;
    eprintln!("{reauths} re-authentications");
    assert!(reauths >= 4, "only {reauths} re-authentications");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_with_the_java_console_tools_over_sasl_ssl() {
    let c = cluster(sasl_ssl).await;
    let cfg = sasl_config(c, SUPER_USER, SaslMechanism::ScramSha256, &[]);
    let topic = unique("sec-interop");
    AdminClient::new(&cfg)
        .await
        .unwrap()
        .create_topic(NewTopic::new(&topic, 1, 1))
        .await
        .unwrap();
    // Ours -> Java.
    let producer = Producer::new(&cfg).await.unwrap();
    let ours: Vec<String> = (0..5).map(|i| format!("from-kafka-sdk-{i}")).collect();
    for v in &ours {
        producer
            .send_and_wait(ProducerRecord::new(topic.as_str()).value(v.clone()))
            .await
            .unwrap();
    }
    let props = blocking(|| {
        sasl_ssl()
            .java_client_properties(SUPER_USER, SaslMechanism::ScramSha512)
            .unwrap()
    })
    .await;
    let (t, p) = (topic.clone(), props.clone());
    let out = blocking(move || {
        let c = sasl_ssl();
        c.tool_output(
            "console-consumer",
            &[
                "--bootstrap-server",
                &c.bootstrap(),
                "--topic",
                &t,
                "--from-beginning",
                "--max-messages",
                "5",
                "--timeout-ms",
                "60000",
                "--command-config",
                p.to_str().unwrap(),
            ],
        )
        .unwrap()
    })
    .await;
    let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(got, ours, "{}", String::from_utf8_lossy(&out.stderr));
    // Java -> ours.
    let java: Vec<String> = (0..5).map(|i| format!("from-java-{i}")).collect();
    let (t, lines) = (topic.clone(), java.clone());
    let out = blocking(move || {
        use std::io::Write;
        let c = sasl_ssl();
        let mut child = c
            .tool(
                "console-producer",
                &[
                    "--bootstrap-server",
                    &c.bootstrap(),
                    "--topic",
                    &t,
                    "--command-config",
                    props.to_str().unwrap(),
                ],
            )
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for l in &lines {
            writeln!(stdin, "{l}").unwrap();
        }
        drop(stdin);
        child.wait_with_output().unwrap()
    })
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let consumer = Consumer::new(&with(
        cfg.clone(),
        &[
            ("group.id", &unique("sec-interop-g")),
            ("auto.offset.reset", "earliest"),
        ],
    ))
    .await
    .unwrap();
    consumer.subscribe(&[topic.as_str()]).unwrap();
    let mut got = Vec::new();
    while got.len() < 10 {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("records within 60s")
            .unwrap();
        got.push(String::from_utf8_lossy(m.value().unwrap()).into_owned());
    }
    assert_eq!(&got[..5], &ours[..]);
    assert_eq!(&got[5..], &java[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls() {
    let c = cluster(mtls).await;
    let tls = c.tls().unwrap().clone();
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", c.bootstrap());
    for (k, v) in c.tls_client_config(SUPER_USER).unwrap() {
        cfg.set(k, v);
    }
    round_trip(&cfg, &unique("sec-mtls"), 3).await;
    // The encrypted copy of the key, with its password (Java's keystore spelling too).
    let enc = with(
        cfg.clone(),
        &[
            (
                "ssl.key.location",
                &tls.client_key_encrypted.to_string_lossy(),
            ),
            ("ssl.key.password", CLIENT_KEY_PASSWORD),
        ],
    );
    AdminClient::new(&enc).await.expect("encrypted client key");
    let e = fails_within(
        Duration::from_secs(5),
        AdminClient::new(&with(enc.clone(), &[("ssl.key.password", "wrong")])),
    )
    .await;
    assert!(
        matches!(&e, Error::Config(_)) && !e.to_string().contains("wrong\""),
        "{e}"
    );
    // No client certificate, or one from an untrusted CA: refused by the broker, quickly.
    let mut none = cfg.clone();
    none.remove("ssl.certificate.location");
    none.remove("ssl.key.location");
    let e = fails_within(Duration::from_secs(20), AdminClient::new(&none)).await;
    assert!(matches!(&e, Error::Tls { .. }), "{e:?}");
    assert!(!e.is_retriable());
    let untrusted = with(
        cfg.clone(),
        &[
            (
                "ssl.certificate.location",
                &tls.untrusted_client_cert.to_string_lossy(),
            ),
            (
                "ssl.key.location",
                &tls.untrusted_client_key.to_string_lossy(),
            ),
        ],
    );
    let e = fails_within(Duration::from_secs(20), AdminClient::new(&untrusted)).await;
    assert!(matches!(&e, Error::Tls { .. }), "{e:?}");
}

/// Fetch responses of megabytes over TLS: while such a response arrives, the reader sets a
/// receive low-water mark on the socket (`SO_RCVLOWAT`, below the bytes still to come by a
/// margin for what the TLS layer already holds). Every record must arrive: a mark above
/// what the socket will still receive would stall the read until the request timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabyte_fetch_responses_over_sasl_ssl() {
    const N: usize = 4_000;
    let c = cluster(sasl_ssl).await;
    let cfg = sasl_config(c, SUPER_USER, SaslMechanism::ScramSha256, &[]);
    let topic = unique("sec-large");
    AdminClient::new(&cfg)
        .await
        .expect("admin client")
        .create_topic(NewTopic::new(&topic, 1, 1))
        .await
        .unwrap_or_else(|e| panic!("create {topic}: {e}"));
    let producer = Producer::new(&with(cfg.clone(), &[("linger.ms", "20")]))
        .await
        .expect("producer");
    let value = vec![b'x'; 1000];
    let mut acks = Vec::with_capacity(N);
    for i in 0..N {
        let rec = ProducerRecord::new(topic.as_str())
            .key(i.to_string())
            .value(value.clone());
        acks.push(producer.send(rec).await.expect("send"));
    }
    for a in acks {
        a.await.expect("ack");
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    // One response of ~4 MB: the whole partition fits `max.partition.fetch.bytes`.
    let consumer = Consumer::new(&with(
        cfg,
        &[
            ("group.id", &unique("sec-large-g")),
            ("auto.offset.reset", "earliest"),
            ("max.partition.fetch.bytes", "8388608"),
            ("request.timeout.ms", "20000"),
        ],
    ))
    .await
    .expect("consumer");
    consumer.subscribe(&[topic.as_str()]).unwrap();
    for i in 0..N {
        let m = tokio::time::timeout(Duration::from_secs(15), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("record {i} within 15s"))
            .expect("recv");
        assert_eq!(m.offset(), i as i64);
        assert_eq!(m.value().map(|v| v.len()), Some(1000));
    }
    consumer.close().await.unwrap();
}
