//! Byte transports under a connection. Plain TCP today; TLS (and SASL, which runs over any
//! transport before the connection task starts) slot in here by adding a variant that yields
//! the same pair of boxed halves.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// Read half of a transport.
pub type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
/// Write half of a transport.
pub type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// An established byte stream to a broker.
#[derive(Debug)]
pub enum Transport {
    /// Plain TCP.
    Tcp(TcpStream),
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

    /// Splits into independently owned halves (one for the reader task, one for the writer).
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Transport::Tcp(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
        }
    }
}
