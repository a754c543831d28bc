//! Byte transports under a connection: plain TCP, or TLS over TCP (`ssl`, `sasl_ssl`; crate
//! feature `tls`). SASL runs over either, as Kafka requests, once the connection tasks run.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;

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

/// Connects to the first of `addrs` that accepts, from the one `next` names (see
/// [`Transport::connect_tcp_from`]), by `deadline` (the end of the set-up `timeout`); `Err`
/// is the reason.
async fn connect_first(
    addrs: &[SocketAddr],
    next: &AtomicUsize,
    deadline: Instant,
    timeout: Duration,
) -> std::result::Result<TcpStream, String> {
    let n = addrs.len();
    if n == 0 {
        return Err("the name resolves to no address".into());
    }
    let first = next.load(Ordering::Relaxed) % n;
    let mut refused = Vec::new();
    for i in 0..n {
        let at = (first + i) % n;
        // Past this address until it connects: the caller's own bound on the set-up may drop
        // this future while the address does not answer.
        next.store(at + 1, Ordering::Relaxed);
        match tokio::time::timeout_at(deadline, TcpStream::connect(addrs[at])).await {
            Ok(Ok(s)) => {
                next.store(at, Ordering::Relaxed);
                return Ok(s);
            }
            Ok(Err(e)) if n == 1 => return Err(e.to_string()),
            Ok(Err(e)) => refused.push(format!("{}: {e}", addrs[at])),
            Err(_) => {
                let which = if n > 1 {
                    format!(" (address {} of {n}: {}; the next attempt starts with the next one)", at + 1, addrs[at])
                } else {
                    String::new()
                };
                return Err(format!(
                    "connection not established within socket.connection.setup.timeout.ms ({}ms){which}",
                    timeout.as_millis()
                ));
            }
        }
    }
    Err(format!("every address refused: {}", refused.join("; ")))
}

impl Transport {
    /// Opens a TCP connection to `addr` (`host:port`) within `timeout`.
    pub async fn connect_tcp(addr: &str, timeout: Duration, nodelay: bool) -> Result<Transport> {
        Transport::connect_tcp_from(addr, &AtomicUsize::new(0), timeout, nodelay).await
    }

    /// [`connect_tcp`](Self::connect_tcp) over every address `addr`'s name resolves to
    /// (Java's `client.dns.lookup=use_all_dns_ips`), starting at the one `next` names: an
    /// address that refuses is skipped at once; one that does not answer within `timeout`
    /// ends the attempt, and `next` moves past it so the following attempt (after the
    /// reconnect backoff) starts with the next address instead of waiting on the same one
    /// again. An address that connects stays first.
    pub(crate) async fn connect_tcp_from(
        addr: &str,
        next: &AtomicUsize,
        timeout: Duration,
        nodelay: bool,
    ) -> Result<Transport> {
        let deadline = Instant::now() + timeout;
        let failed = |reason: String| Error::Connection {
            broker: addr.to_string(),
            reason,
            in_flight: false,
        };
        let addrs: Vec<SocketAddr> =
            match tokio::time::timeout_at(deadline, tokio::net::lookup_host(addr)).await {
                Ok(Ok(found)) => found.collect(),
                Ok(Err(e)) => return Err(failed(format!("cannot resolve the address: {e}"))),
                Err(_) => {
                    return Err(failed(format!(
                        "address not resolved within socket.connection.setup.timeout.ms ({}ms)",
                        timeout.as_millis()
                    )))
                }
            };
        let stream = connect_first(&addrs, next, deadline, timeout)
            .await
            .map_err(failed)?;
        if nodelay {
            let _ = stream.set_nodelay(true);
        }
        Ok(Transport::Tcp(stream))
    }

    /// Opens the transport `security` asks for: TCP, then the TLS handshake when the
    /// protocol uses TLS (the caller bounds the whole by the setup timeout).
    pub(crate) async fn connect(
        addr: &str,
        next: &AtomicUsize,
        timeout: Duration,
        nodelay: bool,
        security: &SecurityConfig,
    ) -> Result<Transport> {
        let tcp = Transport::connect_tcp_from(addr, next, timeout, nodelay).await?;
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

    /// The TCP socket under the transport, for the socket options the reader sets while the
    /// connection runs ([`LowWater`]).
    pub(crate) fn low_water(&self) -> LowWater {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            let fd = match self {
                Transport::Tcp(s) => s.as_raw_fd(),
                #[cfg(feature = "tls")]
                Transport::Tls(s) => s.get_ref().0.as_raw_fd(),
            };
            LowWater { fd, set: 1 }
        }
        #[cfg(not(unix))]
        LowWater {}
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

/// Frames whose unread rest is at least this large get a receive low-water mark.
const LOW_WATER_FROM: usize = 512 * 1024;
/// What the mark leaves unasked of the frame's rest: bytes a TLS layer may already hold
/// (a record or a few), so the mark never waits for bytes that are not coming.
const LOW_WATER_MARGIN: usize = 256 * 1024;
/// The largest mark set.
const LOW_WATER_MAX: usize = 1024 * 1024;

/// The receive low-water mark (`SO_RCVLOWAT`) to set while `rest` bytes of a response
/// frame are still to come: 1 (the default: wake on any byte) for small rests; for large
/// ones the rest less a margin, at most 1 MiB.
pub(crate) fn low_water_for(rest: usize) -> usize {
    if rest < LOW_WATER_FROM {
        1
    } else {
        (rest - LOW_WATER_MARGIN).min(LOW_WATER_MAX)
    }
}

/// The receive low-water mark of a connection's socket (`SO_RCVLOWAT`; a no-op off Unix).
///
/// While a large response (a fetch of megabytes) arrives, the reader asks the kernel to wake
/// it only once up to 1 MiB is there, instead of on every segment. A consumer of 1 KiB
/// records over loopback made ~23 reads and wake-ups per 3 MiB response, and `perf` put 19 %
/// of its samples in `lock_sock` spinning on the socket lock that the broker's sending side
/// held; with the mark ~7 reads per response and 40 % fewer context switches, and in
/// alternating runs (`ab.py --consume --size 1024`, 5 pairs) 8 % more records per second at
/// 8 % less CPU per record (less CPU in every pair). The kernel still wakes the reader on a
/// closed connection or an error, and caps the mark at half the receive buffer.
pub(crate) struct LowWater {
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
    /// The mark last set (0: setting it failed once; not tried again).
    #[cfg(unix)]
    set: usize,
}

impl LowWater {
    /// Sets the mark for a frame with `rest` bytes still to come (0: none pending).
    pub(crate) fn frame_rest(&mut self, rest: usize) {
        #[cfg(unix)]
        {
            let want = low_water_for(rest);
            if self.set != 0 && want != self.set {
                self.set = if set_rcvlowat(self.fd, want) { want } else { 0 };
            }
        }
        #[cfg(not(unix))]
        let _ = rest;
    }
}

/// `setsockopt(SO_RCVLOWAT)`; `false` when the socket refuses it.
///
/// The one `unsafe` of the connection layer: neither tokio nor socket2 exposes this option.
/// Sound because `fd` is the socket of a `TcpStream` the reader task's read half keeps open
/// for as long as the `LowWater` is used (both belong to that task), and the option value
/// is a `c_int` that outlives the call.
#[cfg(unix)]
#[allow(unsafe_code)]
fn set_rcvlowat(fd: std::os::fd::RawFd, bytes: usize) -> bool {
    let v: libc::c_int = bytes.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: see above; `setsockopt` reads `size_of::<c_int>()` bytes from `&v`.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_low_water_mark_follows_large_frames_only() {
        assert_eq!(low_water_for(0), 1);
        assert_eq!(low_water_for(100), 1);
        assert_eq!(low_water_for(LOW_WATER_FROM - 1), 1);
        // Never the whole rest: a TLS layer may hold part of it already.
        assert_eq!(low_water_for(LOW_WATER_FROM), LOW_WATER_FROM - LOW_WATER_MARGIN);
        assert_eq!(low_water_for(1_000_000), 1_000_000 - LOW_WATER_MARGIN);
        assert_eq!(low_water_for(3 << 20), LOW_WATER_MAX);
        for rest in [LOW_WATER_FROM, 700_000, 2 << 20, 100 << 20] {
            assert!(low_water_for(rest) + LOW_WATER_MARGIN <= rest);
        }
    }

    /// A name that resolves to several addresses, the first of which drops every SYN (a
    /// host gone from the network): one attempt waits out its set-up timeout on it, the next
    /// attempt starts with the next address and connects; an address that refuses is
    /// skipped within the attempt. Before, every attempt went through the addresses in the
    /// resolver's order under one timeout, so it never got past the silent one.
    #[tokio::test]
    async fn a_silent_address_is_skipped_on_the_next_attempt() {
        // A listener with a backlog of 0 whose one slot is taken: further SYNs are dropped.
        let hole = tokio::net::TcpSocket::new_v4().unwrap();
        hole.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let hole = hole.listen(0).unwrap();
        let silent = hole.local_addr().unwrap();
        let _taken = TcpStream::connect(silent).await.unwrap();
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refusing = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let addrs = [silent, refusing, live.local_addr().unwrap()];
        let next = AtomicUsize::new(0);
        let t = Duration::from_millis(300);
        let within = || Instant::now() + t;
        let e = connect_first(&addrs, &next, within(), t).await.unwrap_err();
        assert!(e.contains("address 1 of 3"), "{e}");
        let s = connect_first(&addrs, &next, within(), t).await.unwrap();
        assert_eq!(s.peer_addr().unwrap(), addrs[2], "the refusing address was skipped");
        // The address that connected stays first.
        assert_eq!(next.load(Ordering::Relaxed) % 3, 2);
        let s = connect_first(&addrs, &next, within(), t).await.unwrap();
        assert_eq!(s.peer_addr().unwrap(), addrs[2]);
        // Dropped by a caller's own bound while waiting on the silent address: the next
        // attempt still moves past it.
        next.store(0, Ordering::Relaxed);
        let far = Instant::now() + Duration::from_secs(60);
        let dropped = tokio::time::timeout(Duration::from_millis(200), connect_first(&addrs, &next, far, t));
        assert!(dropped.await.is_err());
        let s = connect_first(&addrs, &next, within(), t).await.unwrap();
        assert_eq!(s.peer_addr().unwrap(), addrs[2]);
        let e = connect_first(&[refusing, refusing], &AtomicUsize::new(0), within(), t)
            .await
            .unwrap_err();
        assert!(e.starts_with("every address refused"), "{e}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_low_water_mark_is_set_on_the_socket() {
        // Keeps the listener (and so the connection) open while the options are set.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let t = Transport::connect_tcp(&addr, Duration::from_secs(5), true).await.unwrap();
        let mut lw = t.low_water();
        // `set` is the mark the kernel took (it would be 0 had it refused one).
        lw.frame_rest(3 << 20);
        assert_eq!(lw.set, LOW_WATER_MAX);
        lw.frame_rest(600_000);
        assert_eq!(lw.set, 600_000 - LOW_WATER_MARGIN);
        lw.frame_rest(0);
        assert_eq!(lw.set, 1);
    }
}
