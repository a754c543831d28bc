//! Secured clusters: one SASL_SSL node shared by most tests (Java console producer/consumer
//! round trips with PLAIN and SCRAM-SHA-512, OAUTHBEARER principal, a wrong password, ACL
//! grants and denials, the bad-certificate listeners) and one mTLS node.

use std::io::Write as _;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kafka_testkit::{
    probe_api_versions, security_lines, Acl, AclOperation, AclResource, BadTls, ClusterOptions,
    KafkaCluster, SaslMechanism, Security, SUPER_USER,
};

/// The SASL_SSL cluster shared by the tests of this file (with the bad-certificate listeners).
fn sasl_ssl() -> &'static KafkaCluster {
    static CLUSTER: OnceLock<KafkaCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let t0 = Instant::now();
        let c = KafkaCluster::start(ClusterOptions {
            allow_external: false,
            heap_mb: 384,
            bad_tls_listeners: true,
            ..ClusterOptions::default().security(Security::SaslSsl)
        })
        .expect("start a SASL_SSL cluster");
        eprintln!("SASL_SSL cluster started in {:.1?}", t0.elapsed());
        c
    })
}

fn text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs the Java console producer with `lines` on stdin.
fn produce(cluster: &KafkaCluster, topic: &str, config: &Path, lines: &[String]) -> Output {
    let mut child = cluster
        .tool(
            "console-producer",
            &[
                "--bootstrap-server",
                &cluster.bootstrap(),
                "--topic",
                topic,
                "--command-config",
                config.to_str().unwrap(),
                // Fail fast instead of retrying a refused request for two minutes.
                "--producer-property",
                "delivery.timeout.ms=20000",
                "--producer-property",
                "request.timeout.ms=15000",
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn console-producer");
    {
        let mut stdin = child.stdin.take().unwrap();
        for l in lines {
            writeln!(stdin, "{l}").unwrap();
        }
    }
    child.wait_with_output().expect("console-producer output")
}

/// Runs the Java console consumer from the beginning until `max` records or 30 s.
fn consume(cluster: &KafkaCluster, topic: &str, group: &str, config: &Path, max: usize) -> Output {
    cluster
        .tool_output(
            "console-consumer",
            &[
                "--bootstrap-server",
                &cluster.bootstrap(),
                "--topic",
                topic,
                "--group",
                group,
                "--from-beginning",
                "--max-messages",
                &max.to_string(),
                "--timeout-ms",
                "30000",
                "--command-config",
                config.to_str().unwrap(),
            ],
        )
        .expect("run console-consumer")
}

fn round_trip(cluster: &KafkaCluster, topic: &str, group: &str, config: &Path) {
    let records: Vec<String> = (0..5).map(|i| format!("{topic}-record-{i}")).collect();
    let out = produce(cluster, topic, config, &records);
    assert!(out.status.success(), "producer: {}", text(&out));
    let out = consume(cluster, topic, group, config, records.len());
    assert!(out.status.success(), "consumer: {}", text(&out));
    let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(got, records, "consumer: {}", text(&out));
}

#[test]
fn sasl_ssl_cluster_is_secured_and_describes_itself() {
    let c = sasl_ssl();
    assert_eq!(c.security(), Security::SaslSsl);
    let ca = c.ca_path().expect("a CA");
    assert!(std::fs::read_to_string(&ca)
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    let names: Vec<&str> = c.users().iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["admin", "alice", "bob"]);
    assert!(c.users()[0].superuser && !c.users()[1].superuser);

    // The client listener speaks TLS: a plaintext ApiVersions gets no answer.
    assert!(probe_api_versions(&c.bootstrap(), Duration::from_secs(3)).is_err());

    // What `kafka-testkit up` prints after BOOTSTRAP=.
    let lines = security_lines(c);
    assert_eq!(lines[0], format!("CA={}", ca.display()));
    assert_eq!(lines[1], "USER=PLAIN:admin:admin-secret");
    assert!(lines.contains(&"USER=SCRAM-SHA-512:bob:bob-secret".to_string()));
    assert_eq!(lines.len(), 1 + 3 * 3, "{lines:?}");

    let cfg = c
        .client_config("alice", SaslMechanism::ScramSha256)
        .unwrap();
    let get = |k: &str| {
        cfg.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("security.protocol"), Some("sasl_ssl"));
    assert_eq!(get("sasl.mechanism"), Some("SCRAM-SHA-256"));
    assert_eq!(get("sasl.username"), Some("alice"));
    assert_eq!(get("sasl.password"), Some("alice-secret"));
    assert_eq!(get("ssl.ca.location"), Some(ca.to_str().unwrap()));
    let err = c
        .client_config("mallory", SaslMechanism::Plain)
        .unwrap_err();
    assert!(err.to_string().contains("mallory"), "{err}");
    assert!(
        c.tls_client_config("admin").is_err(),
        "not a TLS-only cluster"
    );
}

#[test]
fn java_round_trip_with_plain_as_the_super_user() {
    let c = sasl_ssl();
    c.create_topic("kt-sec-plain", 1, 1, &[]).unwrap();
    let config = c
        .java_client_properties(SUPER_USER, SaslMechanism::Plain)
        .unwrap();
    round_trip(c, "kt-sec-plain", "kt-sec-plain-group", &config);
}

#[test]
fn java_round_trip_with_scram_sha_512_as_alice_granted_by_acls() {
    let c = sasl_ssl();
    let topic = "kt-sec-scram";
    let group = "kt-sec-scram-group";
    c.create_topic(topic, 1, 1, &[]).unwrap();
    c.add_acls(&[
        Acl::allow(
            "alice",
            AclResource::Topic(topic.into()),
            AclOperation::Write,
        ),
        Acl::allow(
            "alice",
            AclResource::Topic(topic.into()),
            AclOperation::Read,
        ),
        Acl::allow(
            "alice",
            AclResource::Group(group.into()),
            AclOperation::Read,
        ),
    ])
    .unwrap();
    let config = c
        .java_client_properties("alice", SaslMechanism::ScramSha512)
        .unwrap();
    round_trip(c, topic, group, &config);
}

#[test]
fn bob_without_acls_is_denied() {
    let c = sasl_ssl();
    let topic = "kt-sec-denied";
    c.create_topic(topic, 1, 1, &[]).unwrap();
    // An ACL for somebody else must not let bob in.
    c.add_acls(&[Acl::allow(
        "alice",
        AclResource::Topic(topic.into()),
        AclOperation::All,
    )])
    .unwrap();
    let config = c
        .java_client_properties("bob", SaslMechanism::ScramSha256)
        .unwrap();
    let out = produce(c, topic, &config, &["nope".to_string()]);
    let all = text(&out);
    assert!(
        all.contains("TopicAuthorizationException") || all.contains("Not authorized"),
        "bob's produce was not refused: {all}"
    );
}

#[test]
fn wrong_password_is_refused() {
    let c = sasl_ssl();
    let good = c
        .java_client_properties("alice", SaslMechanism::ScramSha512)
        .unwrap();
    let bad = good.with_file_name("client-alice-wrong-password.properties");
    let props = std::fs::read_to_string(&good)
        .unwrap()
        .replace("password=\"alice-secret\"", "password=\"not-alice-secret\"");
    assert!(props.contains("not-alice-secret"), "{props}");
    std::fs::write(&bad, props).unwrap();
    let out = c
        .tool_output(
            "topics",
            &[
                "--bootstrap-server",
                &c.bootstrap(),
                "--command-config",
                bad.to_str().unwrap(),
                "--list",
            ],
        )
        .unwrap();
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains("SaslAuthenticationException") && all.contains("SCRAM-SHA-512"),
        "{all}"
    );
}

#[test]
fn oauthbearer_principal_is_the_token_sub() {
    let c = sasl_ssl();
    c.create_topic("kt-sec-oauth", 1, 1, &[]).unwrap();
    let list = |user: &str| {
        let config = c
            .java_client_properties(user, SaslMechanism::OAuthBearer)
            .unwrap();
        let out = c
            .tool_output(
                "topics",
                &[
                    "--bootstrap-server",
                    &c.bootstrap(),
                    "--command-config",
                    config.to_str().unwrap(),
                    "--list",
                ],
            )
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // sub=admin is the super user and sees the topic; sub=bob has no Describe ACL.
    assert!(list("admin").lines().any(|l| l == "kt-sec-oauth"));
    assert!(!list("bob").lines().any(|l| l == "kt-sec-oauth"));
}

#[test]
fn bad_certificate_listeners_fail_the_tls_handshake() {
    let c = sasl_ssl();
    let ca = c.ca_path().unwrap();
    let config = c.data_root().unwrap().join("ssl-only.properties");
    std::fs::write(
        &config,
        format!(
            "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={}\n",
            ca.display()
        ),
    )
    .unwrap();
    for (which, expect) in [
        (BadTls::Expired, "CertificateExpiredException"),
        (
            BadTls::WrongHost,
            "No subject alternative names matching IP address",
        ),
    ] {
        let addr = c.bad_tls_addr(1, which).unwrap();
        let out = c
            .tool_output(
                "topics",
                &[
                    "--bootstrap-server",
                    &addr,
                    "--command-config",
                    config.to_str().unwrap(),
                    "--list",
                ],
            )
            .unwrap();
        let all = text(&out);
        assert!(!out.status.success(), "{which:?}: {all}");
        assert!(all.contains(expect), "{which:?}: {all}");
    }
}

#[test]
fn mtls_cluster_accepts_the_admin_certificate_only() {
    let t0 = Instant::now();
    let c = KafkaCluster::start(ClusterOptions {
        allow_external: false,
        heap_mb: 384,
        ..ClusterOptions::default().security(Security::SslClientAuth)
    })
    .expect("start an mTLS cluster");
    eprintln!("mTLS cluster started in {:.1?}", t0.elapsed());
    c.create_topic("kt-mtls", 1, 1, &[]).unwrap();
    let tls = c.tls().unwrap();
    let cfg = c.tls_client_config("admin").unwrap();
    assert!(cfg.contains(&(
        "ssl.certificate.location".to_string(),
        tls.client_cert("admin").display().to_string()
    )));
    assert!(security_lines(&c).iter().all(|l| !l.starts_with("USER=")));

    // The admin certificate (CN=admin, mapped to User:admin) is the super user.
    let admin = c
        .java_client_properties("admin", SaslMechanism::Plain)
        .unwrap();
    round_trip(&c, "kt-mtls", "kt-mtls-group", &admin);

    // A client certificate from a CA the broker does not trust is refused.
    let stranger = c.data_root().unwrap().join("stranger.properties");
    let keystore = c.data_root().unwrap().join("stranger-keystore.pem");
    std::fs::write(
        &keystore,
        format!(
            "{}{}",
            std::fs::read_to_string(&tls.untrusted_client_key).unwrap(),
            std::fs::read_to_string(&tls.untrusted_client_cert).unwrap()
        ),
    )
    .unwrap();
    std::fs::write(
        &stranger,
        std::fs::read_to_string(&admin).unwrap().replace(
            &tls.client_keystore("admin").display().to_string(),
            &keystore.display().to_string(),
        ),
    )
    .unwrap();
    let out = c
        .tool_output(
            "topics",
            &[
                "--bootstrap-server",
                &c.bootstrap(),
                "--command-config",
                stranger.to_str().unwrap(),
                "--list",
            ],
        )
        .unwrap();
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("SslAuthenticationException"), "{all}");
}
