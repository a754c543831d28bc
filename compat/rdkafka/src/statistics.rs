//! [`Statistics`]: librdkafka's statistics JSON (`statistics.interval.ms`) as a struct.
//!
//! The field names follow librdkafka's STATISTICS.md so that existing dashboards keep
//! working; every field has a default, so a snapshot that carries only what kafka-sdk can
//! measure still parses. With `statistics.interval.ms` > 0, producers and consumers serialise
//! kafka-sdk's snapshot (`kafka_sdk::stats`) into this layout and hand the JSON to
//! [`ClientContext::stats_raw`] (whose default parses it and calls
//! [`ClientContext::stats`]) on the facade's callback threads. Fields kafka-sdk does not
//! measure keep librdkafka's "not available" value; the list is in `kafka_sdk::stats`.
//!
//! [`ClientContext::stats`]: crate::client::ClientContext::stats
//! [`ClientContext::stats_raw`]: crate::client::ClientContext::stats_raw
#![allow(missing_docs)]

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The top-level statistics object.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Statistics {
    pub name: String,
    pub client_id: String,
    #[serde(rename = "type")]
    pub client_type: String,
    pub ts: i64,
    pub time: i64,
    pub age: i64,
    pub replyq: i64,
    pub msg_cnt: u64,
    pub msg_size: u64,
    pub msg_max: u64,
    pub msg_size_max: u64,
    pub tx: i64,
    pub tx_bytes: i64,
    pub rx: i64,
    pub rx_bytes: i64,
    pub txmsgs: i64,
    pub txmsg_bytes: i64,
    pub rxmsgs: i64,
    pub rxmsg_bytes: i64,
    pub simple_cnt: i64,
    pub metadata_cache_cnt: i64,
    pub brokers: HashMap<String, Broker>,
    pub topics: HashMap<String, Topic>,
    pub cgrp: Option<ConsumerGroup>,
    pub eos: Option<ExactlyOnceSemantics>,
}

/// Per-broker statistics.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Broker {
    pub name: String,
    pub nodeid: i32,
    pub nodename: String,
    pub source: String,
    pub state: String,
    pub stateage: i64,
    pub outbuf_cnt: i64,
    pub outbuf_msg_cnt: i64,
    pub waitresp_cnt: i64,
    pub waitresp_msg_cnt: i64,
    pub tx: u64,
    pub txbytes: u64,
    pub txerrs: u64,
    pub txretries: u64,
    pub txidle: i64,
    pub req_timeouts: u64,
    pub rx: u64,
    pub rxbytes: u64,
    pub rxerrs: u64,
    pub rxcorriderrs: u64,
    pub rxpartial: u64,
    pub rxidle: i64,
    pub req: HashMap<String, i64>,
    pub zbuf_grow: u64,
    pub buf_grow: u64,
    pub wakeups: Option<u64>,
    pub connects: Option<i64>,
    pub disconnects: Option<i64>,
    pub int_latency: Option<Window>,
    pub outbuf_latency: Option<Window>,
    pub rtt: Option<Window>,
    pub throttle: Option<Window>,
    pub toppars: HashMap<String, TopicPartition>,
}

/// A rolling window of measurements (microseconds for latencies).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Window {
    pub min: i64,
    pub max: i64,
    pub avg: i64,
    pub sum: i64,
    pub cnt: i64,
    pub stddev: i64,
    pub hdrsize: i64,
    pub p50: i64,
    pub p75: i64,
    pub p90: i64,
    pub p95: i64,
    pub p99: i64,
    pub p99_99: i64,
    pub outofrange: i64,
}

/// A partition a broker leads for this client.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

/// Per-topic statistics.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Topic {
    pub topic: String,
    pub metadata_age: i64,
    pub batchsize: Window,
    pub batchcnt: Window,
    pub partitions: HashMap<i32, Partition>,
}

/// Per-partition statistics.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Partition {
    pub partition: i32,
    pub broker: i32,
    pub leader: i32,
    pub desired: bool,
    pub unknown: bool,
    pub msgq_cnt: i64,
    pub msgq_bytes: u64,
    pub xmit_msgq_cnt: i64,
    pub xmit_msgq_bytes: u64,
    pub fetchq_cnt: i64,
    pub fetchq_size: u64,
    pub fetch_state: String,
    pub query_offset: i64,
    pub next_offset: i64,
    pub app_offset: i64,
    pub stored_offset: i64,
    pub committed_offset: i64,
    pub eof_offset: i64,
    pub lo_offset: i64,
    pub hi_offset: i64,
    pub ls_offset: i64,
    pub consumer_lag: i64,
    pub consumer_lag_stored: i64,
    pub txmsgs: u64,
    pub txbytes: u64,
    pub rxmsgs: u64,
    pub rxbytes: u64,
    pub msgs: u64,
    pub rx_ver_drops: u64,
    pub msgs_inflight: i64,
    pub next_ack_seq: i64,
    pub next_err_seq: i64,
    pub acked_msgid: u64,
}

/// Consumer group statistics.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct ConsumerGroup {
    pub state: String,
    pub stateage: i64,
    pub join_state: String,
    pub rebalance_age: i64,
    pub rebalance_cnt: i64,
    pub rebalance_reason: String,
    pub assignment_size: i32,
}

/// Idempotence and transaction statistics.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct ExactlyOnceSemantics {
    pub idemp_state: String,
    pub idemp_stateage: i64,
    pub txn_state: String,
    pub txn_stateage: i64,
    pub txn_may_enq: bool,
    pub producer_id: i64,
    pub producer_epoch: i64,
    pub epoch_cnt: i64,
}

impl Window {
    fn from_sdk(w: &kafka_sdk::stats::Window) -> Window {
        Window {
            min: w.min,
            max: w.max,
            avg: w.avg,
            sum: w.sum,
            cnt: w.cnt,
            p50: w.p50,
            p75: w.p75,
            p90: w.p90,
            p95: w.p95,
            p99: w.p99,
            p99_99: w.p99_99,
            ..Default::default()
        }
    }
}

impl Partition {
    fn from_sdk(p: &kafka_sdk::stats::PartitionStats) -> Partition {
        Partition {
            partition: p.partition,
            broker: p.broker,
            leader: p.leader,
            desired: true,
            msgq_cnt: p.msgq_cnt,
            msgq_bytes: p.msgq_bytes,
            fetchq_cnt: p.fetchq_cnt,
            fetchq_size: p.fetchq_size,
            fetch_state: p.fetch_state.clone(),
            query_offset: kafka_sdk::stats::OFFSET_INVALID,
            next_offset: p.next_offset,
            app_offset: p.app_offset,
            stored_offset: p.stored_offset,
            committed_offset: p.committed_offset,
            eof_offset: p.eof_offset,
            lo_offset: p.lo_offset,
            hi_offset: p.hi_offset,
            ls_offset: p.ls_offset,
            consumer_lag: p.consumer_lag,
            consumer_lag_stored: p.consumer_lag_stored,
            txmsgs: p.txmsgs,
            txbytes: p.txbytes,
            rxmsgs: p.rxmsgs,
            rxbytes: p.rxbytes,
            ..Default::default()
        }
    }
}

impl Statistics {
    /// librdkafka's layout of a kafka-sdk snapshot.
    pub(crate) fn from_sdk(s: &kafka_sdk::stats::Statistics) -> Statistics {
        let mut brokers: HashMap<String, Broker> = s
            .brokers
            .iter()
            .map(|(k, b)| {
                let broker = Broker {
                    name: b.name.clone(),
                    nodeid: b.nodeid,
                    nodename: b.nodename.clone(),
                    source: if b.nodeid < 0 {
                        "configured"
                    } else {
                        "learned"
                    }
                    .into(),
                    state: b.state.clone(),
                    stateage: b.stateage,
                    outbuf_cnt: b.outbuf_cnt,
                    waitresp_cnt: b.waitresp_cnt,
                    tx: b.tx,
                    txbytes: b.txbytes,
                    txerrs: b.txerrs,
                    req_timeouts: b.req_timeouts,
                    rx: b.rx,
                    rxbytes: b.rxbytes,
                    req: b.req.iter().map(|(k, v)| (k.clone(), *v as i64)).collect(),
                    connects: Some(b.connects as i64),
                    disconnects: Some(b.disconnects as i64),
                    rtt: Some(Window::from_sdk(&b.rtt)),
                    throttle: Some(Window::from_sdk(&b.throttle)),
                    ..Default::default()
                };
                (k.clone(), broker)
            })
            .collect();
        let topics = s
            .topics
            .iter()
            .map(|(name, t)| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|(id, p)| (*id, Partition::from_sdk(p)))
                    .collect();
                for p in t.partitions.values() {
                    if let Some(b) = brokers.values_mut().find(|b| b.nodeid == p.leader) {
                        b.toppars.insert(
                            format!("{name}-{}", p.partition),
                            TopicPartition {
                                topic: name.clone(),
                                partition: p.partition,
                            },
                        );
                    }
                }
                let topic = Topic {
                    topic: t.topic.clone(),
                    partitions,
                    ..Default::default()
                };
                (name.clone(), topic)
            })
            .collect();
        Statistics {
            name: s.name.clone(),
            client_id: s.client_id.clone(),
            client_type: s.client_type.clone(),
            ts: s.ts,
            time: s.time,
            age: s.age,
            msg_cnt: s.msg_cnt,
            msg_size: s.msg_size,
            msg_max: s.msg_max,
            msg_size_max: s.msg_size_max,
            tx: s.tx as i64,
            tx_bytes: s.tx_bytes as i64,
            rx: s.rx as i64,
            rx_bytes: s.rx_bytes as i64,
            txmsgs: s.txmsgs as i64,
            txmsg_bytes: s.txmsg_bytes as i64,
            rxmsgs: s.rxmsgs as i64,
            rxmsg_bytes: s.rxmsg_bytes as i64,
            brokers,
            topics,
            cgrp: s.cgrp.as_ref().map(|g| ConsumerGroup {
                state: g.state.clone(),
                stateage: g.stateage,
                join_state: g.join_state.clone(),
                rebalance_age: g.rebalance_age,
                rebalance_cnt: g.rebalance_cnt,
                rebalance_reason: g.rebalance_reason.clone(),
                assignment_size: g.assignment_size,
            }),
            eos: s.eos.as_ref().map(|e| ExactlyOnceSemantics {
                idemp_state: e.idemp_state.clone(),
                idemp_stateage: e.idemp_stateage,
                txn_state: e.txn_state.clone(),
                txn_stateage: e.txn_stateage,
                txn_may_enq: e.txn_may_enq,
                producer_id: e.producer_id,
                producer_epoch: e.producer_epoch,
                epoch_cnt: e.epoch_cnt,
            }),
            ..Default::default()
        }
    }

    /// The snapshot as librdkafka's JSON (what `stats_raw` receives).
    pub(crate) fn to_json(s: &kafka_sdk::stats::Statistics) -> Vec<u8> {
        serde_json::to_vec(&Statistics::from_sdk(s)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A filled kafka-sdk snapshot serialises with librdkafka's keys at librdkafka's places.
    #[test]
    fn filled_snapshot_has_librdkafka_layout() {
        use kafka_sdk::stats as sdk;
        let mut s = sdk::Statistics::default();
        s.name = "app#consumer-1".into();
        s.client_id = "app".into();
        s.client_type = "consumer".into();
        s.ts = 1;
        s.txmsgs = 7;
        s.rxmsgs = 9;
        let mut b = sdk::BrokerStats::default();
        b.name = "h:9092/1".into();
        b.nodeid = 1;
        b.state = "UP".into();
        b.rtt.cnt = 3;
        b.rtt.p99 = 42;
        b.throttle.cnt = 2;
        b.throttle.max = 700;
        b.req.insert("Fetch".into(), 5);
        s.brokers.insert(b.name.clone(), b);
        let mut p = sdk::PartitionStats::default();
        p.partition = 0;
        p.leader = 1;
        p.hi_offset = 10;
        p.committed_offset = 4;
        p.consumer_lag = 6;
        let mut t = sdk::TopicStats::default();
        t.topic = "t".into();
        t.partitions.insert(0, p);
        s.topics.insert("t".into(), t);
        let mut g = sdk::GroupStats::default();
        g.state = "up".into();
        g.assignment_size = 1;
        s.cgrp = Some(g);
        let mut e = sdk::EosStats::default();
        e.idemp_state = "Assigned".into();
        e.producer_id = 3;
        s.eos = Some(e);
        let v: serde_json::Value = serde_json::from_slice(&Statistics::to_json(&s)).unwrap();
        for key in [
            "name",
            "client_id",
            "type",
            "ts",
            "time",
            "age",
            "msg_cnt",
            "msg_size",
            "msg_max",
            "msg_size_max",
            "tx",
            "tx_bytes",
            "rx",
            "rx_bytes",
            "txmsgs",
            "txmsg_bytes",
            "rxmsgs",
            "rxmsg_bytes",
            "brokers",
            "topics",
            "cgrp",
            "eos",
        ] {
            assert!(v.get(key).is_some(), "top-level {key} missing: {v}");
        }
        assert_eq!(v["type"], "consumer");
        assert_eq!(v["txmsgs"], 7);
        assert_eq!(v["rxmsgs"], 9);
        let b = &v["brokers"]["h:9092/1"];
        for key in [
            "name",
            "nodeid",
            "nodename",
            "state",
            "stateage",
            "outbuf_cnt",
            "waitresp_cnt",
            "tx",
            "txbytes",
            "rx",
            "rxbytes",
            "connects",
            "disconnects",
            "rtt",
            "req",
            "toppars",
        ] {
            assert!(b.get(key).is_some(), "broker {key} missing: {b}");
        }
        assert_eq!(b["state"], "UP");
        assert_eq!(b["rtt"]["cnt"], 3);
        assert_eq!(b["rtt"]["p99"], 42);
        assert_eq!(b["throttle"]["cnt"], 2);
        assert_eq!(b["throttle"]["max"], 700);
        assert_eq!(b["req"]["Fetch"], 5);
        assert_eq!(b["toppars"]["t-0"]["partition"], 0);
        let p = &v["topics"]["t"]["partitions"]["0"];
        for key in [
            "partition",
            "broker",
            "leader",
            "msgq_cnt",
            "msgq_bytes",
            "txmsgs",
            "txbytes",
            "rxmsgs",
            "rxbytes",
            "fetch_state",
            "fetchq_cnt",
            "next_offset",
            "app_offset",
            "stored_offset",
            "committed_offset",
            "eof_offset",
            "lo_offset",
            "hi_offset",
            "ls_offset",
            "consumer_lag",
            "consumer_lag_stored",
        ] {
            assert!(p.get(key).is_some(), "partition {key} missing: {p}");
        }
        assert_eq!(p["consumer_lag"], 6);
        assert_eq!(p["committed_offset"], 4);
        assert_eq!(p["stored_offset"], -1001);
        assert_eq!(v["cgrp"]["state"], "up");
        assert_eq!(v["cgrp"]["assignment_size"], 1);
        assert_eq!(v["eos"]["idemp_state"], "Assigned");
        assert_eq!(v["eos"]["producer_id"], 3);
        // And it parses back into the same struct (`stats_raw`'s default).
        let back: Statistics = serde_json::from_value(v).unwrap();
        assert_eq!(back, Statistics::from_sdk(&s));
    }

    #[test]
    fn parses_librdkafka_layout_subset() {
        let json = r#"{"name":"rdkafka#producer-1","type":"producer","ts":5,"msg_cnt":3,
            "brokers":{"b:9092/1":{"nodeid":1,"state":"UP","rtt":{"avg":120}}},
            "topics":{"t":{"topic":"t","partitions":{"0":{"partition":0,"consumer_lag":4}}}}}"#;
        let s: Statistics = serde_json::from_str(json).unwrap();
        assert_eq!(s.client_type, "producer");
        assert_eq!(s.msg_cnt, 3);
        assert_eq!(s.brokers["b:9092/1"].rtt.as_ref().unwrap().avg, 120);
        assert_eq!(s.topics["t"].partitions[&0].consumer_lag, 4);
    }
}
