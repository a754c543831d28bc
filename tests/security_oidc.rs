//! The built-in OIDC client-credentials token provider (`sasl.oauthbearer.method=oidc`,
//! feature `oidc`) against a SASL_SSL cluster of the test kit, whose brokers validate
//! unsecured JWTs. The token endpoint is a tiny HTTP server in this file on 127.0.0.1: it
//! checks the client-credentials request (form body, HTTP Basic id and secret), answers
//! `401 invalid_client` to a wrong secret, and otherwise issues an unsecured JWT for the
//! super user with a short `expires_in`, recording who asked and when.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::consumer::Consumer;
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::{ClientConfig, Error};
use kafka_testkit::{ClusterOptions, KafkaCluster, SaslMechanism, Security, SUPER_USER};
use support::common::{blocking, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SECRET: &str = "s3cret-of-the-client";
/// Lifetime of the issued tokens: short, so a test of ~25 s sees several refreshes.
const LIFETIME_S: u64 = 8;

fn sasl_ssl() -> &'static KafkaCluster {
    static C: OnceLock<KafkaCluster> = OnceLock::new();
    C.get_or_init(|| {
        let t0 = Instant::now();
        let c = KafkaCluster::start(ClusterOptions {
            allow_external: false,
            heap_mb: 384,
            ..ClusterOptions::default().security(Security::SaslSsl)
        })
        .expect("start the SASL_SSL cluster");
        eprintln!("SASL_SSL cluster started in {:.1?}", t0.elapsed());
        c
    })
}

/// One token request the endpoint answered with a token: client id and when.
#[derive(Clone, Debug)]
struct Issued {
    client_id: String,
    at: Instant,
}

/// The token endpoint: its URL and the tokens it issued.
struct Endpoint {
    url: String,
    issued: Arc<Mutex<Vec<Issued>>>,
    refused: Arc<Mutex<usize>>,
}

fn unsecured_jwt(sub: &str, lifetime_s: u64) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none"}"#),
        b64.encode(format!(
            r#"{{"sub":"{sub}","iat":{now},"exp":{}}}"#,
            now + lifetime_s
        ))
    )
}

/// Reads one HTTP/1.1 request: head and body (by Content-Length).
async fn read_request(s: &mut tokio::net::TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
            return Some((head, body));
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3A", ":").replace('+', " ")))
        .collect()
}

async fn token_endpoint() -> Endpoint {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/oauth2/token", listener.local_addr().unwrap());
    let issued = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(0));
    let (iss, refs) = (issued.clone(), refused.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let (iss, refs) = (iss.clone(), refs.clone());
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut s).await else {
                    return;
                };
                let basic = head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("authorization")
                        .then(|| v.trim().strip_prefix("Basic ").map(str::to_string))?
                });
                let creds = basic
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let (id, secret) = creds.split_once(':').unwrap_or(("", ""));
                let f = form(&body);
                let ok = head.starts_with("POST /oauth2/token ")
                    && f.get("grant_type").map(String::as_str) == Some("client_credentials")
                    && f.get("scope").map(String::as_str) == Some("kafka:all")
                    && secret == SECRET;
                let (status, json) = if ok {
                    iss.lock().unwrap().push(Issued {
                        client_id: id.to_string(),
                        at: Instant::now(),
                    });
                    (
                        "200 OK",
                        format!(
                            r#"{{"access_token":"{}","token_type":"Bearer","expires_in":{LIFETIME_S}}}"#,
                            unsecured_jwt(SUPER_USER, LIFETIME_S)
                        ),
                    )
                } else {
                    *refs.lock().unwrap() += 1;
                    (
                        "401 Unauthorized",
                        r#"{"error":"invalid_client","error_description":"client authentication failed"}"#.to_string(),
                    )
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                    json.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Endpoint {
        url,
        issued,
        refused,
    }
}

/// The kit's TLS keys (protocol, CA) and `sasl.mechanism=OAUTHBEARER`, no token source.
fn oauthbearer_config(c: &KafkaCluster) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", c.bootstrap());
    for (k, v) in c.client_config(SUPER_USER, SaslMechanism::Plain).unwrap() {
        if !k.starts_with("sasl.") {
            cfg.set(k, v);
        }
    }
    cfg.set("sasl.mechanism", "OAUTHBEARER");
    cfg
}

/// [`oauthbearer_config`] with the OIDC provider.
fn oidc_config(c: &KafkaCluster, endpoint: &str, client_id: &str, secret: &str) -> ClientConfig {
    let mut cfg = oauthbearer_config(c);
    cfg.set("sasl.oauthbearer.method", "oidc");
    cfg.set("sasl.oauthbearer.token.endpoint.url", endpoint);
    cfg.set("sasl.oauthbearer.client.id", client_id);
    cfg.set("sasl.oauthbearer.client.secret", secret);
    cfg.set("sasl.oauthbearer.scope", "kafka:all");
    cfg
}

/// Produce and consume over SASL_SSL OAUTHBEARER for ~25 s with tokens of 8 s: every record
/// arrives once and in order, and each client asked the endpoint again before its token
/// expired (so re-authentication always had a fresh token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_tokens_produce_consume_and_refresh_before_expiry() {
    let c = blocking(sasl_ssl).await;
    let ep = token_endpoint().await;
    let topic = unique("oidc");
    let admin = AdminClient::new(&oidc_config(c, &ep.url, "oidc-admin", SECRET))
        .await
        .expect("admin over OIDC");
    admin
        .create_topic(NewTopic::new(&topic, 1, 1))
        .await
        .expect("create topic");
    let producer = Producer::new(&oidc_config(c, &ep.url, "oidc-producer", SECRET))
        .await
        .expect("producer over OIDC");
    let mut ccfg = oidc_config(c, &ep.url, "oidc-consumer", SECRET);
    ccfg.set("group.id", unique("oidc-g"));
    ccfg.set("auto.offset.reset", "earliest");
    let consumer = Consumer::new(&ccfg).await.expect("consumer over OIDC");
    consumer.subscribe(&[topic.as_str()]).unwrap();

    let t0 = Instant::now();
    let mut sent = 0usize;
    let mut got = Vec::new();
    while t0.elapsed() < Duration::from_secs(25) {
        for _ in 0..10 {
            producer
                .send_and_wait(ProducerRecord::new(topic.as_str()).value(format!("v-{sent}")))
                .await
                .unwrap_or_else(|e| panic!("send {sent}: {e}"));
            sent += 1;
        }
        while got.len() < sent {
            let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
                .await
                .expect("records within 60 s")
                .expect("recv");
            got.push(String::from_utf8_lossy(m.value().unwrap()).into_owned());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let want: Vec<String> = (0..sent).map(|i| format!("v-{i}")).collect();
    assert_eq!(got, want, "no loss, no duplicate, in order");
    consumer.close().await.unwrap();
    producer.close(Duration::from_secs(10)).await.unwrap();
    drop(admin);

    let issued = ep.issued.lock().unwrap().clone();
    assert_eq!(*ep.refused.lock().unwrap(), 0, "no bad request");
    for client in ["oidc-producer", "oidc-consumer"] {
        let times: Vec<Instant> = issued
            .iter()
            .filter(|i| i.client_id == client)
            .map(|i| i.at)
            .collect();
        assert!(
            times.len() >= 3,
            "{client}: only {} tokens in 25 s of {LIFETIME_S} s tokens: {issued:?}",
            times.len()
        );
        for w in times.windows(2) {
            let gap = w[1] - w[0];
            assert!(
                gap < Duration::from_secs(LIFETIME_S),
                "{client}: a new token {gap:?} after the previous one, which lived {LIFETIME_S} s"
            );
            // Not on every connection: the cached token is reused until ~80% of its life
            // (the JWT's `exp` has whole seconds, so its life can look up to 1 s shorter).
            assert!(
                gap >= Duration::from_secs(LIFETIME_S).mul_f64(0.6),
                "{client}: a new token only {gap:?} after the previous one"
            );
        }
    }
}

/// The same provider set up the way Java and librdkafka services spell it: Java's
/// `sasl.login.callback.handler.class=...OAuthBearerLoginCallbackHandler` with the id,
/// secret and scope in the JAAS line (KIP-768) and Java 4.1's default JWT retriever; Java
/// 4.1's and librdkafka's `sasl.oauthbearer.client.credentials.client.id` / `.secret`
/// (librdkafka's aliases) with `sasl.oauthbearer.grant.type=client_credentials`. Each gets
/// tokens from the endpoint and produces. Java's handler class without an endpoint is a
/// configuration error naming the endpoint key, as in Java.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_as_java_and_librdkafka_configure_it() {
    let c = blocking(sasl_ssl).await;
    let ep = token_endpoint().await;
    let base = || oauthbearer_config(c);
    const HANDLER: &str =
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler";
    let mut java = base();
    java.set("sasl.login.callback.handler.class", HANDLER);
    java.set("sasl.oauthbearer.token.endpoint.url", &ep.url);
    java.set(
        "sasl.oauthbearer.jwt.retriever.class",
        "org.apache.kafka.common.security.oauthbearer.DefaultJwtRetriever",
    );
    java.set(
        "sasl.jaas.config",
        format!(
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId="java-style" clientSecret="{SECRET}" scope="kafka:all";"#
        ),
    );
    let mut rdkafka = base();
    rdkafka.set("sasl.oauthbearer.method", "oidc");
    rdkafka.set("sasl.oauthbearer.grant.type", "client_credentials");
    rdkafka.set("sasl.oauthbearer.token.endpoint.url", &ep.url);
    rdkafka.set(
        "sasl.oauthbearer.client.credentials.client.id",
        "rdkafka-style",
    );
    rdkafka.set("sasl.oauthbearer.client.credentials.client.secret", SECRET);
    rdkafka.set("sasl.oauthbearer.scope", "kafka:all");
    let topic = unique("oidc-styles");
    for (style, cfg) in [("java-style", java), ("rdkafka-style", rdkafka)] {
        let p = Producer::new(&cfg)
            .await
            .unwrap_or_else(|e| panic!("{style}: {e}"));
        p.send_and_wait(ProducerRecord::new(topic.as_str()).value(style))
            .await
            .unwrap_or_else(|e| panic!("{style}: {e}"));
        p.close(Duration::from_secs(10)).await.unwrap();
        assert!(
            ep.issued
                .lock()
                .unwrap()
                .iter()
                .any(|i| i.client_id == style),
            "{style}: a token from the endpoint"
        );
    }
    let mut no_endpoint = base();
    no_endpoint.set("sasl.login.callback.handler.class", HANDLER);
    let e = Producer::new(&no_endpoint)
        .await
        .expect_err("Java's OIDC handler needs the endpoint");
    assert!(
        matches!(&e, Error::Config(_))
            && e.to_string()
                .contains("sasl.oauthbearer.token.endpoint.url"),
        "{e}"
    );
}

/// A wrong client secret: a typed authentication error naming OAUTHBEARER and the endpoint,
/// quickly, without the secret in the error or in the config's Debug.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_bad_client_secret_is_a_typed_error_without_the_secret() {
    let c = blocking(sasl_ssl).await;
    let ep = token_endpoint().await;
    let wrong = "wrong-secret-value-42";
    let cfg = oidc_config(c, &ep.url, "oidc-bad", wrong);
    let shown = format!("{cfg:?}");
    assert!(!shown.contains(wrong), "{shown}");
    let t0 = Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(30), Producer::new(&cfg))
        .await
        .expect("an answer within 30 s")
        .expect_err("a wrong client secret must fail");
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    match &e {
        Error::Authentication { mechanism, message } => {
            assert_eq!(mechanism, "OAUTHBEARER", "{e}");
            assert!(message.contains(&ep.url), "names the endpoint: {e}");
            assert!(message.contains("401"), "{e}");
            assert!(message.contains("invalid_client"), "{e}");
        }
        other => panic!("expected Error::Authentication, got {other:?}"),
    }
    assert!(!e.is_retriable(), "{e}");
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(!text.contains(wrong), "{text}");
    }
    assert!(*ep.refused.lock().unwrap() >= 1);
    assert!(ep.issued.lock().unwrap().is_empty());
}

/// Configuration mistakes of the OIDC provider fail client creation, naming the key.
#[tokio::test]
async fn oidc_config_mistakes_name_the_key() {
    let base = || {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", "127.0.0.1:1");
        cfg.set("security.protocol", "sasl_plaintext");
        cfg.set("sasl.mechanism", "OAUTHBEARER");
        cfg.set("sasl.oauthbearer.method", "oidc");
        cfg
    };
    let e = Producer::new(&base()).await.expect_err("no endpoint");
    assert!(
        e.to_string()
            .contains("sasl.oauthbearer.token.endpoint.url"),
        "{e}"
    );
    let mut cfg = base();
    cfg.set("sasl.oauthbearer.token.endpoint.url", "ftp://idp/token");
    cfg.set("sasl.oauthbearer.client.id", "a");
    cfg.set("sasl.oauthbearer.client.secret", SECRET);
    let e = Producer::new(&cfg).await.expect_err("bad scheme");
    assert!(
        matches!(&e, Error::Config(_))
            && e.to_string()
                .contains("sasl.oauthbearer.token.endpoint.url"),
        "{e}"
    );
    assert!(!e.to_string().contains(SECRET), "{e}");
    let mut cfg = base();
    cfg.set(
        "sasl.oauthbearer.token.endpoint.url",
        "http://127.0.0.1:1/t",
    );
    cfg.set("sasl.oauthbearer.client.id", "a");
    let e = Producer::new(&cfg).await.expect_err("no secret");
    assert!(
        e.to_string().contains("sasl.oauthbearer.client.secret"),
        "{e}"
    );
    // Java's JAAS options give the id and secret too.
    let mut cfg = base();
    cfg.set(
        "sasl.oauthbearer.token.endpoint.url",
        "http://127.0.0.1:1/t",
    );
    cfg.set(
        "sasl.jaas.config",
        format!(
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId="a" clientSecret="{SECRET}" scope="s";"#
        ),
    );
    cfg.set("socket.connection.setup.timeout.ms", "2000");
    cfg.set("request.timeout.ms", "3000");
    let e = tokio::time::timeout(Duration::from_secs(30), Producer::new(&cfg))
        .await
        .expect("an answer")
        .expect_err("nothing listens on port 1");
    assert!(
        !matches!(e, Error::Config(_)),
        "the JAAS options suffice: {e}"
    );
    assert!(!e.to_string().contains(SECRET), "{e}");
}
