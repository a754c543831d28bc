//! The built-in OIDC client-credentials token provider for SASL OAUTHBEARER (feature `oidc`,
//! `sasl.oauthbearer.method=oidc`).
//!
//! One provider per client (shared by its connections): [`OidcProvider::token`] hands out the
//! cached access token while it is fresh and otherwise asks the token endpoint for a new one
//! (OAuth 2.0 client-credentials grant, RFC 6749 §4.4: a form POST with HTTP Basic client
//! authentication). A token is fresh until 80% of its lifetime (`expires_in`, else the JWT's
//! `exp` claim) has passed; since the broker bounds the SASL session by the token's expiry
//! and the connection re-authenticates (KIP-368) shortly before the session ends, every
//! re-authentication after that point fetches a new token before the old one expires.
//!
//! Failures (endpoint unreachable, non-2xx answer, a body without `access_token`) are the
//! provider's `Err(message)`, which the SASL layer turns into
//! [`Error::Authentication`](crate::Error::Authentication) naming OAUTHBEARER; the message
//! names the endpoint and never contains the client secret or a token.
//!
//! The HTTP exchange is one HTTP/1.1 request per token on a fresh connection (hyper), over
//! rustls for `https` endpoints with the system root certificates.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::config::{OAuthToken, OAuthTokenFuture, OAuthTokenProvider};
use crate::error::ConfigError;

/// How long one token request may take (connect, TLS, request and response).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response body read from the endpoint.
const MAX_BODY: usize = 1 << 20;
/// The share of a token's lifetime after which a new one is fetched.
const REFRESH_AT: f64 = 0.8;

/// The settings of the OIDC provider, from the `sasl.oauthbearer.*` keys (or Java's JAAS
/// options `clientId` / `clientSecret` / `scope`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct OidcSettings {
    pub(crate) endpoint: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) scope: Option<String>,
}

impl fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcSettings")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scope", &self.scope)
            .finish()
    }
}

struct Cached {
    token: OAuthToken,
    /// After this the token is refreshed (`None`: lifetime unknown, never reused).
    refresh_at: Option<SystemTime>,
}

/// The OIDC client-credentials token provider of one client.
pub(crate) struct OidcProvider {
    settings: OidcSettings,
    uri: Uri,
    tls: Option<Arc<rustls::ClientConfig>>,
    cache: tokio::sync::Mutex<Option<Cached>>,
    fetches: AtomicU64,
}

impl fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProvider")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl PartialEq for OidcProvider {
    fn eq(&self, o: &Self) -> bool {
        self.settings == o.settings
    }
}

impl OidcProvider {
    /// Checks the endpoint URL (`key` names it in errors) and, for https, loads the system
    /// roots.
    pub(crate) fn new(key: &str, settings: OidcSettings) -> Result<OidcProvider, ConfigError> {
        let bad = |why: &str| ConfigError::InvalidValue {
            key: key.to_string(),
            value: settings.endpoint.clone(),
            expected: format!("an http:// or https:// URL of the token endpoint ({why})"),
        };
        let uri: Uri = settings
            .endpoint
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        let tls = match uri.scheme_str() {
            Some("http") => None,
            Some("https") => Some(super::tls::client_config(
                &crate::config::security::TlsInputs {
                    ca: Vec::new(),
                    cert: None,
                    key: None,
                    key_password: None,
                    verify_hostname: true,
                    verify_certificate: true,
                },
            )?),
            _ => return Err(bad("the scheme must be http or https")),
        };
        Ok(OidcProvider {
            settings,
            uri,
            tls,
            cache: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
        })
    }

    /// How many tokens this provider fetched from the endpoint.
    #[allow(dead_code)]
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    async fn cached_or_fetch(&self) -> Result<OAuthToken, String> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            if c.refresh_at.is_some_and(|at| SystemTime::now() < at) {
                return Ok(c.token.clone());
            }
        }
        let fetched_at = SystemTime::now();
        let (token, lifetime) = match tokio::time::timeout(REQUEST_TIMEOUT, self.fetch()).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(format!(
                    "token endpoint {} did not answer within {} s",
                    self.settings.endpoint,
                    REQUEST_TIMEOUT.as_secs()
                ))
            }
        };
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let token = OAuthToken {
            value: token,
            expires_at: lifetime.map(|l| fetched_at + l),
            extensions: Default::default(),
        };
        tracing::debug!(
            endpoint = %self.settings.endpoint,
            lifetime_s = lifetime.map(|l| l.as_secs()),
            "OIDC token fetched"
        );
        *cache = Some(Cached {
            token: token.clone(),
            refresh_at: lifetime.map(|l| fetched_at + l.mul_f64(REFRESH_AT)),
        });
        Ok(token)
    }

    /// One client-credentials request: the access token and its lifetime, if known.
    async fn fetch(&self) -> Result<(String, Option<Duration>), String> {
        let endpoint = &self.settings.endpoint;
        let fail = |what: String| format!("token endpoint {endpoint}: {what}");
        let host = self.uri.host().unwrap_or_default();
        let port = self
            .uri
            .port_u16()
            .unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let tcp = TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
            .await
            .map_err(|e| fail(format!("cannot connect: {e}")))?;
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        // RFC 6749 §2.3.1: the id and secret are form-encoded, then Basic-encoded.
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(&self.settings.client_id),
            enc(&self.settings.client_secret)
        ));
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if let Some(scope) = self.settings.scope.as_deref().filter(|s| !s.is_empty()) {
                form.append_pair("scope", scope);
            }
            form.finish()
        };
        let authority = self.uri.authority().map(|a| a.as_str()).unwrap_or(host);
        let path = self.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let req = hyper::Request::post(path)
            .header(hyper::header::HOST, authority)
            .header(
                hyper::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::AUTHORIZATION, format!("Basic {basic}"))
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| fail(format!("cannot build the request: {e}")))?;
        let (status, body) = match &self.tls {
            None => send(TokioIo::new(tcp), req).await,
            Some(cfg) => {
                let name = rustls::pki_types::ServerName::try_from(
                    host.trim_start_matches('[').trim_end_matches(']').to_string(),
                )
                .map_err(|e| fail(format!("`{host}` is not a valid TLS server name: {e}")))?;
                let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| fail(format!("TLS handshake failed: {e}")))?;
                send(TokioIo::new(tls), req).await
            }
        }
        .map_err(&fail)?;
        let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            // Only the standard `error` / `error_description` fields (RFC 6749 §5.2).
            let field = |k: &str| {
                json.as_ref()
                    .and_then(|j| j.get(k))
                    .and_then(|v| v.as_str())
                    .map(|s| s.chars().take(200).collect::<String>())
            };
            let detail = match (field("error"), field("error_description")) {
                (Some(e), Some(d)) => format!(": {e}: {d}"),
                (Some(e), None) => format!(": {e}"),
                _ => String::new(),
            };
            return Err(fail(format!("HTTP {status}{detail}")));
        }
        let json = json.ok_or_else(|| fail("the answer is not JSON".into()))?;
        let token = json
            .get("access_token")
            .and_then(|v| v.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail("the answer has no `access_token`".into()))?
            .to_string();
        let expires_in = json
            .get("expires_in")
            .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64);
        // The sooner of the two: the broker ends the session at the JWT's `exp`.
        let lifetime = match (expires_in, jwt_lifetime(&token)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok((token, lifetime))
    }
}

/// The lifetime left of a JWT, from its `exp` claim (seconds since the epoch).
fn jwt_lifetime(token: &str) -> Option<Duration> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let exp = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_f64()?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    (exp > now).then(|| Duration::from_secs_f64(exp - now))
}

async fn send<T>(
    io: TokioIo<T>,
    req: hyper::Request<Full<Bytes>>,
) -> Result<(hyper::StatusCode, Bytes), String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    // The connection task ends with the exchange (or when the sender is dropped).
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
    .await;
    drop(sender);
    driver.abort();
    result
}

impl OAuthTokenProvider for OidcProvider {
    fn token(&self) -> OAuthTokenFuture<'_> {
        Box::pin(self.cached_or_fetch())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(endpoint: &str) -> OidcSettings {
        OidcSettings {
            endpoint: endpoint.into(),
            client_id: "id".into(),
            client_secret: "hunter2-secret".into(),
            scope: None,
        }
    }

    #[test]
    fn endpoint_urls_are_checked_and_secret_hidden() {
        for bad in ["ftp://idp/token", "not a url", "/token", "http://"] {
            let e = OidcProvider::new("sasl.oauthbearer.token.endpoint.url", settings(bad))
                .unwrap_err();
            assert!(
                matches!(&e, ConfigError::InvalidValue { key, .. } if key == "sasl.oauthbearer.token.endpoint.url"),
                "{bad}: {e:?}"
            );
        }
        let p = OidcProvider::new("k", settings("http://127.0.0.1:1/token")).unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("127.0.0.1:1"), "{shown}");
    }

    #[test]
    fn jwt_exp_gives_the_lifetime() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let jwt = |exp: u64| {
            format!(
                "{}.{}.",
                b64.encode(br#"{"alg":"none"}"#),
                b64.encode(format!(r#"{{"sub":"a","exp":{exp}}}"#))
            )
        };
        let l = jwt_lifetime(&jwt(now + 100)).unwrap();
        assert!(l > Duration::from_secs(90) && l <= Duration::from_secs(100), "{l:?}");
        assert_eq!(jwt_lifetime(&jwt(now - 10)), None);
        assert_eq!(jwt_lifetime("opaque-token"), None);
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_an_error_naming_it_not_the_secret() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let url = format!("http://127.0.0.1:{port}/token");
        let p = OidcProvider::new("k", settings(&url)).unwrap();
        let e = p.token().await.unwrap_err();
        assert!(e.contains(&url), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(p.fetches(), 0);
    }
}
