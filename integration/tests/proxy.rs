//! The fault-injecting proxy: alone in front of an echo server (each fault, deterministic and
//! fast), then in front of a real broker of a proxied 1-node cluster.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use kafka_testkit::{probe_api_versions, ClusterOptions, KafkaCluster, NetFault, Proxy};

/// An echo server on 127.0.0.1:0 (a thread per connection, for the life of the test process).
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

fn connect(addr: SocketAddr, timeout: Duration) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(timeout)).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Sends `data` and reads it back; returns the round-trip time.
fn echo(s: &mut TcpStream, data: &[u8]) -> std::io::Result<Duration> {
    let t = Instant::now();
    s.write_all(data)?;
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back)?;
    assert_eq!(back, data);
    Ok(t.elapsed())
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

#[test]
fn proxy_forwards_and_heals() {
    let proxy = Proxy::start(echo_server()).unwrap();
    assert!(proxy.addr().ip().is_loopback());
    let mut s = connect(proxy.addr(), Duration::from_secs(10));
    let base = echo(&mut s, b"hello").unwrap();

    // Latency: 150 ms each way adds >= 300 ms to a round trip.
    proxy.apply(NetFault::Latency(Duration::from_millis(150)));
    let slow = echo(&mut s, b"slow").unwrap();
    assert!(
        slow >= Duration::from_millis(300),
        "round trip {slow:?} with 2x150 ms"
    );
    proxy.apply(NetFault::LatencyPerDirection {
        to_upstream: Duration::ZERO,
        to_client: Duration::from_millis(200),
    });
    let one_way = echo(&mut s, b"one way").unwrap();
    assert!(one_way >= Duration::from_millis(200), "{one_way:?}");
    proxy.apply(NetFault::Heal);
    let healed = echo(&mut s, b"fast again").unwrap();
    eprintln!(
        "round trips: base {base:?}, 2x150 ms {slow:?}, 0+200 ms {one_way:?}, healed {healed:?}"
    );

    // Bandwidth: 64 KiB at 64 KiB/s: the chunks after the first wait their turn (>= 0.75 s).
    proxy.apply(NetFault::Bandwidth(64 * 1024));
    let data = vec![7u8; 64 * 1024];
    let limited = echo(&mut s, &data).unwrap();
    assert!(
        limited >= Duration::from_millis(600),
        "64 KiB at 64 KiB/s in {limited:?}"
    );
    proxy.apply(NetFault::Heal);
    eprintln!("64 KiB at 64 KiB/s: {limited:?}");
    drop(s);
}

#[test]
fn proxy_black_hole_stalls_then_heals() {
    let proxy = Proxy::start(echo_server()).unwrap();
    let mut s = connect(proxy.addr(), Duration::from_millis(700));
    echo(&mut s, b"before").unwrap();

    proxy.apply(NetFault::BlackHole);
    // Nothing comes back, but the connection is not closed either (a timeout, not an EOF or
    // a reset).
    s.write_all(b"into the hole").unwrap();
    let mut buf = [0u8; 64];
    let err = s.read(&mut buf).expect_err("a black hole answers nothing");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err:?}"
    );
    // The proxy stopped reading: a large write fills the socket buffers and blocks.
    let big = vec![1u8; 64 * 1024 * 1024];
    let mut written = 0usize;
    loop {
        match s.write(&big[written..]) {
            Ok(n) => written += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("write into a black hole: {e}"),
        }
        assert!(written < big.len(), "64 MiB went into a black hole");
    }
    // A new connection is accepted and black-holed too.
    let mut s2 = connect(proxy.addr(), Duration::from_millis(700));
    s2.write_all(b"new").unwrap();
    assert!(s2.read(&mut buf).is_err());

    proxy.apply(NetFault::Heal);
    s2.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut back = [0u8; 3];
    s2.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"new");
    // The first connection gets everything it sent, in order.
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut first = [0u8; 13];
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"into the hole");
    eprintln!("{written} bytes were stuck in the black hole");
}

#[test]
fn proxy_reset_and_refuse() {
    let proxy = Proxy::start(echo_server()).unwrap();
    let mut a = connect(proxy.addr(), Duration::from_secs(5));
    let mut b = connect(proxy.addr(), Duration::from_secs(5));
    echo(&mut a, b"a").unwrap();
    echo(&mut b, b"b").unwrap();
    assert_eq!(proxy.open_connections(), 2);

    proxy.apply(NetFault::Reset);
    // `apply` returned once both connections were closed.
    assert_eq!(proxy.open_connections(), 0);
    for s in [&mut a, &mut b] {
        let mut buf = [0u8; 8];
        match s.read(&mut buf) {
            Err(e) => assert!(is_reset(&e), "expected a reset, got {e:?}"),
            Ok(n) => panic!("expected a reset, read {n} bytes (0 = FIN)"),
        }
    }
    // New connections work right away.
    let mut c = connect(proxy.addr(), Duration::from_secs(5));
    echo(&mut c, b"c").unwrap();

    // Refuse: the open connection is reset, and so is every new one until healed.
    proxy.apply(NetFault::Refuse);
    assert!(echo(&mut c, b"x").is_err_and(|e| is_reset(&e)));
    // (The RST can come before connect returns, or on the first read.)
    let r = TcpStream::connect_timeout(&proxy.addr(), Duration::from_secs(5)).and_then(|mut d| {
        d.set_read_timeout(Some(Duration::from_secs(5)))?;
        echo(&mut d, b"d")
    });
    assert!(r.as_ref().is_err_and(is_reset), "{r:?}");
    proxy.apply(NetFault::Heal);
    let mut e = connect(proxy.addr(), Duration::from_secs(5));
    echo(&mut e, b"e").unwrap();
}

/// Upstream down: the proxy accepts, fails to connect upstream, and resets the client.
#[test]
fn proxy_resets_clients_when_the_upstream_is_down() {
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let proxy = Proxy::start(dead).unwrap();
    let r = TcpStream::connect_timeout(&proxy.addr(), Duration::from_secs(5)).and_then(|mut s| {
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        echo(&mut s, b"anyone?")
    });
    assert!(r.as_ref().is_err_and(is_reset), "{r:?}");
    assert!(Proxy::start("10.1.2.3:9092".parse().unwrap()).is_err());
}

/// ApiVersions v0 over an open connection; the correlation id comes back.
fn api_versions_on(s: &mut TcpStream, correlation: i32) -> std::io::Result<usize> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
    frame.extend_from_slice(&0i16.to_be_bytes()); // v0
    frame.extend_from_slice(&correlation.to_be_bytes());
    frame.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
    let mut req = (frame.len() as i32).to_be_bytes().to_vec();
    req.extend_from_slice(&frame);
    s.write_all(&req)?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body)?;
    assert_eq!(body[..4], correlation.to_be_bytes());
    Ok(body.len())
}

#[test]
fn proxied_cluster_routes_clients_through_the_proxy() {
    let cluster = KafkaCluster::start(ClusterOptions {
        allow_external: false,
        heap_mb: 384,
        proxied: true,
        startup_timeout: Duration::from_secs(120),
        ..ClusterOptions::default()
    })
    .expect("start proxied 1-node cluster");
    let proxy = cluster.proxy(1).unwrap();
    let bootstrap = cluster.bootstrap();
    assert_eq!(bootstrap, proxy.addr().to_string());
    assert_eq!(cluster.broker_addr(1), bootstrap);
    let direct = cluster.direct_addr(1).unwrap();
    assert_ne!(direct, bootstrap);
    assert_eq!(proxy.upstream().to_string(), direct);

    // Clients through the proxy: requests are answered, and the metadata advertises the
    // proxy (so a client that follows it stays behind the proxy). The kit's own requests
    // (create_topic, partition_leader) go to the broker directly.
    probe_api_versions(&bootstrap, Duration::from_secs(10)).expect("ApiVersions via proxy");
    cluster.create_topic("kt-proxied", 1, 1, &[]).unwrap();
    assert_eq!(cluster.partition_leader("kt-proxied", 0).unwrap(), Some(1));
    let out = cluster
        .tool_output("broker-api-versions", &["--bootstrap-server", &bootstrap])
        .expect("broker-api-versions tool");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&bootstrap),
        "the broker does not advertise the proxy {bootstrap}:\n{text}"
    );
    let proxied_conns = proxy.accepted();
    assert!(
        proxied_conns >= 3,
        "{proxied_conns} connections through the proxy"
    );

    let addr: SocketAddr = bootstrap.parse().unwrap();
    let mut conn = connect(addr, Duration::from_secs(30));
    api_versions_on(&mut conn, 1).unwrap();

    // Latency: 250 ms each way adds >= 500 ms per request.
    cluster
        .net_fault(1, NetFault::Latency(Duration::from_millis(250)))
        .unwrap();
    let t = Instant::now();
    api_versions_on(&mut conn, 2).unwrap();
    let slow = t.elapsed();
    assert!(slow >= Duration::from_millis(500), "{slow:?}");
    cluster.net_fault(1, NetFault::Heal).unwrap();

    // Black hole: a request times out (the connection stays open); heal restores service,
    // and the answer arrives on the same connection.
    cluster.net_fault(1, NetFault::BlackHole).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let err = api_versions_on(&mut conn, 3).expect_err("a black-holed request times out");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err:?}"
    );
    assert!(probe_api_versions(&bootstrap, Duration::from_secs(2)).is_err());
    // The broker itself is fine (the kit's probes bypass the proxy).
    probe_api_versions(&direct, Duration::from_secs(10)).expect("direct ApiVersions");
    cluster.net_fault(1, NetFault::Heal).unwrap();
    probe_api_versions(&bootstrap, Duration::from_secs(10)).expect("healed ApiVersions");

    // Reset: the open connection is dropped with an RST; a new one works.
    let mut conn = connect(addr, Duration::from_secs(30));
    api_versions_on(&mut conn, 4).unwrap();
    cluster.net_fault(1, NetFault::Reset).unwrap();
    let err = api_versions_on(&mut conn, 5).expect_err("a reset connection fails");
    assert!(is_reset(&err), "{err:?}");
    let mut conn = connect(addr, Duration::from_secs(30));
    api_versions_on(&mut conn, 6).unwrap();
}
