//! [`Statistics`]: librdkafka's statistics JSON (`statistics.interval.ms`) as a struct.
//!
//! The field names follow librdkafka's STATISTICS.md so that existing dashboards keep
//! working; every field has a default, so a snapshot that carries only what kafka-sdk can
//! measure still parses. Emission is not implemented yet: [`ClientContext::stats`] is never
//! called (see MIGRATING_FROM_RDKAFKA.md).
//!
//! [`ClientContext::stats`]: crate::client::ClientContext::stats
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

#[cfg(test)]
mod tests {
    use super::*;

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
