//! TLS with rustls (crypto provider `ring`): the client configuration built once per client
//! from the `ssl.*` keys ([`client_config`]), and the handshake on a new TCP connection
//! ([`handshake`]) with its failures turned into [`Error::Tls`] naming what went wrong.
//!
//! - Trust: the CAs given (`ssl.ca.*`, PEM truststore), else the system roots.
//! - Server name: the broker's host as advertised (or as in `bootstrap.servers`); an IP
//!   address is verified against the certificate's IP SANs.
//! - `ssl.endpoint.identification.algorithm=none` keeps chain verification but skips the name
//!   check; `enable.ssl.certificate.verification=false` skips chain and name checks (the
//!   handshake signatures are still verified).
//! - mTLS: a client certificate chain and its key (PKCS#8, PKCS#1, SEC1, or encrypted PKCS#8
//!   with `ssl.key.password`).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;

use crate::config::security::TlsInputs;
use crate::error::{ConfigError, Error, Result, TlsFailure};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(from: &str, pem: &[u8]) -> std::result::Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| invalid(from, format!("PEM certificates ({e})")))?;
    if certs.is_empty() {
        return Err(invalid(from, "at least one PEM certificate".into()));
    }
    Ok(certs)
}

fn invalid(from: &str, expected: String) -> ConfigError {
    // `from` is "key" or "key `path`": split the key from the path for the error fields.
    let (key, value) = match from.split_once(' ') {
        Some((k, v)) => (k.to_string(), v.trim_matches('`').to_string()),
        None => (from.to_string(), "<PEM text>".to_string()),
    };
    ConfigError::InvalidValue {
        key,
        value,
        expected,
    }
}

/// The private key of `pem`, decrypting an `ENCRYPTED PRIVATE KEY` with `password`.
fn private_key(
    from: &str,
    pem: &[u8],
    password: Option<&str>,
) -> std::result::Result<PrivateKeyDer<'static>, ConfigError> {
    let text = String::from_utf8_lossy(pem);
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    if let Some(start) = text.find(BEGIN) {
        let end = text[start..]
            .find(END)
            .map(|e| start + e + END.len())
            .ok_or_else(|| invalid(from, "a complete ENCRYPTED PRIVATE KEY PEM block".into()))?;
        let Some(password) = password else {
            return Err(ConfigError::Missing {
                key: format!("ssl.key.password (the key in {from} is encrypted)"),
            });
        };
        let (_, der) = pkcs8::der::pem::decode_vec(text[start..end].as_bytes())
            .map_err(|e| invalid(from, format!("a PEM encrypted PKCS#8 key ({e})")))?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
            .map_err(|e| invalid(from, format!("an encrypted PKCS#8 key ({e})")))?;
        let doc = info.decrypt(password).map_err(|_| ConfigError::InvalidValue {
            key: "ssl.key.password".into(),
            value: "<redacted>".into(),
            expected: format!("the password of the encrypted private key in {from}"),
        })?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            doc.as_bytes().to_vec(),
        )));
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(invalid(
            from,
            "a PKCS#8 key (legacy OpenSSL-encrypted keys are not supported: convert with `openssl pkcs8 -topk8 -v2 aes256`)".into(),
        ));
    }
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| invalid(from, format!("a PEM private key ({e})")))
}

/// Builds the rustls client configuration of a client (called when the config is built, so
/// unreadable files, bad PEM, a wrong key password or a key that does not match its
/// certificate fail client creation with a [`ConfigError`]).
pub(crate) fn client_config(
    inputs: &TlsInputs,
) -> std::result::Result<Arc<rustls::ClientConfig>, ConfigError> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    if inputs.ca.is_empty() {
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 && inputs.verify_certificate {
            return Err(ConfigError::Missing {
                key: "ssl.ca.location (no CA given and no system root certificates found)"
                    .into(),
            });
        }
    } else {
        for (from, pem) in &inputs.ca {
            for c in certs(from, pem)? {
                roots
                    .add(c)
                    .map_err(|e| invalid(from, format!("CA certificates ({e})")))?;
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Conflict(format!("TLS setup: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = if !inputs.verify_certificate {
        Arc::new(RelaxedVerifier {
            chain: None,
            provider,
        })
    } else {
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| ConfigError::Conflict(format!("TLS verifier: {e}")))?;
        if inputs.verify_hostname {
            webpki
        } else {
            Arc::new(RelaxedVerifier {
                chain: Some(webpki),
                provider,
            })
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&inputs.cert, &inputs.key) {
        (None, None) => builder.with_no_client_auth(),
        (Some((from, _)), None) => {
            return Err(ConfigError::Conflict(format!(
                "a client certificate is set ({from}) but no private key (ssl.key.location, ssl.key.pem or ssl.keystore.key)"
            )))
        }
        (None, Some((from, _))) => {
            return Err(ConfigError::Conflict(format!(
                "a private key is set ({from}) but no client certificate (ssl.certificate.location, ssl.certificate.pem or ssl.keystore.certificate.chain)"
            )))
        }
        (Some((cfrom, cpem)), Some((kfrom, kpem))) => {
            let chain = certs(cfrom, cpem)?;
            let key = private_key(
                kfrom,
                kpem,
                inputs.key_password.as_ref().map(|p| p.0.as_str()),
            )?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| {
                    ConfigError::Conflict(format!(
                        "the private key ({kfrom}) cannot be used with the client certificate ({cfrom}): {e}"
                    ))
                })?
        }
    };
    Ok(Arc::new(config))
}

/// A relaxed server-certificate check: with `chain`, chain verification without the host
/// name check (`ssl.endpoint.identification.algorithm=none`); without,
/// no certificate verification at all (`enable.ssl.certificate.verification=false`). The
/// handshake signatures are verified either way, with the provider's algorithms (as
/// rustls's own verifier does).
#[derive(Debug)]
struct RelaxedVerifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for RelaxedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The host part of `host:port` (brackets of an IPv6 address removed).
pub(crate) fn host_of(addr: &str) -> &str {
    let host = match addr.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => addr,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

/// TLS handshake over `tcp` with the broker at `addr` (its host is the server name).
pub(crate) async fn handshake(
    config: &Arc<rustls::ClientConfig>,
    addr: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let host = host_of(addr);
    let name = ServerName::try_from(host.to_string()).map_err(|e| Error::Tls {
        broker: addr.to_string(),
        failure: TlsFailure::Other,
        reason: format!("`{host}` is not a valid TLS server name: {e}"),
    })?;
    tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| tls_error(addr, host, e))
}

/// A TLS alert the broker sent after the handshake (TLS 1.3 checks the client certificate
/// then), as the typed error of the connection's set-up.
pub(crate) fn alert_error(addr: &str, e: &std::io::Error) -> Option<Error> {
    match e.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(a) => Some(Error::Tls {
            broker: addr.to_string(),
            failure: TlsFailure::Other,
            reason: format!(
                "the broker refused the TLS session (alert {a:?}): a client certificate missing, expired or not trusted?"
            ),
        }),
        _ => None,
    }
}

/// Names a failed handshake.
fn tls_error(addr: &str, host: &str, e: std::io::Error) -> Error {
    let (failure, reason) = match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => (
                TlsFailure::UntrustedCertificate,
                format!("the broker's certificate is not trusted ({c:?}): set ssl.ca.location to the CA that signed it"),
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => (
                TlsFailure::ExpiredCertificate,
                "the broker's certificate has expired".to_string(),
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
                TlsFailure::ExpiredCertificate,
                "the broker's certificate is not valid yet".to_string(),
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => (
                TlsFailure::HostnameMismatch,
                format!(
                    "the broker's certificate is not valid for `{host}` (ssl.endpoint.identification.algorithm=https)"
                ),
            ),
            other => (
                TlsFailure::Other,
                format!("the broker's certificate was rejected: {other:?}"),
            ),
        },
        Some(rustls::Error::InvalidMessage(m)) => (
            TlsFailure::NotTls,
            format!(
                "the broker did not answer with TLS ({m:?}): is this a plaintext listener? (security.protocol plaintext or sasl_plaintext)"
            ),
        ),
        Some(rustls::Error::AlertReceived(a)) => (
            TlsFailure::Other,
            format!("the broker refused the TLS handshake (alert {a:?}; a client certificate missing or not trusted?)"),
        ),
        Some(other) => (TlsFailure::Other, format!("TLS handshake failed: {other}")),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof
            || e.kind() == std::io::ErrorKind::ConnectionReset =>
        {
            (
                TlsFailure::NotTls,
                format!(
                    "the broker closed the connection during the TLS handshake ({e}): is this a plaintext listener? (security.protocol plaintext or sasl_plaintext)"
                ),
            )
        }
        None => (TlsFailure::Other, format!("TLS handshake failed: {e}")),
    };
    Error::Tls {
        broker: addr.to_string(),
        failure,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_addresses() {
        assert_eq!(host_of("broker-1.example.com:9093"), "broker-1.example.com");
        assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9093"), "::1");
        assert!(matches!(
            ServerName::try_from(host_of("127.0.0.1:1").to_string()).unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            ServerName::try_from(host_of("[::1]:1").to_string()).unwrap(),
            ServerName::IpAddress(_)
        ));
    }
}
