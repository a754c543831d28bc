//! A service that starts while Kafka is down: rdkafka's `create()` never waits for the
//! cluster (librdkafka connects in the background), so neither does the drop-in's. The
//! clients' bootstrap address is a port of this test that refuses connections until the
//! test opens it (then it forwards to the test kit's shared broker; the broker's metadata
//! then points the clients at the broker itself). While it is down, the error callback reports
//! it as librdkafka's does.

mod common;
use common::{bootstrap, create_topic, unique};

use std::time::{Duration, Instant};

use kafka_sdk_rdkafka::admin::AdminClient;
use kafka_sdk_rdkafka::client::{ClientContext, DefaultClientContext};
use kafka_sdk_rdkafka::config::ClientConfig;
use kafka_sdk_rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use kafka_sdk_rdkafka::error::{KafkaError, RDKafkaErrorCode};
use kafka_sdk_rdkafka::message::Message;
use kafka_sdk_rdkafka::producer::{BaseProducer, FutureProducer, FutureRecord};
use tokio::net::{TcpListener, TcpStream};

/// A local port that refuses connections until [`Gate::open`] (nothing listens on it), then
/// forwards every connection to `upstream`.
struct Gate {
    addr: String,
}

impl Gate {
    fn closed() -> Gate {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        Gate { addr }
    }

    async fn open(&self, upstream: String) {
        let l = TcpListener::bind(&self.addr).await.unwrap();
        tokio::spawn(async move {
            while let Ok((mut down, _)) = l.accept().await {
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
            }
        });
    }
}

fn config(addr: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr);
    c
}

/// `create()` in a blocking thread, with how long it took.
async fn timed<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> (T, Duration) {
    tokio::task::spawn_blocking(move || {
        let t0 = Instant::now();
        let r = f();
        (r, t0.elapsed())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_is_created_while_kafka_is_down() {
    let gate = Gate::closed();
    let mut grouped = config(&gate.addr);
    grouped.set("group.id", unique("down-g"));
    let (c1, c2, c3) = (config(&gate.addr), config(&gate.addr), config(&gate.addr));
    let (g1, g2) = (grouped.clone(), grouped);
    let (r, took) = timed(move || {
        let p: FutureProducer = c1.create().map_err(|e| format!("FutureProducer: {e}"))?;
        let b: BaseProducer = c2.create().map_err(|e| format!("BaseProducer: {e}"))?;
        let s: StreamConsumer = g1.create().map_err(|e| format!("StreamConsumer: {e}"))?;
        let bc: BaseConsumer = g2.create().map_err(|e| format!("BaseConsumer: {e}"))?;
        let a: AdminClient<DefaultClientContext> =
            c3.create().map_err(|e| format!("AdminClient: {e}"))?;
        Ok::<_, String>((p, b, s, bc, a))
    })
    .await;
    let clients = r.unwrap_or_else(|e| panic!("create() failed while Kafka was down: {e}"));
    assert!(
        took < Duration::from_secs(5),
        "creating five clients took {took:?}: create() waited for the cluster"
    );
    // Dropping them while the cluster is still away does not hang either.
    let ((), took) = timed(move || drop(clients)).await;
    assert!(took < Duration::from_secs(40), "dropping took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_sent_before_kafka_is_up_are_delivered_and_read_once_it_is() {
    let topic = unique("down-topic");
    create_topic(&topic, 1, &[]).await;

    let gate = Gate::closed();
    let pc = config(&gate.addr);
    let mut cc = config(&gate.addr);
    cc.set("group.id", unique("down-read"))
        .set("auto.offset.reset", "earliest");
    let ((producer, consumer), took) = timed(move || {
        let p: FutureProducer = pc.create().expect("producer while Kafka is down");
        let c: StreamConsumer = cc.create().expect("consumer while Kafka is down");
        (p, c)
    })
    .await;
    assert!(took < Duration::from_secs(5), "create() took {took:?}");
    consumer.subscribe(&[&topic]).unwrap();

    let mut sends = Vec::new();
    for i in 0..5 {
        let p = producer.clone();
        let t = topic.clone();
        sends.push(tokio::spawn(async move {
            let v = format!("early-{i}");
            p.send(
                FutureRecord::<(), _>::to(&t).payload(&v),
                Duration::from_secs(5),
            )
            .await
            .map(|_| ())
            .map_err(|(e, _)| e.to_string())
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for s in &sends {
        assert!(!s.is_finished(), "a record finished while Kafka was down");
    }
    gate.open(bootstrap()).await;
    for (i, s) in sends.into_iter().enumerate() {
        let r = tokio::time::timeout(Duration::from_secs(60), s)
            .await
            .unwrap_or_else(|_| panic!("record {i} not delivered within 60 s of Kafka coming up"))
            .unwrap();
        assert!(r.is_ok(), "record {i}: {r:?}");
    }

    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < 5 && Instant::now() < deadline {
        if let Ok(m) = tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await {
            let m = m.expect("no consumer error");
            got.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
        }
    }
    got.sort();
    let want: Vec<String> = (0..5).map(|i| format!("early-{i}")).collect();
    assert_eq!(got, want);
}

/// What an error callback was called with: the code and the reason.
#[derive(Clone, Default)]
struct Errors(std::sync::Arc<std::sync::Mutex<Vec<(RDKafkaErrorCode, String)>>>);

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code().expect("an error code");
        self.0.lock().unwrap().push((code, reason.to_string()));
    }
}

impl ConsumerContext for Errors {}

impl Errors {
    /// Waits until `AllBrokersDown` was reported (panics after 20 s); returns every report.
    async fn until_all_down(&self) -> Vec<(RDKafkaErrorCode, String)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = self.0.lock().unwrap().clone();
            if seen
                .iter()
                .any(|(c, _)| *c == RDKafkaErrorCode::AllBrokersDown)
            {
                return seen;
            }
            assert!(Instant::now() < deadline, "no AllBrokersDown: {seen:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// While Kafka is down, the error callback reports what librdkafka's does: the bootstrap
/// broker as `BrokerTransportFailure` ("host:port/bootstrap: ..."), then `AllBrokersDown`
/// ("1/1 brokers are down"), once (not for every reconnect attempt) — for a producer and a
/// consumer. Once Kafka is up, the producer's records go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_callback_reports_all_brokers_down() {
    let topic = unique("down-errors");
    create_topic(&topic, 1, &[]).await;
    let gate = Gate::closed();
    let (pe, ce) = (Errors::default(), Errors::default());
    let mut pc = config(&gate.addr);
    pc.set("reconnect.backoff.max.ms", "200");
    let mut cc = pc.clone();
    cc.set("group.id", unique("down-errors-g"));
    let (p2, c2) = (pe.clone(), ce.clone());
    let (producer, consumer) = timed(move || {
        let p: FutureProducer<Errors> = pc.create_with_context(p2).expect("producer");
        let c: StreamConsumer<Errors> = cc.create_with_context(c2).expect("consumer");
        (p, c)
    })
    .await
    .0;
    consumer.subscribe(&[&topic]).unwrap();
    for (who, errors) in [("producer", &pe), ("consumer", &ce)] {
        let seen = errors.until_all_down().await;
        let transport: Vec<_> = seen
            .iter()
            .filter(|(c, _)| *c == RDKafkaErrorCode::BrokerTransportFailure)
            .collect();
        assert!(
            transport
                .iter()
                .any(|(_, r)| r.starts_with(&format!("{}/bootstrap: ", gate.addr))),
            "{who}: {seen:?}"
        );
        let all: Vec<_> = seen
            .iter()
            .filter(|(c, _)| *c == RDKafkaErrorCode::AllBrokersDown)
            .collect();
        assert_eq!(all.len(), 1, "{who}: {seen:?}");
        assert_eq!(all[0].1, "1/1 brokers are down", "{who}");
    }
    // Reconnect attempts go on (every 200 ms at most): reported once per outage.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (who, errors) in [("producer", &pe), ("consumer", &ce)] {
        let seen = errors.0.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{who}: {seen:?}");
    }
    gate.open(bootstrap()).await;
    let r = tokio::time::timeout(
        Duration::from_secs(60),
        producer.send(
            FutureRecord::<(), _>::to(&topic).payload("after"),
            Duration::from_secs(5),
        ),
    )
    .await
    .expect("delivered within 60 s of Kafka coming up");
    assert!(r.is_ok(), "{r:?}");
}
