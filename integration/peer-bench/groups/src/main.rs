//! kafka-sdk side of the group benchmarks (the Java side is `java/GroupsBench.java`; both
//! print the same JSON lines, `run.py` runs them side by side).
//!
//! ```text
//! groups-bench rebalance BROKERS TOPIC PARTITIONS PROTOCOL ASSIGNOR MEMBERS RUNS
//! groups-bench share BROKERS TOPIC GROUP COUNT
//! ```
//!
//! `rebalance`: per run, a fresh group of MEMBERS consumers (`group.protocol` PROTOCOL =
//! `classic` | `consumer`; ASSIGNOR is the classic `partition.assignment.strategy` or the
//! KIP-848 `group.remote.assignor`) subscribes to TOPIC; once stable (every member owns at
//! least one partition, every partition has exactly one owner), a member joins and the time
//! until the group is stable again is printed (`join_ms`); then one of the original members
//! leaves (`close`, a clean leave) and the time until the rest are stable is printed
//! (`leave_ms`). Every member runs `recv_batch` in a loop all along.
//!
//! `share`: one share consumer (implicit acknowledgement) receives COUNT records of TOPIC in
//! share group GROUP (configured `share.auto.offset.reset=earliest` by the driver); prints
//! the time from creation to the last record and records/s.
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka_sdk::{ClientConfig, Consumer, ShareConsumer};

fn usage() -> ! {
    eprintln!(
        "usage: groups-bench rebalance BROKERS TOPIC PARTITIONS PROTOCOL ASSIGNOR MEMBERS RUNS\n       \
         groups-bench share BROKERS TOPIC GROUP COUNT"
    );
    std::process::exit(2)
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> T {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| usage())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("rebalance") => rebalance(&args).await,
        Some("share") => share(&args).await,
        _ => usage(),
    }
}

struct Member {
    consumer: Arc<Consumer>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_member(cfg: &ClientConfig, topic: &str) -> Member {
    let consumer = Arc::new(Consumer::new(cfg).await.expect("consumer"));
    consumer.subscribe(&[topic]).expect("subscribe");
    let stop = Arc::new(AtomicBool::new(false));
    let (c, s) = (consumer.clone(), stop.clone());
    let task = tokio::spawn(async move {
        while !s.load(Ordering::Relaxed) {
            if let Err(e) = c.recv_batch(500, Duration::from_millis(50)).await {
                eprintln!("recv: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    Member {
        consumer,
        stop,
        task,
    }
}

async fn stop_member(m: Member) {
    m.stop.store(true, Ordering::Relaxed);
    let _ = m.task.await;
    let consumer = Arc::try_unwrap(m.consumer).unwrap_or_else(|_| panic!("member still shared"));
    if let Err(e) = consumer.close().await {
        eprintln!("close: {e}");
    }
}

/// Every member owns at least one partition and every partition has exactly one owner.
fn stable(members: &[Member], partitions: i32) -> bool {
    let mut owned = BTreeSet::new();
    let mut total = 0;
    for m in members {
        let a = m.consumer.assignment();
        if a.is_empty() {
            return false;
        }
        total += a.len();
        owned.extend(a.into_iter().map(|tp| tp.partition));
    }
    total == partitions as usize && owned.len() == partitions as usize
}

/// Milliseconds until `stable`, polled every 5 ms (bounded at 120 s).
async fn until_stable(members: &[Member], partitions: i32, since: Instant) -> f64 {
    while !stable(members, partitions) {
        if since.elapsed() > Duration::from_secs(120) {
            eprintln!("group not stable within 120 s");
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    since.elapsed().as_secs_f64() * 1000.0
}

async fn rebalance(args: &[String]) {
    let brokers: String = arg(args, 2);
    let topic: String = arg(args, 3);
    let partitions: i32 = arg(args, 4);
    let protocol: String = arg(args, 5);
    let assignor: String = arg(args, 6);
    let members: usize = arg(args, 7);
    let runs: usize = arg(args, 8);
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    for run in 0..runs {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &brokers);
        cfg.set(
            "group.id",
            format!("rb-sdk-{protocol}-{assignor}-{members}-{stamp}-{run}"),
        );
        cfg.set("group.protocol", &protocol);
        if protocol == "classic" {
            cfg.set("partition.assignment.strategy", &assignor);
        } else {
            cfg.set("group.remote.assignor", &assignor);
        }
        let mut group = Vec::new();
        let t = Instant::now();
        for _ in 0..members {
            group.push(start_member(&cfg, &topic).await);
        }
        let initial_ms = until_stable(&group, partitions, t).await;
        let t = Instant::now();
        group.push(start_member(&cfg, &topic).await);
        let join_ms = until_stable(&group, partitions, t).await;
        let t = Instant::now();
        let leaving = group.remove(0);
        let closing = tokio::spawn(stop_member(leaving));
        let leave_ms = until_stable(&group, partitions, t).await;
        let _ = closing.await;
        println!(
            "{{\"client\":\"kafka-sdk\",\"protocol\":\"{protocol}\",\"assignor\":\"{assignor}\",\
             \"members\":{members},\"run\":{run},\"initial_ms\":{initial_ms:.0},\
             \"join_ms\":{join_ms:.0},\"leave_ms\":{leave_ms:.0}}}"
        );
        for m in group {
            stop_member(m).await;
        }
    }
}

async fn share(args: &[String]) {
    let brokers: String = arg(args, 2);
    let topic: String = arg(args, 3);
    let group: String = arg(args, 4);
    let count: u64 = arg(args, 5);
    let t = Instant::now();
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &brokers);
    cfg.set("group.id", &group);
    let consumer = ShareConsumer::new(&cfg).await.expect("share consumer");
    consumer.subscribe(&[topic.as_str()]).expect("subscribe");
    let mut got = 0u64;
    let mut first = None;
    while got < count {
        let batch = consumer.recv_batch().await.expect("recv");
        first.get_or_insert_with(Instant::now);
        got += batch.len() as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    let from_first = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    let _ = consumer.close().await;
    println!(
        "{{\"client\":\"kafka-sdk\",\"records\":{got},\"secs\":{secs:.3},\
         \"secs_from_first\":{from_first:.3},\"rate\":{:.0}}}",
        got as f64 / secs
    );
}
