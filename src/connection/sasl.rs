//! SASL authentication of a connection (KIP-43, KIP-152, KIP-255, KIP-368): SaslHandshake,
//! then SaslAuthenticate round trips of the mechanism, right after ApiVersions and before any
//! other request; again on the same connection before the session the broker granted ends
//! (re-authentication, driven by the writer task in `mod.rs`).
//!
//! Mechanisms: PLAIN (RFC 4616), SCRAM-SHA-256/512 (RFC 5802/7677; the server signature is
//! verified), OAUTHBEARER (RFC 7628 client message, KIP-342 extensions) with a token from
//! the application's provider or the unsecured JWT of test setups.
//!
//! The exchange is generic over [`Exchange`] (one request frame out, one response body back)
//! so the same code runs through a connection's normal request path at setup and through the
//! writer task's own path while re-authenticating. Failures are
//! [`Error::Authentication`] naming the mechanism and never containing the password or token.

use std::future::Future;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use sha2::{Digest, Sha256, Sha512};

use crate::config::security::SaslSettings;
use crate::config::SaslMechanism;
use crate::error::{ConfigError, Error, KafkaCode, Result};
use crate::protocol::{self, BrokerVersions, Frame};

/// One request out, its response body back (the body still holds the response header).
pub(crate) trait Exchange: Send {
    /// The `client.id` for request headers.
    fn client_id(&self) -> &str;
    /// Sends `frame` and waits for its response body.
    fn exchange(&mut self, frame: Frame) -> impl Future<Output = Result<Bytes>> + Send;
}

/// What a successful authentication grants.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Session {
    /// `session_lifetime_ms` of the last SaslAuthenticate response (v1+), when the broker
    /// limits the session (`connections.max.reauth.ms`, token expiry).
    pub(crate) lifetime: Option<Duration>,
}

fn auth_error(mech: SaslMechanism, message: impl Into<String>) -> Error {
    Error::Authentication {
        mechanism: mech.name().to_string(),
        message: message.into(),
    }
}

/// Authenticates with `sasl` over `ex` (a connection whose ApiVersions gave `versions`).
pub(crate) async fn authenticate<E: Exchange>(
    ex: &mut E,
    sasl: &SaslSettings,
    versions: &BrokerVersions,
) -> Result<Session> {
    let mech = sasl.mechanism;
    // SaslHandshake v1: the mechanism; the broker answers with the ones it enables.
    let hs_version = versions.negotiate(ApiKey::SaslHandshake)?.min(1);
    let req = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mech.name()));
    let frame = protocol::encode_request(&req, hs_version, ex.client_id())?;
    let body = ex.exchange(frame.into()).await?;
    let resp: SaslHandshakeResponse =
        protocol::decode_response(ApiKey::SaslHandshake, hs_version, body)?;
    match KafkaCode(resp.error_code) {
        KafkaCode::NONE => {}
        KafkaCode::UNSUPPORTED_SASL_MECHANISM => {
            let enabled: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(auth_error(
                mech,
                format!(
                    "the broker does not enable {} (UNSUPPORTED_SASL_MECHANISM); it enables: {}",
                    mech.name(),
                    if enabled.is_empty() {
                        "none".to_string()
                    } else {
                        enabled.join(", ")
                    }
                ),
            ));
        }
        code => {
            return Err(auth_error(mech, format!("SaslHandshake failed: {code}")));
        }
    }
    let auth_version = versions.negotiate(ApiKey::SaslAuthenticate).map_err(|_| {
        auth_error(
            mech,
            "the broker does not support SaslAuthenticate (Kafka < 1.0 is not supported)",
        )
    })?;
    let mut state = Mechanism::new(sasl).await?;
    let mut out = state.first()?;
    let mut lifetime = None;
    loop {
        let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(out));
        let frame = protocol::encode_request(&req, auth_version, ex.client_id())?;
        let body = ex.exchange(frame.into()).await?;
        let resp: SaslAuthenticateResponse =
            protocol::decode_response(ApiKey::SaslAuthenticate, auth_version, body)?;
        if let Some(code) = KafkaCode(resp.error_code).err() {
            let msg = resp
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            return Err(auth_error(
                mech,
                format!("{} {}", code.name(), msg).trim_end().to_string(),
            ));
        }
        if auth_version >= 1 && resp.session_lifetime_ms > 0 {
            lifetime = Some(Duration::from_millis(resp.session_lifetime_ms as u64));
        }
        match state.next(&resp.auth_bytes).await? {
            Some(next) => out = next,
            None => return Ok(Session { lifetime }),
        }
    }
}

/// The client side of one mechanism's exchange.
enum Mechanism {
    Plain(Vec<u8>),
    Scram(Box<Scram>),
    OAuth {
        message: Vec<u8>,
        /// The broker sent its error challenge; we answered with the %x01 abort.
        aborted: Option<String>,
    },
}

impl Mechanism {
    async fn new(sasl: &SaslSettings) -> Result<Mechanism> {
        Ok(match sasl.mechanism {
            SaslMechanism::Plain => {
                let mut m = Vec::new();
                m.push(0);
                m.extend_from_slice(sasl.username.as_bytes());
                m.push(0);
                m.extend_from_slice(sasl.password.0.as_bytes());
                Mechanism::Plain(m)
            }
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let mut nonce = [0u8; 24];
                getrandom::fill(&mut nonce)
                    .map_err(|e| Error::Fatal(format!("no random source for SCRAM: {e}")))?;
                Mechanism::Scram(Box::new(Scram::new(
                    sasl.mechanism,
                    &sasl.username,
                    &sasl.password.0,
                    base64::engine::general_purpose::STANDARD.encode(nonce),
                )))
            }
            SaslMechanism::OAuthBearer => {
                let token = if let Some(p) = sasl.provider() {
                    p.token().await.map_err(|e| {
                        auth_error(SaslMechanism::OAuthBearer, format!("token provider: {e}"))
                    })?
                } else if let Some(jwt) = &sasl.unsecured_jwt {
                    jwt.token()
                } else {
                    return Err(ConfigError::Missing {
                        key: "sasl.oauthbearer.config, sasl.oauthbearer.method=oidc or a token provider set with the builder's oauth_token_provider, for SASL OAUTHBEARER".into(),
                    }
                    .into());
                };
                // RFC 7628: gs2 header, then kvsep-separated auth and extensions, then kvsep.
                let mut m = format!("n,,\x01auth=Bearer {}\x01", token.value);
                for (k, v) in &token.extensions {
                    m.push_str(&format!("{k}={v}\x01"));
                }
                m.push('\x01');
                Mechanism::OAuth {
                    message: m.into_bytes(),
                    aborted: None,
                }
            }
        })
    }

    fn first(&mut self) -> Result<Vec<u8>> {
        Ok(match self {
            Mechanism::Plain(m) => std::mem::take(m),
            Mechanism::Scram(s) => s.client_first(),
            Mechanism::OAuth { message, .. } => std::mem::take(message),
        })
    }

    /// The next message after the server's `challenge`, or `None` when done.
    async fn next(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>> {
        match self {
            Mechanism::Plain(_) => Ok(None),
            Mechanism::Scram(s) => s.next_async(challenge).await,
            Mechanism::OAuth { aborted, .. } => {
                if let Some(err) = aborted {
                    return Err(auth_error(SaslMechanism::OAuthBearer, err.clone()));
                }
                if challenge.is_empty() {
                    return Ok(None);
                }
                // The broker's error challenge (JSON with `status`): answer %x01, and the
                // broker fails the exchange.
                *aborted = Some(format!(
                    "token rejected: {}",
                    String::from_utf8_lossy(challenge)
                ));
                Ok(Some(vec![0x01]))
            }
        }
    }
}

/// SCRAM client state (RFC 5802).
struct Scram {
    mech: SaslMechanism,
    password: String,
    client_nonce: String,
    client_first_bare: String,
    /// The server signature we expect in the server-final message.
    expected_server_signature: Option<Vec<u8>>,
}

fn scram_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

impl Scram {
    fn new(mech: SaslMechanism, username: &str, password: &str, client_nonce: String) -> Scram {
        let client_first_bare = format!("n={},r={client_nonce}", scram_name(username));
        Scram {
            mech,
            password: password.to_string(),
            client_nonce,
            client_first_bare,
            expected_server_signature: None,
        }
    }

    fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    fn bad(&self, what: &str) -> Error {
        auth_error(self.mech, format!("malformed SCRAM server message: {what}"))
    }

    /// The next message (sync: PBKDF2 runs on the calling thread; for tests).
    #[cfg(test)]
    fn next(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>> {
        let text = std::str::from_utf8(challenge).map_err(|_| self.bad("not UTF-8"))?;
        if self.expected_server_signature.is_some() {
            return self.verify_final(text).map(|_| None);
        }
        let (nonce, salt, iterations) = self.parse_server_first(text)?;
        let salted = salted_password(self.mech, self.password.as_bytes(), &salt, iterations);
        Ok(Some(self.client_final(text, &nonce, &salted)))
    }

    /// The next message; PBKDF2 runs on the blocking pool, never on the async runtime.
    async fn next_async(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>> {
        let text = std::str::from_utf8(challenge).map_err(|_| self.bad("not UTF-8"))?;
        if self.expected_server_signature.is_some() {
            return self.verify_final(text).map(|_| None);
        }
        let (nonce, salt, iterations) = self.parse_server_first(text)?;
        let (mech, password) = (self.mech, self.password.clone());
        let salted = tokio::task::spawn_blocking(move || {
            salted_password(mech, password.as_bytes(), &salt, iterations)
        })
        .await
        .map_err(|e| auth_error(self.mech, format!("SCRAM key derivation failed: {e}")))?;
        Ok(Some(self.client_final(text, &nonce, &salted)))
    }

    /// Checks the server-final message (`v=<signature>` or `e=<error>`).
    fn verify_final(&self, text: &str) -> Result<()> {
        if let Some(e) = text.strip_prefix("e=") {
            return Err(auth_error(self.mech, format!("server error: {e}")));
        }
        let v = text
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .ok_or_else(|| self.bad("server-final without v="))?;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(v)
            .map_err(|_| self.bad("server signature is not base64"))?;
        if Some(&sig) != self.expected_server_signature.as_ref() {
            return Err(auth_error(
                self.mech,
                "the server's signature does not match: the broker does not know the password (possible impostor)",
            ));
        }
        Ok(())
    }

    /// Nonce, salt and iteration count of the server-first message.
    fn parse_server_first(&self, server_first: &str) -> Result<(String, Vec<u8>, u32)> {
        if let Some(e) = server_first.strip_prefix("e=") {
            return Err(auth_error(self.mech, format!("server error: {e}")));
        }
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in server_first.split(',') {
            if let Some(v) = attr.strip_prefix("r=") {
                nonce = Some(v);
            } else if let Some(v) = attr.strip_prefix("s=") {
                salt = Some(v);
            } else if let Some(v) = attr.strip_prefix("i=") {
                iterations = Some(v);
            } else if attr.starts_with("m=") {
                return Err(self.bad("mandatory extension not supported"));
            }
        }
        let nonce = nonce.ok_or_else(|| self.bad("no nonce"))?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(self.bad("the server nonce does not extend the client nonce"));
        }
        let salt = base64::engine::general_purpose::STANDARD
            .decode(salt.ok_or_else(|| self.bad("no salt"))?)
            .map_err(|_| self.bad("salt is not base64"))?;
        // Kafka's brokers use 4096..=16384 iterations; a larger count only costs CPU.
        let iterations: u32 = iterations
            .and_then(|i| i.parse().ok())
            .filter(|i| (1..=MAX_ITERATIONS).contains(i))
            .ok_or_else(|| {
                self.bad(&format!(
                    "iteration count missing or outside 1..={MAX_ITERATIONS}"
                ))
            })?;
        Ok((nonce.to_string(), salt, iterations))
    }

    /// The client-final message, remembering the server signature to expect.
    fn client_final(&mut self, server_first: &str, nonce: &str, salted: &[u8]) -> Vec<u8> {
        let client_key = hmac(self.mech, salted, b"Client Key");
        let stored_key = hash(self.mech, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac(self.mech, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac(self.mech, salted, b"Server Key");
        self.expected_server_signature =
            Some(hmac(self.mech, &server_key, auth_message.as_bytes()));
        format!(
            "{without_proof},p={}",
            base64::engine::general_purpose::STANDARD.encode(proof)
        )
        .into_bytes()
    }
}

/// The most SCRAM iterations accepted from a broker (Kafka's own limit is 16384).
const MAX_ITERATIONS: u32 = 65_536;

/// SCRAM's `SaltedPassword` (RFC 5802 `Hi`): PBKDF2 with the mechanism's HMAC (also what
/// the admin client stores for a user, `AlterUserScramCredentials`).
pub(crate) fn salted_password(mech: SaslMechanism, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    match mech {
        SaslMechanism::ScramSha512 => {
            let mut out = [0u8; 64];
            pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
            out.to_vec()
        }
        _ => {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
            out.to_vec()
        }
    }
}

fn hmac(mech: SaslMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match mech {
        SaslMechanism::ScramSha512 => {
            let mut m = <Hmac<Sha512> as Mac>::new_from_slice(key).expect("HMAC takes any key");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
    }
}

fn hash(mech: SaslMechanism, data: &[u8]) -> Vec<u8> {
    match mech {
        SaslMechanism::ScramSha512 => Sha512::digest(data).to_vec(),
        _ => Sha256::digest(data).to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3: the SCRAM-SHA-256 example exchange.
    #[test]
    fn scram_sha256_rfc7677_vector() {
        let mut s = Scram::new(
            SaslMechanism::ScramSha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(s.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = s.next(server_first.as_bytes()).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        // The right server signature completes; a wrong one is refused.
        let mut wrong = Scram {
            expected_server_signature: s.expected_server_signature.clone(),
            ..Scram::new(SaslMechanism::ScramSha256, "user", "pencil", "x".into())
        };
        assert!(s
            .next(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap()
            .is_none());
        let e = wrong
            .next(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(matches!(&e, Error::Authentication { mechanism, .. } if mechanism == "SCRAM-SHA-256"), "{e}");
        assert!(!e.to_string().contains("pencil"));
    }

    #[test]
    fn scram_rejects_bad_server_messages() {
        let mut s = Scram::new(SaslMechanism::ScramSha512, "u,=", "pw", "abc".into());
        assert_eq!(s.client_first(), b"n,,n=u=2C=3D,r=abc");
        for bad in [
            "r=zzz,s=AAAA,i=4096",       // nonce not extending ours
            "r=abc,s=AAAA,i=4096",       // nonce not extended
            "r=abcd,s=AAAA,i=0",         // no iterations
            "r=abcd,s=@@,i=4096",        // salt not base64
            "e=unknown-user",            // server error
            "m=ext,r=abcd,s=AAAA,i=4096", // mandatory extension
        ] {
            assert!(
                matches!(s.next(bad.as_bytes()), Err(Error::Authentication { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn scram_sha512_round_trip_against_a_local_server_computation() {
        // The server side of RFC 5802 computed here from the same password: the proof the
        // client sends must verify, and the server signature must be accepted.
        let mut s = Scram::new(SaslMechanism::ScramSha512, "alice", "alice-secret", "cn".into());
        let salt = b"0123456789abcdef";
        let server_first = format!(
            "r=cnSERVER,s={},i=4096",
            base64::engine::general_purpose::STANDARD.encode(salt)
        );
        let cf = String::from_utf8(s.next(server_first.as_bytes()).unwrap().unwrap()).unwrap();
        let (without_proof, proof) = cf.rsplit_once(",p=").unwrap();
        let proof = base64::engine::general_purpose::STANDARD.decode(proof).unwrap();
        let m = SaslMechanism::ScramSha512;
        let salted = salted_password(m, b"alice-secret", salt, 4096);
        let stored = hash(m, &hmac(m, &salted, b"Client Key"));
        let auth = format!("n=alice,r=cn,{server_first},{without_proof}");
        let sig = hmac(m, &stored, auth.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        assert_eq!(hash(m, &client_key), stored);
        let server_sig = hmac(m, &hmac(m, &salted, b"Server Key"), auth.as_bytes());
        let fin = format!(
            "v={}",
            base64::engine::general_purpose::STANDARD.encode(server_sig)
        );
        assert!(s.next(fin.as_bytes()).unwrap().is_none());
    }
}
