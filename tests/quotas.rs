//! Client quotas (KIP-219): a broker over a client's byte rate answers at once with
//! `throttle_time_ms` and then reads nothing more from that connection until the throttle
//! ends. A client that writes its next requests anyway sees them wait in the muted socket,
//! and with a throttle longer than `request.timeout.ms` they time out (the connection is
//! dropped and the batches retried). kafka-sdk holds further requests on a throttled
//! connection and starts their timeout when it writes them. Against the test kit's shared
//! broker (quotas set with the admin client's `alter_client_quotas`, KIP-546, for one client
//! id per test).

mod support;

use std::time::Duration;

use kafka_sdk::admin::{AdminClient, QuotaAlteration, QuotaEntity, QuotaFilter, QuotaMatch};
use kafka_sdk::{Producer, ProducerRecord};

use support::common::{self, create_topic, unique};

/// Sets `producer_byte_rate` and `consumer_byte_rate` of client id `client` on the shared
/// broker.
async fn quota(client: &str, bytes_per_sec: u64) {
    let rate = bytes_per_sec as f64;
    client_quota(
        client,
        &[("producer_byte_rate", rate), ("consumer_byte_rate", rate)],
    )
    .await
}

/// Sets the quotas `values` of client id `client` on the shared broker with the admin
/// client (AlterClientQuotas), and waits until DescribeClientQuotas shows them (the broker
/// applies them from then on).
async fn client_quota(client: &str, values: &[(&str, f64)]) {
    let b = kafka_testkit::shared().bootstrap();
    let admin = AdminClient::new(&common::config(&b, &[])).await.unwrap();
    let entity = QuotaEntity::client_id(Some(client));
    let mut change = QuotaAlteration::new(entity.clone());
    for (k, v) in values {
        change = change.set(k, *v);
    }
    let r = admin.alter_client_quotas(&[change], false).await.unwrap();
    assert_eq!(r.len(), 1);
    r[0].1.as_ref().expect("quota set");
    let filter = QuotaFilter::all()
        .with("client-id", QuotaMatch::Exact(client.into()))
        .strict();
    let want: std::collections::BTreeMap<String, f64> =
        values.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    // The brokers learn the quota from the controller's metadata a moment later.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let shown = admin.describe_client_quotas(&filter).await.unwrap();
        if shown.get(&entity) == Some(&want) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{client}: the quota is not described: {shown:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Requests that timed out, over every broker (the client's statistics).
fn timeouts(s: &kafka_sdk::stats::Statistics) -> u64 {
    s.brokers.values().map(|b| b.req_timeouts).sum()
}

/// Throttled answers and the longest throttle (ms), over every broker.
fn throttles(s: &kafka_sdk::stats::Statistics) -> (i64, i64) {
    let w = s.brokers.values().map(|b| &b.throttle);
    (
        w.clone().map(|t| t.cnt).sum(),
        w.map(|t| t.max).max().unwrap_or(0),
    )
}

/// 200 KB/s and 1 MB requests: each throttled answer mutes the connection for seconds,
/// more than the 2 s `request.timeout.ms`. Every record arrives, no request times out
/// (before: 1-2 per 2 MB round), the statistics report the throttles, and the consumer
/// under the same quota reads them all without a timeout either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_connection_holds_requests_instead_of_timing_them_out() {
    let b = kafka_testkit::shared().bootstrap();
    let topic = unique("quota");
    create_topic(&b, &topic, 1).await;
    let client = unique("quota-client");
    quota(&client, 200_000).await;
    let cfg = [
        ("client.id", client.as_str()),
        ("request.timeout.ms", "2000"),
        ("delivery.timeout.ms", "120000"),
        ("batch.size", "1000000"),
        ("linger.ms", "5"),
    ];
    let p = Producer::new(&common::config(&b, &cfg)).await.unwrap();
    let n = 3_000;
    let value = vec![b'q'; 1000];
    let mut acks = Vec::new();
    for _ in 0..n {
        let r = ProducerRecord::new(topic.as_str())
            .partition(0)
            .value(value.clone());
        acks.push(p.send(r).await.unwrap());
    }
    for (i, a) in acks.into_iter().enumerate() {
        let md = a.await.unwrap_or_else(|e| panic!("record {i}: {e}"));
        assert_eq!(md.offset, i as i64, "each record once, in order");
    }
    let s = p.statistics();
    assert_eq!(
        timeouts(&s),
        0,
        "producer request timeouts: {:?}",
        s.brokers
    );
    // The throttles are reported (librdkafka's per-broker `throttle` window, in ms), and
    // were longer than the request timeout.
    let (n, longest) = throttles(&s);
    assert!(
        n > 0 && longest > 2000,
        "producer throttles: {:?}",
        s.brokers
    );

    let extra = [
        ("client.id", client.as_str()),
        ("request.timeout.ms", "2000"),
        ("fetch.max.wait.ms", "100"),
    ];
    let c = common::reader_of_partition_0(&b, &topic, &extra).await;
    for i in 0..n {
        let m = tokio::time::timeout(Duration::from_secs(60), c.recv())
            .await
            .unwrap_or_else(|_| panic!("record {i} not received within 60 s"))
            .unwrap();
        assert_eq!(m.offset(), i);
    }
    let s = c.statistics();
    assert_eq!(
        timeouts(&s),
        0,
        "consumer request timeouts: {:?}",
        s.brokers
    );
}

/// A request-rate quota (`request_percentage`) throttles every API, not only Produce and
/// Fetch: the broker answers a Metadata request with `throttle_time_ms` and mutes the
/// connection. With a throttle longer than `request.timeout.ms`, a client that writes its
/// next request anyway times it out. kafka-sdk keeps the throttle of every answer whose
/// version expects the client to (KIP-219): no timeout, and the statistics count them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_rate_quota_throttles_metadata_without_timeouts() {
    let b = kafka_testkit::shared().bootstrap();
    let client = unique("quota-req-client");
    client_quota(&client, &[("request_percentage", 1.0)]).await;
    let cfg = [
        ("client.id", client.as_str()),
        ("request.timeout.ms", "400"),
    ];
    let p = Producer::new(&common::config(&b, &cfg)).await.unwrap();
    let t0 = std::time::Instant::now();
    let (mut n, mut throttled, mut longest) = (0, 0, 0);
    // Until a throttle outlasted the request timeout (each one mutes the connection for up
    // to the 1 s quota window). A snapshot resets the windows: sum them.
    while longest <= 400 && t0.elapsed() < Duration::from_secs(30) {
        p.fetch_metadata(None)
            .await
            .unwrap_or_else(|e| panic!("metadata request {n}: {e}"));
        n += 1;
        let (c, m) = throttles(&p.statistics());
        throttled += c;
        longest = longest.max(m);
    }
    // The next requests wait out the throttle in the client, not in the muted socket.
    for i in 0..3 {
        p.fetch_metadata(None)
            .await
            .unwrap_or_else(|e| panic!("metadata request {i} after the throttle: {e}"));
    }
    let s = p.statistics();
    eprintln!(
        "{n} metadata requests in {:?}: {throttled} throttled, longest {longest} ms",
        t0.elapsed()
    );
    assert!(
        longest > 400,
        "a metadata answer's throttle longer than request.timeout.ms kept: {throttled} throttled, longest {longest} ms"
    );
    assert_eq!(timeouts(&s), 0, "request timeouts: {:?}", s.brokers);
}
