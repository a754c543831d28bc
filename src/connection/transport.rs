//! Byte transports under a connection: plain TCP, or TLS over TCP (`ssl`, `sasl_ssl`; crate
//! feature `tls`). SASL runs over either, as Kafka requests, once the connection tasks run.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::config::SecurityConfig;
use crate::error::{Error, Result};

/// Read half of a transport.
pub type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
/// Write half of a transport.
pub type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// An established byte stream to a broker.
pub enum Transport {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP (handshake done).
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Tcp(s) => f.debug_tuple("Tcp").field(s).finish(),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => f.debug_tuple("Tls").field(s.get_ref().0).finish(),
        }
    }
}

impl Transport {
    /// Opens a TCP connection to `addr` (`host:port`) within `timeout`.
    pub async fn connect_tcp(addr: &str, timeout: Duration, nodelay: bool) -> Result<Transport> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(Error::Connection {
                    broker: addr.to_string(),
                    reason: e.to_string(),
                    in_flight: false,
                })
            }
            Err(_) => {
                return Err(Error::Connection {
                    broker: addr.to_string(),
                    reason: format!(
                    "connection not established within socket.connection.setup.timeout.ms ({}ms)",
                    timeout.as_millis()
                ),
                    in_flight: false,
                })
            }
        };
        if nodelay {
            let _ = stream.set_nodelay(true);
        }
        Ok(Transport::Tcp(stream))
    }

    /// Opens the transport `security` asks for: TCP, then the TLS handshake when the
    /// protocol uses TLS (the caller bounds the whole by the setup timeout).
    pub(crate) async fn connect(
        addr: &str,
        timeout: Duration,
        nodelay: bool,
        security: &SecurityConfig,
    ) -> Result<Transport> {
        let tcp = Transport::connect_tcp(addr, timeout, nodelay).await?;
        match (&security.tls, tcp) {
            (None, tcp) => Ok(tcp),
            #[cfg(feature = "tls")]
            (Some(tls), Transport::Tcp(s)) => {
                let stream = super::tls::handshake(&tls.config, addr, s).await?;
                Ok(Transport::Tls(Box::new(stream)))
            }
            #[cfg(feature = "tls")]
            (Some(_), t @ Transport::Tls(_)) => Ok(t),
            #[cfg(not(feature = "tls"))]
            (Some(_), _) => Err(Error::Config(crate::error::ConfigError::NotSupported {
                key: "security.protocol".into(),
                detail: Some("TLS needs kafka-sdk's `tls` feature".into()),
            })),
        }
    }

    /// Splits into independently owned halves (one for the reader task, one for the writer).
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Transport::Tcp(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            #[cfg(feature = "tls")]
            Transport::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (Box::new(r), Box::new(w))
            }
        }
    }
}
