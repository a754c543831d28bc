//! The timestamp a delivery report shows, against the test kit's shared broker, as
//! librdkafka reports it: on a topic with `message.timestamp.type=LogAppendTime` the broker's
//! time, as `Timestamp::LogAppendTime` (librdkafka marks a message stamped by the broker
//! that way when it sets the acknowledged batch's metadata); on a `CreateTime` topic the
//! record's own timestamp as `Timestamp::CreateTime`. Through `BaseProducer` (whose reports
//! are read in place from the kept batch) and `FutureProducer::send_result`.

mod common;
use common::{bootstrap, create_topic, unique};

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafka_sdk_rdkafka::config::ClientConfig as RdConfig;
use kafka_sdk_rdkafka::message::{Message, Timestamp};
use kafka_sdk_rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, FutureProducer, FutureRecord, Producer as _,
    ProducerContext,
};
use kafka_sdk_rdkafka::ClientContext;

/// What a report showed: payload, offset, timestamp.
type Seen = (Vec<u8>, i64, Timestamp);

/// Records what each report shows.
#[derive(Clone, Default)]
struct Reports(Arc<Mutex<Vec<Seen>>>);

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = ();

    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        let m = r.as_ref().expect("delivered");
        let seen = (
            m.payload().unwrap_or_default().to_vec(),
            m.offset(),
            m.timestamp(),
        );
        self.0.lock().unwrap().push(seen);
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn rd_config() -> RdConfig {
    let mut c = RdConfig::new();
    c.set("bootstrap.servers", bootstrap())
        .set("linger.ms", "5");
    c
}

const OWN: i64 = 1_700_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_show_the_brokers_time_as_log_append_time() {
    let create_time = unique("dr-ts-ct");
    let append_time = unique("dr-ts-lat");
    create_topic(&create_time, 1, &[]).await;
    create_topic(
        &append_time,
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let before = now_ms();

    // BaseProducer: three records per topic (one batch), each with its own timestamp.
    let reports = Reports::default();
    let base: BaseProducer<Reports> = rd_config()
        .create_with_context(reports.clone())
        .expect("create the BaseProducer");
    let (ct, lat) = (create_time.clone(), append_time.clone());
    let seen = tokio::task::spawn_blocking(move || {
        for topic in [&ct, &lat] {
            for i in 0..3i64 {
                let payload = format!("{topic}-{i}");
                base.send(
                    BaseRecord::<(), _>::to(topic)
                        .payload(&payload)
                        .timestamp(OWN + i),
                )
                .map_err(|(e, _)| e)
                .expect("queued");
            }
        }
        base.flush(Duration::from_secs(30)).expect("flushed");
        reports.0.lock().unwrap().clone()
    })
    .await
    .unwrap();
    assert_eq!(seen.len(), 6, "{seen:?}");
    let after = now_ms();
    for (payload, offset, ts) in &seen {
        let payload = String::from_utf8_lossy(payload);
        let i = *offset;
        if payload.starts_with(&append_time) {
            match ts {
                Timestamp::LogAppendTime(t) => assert!(
                    (before - 1_000..=after + 1_000).contains(t),
                    "{payload}: broker time {t} outside {before}..{after}"
                ),
                other => panic!("{payload}: {other:?}, want LogAppendTime"),
            }
        } else {
            assert_eq!(*ts, Timestamp::CreateTime(OWN + i), "{payload}");
        }
    }

    // FutureProducer::send_result: the delivery's timestamp.
    let future: FutureProducer = rd_config().create().expect("create the FutureProducer");
    for (topic, log_append) in [(&create_time, false), (&append_time, true)] {
        let d = future
            .send_result(
                FutureRecord::<(), _>::to(topic)
                    .payload("f")
                    .timestamp(OWN + 9),
            )
            .map_err(|(e, _)| e)
            .expect("queued")
            .await
            .expect("not cancelled")
            .map_err(|(e, _)| e)
            .expect("delivered");
        match (log_append, d.timestamp) {
            (true, Timestamp::LogAppendTime(t)) => {
                assert!(t >= before - 1_000, "broker time {t}")
            }
            (false, Timestamp::CreateTime(t)) => assert_eq!(t, OWN + 9),
            other => panic!("{topic}: {other:?}"),
        }
    }
}
