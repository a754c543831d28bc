//! Security settings: `security.protocol`, the TLS keys (`ssl.*`) and the SASL keys (`sasl.*`),
//! checked and loaded once when a config is built, and the OAUTHBEARER token-provider trait.
//!
//! What is checked here (each failure a [`ConfigError`] naming the key, never its secret value):
//! a SASL protocol needs a supported `sasl.mechanism` (GSSAPI and AWS_MSK_IAM: not supported);
//! PLAIN and SCRAM need a username and password (`sasl.username` / `sasl.password`, or Java's
//! `sasl.jaas.config`); a TLS protocol needs the `tls` feature, readable CA / certificate / key
//! files, a key that matches its certificate and, for an encrypted PKCS#8 key, the right
//! `ssl.key.password`. The TLS client configuration is built here, so that every connection
//! shares it.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::keys::*;
use super::resolve::Resolved;
use super::SecurityProtocol;
use crate::error::{ConfigError, Result};

/// A SASL mechanism kafka-sdk implements (`sasl.mechanism`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// `PLAIN` (RFC 4616): username and password in clear (use it over TLS).
    Plain,
    /// `SCRAM-SHA-256` (RFC 5802 / 7677).
    ScramSha256,
    /// `SCRAM-SHA-512` (RFC 5802).
    ScramSha512,
    /// `OAUTHBEARER` (RFC 7628, KIP-255): a bearer token from a provider.
    OAuthBearer,
}

impl SaslMechanism {
    /// The mechanism's name on the wire (`SCRAM-SHA-256`).
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    fn parse(key: &str, text: &str) -> Result<SaslMechanism, ConfigError> {
        let t = text.trim();
        Ok(match t.to_ascii_uppercase().as_str() {
            "PLAIN" => SaslMechanism::Plain,
            "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
            "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
            "OAUTHBEARER" => SaslMechanism::OAuthBearer,
            "GSSAPI" | "AWS_MSK_IAM" => {
                return Err(ConfigError::NotSupported {
                    key: key.to_string(),
                    detail: Some(format!(
                        "the {} SASL mechanism is not supported (use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)",
                        t.to_ascii_uppercase()
                    )),
                })
            }
            _ => {
                return Err(ConfigError::InvalidValue {
                    key: key.to_string(),
                    value: t.to_string(),
                    expected: "one of: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER".into(),
                })
            }
        })
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An OAUTHBEARER token, as a [`OAuthTokenProvider`] hands it out. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthToken {
    /// The compact token (usually a JWT) sent to the broker.
    pub value: String,
    /// When the token expires; the client asks for a new one before re-authenticating.
    pub expires_at: Option<SystemTime>,
    /// SASL extensions (KIP-342), e.g. Confluent Cloud's `logicalCluster` and
    /// `identityPoolId`.
    pub extensions: BTreeMap<String, String>,
}

impl OAuthToken {
    /// A token without expiry or extensions.
    pub fn new(value: impl Into<String>) -> OAuthToken {
        OAuthToken {
            value: value.into(),
            expires_at: None,
            extensions: BTreeMap::new(),
        }
    }
}

impl fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthToken")
            .field("value", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("extensions", &self.extensions.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The future a [`OAuthTokenProvider`] returns.
pub type OAuthTokenFuture<'a> =
    Pin<Box<dyn Future<Output = std::result::Result<OAuthToken, String>> + Send + 'a>>;

/// Where OAUTHBEARER tokens come from: implement it to fetch tokens from your identity
/// provider, and set it with the builders' `oauth_token_provider`. Called for every new
/// connection and every re-authentication; cache the token yourself if fetching is costly.
/// An `Err` (a message, never containing the secret) fails the connection attempt with
/// [`Error::Authentication`](crate::Error::Authentication).
///
/// ```
/// use kafka_sdk::config::{OAuthToken, OAuthTokenFuture, OAuthTokenProvider};
///
/// struct Fixed(String);
/// impl OAuthTokenProvider for Fixed {
///     fn token(&self) -> OAuthTokenFuture<'_> {
///         Box::pin(async move { Ok(OAuthToken::new(self.0.clone())) })
///     }
/// }
/// ```
pub trait OAuthTokenProvider: Send + Sync + 'static {
    /// A current token.
    fn token(&self) -> OAuthTokenFuture<'_>;
}

/// A builder's token provider, if one was set (its `Debug` only says whether).
#[derive(Clone, Default)]
pub(crate) struct OAuthSlot(pub(crate) Option<Arc<dyn OAuthTokenProvider>>);

impl OAuthSlot {
    /// Puts the provider into the built config.
    pub(crate) fn apply(self, security: &mut SecurityConfig) {
        if let Some(p) = self.0 {
            security.set_oauth_token_provider(p);
        }
    }
}

impl fmt::Debug for OAuthSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(<token provider>)"
        } else {
            "None"
        })
    }
}

/// librdkafka's unsecured JWT (`sasl.oauthbearer.config`) or Java's unsecured login
/// (`OAuthBearerLoginModule` with `unsecuredLoginStringClaim_sub`): for test clusters only.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct UnsecuredJwt {
    pub(crate) principal: String,
    pub(crate) scope: Vec<String>,
    pub(crate) lifetime: Duration,
    pub(crate) extensions: BTreeMap<String, String>,
}

impl UnsecuredJwt {
    /// The token (`alg: none`, no signature) valid from now for the lifetime.
    ///
    /// `iat` is the current second, rounded down: a broker's validator refuses a token issued
    /// after its clock (Kafka's default allowed skew is 0 ms), and a local broker checks it
    /// within a millisecond, so a millisecond `iat` rounded to nearest (librdkafka's `%.3f`)
    /// or its product with 1000 in floating point could lie ahead of it.
    pub(crate) fn token(&self) -> OAuthToken {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let iat = now.as_secs();
        let exp = iat.saturating_add(self.lifetime.as_secs());
        let mut payload = format!(
            "{{\"sub\":{},\"iat\":{iat},\"exp\":{exp}",
            json_string(&self.principal)
        );
        if !self.scope.is_empty() {
            let items: Vec<String> = self.scope.iter().map(|s| json_string(s)).collect();
            payload.push_str(&format!(",\"scope\":[{}]", items.join(",")));
        }
        payload.push('}');
        OAuthToken {
            value: format!(
                "{}.{}.",
                b64.encode(br#"{"alg":"none"}"#),
                b64.encode(payload.as_bytes())
            ),
            expires_at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(exp)),
            extensions: self.extensions.clone(),
        }
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A password or other secret: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// SASL settings of a client.
#[derive(Clone)]
pub(crate) struct SaslSettings {
    pub(crate) mechanism: SaslMechanism,
    /// PLAIN / SCRAM credentials.
    pub(crate) username: String,
    pub(crate) password: Secret,
    /// OAUTHBEARER: the unsecured JWT settings, if configured.
    pub(crate) unsecured_jwt: Option<UnsecuredJwt>,
    /// OAUTHBEARER: the application's token provider (set through a builder; wins over the
    /// unsecured JWT).
    pub(crate) token_provider: Option<Arc<dyn OAuthTokenProvider>>,
    /// OAUTHBEARER: the built-in OIDC client-credentials provider
    /// (`sasl.oauthbearer.method=oidc`); the builder's provider wins over it.
    #[cfg(feature = "oidc")]
    pub(crate) oidc: Option<Arc<crate::connection::oidc::OidcProvider>>,
}

impl SaslSettings {
    /// The OAUTHBEARER token provider to ask: the application's, else the OIDC one.
    pub(crate) fn provider(&self) -> Option<&dyn OAuthTokenProvider> {
        if let Some(p) = &self.token_provider {
            return Some(p.as_ref());
        }
        #[cfg(feature = "oidc")]
        if let Some(p) = &self.oidc {
            return Some(p.as_ref());
        }
        None
    }
}

impl PartialEq for SaslSettings {
    fn eq(&self, o: &Self) -> bool {
        self.mechanism == o.mechanism
            && self.username == o.username
            && self.password == o.password
            && self.unsecured_jwt == o.unsecured_jwt
            && self.oidc_eq(o)
            && match (&self.token_provider, &o.token_provider) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl Eq for SaslSettings {}

impl SaslSettings {
    #[cfg(feature = "oidc")]
    fn oidc_eq(&self, o: &Self) -> bool {
        match (&self.oidc, &o.oidc) {
            (None, None) => true,
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    #[cfg(not(feature = "oidc"))]
    fn oidc_eq(&self, _o: &Self) -> bool {
        true
    }
}

impl fmt::Debug for SaslSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslSettings")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("unsecured_jwt", &self.unsecured_jwt.is_some())
            .field("token_provider", &self.token_provider.is_some())
            .field("oidc", &self.oidc_debug())
            .finish()
    }
}

impl SaslSettings {
    #[cfg(feature = "oidc")]
    fn oidc_debug(&self) -> &dyn fmt::Debug {
        &self.oidc
    }

    #[cfg(not(feature = "oidc"))]
    fn oidc_debug(&self) -> &dyn fmt::Debug {
        &None::<()>
    }
}

/// The loaded TLS client configuration (shared by every connection of a client).
#[derive(Clone)]
pub(crate) struct TlsSettings {
    #[cfg(feature = "tls")]
    pub(crate) config: Arc<rustls::ClientConfig>,
}

impl PartialEq for TlsSettings {
    fn eq(&self, _o: &Self) -> bool {
        #[cfg(feature = "tls")]
        {
            Arc::ptr_eq(&self.config, &_o.config)
        }
        #[cfg(not(feature = "tls"))]
        true
    }
}

impl Eq for TlsSettings {}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsSettings { .. }")
    }
}

/// TLS and SASL settings of a client: built from the `ssl.*` / `sasl.*` keys when the config
/// is built (files read, keys decrypted). `Debug` never shows passwords, keys or tokens.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SecurityConfig {
    pub(crate) protocol: SecurityProtocol,
    pub(crate) sasl: Option<SaslSettings>,
    pub(crate) tls: Option<TlsSettings>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            protocol: SecurityProtocol::Plaintext,
            sasl: None,
            tls: None,
        }
    }
}

impl SecurityConfig {
    /// `security.protocol`.
    pub fn protocol(&self) -> SecurityProtocol {
        self.protocol
    }

    /// The SASL mechanism, when the protocol uses SASL.
    pub fn sasl_mechanism(&self) -> Option<SaslMechanism> {
        self.sasl.as_ref().map(|s| s.mechanism)
    }

    /// Sets the OAUTHBEARER token provider (what the builders' `oauth_token_provider` does).
    /// No effect unless the mechanism is OAUTHBEARER.
    pub fn set_oauth_token_provider(&mut self, provider: Arc<dyn OAuthTokenProvider>) {
        if let Some(s) = &mut self.sasl {
            s.token_provider = Some(provider);
        }
    }

    pub(crate) fn from_resolved(r: &Resolved) -> Result<SecurityConfig> {
        #[cfg(not(feature = "oidc"))]
        oidc_unavailable(r)?;
        let protocol = r.get(SECURITY_PROTOCOL);
        let sasl = if protocol.uses_sasl() {
            Some(sasl_settings(r)?)
        } else {
            None
        };
        let tls = if protocol.uses_tls() {
            Some(tls_settings(r, protocol)?)
        } else {
            None
        };
        Ok(SecurityConfig {
            protocol,
            sasl,
            tls,
        })
    }
}

fn sasl_settings(r: &Resolved) -> Result<SaslSettings> {
    let mech_key = r.spelling(SASL_MECHANISM).to_string();
    let mechanism = match r.get(SASL_MECHANISM).filter(|m| !m.trim().is_empty()) {
        Some(m) => SaslMechanism::parse(&mech_key, &m)?,
        None => {
            return Err(ConfigError::Conflict(format!(
                "`{}` = {} needs `sasl.mechanism` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER; the GSSAPI default of Java and librdkafka is not supported)",
                r.spelling(SECURITY_PROTOCOL),
                r.get(SECURITY_PROTOCOL)
            ))
            .into())
        }
    };
    let jaas = match r.get(SASL_JAAS_CONFIG).filter(|j| !j.trim().is_empty()) {
        Some(j) => Some(parse_jaas(&j)?),
        None => None,
    };
    if let Some(j) = &jaas {
        let expected = match mechanism {
            SaslMechanism::Plain => "PlainLoginModule",
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => "ScramLoginModule",
            SaslMechanism::OAuthBearer => "OAuthBearerLoginModule",
        };
        if !j.module.ends_with(expected) {
            return Err(ConfigError::Conflict(format!(
                "`sasl.jaas.config` uses login module `{}`, but `sasl.mechanism` {} needs {expected}",
                j.module,
                mechanism.name()
            ))
            .into());
        }
    }
    let jaas_opt = |name: &str| {
        jaas.as_ref()
            .and_then(|j| j.options.get(name).cloned())
            .filter(|v| !v.is_empty())
    };
    let mut out = SaslSettings {
        mechanism,
        username: String::new(),
        password: Secret(String::new()),
        unsecured_jwt: None,
        token_provider: None,
        #[cfg(feature = "oidc")]
        oidc: None,
    };
    match mechanism {
        SaslMechanism::Plain | SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
            let username = r
                .get(SASL_USERNAME)
                .filter(|u| !u.is_empty())
                .or_else(|| jaas_opt("username"))
                .ok_or_else(|| ConfigError::Missing {
                    key: format!(
                        "sasl.username (or username in sasl.jaas.config) for SASL {}",
                        mechanism.name()
                    ),
                })?;
            let password = r
                .get(SASL_PASSWORD)
                .filter(|p| !p.is_empty())
                .or_else(|| jaas_opt("password"))
                .ok_or_else(|| ConfigError::Missing {
                    key: format!(
                        "sasl.password (or password in sasl.jaas.config) for SASL {}",
                        mechanism.name()
                    ),
                })?;
            out.username = username;
            out.password = Secret(password);
        }
        SaslMechanism::OAuthBearer => {
            if let Some(text) = r
                .get(SASL_OAUTHBEARER_CONFIG)
                .filter(|t| !t.trim().is_empty())
            {
                out.unsecured_jwt = Some(parse_oauthbearer_config(&text)?);
            } else if let Some(sub) = jaas_opt("unsecuredLoginStringClaim_sub") {
                let lifetime = match jaas_opt("unsecuredLoginLifetimeSeconds") {
                    Some(s) => {
                        Duration::from_secs(s.parse().map_err(|_| ConfigError::InvalidValue {
                            key: "sasl.jaas.config".into(),
                            value: "<redacted>".into(),
                            expected: "unsecuredLoginLifetimeSeconds as a number of seconds".into(),
                        })?)
                    }
                    None => Duration::from_secs(3600),
                };
                let scope = jaas_opt("unsecuredLoginListClaim_scope")
                    .map(|s| {
                        s.split(|c: char| c == ',' || c.is_whitespace())
                            .filter(|x| !x.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                let extensions = jaas
                    .as_ref()
                    .map(|j| {
                        j.options
                            .iter()
                            .filter_map(|(k, v)| {
                                k.strip_prefix("unsecuredLoginExtension_")
                                    .map(|n| (n.to_string(), v.clone()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.unsecured_jwt = Some(UnsecuredJwt {
                    principal: sub,
                    scope,
                    lifetime,
                    extensions,
                });
            }
            #[cfg(feature = "oidc")]
            if oidc_wanted(r)? {
                out.oidc = Some(Arc::new(oidc_provider(r, &jaas_opt)?));
            }
            // Otherwise the application sets a token provider with the builder; a client
            // without either fails to connect with a configuration error.
        }
    }
    Ok(out)
}

/// Whether the OIDC provider is asked for: `sasl.oauthbearer.method=oidc`, Java's OAUTHBEARER
/// login callback handler, or (as Java does) a token endpoint URL.
fn oidc_wanted(r: &Resolved) -> Result<bool, ConfigError> {
    let method = r.get(SASL_OAUTHBEARER_METHOD).unwrap_or_default();
    let oidc = match method.trim().to_ascii_lowercase().as_str() {
        "" | "default" => false,
        "oidc" => true,
        _ => {
            return Err(ConfigError::InvalidValue {
                key: r.spelling(SASL_OAUTHBEARER_METHOD).to_string(),
                value: method,
                expected: "default or oidc".into(),
            })
        }
    };
    // Java's OAUTHBEARER login handler (accepted only as one of those class names).
    let java_handler = r.get(SASL_LOGIN_CALLBACK_HANDLER_CLASS).is_some();
    Ok(oidc
        || java_handler
        || r.get(SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL)
            .is_some_and(|u| !u.trim().is_empty()))
}

/// Without the `oidc` feature, asking for the OIDC provider is refused, naming the key.
#[cfg(not(feature = "oidc"))]
fn oidc_unavailable(r: &Resolved) -> Result<(), ConfigError> {
    if !oidc_wanted(r)? {
        return Ok(());
    }
    let key = if r
        .get(SASL_OAUTHBEARER_METHOD)
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("oidc"))
    {
        r.spelling(SASL_OAUTHBEARER_METHOD)
    } else {
        r.spelling(SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL)
    };
    Err(ConfigError::NotSupported {
        key: key.to_string(),
        detail: Some(
            "the built-in OIDC token provider needs kafka-sdk's `oidc` feature (or set a token provider with the builder's `oauth_token_provider`)".into(),
        ),
    })
}

/// The OIDC provider from `sasl.oauthbearer.token.endpoint.url`, `.client.id`,
/// `.client.secret` and `.scope` (or Java's JAAS `clientId`, `clientSecret`, `scope`).
#[cfg(feature = "oidc")]
fn oidc_provider(
    r: &Resolved,
    jaas_opt: &dyn Fn(&str) -> Option<String>,
) -> Result<crate::connection::oidc::OidcProvider, ConfigError> {
    use crate::connection::oidc::{OidcProvider, OidcSettings};
    let set = |k: Key<Option<String>>| r.get(k).filter(|v| !v.trim().is_empty());
    let missing = |what: &str| ConfigError::Missing {
        key: format!("{what} for the OIDC token provider (sasl.oauthbearer.method=oidc)"),
    };
    let endpoint = set(SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL)
        .ok_or_else(|| missing("sasl.oauthbearer.token.endpoint.url"))?;
    let client_id = set(SASL_OAUTHBEARER_CLIENT_ID)
        .or_else(|| jaas_opt("clientId"))
        .ok_or_else(|| missing("sasl.oauthbearer.client.id (or clientId in sasl.jaas.config)"))?;
    let client_secret = set(SASL_OAUTHBEARER_CLIENT_SECRET)
        .or_else(|| jaas_opt("clientSecret"))
        .ok_or_else(|| {
            missing("sasl.oauthbearer.client.secret (or clientSecret in sasl.jaas.config)")
        })?;
    let scope = set(SASL_OAUTHBEARER_SCOPE).or_else(|| jaas_opt("scope"));
    OidcProvider::new(
        r.spelling(SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL),
        OidcSettings {
            endpoint: endpoint.trim().to_string(),
            client_id,
            client_secret,
            scope,
        },
    )
}

/// A parsed JAAS line: `<module class> <flag> key="value" ... ;`.
struct Jaas {
    module: String,
    options: BTreeMap<String, String>,
}

/// Parses Java's `sasl.jaas.config`. Errors never quote the line (it holds the password).
fn parse_jaas(text: &str) -> Result<Jaas, ConfigError> {
    let bad = |what: &str| ConfigError::InvalidValue {
        key: "sasl.jaas.config".into(),
        value: "<redacted>".into(),
        expected: format!("`<LoginModule class> required key=\"value\" ...;` ({what})"),
    };
    let mut chars = text.trim().chars().peekable();
    let word = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut w = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '=' || c == ';' {
                break;
            }
            w.push(c);
            chars.next();
        }
        w
    };
    let module = word(&mut chars);
    let flag = word(&mut chars);
    if module.is_empty()
        || !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str())
    {
        return Err(bad(
            "a login module class then a control flag such as `required`",
        ));
    }
    let mut options = BTreeMap::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None => break,
            Some(';') => {
                chars.next();
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some() {
                    return Err(bad("one login module only"));
                }
                break;
            }
            _ => {}
        }
        let key = word(&mut chars);
        if key.is_empty() || chars.next() != Some('=') {
            return Err(bad("options as key=value"));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(bad("an unterminated quoted value")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(bad("an unterminated quoted value")),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            value = word(&mut chars);
        }
        options.insert(key, value);
    }
    Ok(Jaas { module, options })
}

/// librdkafka's `sasl.oauthbearer.config`: `principal=<p> [principalClaimName=sub]
/// [scope=a,b] [lifeSeconds=3600] [extension_<name>=<value>]`, space-separated.
fn parse_oauthbearer_config(text: &str) -> Result<UnsecuredJwt, ConfigError> {
    let bad = |expected: String| ConfigError::InvalidValue {
        key: "sasl.oauthbearer.config".into(),
        value: text.to_string(),
        expected,
    };
    let mut jwt = UnsecuredJwt {
        principal: String::new(),
        scope: Vec::new(),
        lifetime: Duration::from_secs(3600),
        extensions: BTreeMap::new(),
    };
    for item in text.split_whitespace() {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| bad(format!("key=value items, not `{item}`")))?;
        match k {
            "principal" => jwt.principal = v.to_string(),
            "scope" => {
                jwt.scope = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            "lifeSeconds" => {
                let secs: u64 = v
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| bad("lifeSeconds as a positive number of seconds".into()))?;
                jwt.lifetime = Duration::from_secs(secs);
            }
            "principalClaimName" if v == "sub" => {}
            k if k.starts_with("extension_") => {
                jwt.extensions
                    .insert(k["extension_".len()..].to_string(), v.to_string());
            }
            other => {
                return Err(bad(format!(
                "principal=..., scope=..., lifeSeconds=... or extension_<name>=... (not `{other}`)"
            )))
            }
        }
    }
    if jwt.principal.is_empty() {
        return Err(bad("principal=<name>".into()));
    }
    Ok(jwt)
}

/// The inputs of the TLS configuration, read from the `ssl.*` keys (PEM text, not yet
/// parsed). Secrets stay in [`Secret`].
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
pub(crate) struct TlsInputs {
    /// CA certificates (PEM), with where they came from (for errors); none: system roots.
    pub(crate) ca: Vec<(String, Vec<u8>)>,
    /// Client certificate chain (PEM) and where it came from.
    pub(crate) cert: Option<(String, Vec<u8>)>,
    /// Client private key (PEM) and where it came from.
    pub(crate) key: Option<(String, Vec<u8>)>,
    /// Password of an encrypted key.
    pub(crate) key_password: Option<Secret>,
    /// `ssl.endpoint.identification.algorithm` = https.
    pub(crate) verify_hostname: bool,
    /// `enable.ssl.certificate.verification`.
    pub(crate) verify_certificate: bool,
}

fn read_file(key: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| ConfigError::InvalidValue {
        key: key.to_string(),
        value: path.to_string(),
        expected: format!("a readable file ({e})"),
    })
}

/// Java store types: PEM is read; JKS and PKCS12 are refused with how to convert.
fn check_store_type(r: &Resolved, key: Key<Option<String>>, what: &str) -> Result<(), ConfigError> {
    let Some(t) = r.get(key).filter(|t| !t.trim().is_empty()) else {
        return Ok(());
    };
    match t.trim().to_ascii_uppercase().as_str() {
        "PEM" => Ok(()),
        "JKS" | "PKCS12" | "P12" => Err(ConfigError::NotSupported {
            key: r.spelling(key).to_string(),
            detail: Some(format!(
                "{t} {what}s cannot be read; convert it to PEM (e.g. `keytool -importkeystore -deststoretype PKCS12` then `openssl pkcs12 -nodes`) and set type PEM"
            )),
        }),
        _ => Err(ConfigError::InvalidValue {
            key: r.spelling(key).to_string(),
            value: t,
            expected: "PEM (JKS and PKCS12 must be converted to PEM)".into(),
        }),
    }
}

/// A Java store file given without a type (Java's default is JKS): read it if it is PEM.
fn read_store(r: &Resolved, key: Key<Option<String>>, path: &str) -> Result<Vec<u8>, ConfigError> {
    let bytes = read_file(r.spelling(key), path)?;
    if !String::from_utf8_lossy(&bytes).contains("-----BEGIN ") {
        return Err(ConfigError::NotSupported {
            key: r.spelling(key).to_string(),
            detail: Some(format!(
                "`{path}` is not PEM (a JKS or PKCS12 store?): convert it to PEM and set its type to PEM"
            )),
        });
    }
    Ok(bytes)
}

pub(crate) fn tls_inputs(r: &Resolved) -> Result<TlsInputs, ConfigError> {
    check_store_type(r, SSL_TRUSTSTORE_TYPE, "truststore")?;
    check_store_type(r, SSL_KEYSTORE_TYPE, "keystore")?;
    let set = |k: Key<Option<String>>| r.get(k).filter(|v| !v.trim().is_empty());
    let mut ca = Vec::new();
    if let Some(p) = set(SSL_CA_LOCATION) {
        ca.push((
            format!("ssl.ca.location `{p}`"),
            read_file(r.spelling(SSL_CA_LOCATION), &p)?,
        ));
    }
    if let Some(pem) = set(SSL_CA_PEM) {
        ca.push(("ssl.ca.pem".to_string(), pem.into_bytes()));
    }
    if let Some(p) = set(SSL_TRUSTSTORE_LOCATION) {
        ca.push((
            format!("ssl.truststore.location `{p}`"),
            read_store(r, SSL_TRUSTSTORE_LOCATION, &p)?,
        ));
    }
    if let Some(pem) = set(SSL_TRUSTSTORE_CERTIFICATES) {
        ca.push(("ssl.truststore.certificates".to_string(), pem.into_bytes()));
    }
    let mut cert = None;
    let mut key = None;
    if let Some(p) = set(SSL_CERTIFICATE_LOCATION) {
        cert = Some((
            format!("ssl.certificate.location `{p}`"),
            read_file(r.spelling(SSL_CERTIFICATE_LOCATION), &p)?,
        ));
    } else if let Some(pem) = set(SSL_CERTIFICATE_PEM) {
        cert = Some(("ssl.certificate.pem".to_string(), pem.into_bytes()));
    } else if let Some(pem) = set(SSL_KEYSTORE_CERTIFICATE_CHAIN) {
        cert = Some((
            "ssl.keystore.certificate.chain".to_string(),
            pem.into_bytes(),
        ));
    }
    if let Some(p) = set(SSL_KEY_LOCATION) {
        key = Some((
            format!("ssl.key.location `{p}`"),
            read_file(r.spelling(SSL_KEY_LOCATION), &p)?,
        ));
    } else if let Some(pem) = set(SSL_KEY_PEM) {
        key = Some(("ssl.key.pem".to_string(), pem.into_bytes()));
    } else if let Some(pem) = set(SSL_KEYSTORE_KEY) {
        key = Some(("ssl.keystore.key".to_string(), pem.into_bytes()));
    }
    if let Some(p) = set(SSL_KEYSTORE_LOCATION) {
        // A PEM keystore holds the key and the certificate chain in one file.
        let bytes = read_store(r, SSL_KEYSTORE_LOCATION, &p)?;
        let from = format!("ssl.keystore.location `{p}`");
        if cert.is_none() {
            cert = Some((from.clone(), bytes.clone()));
        }
        if key.is_none() {
            key = Some((from, bytes));
        }
    }
    let algo = r.get(SSL_ENDPOINT_IDENTIFICATION_ALGORITHM);
    let verify_hostname = match algo.trim().to_ascii_lowercase().as_str() {
        "https" => true,
        "" | "none" => false,
        _ => {
            return Err(ConfigError::InvalidValue {
                key: r
                    .spelling(SSL_ENDPOINT_IDENTIFICATION_ALGORITHM)
                    .to_string(),
                value: algo,
                expected: "https or none".into(),
            })
        }
    };
    Ok(TlsInputs {
        ca,
        cert,
        key,
        key_password: set(SSL_KEY_PASSWORD)
            .or_else(|| set(SSL_KEYSTORE_PASSWORD))
            .map(Secret),
        verify_hostname,
        verify_certificate: r.get(ENABLE_SSL_CERTIFICATE_VERIFICATION),
    })
}

#[cfg(feature = "tls")]
fn tls_settings(r: &Resolved, _protocol: SecurityProtocol) -> Result<TlsSettings> {
    let inputs = tls_inputs(r)?;
    Ok(TlsSettings {
        config: crate::connection::tls::client_config(&inputs)?,
    })
}

#[cfg(not(feature = "tls"))]
fn tls_settings(r: &Resolved, protocol: SecurityProtocol) -> Result<TlsSettings> {
    // The files are still checked, so that the error below is the only one left.
    tls_inputs(r)?;
    Err(ConfigError::NotSupported {
        key: r.spelling(SECURITY_PROTOCOL).to_string(),
        detail: Some(format!(
            "`{protocol}` needs TLS, and kafka-sdk is built without its `tls` feature"
        )),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_lines_as_java_writes_them() {
        let j = parse_jaas(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="a \"b\" c";"#,
        )
        .unwrap();
        assert!(j.module.ends_with("ScramLoginModule"));
        assert_eq!(j.options["username"], "alice");
        assert_eq!(j.options["password"], r#"a "b" c"#);
        let j = parse_jaas("x.PlainLoginModule required\n  username=bob\n  password=\"p w\"  ;")
            .unwrap();
        assert_eq!(j.options["username"], "bob");
        assert_eq!(j.options["password"], "p w");
        for bad in [
            "",
            "x.PlainLoginModule",
            r#"x.PlainLoginModule required username="a"#,
            "x.PlainLoginModule required username",
            r#"x.PlainLoginModule required password="hunter2"; y.Other required;"#,
        ] {
            let e = parse_jaas(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} parsed"));
            assert!(!e.to_string().contains("hunter2"), "{e}");
            assert!(e.to_string().contains("sasl.jaas.config"), "{e}");
        }
    }

    #[test]
    fn oauthbearer_config_and_unsecured_token() {
        let c = parse_oauthbearer_config(
            "principal=alice scope=read,write lifeSeconds=60 extension_x=1",
        )
        .unwrap();
        assert_eq!(c.principal, "alice");
        assert_eq!(c.scope, ["read", "write"]);
        assert_eq!(c.lifetime, Duration::from_secs(60));
        assert_eq!(c.extensions["x"], "1");
        let t = c.token();
        let parts: Vec<&str> = t.value.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "");
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        assert_eq!(b64.decode(parts[0]).unwrap(), br#"{"alg":"none"}"#);
        let payload = String::from_utf8(b64.decode(parts[1]).unwrap()).unwrap();
        assert!(payload.contains(r#""sub":"alice""#), "{payload}");
        assert!(payload.contains(r#""scope":["read","write"]"#), "{payload}");
        assert!(parse_oauthbearer_config("scope=x").is_err());
        assert!(parse_oauthbearer_config("principal=a lifeSeconds=soon").is_err());
        assert!(parse_oauthbearer_config("principal=a bogus=1").is_err());
        assert!(!format!("{t:?}").contains(&t.value));
    }

    /// A broker's unsecured validator refuses a token whose `1000 * iat` is past its clock in
    /// milliseconds (Kafka's default clock skew is 0), and it checks within a millisecond of
    /// the token's making on a local broker: `iat` must never lie ahead of the clock.
    #[test]
    fn unsecured_token_is_never_issued_in_the_future() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let c = parse_oauthbearer_config("principal=alice lifeSeconds=60").unwrap();
        let claim = |payload: &str, name: &str| -> f64 {
            let at = payload.find(&format!("\"{name}\":")).unwrap() + name.len() + 3;
            let end = payload[at..].find([',', '}']).unwrap() + at;
            payload[at..end].parse().unwrap()
        };
        for _ in 0..5_000 {
            let t = c.token();
            let checked_ms = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            let payload = b64.decode(t.value.split('.').nth(1).unwrap()).unwrap();
            let payload = String::from_utf8(payload).unwrap();
            let (iat, exp) = (claim(&payload, "iat"), claim(&payload, "exp"));
            assert!(
                1000.0 * iat <= checked_ms as f64,
                "iat {iat} is after the clock ({checked_ms} ms): {payload}"
            );
            assert_eq!(exp - iat, 60.0, "{payload}");
            let expires = t.expires_at.unwrap().duration_since(SystemTime::UNIX_EPOCH);
            assert_eq!(expires.unwrap().as_secs_f64(), exp, "{payload}");
        }
    }
}
