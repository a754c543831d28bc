//! Secured clusters: the client listener's protocol ([`Security`]), the test PKI (a CA, broker
//! and client certificates made with `rcgen`, plus deliberately bad material), the SASL users,
//! the broker properties that wire them up, and the client settings (kafka-sdk/librdkafka keys
//! and Java `client.properties`) a test needs to connect as one of the users.
//!
//! Only the client listener is secured; the controller listener and the inter-broker
//! `INTERNAL` listener stay PLAINTEXT (principal `User:ANONYMOUS`, a super user), which is
//! also where the kit's own probes, topic creation and ACL helpers go.

use std::fmt::{self, Write as _};
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::error::{IoContext, Result, TestkitError};

/// The security protocol of a cluster's client listener ([`ClusterOptions::security`]).
///
/// Everything but [`Plaintext`](Security::Plaintext) also turns on the `StandardAuthorizer`
/// with `super.users=User:admin;User:ANONYMOUS` and `allow.everyone.if.no.acl.found=false`.
///
/// [`ClusterOptions::security`]: crate::ClusterOptions::security
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Security {
    /// No TLS, no authentication, no authorizer (the default).
    #[default]
    Plaintext,
    /// TLS with a certificate signed by the kit's test CA; clients need no certificate and
    /// are `User:ANONYMOUS` (a super user).
    Ssl,
    /// TLS with client certificates required (`ssl.client.auth=required`, mTLS). The
    /// principal is the certificate's CN (`ssl.principal.mapping.rules`), so the kit's
    /// client certificate for `admin` is the super user and the others need ACLs.
    SslClientAuth,
    /// SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER) without TLS.
    SaslPlaintext,
    /// SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER) over TLS.
    SaslSsl,
}

impl Security {
    /// The Kafka security protocol name: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    pub fn protocol(self) -> &'static str {
        match self {
            Security::Plaintext => "PLAINTEXT",
            Security::Ssl | Security::SslClientAuth => "SSL",
            Security::SaslPlaintext => "SASL_PLAINTEXT",
            Security::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether the client listener speaks TLS.
    pub fn tls(self) -> bool {
        matches!(
            self,
            Security::Ssl | Security::SslClientAuth | Security::SaslSsl
        )
    }

    /// Whether the client listener requires SASL authentication.
    pub fn sasl(self) -> bool {
        matches!(self, Security::SaslPlaintext | Security::SaslSsl)
    }

    /// Whether anything is secured (TLS or SASL, and the authorizer).
    pub fn secured(self) -> bool {
        self != Security::Plaintext
    }

    /// Name of the client listener (also the `listener.name.<lower>.` config prefix).
    pub(crate) fn listener_name(self) -> &'static str {
        match self {
            Security::SslClientAuth => "SSL",
            other => other.protocol(),
        }
    }
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Security::Plaintext => "plaintext",
            Security::Ssl => "ssl",
            Security::SslClientAuth => "mtls",
            Security::SaslPlaintext => "sasl_plaintext",
            Security::SaslSsl => "sasl_ssl",
        })
    }
}

impl FromStr for Security {
    type Err = String;

    /// Accepts `plaintext`, `ssl`, `mtls` (also `ssl_client_auth`), `sasl_plaintext`,
    /// `sasl_ssl`, in any case, with `-` or `_`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "plaintext" => Ok(Security::Plaintext),
            "ssl" => Ok(Security::Ssl),
            "mtls" | "ssl_client_auth" => Ok(Security::SslClientAuth),
            "sasl_plaintext" => Ok(Security::SaslPlaintext),
            "sasl_ssl" => Ok(Security::SaslSsl),
            _ => Err(format!(
                "unknown security {s:?}: expected plaintext, ssl, mtls, sasl_plaintext or sasl_ssl"
            )),
        }
    }
}

/// A SASL mechanism enabled on a SASL client listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// `PLAIN` (users in the listener's JAAS config).
    Plain,
    /// `SCRAM-SHA-256` (users created at format time).
    ScramSha256,
    /// `SCRAM-SHA-512` (users created at format time).
    ScramSha512,
    /// `OAUTHBEARER` with the broker's unsecured JWT validator: any unsigned token is
    /// accepted and its `sub` claim is the principal. For tests only.
    OAuthBearer,
}

impl SaslMechanism {
    /// Every mechanism the kit enables, in the order it prints them.
    pub const ALL: [SaslMechanism; 4] = [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
        SaslMechanism::OAuthBearer,
    ];

    /// The mechanism's name as Kafka spells it, e.g. `SCRAM-SHA-512`.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    fn is_scram(self) -> bool {
        matches!(
            self,
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512
        )
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SaslMechanism {
    type Err = String;

    /// Accepts the Kafka names in any case (`plain`, `scram-sha-256`, `SCRAM-SHA-512`,
    /// `oauthbearer`).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        SaslMechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown SASL mechanism {s:?}: expected PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 \
                     or OAUTHBEARER"
                )
            })
    }
}

/// A user of a secured cluster: usable with PLAIN and both SCRAMs (same password), with
/// OAUTHBEARER (an unsecured token whose `sub` is the name) and, on an mTLS cluster, with
/// the client certificate whose CN is the name.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// The user name (the principal is `User:<name>`).
    pub name: String,
    /// The password (PLAIN and SCRAM).
    pub password: String,
    /// Whether the user is a super user (only `admin`).
    pub superuser: bool,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("superuser", &self.superuser)
            .finish()
    }
}

/// Name of the super user.
pub const SUPER_USER: &str = "admin";
/// Names of the users every secured cluster has: the super user first, then two ordinary
/// users for ACL tests.
pub const USER_NAMES: [&str; 3] = [SUPER_USER, "alice", "bob"];

/// The users of a secured cluster (fixed names, password `<name>-secret`).
pub(crate) fn default_users() -> Vec<User> {
    USER_NAMES
        .iter()
        .map(|n| User {
            name: n.to_string(),
            password: format!("{n}-secret"),
            superuser: *n == SUPER_USER,
        })
        .collect()
}

/// Password of the encrypted client key [`TlsFiles::client_key_encrypted`].
pub const CLIENT_KEY_PASSWORD: &str = "client-key-secret";
/// Host name in the SAN of the [`TlsFiles::wrong_host_cert`] certificate (and of the
/// `WRONG_HOST` listener's), which matches neither `localhost` nor `127.0.0.1`.
pub const WRONG_HOST_NAME: &str = "wrong-host.kafka-testkit.invalid";

/// The PEM files of a TLS cluster's test PKI, all in `<cluster dir>/tls/`.
///
/// Good material: [`ca_cert`](TlsFiles::ca_cert) signs the broker certificate (SAN
/// `localhost`, `127.0.0.1`) and one client certificate per user (CN = user name, for mTLS).
/// Bad material for negative tests: an unrelated CA and a client certificate it signed, an
/// expired client certificate (signed by the good CA), a server certificate for a wrong host
/// name, an expired server certificate, and an encrypted PKCS#8 copy of the admin client key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The test CA certificate (PEM); what clients trust.
    pub ca_cert: PathBuf,
    /// The broker certificate (PEM; SAN `localhost`, `127.0.0.1`), signed by the CA.
    pub broker_cert: PathBuf,
    /// The broker's private key (PKCS#8 PEM, unencrypted).
    pub broker_key: PathBuf,
    /// What the broker's `ssl.keystore.location` points at: key + certificate chain (PEM).
    pub broker_keystore: PathBuf,
    /// Directory holding `client-<user>.pem` / `client-<user>.key` for every user.
    pub dir: PathBuf,
    /// The admin client key encrypted with [`CLIENT_KEY_PASSWORD`] (PKCS#8 PBES2:
    /// PBKDF2-HMAC-SHA256 + AES-256-CBC, `ENCRYPTED PRIVATE KEY` PEM).
    pub client_key_encrypted: PathBuf,
    /// A CA certificate that signed nothing the broker uses: trusting only it must fail.
    pub untrusted_ca_cert: PathBuf,
    /// A client certificate (CN `admin`) signed by the untrusted CA, for mTLS rejection.
    pub untrusted_client_cert: PathBuf,
    /// The key of [`untrusted_client_cert`](TlsFiles::untrusted_client_cert).
    pub untrusted_client_key: PathBuf,
    /// A client certificate (CN `admin`) signed by the good CA that expired in 2021.
    pub expired_client_cert: PathBuf,
    /// The key of [`expired_client_cert`](TlsFiles::expired_client_cert).
    pub expired_client_key: PathBuf,
    /// A server certificate (good CA) whose only SAN is [`WRONG_HOST_NAME`], key included
    /// (keystore PEM); served by the `WRONG_HOST` listener when
    /// [`ClusterOptions::bad_tls_listeners`](crate::ClusterOptions::bad_tls_listeners) is set.
    pub wrong_host_cert: PathBuf,
    /// A server certificate (good CA, SAN `localhost`, `127.0.0.1`) that expired in 2021, key
    /// included (keystore PEM); served by the `EXPIRED` listener.
    pub expired_server_cert: PathBuf,
}

impl TlsFiles {
    /// The client certificate (PEM, CN = `user`, signed by the CA) of a cluster user.
    pub fn client_cert(&self, user: &str) -> PathBuf {
        self.dir.join(format!("client-{user}.pem"))
    }

    /// The unencrypted PKCS#8 PEM key of [`client_cert`](TlsFiles::client_cert).
    pub fn client_key(&self, user: &str) -> PathBuf {
        self.dir.join(format!("client-{user}.key"))
    }

    /// Key + certificate in one PEM file (a Java `ssl.keystore.type=PEM` keystore) for `user`.
    pub fn client_keystore(&self, user: &str) -> PathBuf {
        self.dir.join(format!("client-{user}-keystore.pem"))
    }
}

fn tls_err(what: &str, e: impl fmt::Display) -> TestkitError {
    TestkitError::Security(format!("{what}: {e}"))
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).ctx(|| format!("writing {}", path.display()))
}

/// A key pair and its certificate, PEM.
struct Pem {
    cert: String,
    key: KeyPair,
}

fn ca_params(cn: &str) -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_err("CA", e))?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "kafka-testkit");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    cn: &str,
    sans: &[&str],
    eku: ExtendedKeyUsagePurpose,
    expired: bool,
) -> Result<Pem> {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(sans).map_err(|e| tls_err(cn, e))?;
    // CN only, so the subject is `CN=<name>` and the mTLS principal rule maps it to the name.
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![eku];
    if expired {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let key = KeyPair::generate().map_err(|e| tls_err("generating a key", e))?;
    let cert = p
        .signed_by(&key, issuer)
        .map_err(|e| tls_err(&format!("signing the {cn} certificate"), e))?;
    Ok(Pem {
        cert: cert.pem(),
        key,
    })
}

/// Encrypts a PKCS#8 DER key with PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) and returns the
/// `ENCRYPTED PRIVATE KEY` PEM.
pub(crate) fn encrypt_pkcs8(der: &[u8], password: &str) -> Result<String> {
    use pkcs8::rand_core::{OsRng, RngCore};
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut iv);
    let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(10_000, &salt, &iv)
        .map_err(|e| tls_err("PBES2 parameters", e))?;
    let info = pkcs8::PrivateKeyInfo::try_from(der).map_err(|e| tls_err("parsing PKCS#8", e))?;
    let doc = info
        .encrypt_with_params(params, password)
        .map_err(|e| tls_err("encrypting PKCS#8", e))?;
    let pem = doc
        .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
        .map_err(|e| tls_err("encoding PEM", e))?;
    Ok(pem.to_string())
}

/// Generates the whole test PKI into `dir` (created if missing).
pub(crate) fn generate_tls(dir: &Path, users: &[User]) -> Result<TlsFiles> {
    fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    let files = TlsFiles {
        ca_cert: dir.join("ca.pem"),
        broker_cert: dir.join("broker.pem"),
        broker_key: dir.join("broker.key"),
        broker_keystore: dir.join("broker-keystore.pem"),
        dir: dir.to_path_buf(),
        client_key_encrypted: dir.join("client-admin-encrypted.key"),
        untrusted_ca_cert: dir.join("untrusted-ca.pem"),
        untrusted_client_cert: dir.join("untrusted-client.pem"),
        untrusted_client_key: dir.join("untrusted-client.key"),
        expired_client_cert: dir.join("expired-client.pem"),
        expired_client_key: dir.join("expired-client.key"),
        wrong_host_cert: dir.join("wrong-host-keystore.pem"),
        expired_server_cert: dir.join("expired-server-keystore.pem"),
    };

    let ca_key = KeyPair::generate().map_err(|e| tls_err("generating the CA key", e))?;
    let ca_p = ca_params("kafka-testkit test CA")?;
    let ca_cert = ca_p
        .self_signed(&ca_key)
        .map_err(|e| tls_err("self-signing the CA", e))?
        .pem();
    let ca = Issuer::new(ca_p, ca_key);
    write(&files.ca_cert, &ca_cert)?;

    let server = ExtendedKeyUsagePurpose::ServerAuth;
    let client = ExtendedKeyUsagePurpose::ClientAuth;
    let local_sans = ["localhost", "127.0.0.1"];

    let broker = leaf(&ca, "localhost", &local_sans, server.clone(), false)?;
    write(&files.broker_cert, &broker.cert)?;
    write(&files.broker_key, &broker.key.serialize_pem())?;
    write(
        &files.broker_keystore,
        &format!("{}{}{}", broker.key.serialize_pem(), broker.cert, ca_cert),
    )?;

    for u in users {
        let c = leaf(&ca, &u.name, &[], client.clone(), false)?;
        write(&files.client_cert(&u.name), &c.cert)?;
        write(&files.client_key(&u.name), &c.key.serialize_pem())?;
        write(
            &files.client_keystore(&u.name),
            &format!("{}{}{}", c.key.serialize_pem(), c.cert, ca_cert),
        )?;
        if u.superuser {
            write(
                &files.client_key_encrypted,
                &encrypt_pkcs8(&c.key.serialize_der(), CLIENT_KEY_PASSWORD)?,
            )?;
        }
    }

    let expired = leaf(&ca, SUPER_USER, &[], client.clone(), true)?;
    write(&files.expired_client_cert, &expired.cert)?;
    write(&files.expired_client_key, &expired.key.serialize_pem())?;

    let wrong = leaf(
        &ca,
        WRONG_HOST_NAME,
        &[WRONG_HOST_NAME],
        server.clone(),
        false,
    )?;
    write(
        &files.wrong_host_cert,
        &format!("{}{}{}", wrong.key.serialize_pem(), wrong.cert, ca_cert),
    )?;
    let old = leaf(&ca, "localhost", &local_sans, server, true)?;
    write(
        &files.expired_server_cert,
        &format!("{}{}{}", old.key.serialize_pem(), old.cert, ca_cert),
    )?;

    let other_key = KeyPair::generate().map_err(|e| tls_err("generating a key", e))?;
    let other_p = ca_params("kafka-testkit untrusted CA")?;
    let other_cert = other_p
        .self_signed(&other_key)
        .map_err(|e| tls_err("self-signing the untrusted CA", e))?
        .pem();
    write(&files.untrusted_ca_cert, &other_cert)?;
    let other = Issuer::new(other_p, other_key);
    let stranger = leaf(&other, SUPER_USER, &[], client, false)?;
    write(&files.untrusted_client_cert, &stranger.cert)?;
    write(&files.untrusted_client_key, &stranger.key.serialize_pem())?;
    Ok(files)
}

/// Quotes a value for a JAAS option (`"..."`, with `\` and `"` escaped).
fn jaas_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The `sasl.jaas.config` a Java client uses to log in as `user` with `mechanism`.
pub fn java_jaas_config(mechanism: SaslMechanism, user: &str, password: &str) -> String {
    match mechanism {
        SaslMechanism::Plain => format!(
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             username={} password={};",
            jaas_quote(user),
            jaas_quote(password)
        ),
        SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => format!(
            "org.apache.kafka.common.security.scram.ScramLoginModule required \
             username={} password={};",
            jaas_quote(user),
            jaas_quote(password)
        ),
        SaslMechanism::OAuthBearer => format!(
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
             unsecuredLoginStringClaim_sub={};",
            jaas_quote(user)
        ),
    }
}

/// Escapes a value for a Java `.properties` file (backslashes, and `:`/`=` are harmless in
/// values but leading spaces are not).
fn prop_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            ' ' if i == 0 => out.push_str("\\ "),
            c => out.push(c),
        }
    }
    out
}

/// Renders `(key, value)` pairs as a Java `.properties` file.
pub(crate) fn properties_text(props: &[(String, String)]) -> String {
    let mut text = String::from("# written by kafka-testkit\n");
    for (k, v) in props {
        let _ = writeln!(text, "{k}={}", prop_escape(v));
    }
    text
}

/// What a secured cluster was started with; kept by the cluster.
#[derive(Debug, Clone)]
pub(crate) struct SecuritySetup {
    pub(crate) security: Security,
    pub(crate) users: Vec<User>,
    pub(crate) tls: Option<TlsFiles>,
}

impl SecuritySetup {
    /// Creates the users and, for TLS, the PKI under `root/tls`.
    pub(crate) fn new(security: Security, root: &Path) -> Result<SecuritySetup> {
        let users = default_users();
        let tls = if security.tls() {
            Some(generate_tls(&root.join("tls"), &users)?)
        } else {
            None
        };
        Ok(SecuritySetup {
            security,
            users,
            tls,
        })
    }

    /// Broker properties of the client listener (`listener.name.<l>.*`), the authorizer and
    /// re-authentication. The caller sets `listeners`, the protocol map and the other
    /// listeners.
    pub(crate) fn broker_props(&self, max_reauth: Option<Duration>) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = Vec::new();
        let mut set = |k: String, v: String| p.push((k, v));
        let l = self.security.listener_name().to_ascii_lowercase();
        if let Some(tls) = &self.tls {
            set(format!("listener.name.{l}.ssl.keystore.type"), "PEM".into());
            set(
                format!("listener.name.{l}.ssl.keystore.location"),
                tls.broker_keystore.display().to_string(),
            );
            set(
                format!("listener.name.{l}.ssl.truststore.type"),
                "PEM".into(),
            );
            set(
                format!("listener.name.{l}.ssl.truststore.location"),
                tls.ca_cert.display().to_string(),
            );
            if self.security == Security::SslClientAuth {
                set(
                    format!("listener.name.{l}.ssl.client.auth"),
                    "required".into(),
                );
                set(
                    format!("listener.name.{l}.ssl.principal.mapping.rules"),
                    "RULE:^CN=([^,]+)$/$1/,DEFAULT".into(),
                );
            }
        }
        if self.security.sasl() {
            let names: Vec<&str> = SaslMechanism::ALL.iter().map(|m| m.name()).collect();
            set(
                format!("listener.name.{l}.sasl.enabled.mechanisms"),
                names.join(","),
            );
            let mut plain =
                String::from("org.apache.kafka.common.security.plain.PlainLoginModule required");
            for u in &self.users {
                let _ = write!(plain, " user_{}={}", u.name, jaas_quote(&u.password));
            }
            plain.push(';');
            set(format!("listener.name.{l}.plain.sasl.jaas.config"), plain);
            for m in [SaslMechanism::ScramSha256, SaslMechanism::ScramSha512] {
                set(
                    format!(
                        "listener.name.{l}.{}.sasl.jaas.config",
                        m.name().to_ascii_lowercase()
                    ),
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;".into(),
                );
            }
            // The broker validates OAUTHBEARER tokens with the unsecured validator (the
            // default when no server callback handler is configured).
            set(
                format!("listener.name.{l}.oauthbearer.sasl.jaas.config"),
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
                 unsecuredLoginStringClaim_sub=\"admin\";"
                    .into(),
            );
        }
        if self.security.secured() {
            set(
                "authorizer.class.name".into(),
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
            );
            set(
                "super.users".into(),
                format!("User:{SUPER_USER};User:ANONYMOUS"),
            );
            set("allow.everyone.if.no.acl.found".into(), "false".into());
        }
        if let Some(d) = max_reauth {
            set(
                "connections.max.reauth.ms".into(),
                d.as_millis().to_string(),
            );
        }
        p
    }

    /// `--add-scram` arguments of `kafka-storage format` (every user, both SCRAMs).
    pub(crate) fn format_args(&self) -> Vec<String> {
        if !self.security.sasl() {
            return Vec::new();
        }
        let mut args = Vec::new();
        for m in SaslMechanism::ALL.into_iter().filter(|m| m.is_scram()) {
            for u in &self.users {
                args.push("--add-scram".to_string());
                args.push(format!(
                    "{}=[name={},password={}]",
                    m.name(),
                    u.name,
                    u.password
                ));
            }
        }
        args
    }

    pub(crate) fn user(&self, name: &str) -> Result<&User> {
        self.users.iter().find(|u| u.name == name).ok_or_else(|| {
            TestkitError::Security(format!(
                "unknown user {name:?}; the cluster's users are {}",
                USER_NAMES.join(", ")
            ))
        })
    }

    fn need_sasl(&self) -> Result<()> {
        if self.security.sasl() {
            Ok(())
        } else {
            Err(TestkitError::Security(format!(
                "the cluster's client listener is {}, not SASL",
                self.security.protocol()
            )))
        }
    }

    /// kafka-sdk / librdkafka client keys to connect as `user` with `mechanism`.
    pub(crate) fn client_config(
        &self,
        user: &str,
        mechanism: SaslMechanism,
    ) -> Result<Vec<(String, String)>> {
        self.need_sasl()?;
        let u = self.user(user)?;
        let mut c = vec![
            (
                "security.protocol".to_string(),
                self.security.protocol().to_ascii_lowercase(),
            ),
            ("sasl.mechanism".to_string(), mechanism.name().to_string()),
        ];
        if mechanism == SaslMechanism::OAuthBearer {
            c.push((
                "sasl.oauthbearer.config".to_string(),
                format!("principal={}", u.name),
            ));
            c.push((
                "enable.sasl.oauthbearer.unsecure.jwt".to_string(),
                "true".to_string(),
            ));
        } else {
            c.push(("sasl.username".to_string(), u.name.clone()));
            c.push(("sasl.password".to_string(), u.password.clone()));
        }
        self.push_tls_client(&mut c, None);
        Ok(c)
    }

    /// kafka-sdk / librdkafka keys for a TLS-only cluster: the CA and, on mTLS, `user`'s
    /// certificate and key.
    pub(crate) fn tls_client_config(&self, user: &str) -> Result<Vec<(String, String)>> {
        if !self.security.tls() || self.security.sasl() {
            return Err(TestkitError::Security(format!(
                "the cluster's client listener is {}, not SSL (use client_config for SASL)",
                self.security.protocol()
            )));
        }
        self.user(user)?;
        let mut c = vec![("security.protocol".to_string(), "ssl".to_string())];
        self.push_tls_client(&mut c, Some(user));
        Ok(c)
    }

    fn push_tls_client(&self, c: &mut Vec<(String, String)>, cert_of: Option<&str>) {
        if let Some(tls) = &self.tls {
            c.push((
                "ssl.ca.location".to_string(),
                tls.ca_cert.display().to_string(),
            ));
            if let (Some(user), Security::SslClientAuth) = (cert_of, self.security) {
                c.push((
                    "ssl.certificate.location".to_string(),
                    tls.client_cert(user).display().to_string(),
                ));
                c.push((
                    "ssl.key.location".to_string(),
                    tls.client_key(user).display().to_string(),
                ));
            }
        }
    }

    /// Java client properties for `user` (`mechanism` is ignored unless the listener is SASL).
    pub(crate) fn java_properties(
        &self,
        user: &str,
        mechanism: SaslMechanism,
    ) -> Result<Vec<(String, String)>> {
        let u = self.user(user)?;
        let mut p = vec![(
            "security.protocol".to_string(),
            self.security.protocol().to_string(),
        )];
        if self.security.sasl() {
            p.push(("sasl.mechanism".to_string(), mechanism.name().to_string()));
            p.push((
                "sasl.jaas.config".to_string(),
                java_jaas_config(mechanism, &u.name, &u.password),
            ));
        }
        if let Some(tls) = &self.tls {
            p.push(("ssl.truststore.type".to_string(), "PEM".to_string()));
            p.push((
                "ssl.truststore.location".to_string(),
                tls.ca_cert.display().to_string(),
            ));
            if self.security == Security::SslClientAuth {
                p.push(("ssl.keystore.type".to_string(), "PEM".to_string()));
                p.push((
                    "ssl.keystore.location".to_string(),
                    tls.client_keystore(&u.name).display().to_string(),
                ));
            }
        }
        Ok(p)
    }
}

/// A listener serving a bad certificate ([`ClusterOptions::bad_tls_listeners`]), for
/// [`KafkaCluster::bad_tls_addr`].
///
/// [`ClusterOptions::bad_tls_listeners`]: crate::ClusterOptions::bad_tls_listeners
/// [`KafkaCluster::bad_tls_addr`]: crate::KafkaCluster::bad_tls_addr
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BadTls {
    /// TLS (no SASL) with a certificate signed by the test CA, for `localhost`/`127.0.0.1`,
    /// that expired in 2021.
    Expired,
    /// TLS (no SASL) with a valid certificate signed by the test CA whose only name is
    /// [`WRONG_HOST_NAME`].
    WrongHost,
}

/// The resource an [`Acl`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AclResource {
    /// One topic (literal name).
    Topic(String),
    /// Every topic whose name starts with the prefix.
    TopicPrefix(String),
    /// One consumer group (literal id).
    Group(String),
    /// Every group whose id starts with the prefix.
    GroupPrefix(String),
    /// One transactional id (literal).
    TransactionalId(String),
    /// Every transactional id that starts with the prefix.
    TransactionalIdPrefix(String),
    /// The cluster (`kafka-cluster`).
    Cluster,
}

/// The operation an [`Acl`] allows or denies (Kafka's `AclOperation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AclOperation {
    /// Every operation.
    All,
    /// Read (fetch, commit offsets, join a group...).
    Read,
    /// Write (produce).
    Write,
    /// Create (topics).
    Create,
    /// Delete (topics, records, groups).
    Delete,
    /// Alter.
    Alter,
    /// Describe (metadata, offsets, group descriptions...).
    Describe,
    /// ClusterAction (broker-internal).
    ClusterAction,
    /// DescribeConfigs.
    DescribeConfigs,
    /// AlterConfigs.
    AlterConfigs,
    /// IdempotentWrite (on the cluster).
    IdempotentWrite,
}

impl AclOperation {
    fn code(self) -> i8 {
        match self {
            AclOperation::All => 2,
            AclOperation::Read => 3,
            AclOperation::Write => 4,
            AclOperation::Create => 5,
            AclOperation::Delete => 6,
            AclOperation::Alter => 7,
            AclOperation::Describe => 8,
            AclOperation::ClusterAction => 9,
            AclOperation::DescribeConfigs => 10,
            AclOperation::AlterConfigs => 11,
            AclOperation::IdempotentWrite => 12,
        }
    }
}

/// One ACL binding for [`KafkaCluster::add_acls`](crate::KafkaCluster::add_acls), host `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// The principal, e.g. `User:alice`.
    pub principal: String,
    /// What it is about.
    pub resource: AclResource,
    /// Which operation.
    pub operation: AclOperation,
    /// `true` = ALLOW, `false` = DENY.
    pub allow: bool,
}

impl Acl {
    /// Allows `operation` on `resource` to `User:<user>`.
    pub fn allow(user: &str, resource: AclResource, operation: AclOperation) -> Acl {
        Acl {
            principal: format!("User:{user}"),
            resource,
            operation,
            allow: true,
        }
    }

    /// Denies `operation` on `resource` to `User:<user>`.
    pub fn deny(user: &str, resource: AclResource, operation: AclOperation) -> Acl {
        Acl {
            allow: false,
            ..Acl::allow(user, resource, operation)
        }
    }

    pub(crate) fn binding(&self) -> crate::wire::AclBinding {
        const LITERAL: i8 = 3;
        const PREFIXED: i8 = 4;
        let (resource_type, name, pattern_type) = match &self.resource {
            AclResource::Topic(n) => (2, n.as_str(), LITERAL),
            AclResource::TopicPrefix(n) => (2, n.as_str(), PREFIXED),
            AclResource::Group(n) => (3, n.as_str(), LITERAL),
            AclResource::GroupPrefix(n) => (3, n.as_str(), PREFIXED),
            AclResource::Cluster => (4, "kafka-cluster", LITERAL),
            AclResource::TransactionalId(n) => (5, n.as_str(), LITERAL),
            AclResource::TransactionalIdPrefix(n) => (5, n.as_str(), PREFIXED),
        };
        crate::wire::AclBinding {
            resource_type,
            resource_name: name.to_string(),
            pattern_type,
            principal: self.principal.clone(),
            operation: self.operation.code(),
            permission: if self.allow { 3 } else { 2 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_parses_cli_spellings() {
        assert_eq!("SASL_SSL".parse::<Security>().unwrap(), Security::SaslSsl);
        assert_eq!(
            "sasl-plaintext".parse::<Security>().unwrap(),
            Security::SaslPlaintext
        );
        assert_eq!("mtls".parse::<Security>().unwrap(), Security::SslClientAuth);
        assert_eq!("ssl".parse::<Security>().unwrap(), Security::Ssl);
        let err = "kerberos".parse::<Security>().unwrap_err();
        assert!(err.contains("kerberos"), "{err}");
        assert_eq!(
            "scram-sha-512".parse::<SaslMechanism>().unwrap(),
            SaslMechanism::ScramSha512
        );
        assert!("GSSAPI".parse::<SaslMechanism>().is_err());
    }

    #[test]
    fn user_debug_hides_the_password() {
        let u = &default_users()[1];
        let dbg = format!("{u:?}");
        assert!(
            dbg.contains("alice") && !dbg.contains("alice-secret"),
            "{dbg}"
        );
    }

    #[test]
    fn pki_files_are_pem_and_the_encrypted_key_is_encrypted() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate_tls(dir.path(), &default_users()).unwrap();
        let ca = fs::read_to_string(&files.ca_cert).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
        let ks = fs::read_to_string(&files.broker_keystore).unwrap();
        assert!(ks.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(ks.matches("BEGIN CERTIFICATE").count(), 2);
        for user in USER_NAMES {
            assert!(files.client_cert(user).exists() && files.client_key(user).exists());
        }
        let enc = fs::read_to_string(&files.client_key_encrypted).unwrap();
        assert!(
            enc.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
            "{enc}"
        );
        // It decrypts with the password back to the admin key, and not with another one.
        let (_, doc) = pkcs8::SecretDocument::from_pem(&enc).unwrap();
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).unwrap();
        let plain = info.decrypt(CLIENT_KEY_PASSWORD).unwrap();
        let admin_key = fs::read_to_string(files.client_key(SUPER_USER)).unwrap();
        let (_, admin_der) = pkcs8::SecretDocument::from_pem(&admin_key).unwrap();
        assert_eq!(plain.as_bytes(), admin_der.as_bytes());
        assert!(info.decrypt("wrong").is_err());
    }

    #[test]
    fn jaas_values_are_quoted() {
        let j = java_jaas_config(SaslMechanism::Plain, "a\"b", "p\\w");
        assert!(
            j.contains(r#"username="a\"b""#) && j.contains(r#"password="p\\w""#),
            "{j}"
        );
    }
}
