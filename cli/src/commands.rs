//! The subcommands.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, Write};
use std::time::Duration;

use kafka_sdk::admin::{
    AdminClient, AlterConfigOp, ConfigResource, ConfigSource, GroupLag, NewTopic, ResetSpec,
};
use kafka_sdk::consumer::{Consumer, Offset};
use kafka_sdk::{ClientConfig, Producer, ProducerRecord, TopicPartition};
use serde_json::json;

use crate::format;
use crate::{Cli, Command, ConsumeArgs, GroupsOp, LagArgs, OffsetsOp, ProduceArgs, RecordsOp};
use crate::{QuotasOp, ResetArgs, TopicsOp};

/// Errors of the subcommands: printed as one line by `main`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T = ()> = Result<T, BoxError>;

/// Context of every subcommand: the client config and the output mode.
struct Ctx {
    config: ClientConfig,
    json: bool,
}

impl Ctx {
    fn config_with(&self, extra: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, v) in extra {
            c.set(*k, *v);
        }
        // The user's -X keys win over the command's own settings.
        for (k, v) in self.config.iter() {
            c.set(k, v);
        }
        c
    }

    async fn admin(&self) -> Res<AdminClient> {
        Ok(AdminClient::new(&self.config).await?)
    }

    fn print_json(&self, v: serde_json::Value) {
        println!("{v}");
    }
}

/// Runs the command line.
pub async fn run(cli: Cli) -> Res {
    let mut config = ClientConfig::new();
    let brokers = cli
        .brokers
        .clone()
        .or_else(|| std::env::var("KAFKA_BOOTSTRAP_SERVERS").ok());
    if let Some(b) = brokers {
        config.set("bootstrap.servers", b);
    }
    for (k, v) in &cli.config {
        config.set(k.as_str(), v.as_str());
    }
    if config.get("bootstrap.servers").is_none() {
        return Err("no brokers: pass -b host:port (or -X bootstrap.servers=..., or set KAFKA_BOOTSTRAP_SERVERS)".into());
    }
    let ctx = Ctx {
        config,
        json: cli.json,
    };
    match cli.command {
        Command::Produce(a) => produce(&ctx, a).await,
        Command::Consume(a) => consume(&ctx, a).await,
        Command::Metadata { topic } => metadata(&ctx, topic).await,
        Command::Topics { op } => topics(&ctx, op).await,
        Command::Groups { op } => groups(&ctx, op).await,
        Command::Lag(a) => lag(&ctx, a).await,
        Command::Offsets {
            op: OffsetsOp::Reset(a),
        } => reset(&ctx, a).await,
        Command::Features => features(&ctx).await,
        Command::Quotas { op } => quotas(&ctx, op).await,
        Command::Records {
            op:
                RecordsOp::Delete {
                    topic,
                    partition,
                    before,
                },
        } => {
            let admin = ctx.admin().await?;
            let r = admin
                .delete_records(vec![(
                    TopicPartition::new(topic.as_str(), partition),
                    before,
                )])
                .await?;
            let low = r
                .into_iter()
                .next()
                .ok_or("no answer for the partition")?
                .1?;
            if ctx.json {
                ctx.print_json(
                    json!({"topic": topic, "partition": partition, "low_watermark": low}),
                );
            } else {
                println!("{topic}-{partition}: log start offset is now {low}");
            }
            Ok(())
        }
    }
}

async fn produce(ctx: &Ctx, a: ProduceArgs) -> Res {
    let producer = Producer::new(&ctx.config_with(&[("linger.ms", "5")])).await?;
    let input: Box<dyn BufRead + Send> = match &a.file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    // Reading stdin blocks: a thread feeds the lines through a bounded channel.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<String>>(1024);
    std::thread::spawn(move || {
        for line in input.lines() {
            let stop = line.is_err();
            if tx.blocking_send(line).is_err() || stop {
                return;
            }
        }
    });
    let mut pending = VecDeque::new();
    let mut sent = 0u64;
    // A progress line for long inputs, only for a person watching.
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !ctx.json;
    while let Some(line) = rx.recv().await {
        let line = line.map_err(|e| format!("reading input: {e}"))?;
        let mut rec = ProducerRecord::new(a.topic.as_str());
        match a.key_separator.and_then(|c| line.split_once(c)) {
            Some((k, v)) => rec = rec.key(k.to_string()).value(v.to_string()),
            None => rec = rec.value(line),
        }
        if let Some(p) = a.partition {
            rec = rec.partition(p);
        }
        for (k, v) in &a.headers {
            rec = rec.header(k.clone(), Some(v.clone()));
        }
        pending.push_back(producer.send(rec).await?);
        sent += 1;
        if progress && sent.is_multiple_of(10_000) {
            eprint!("\r{sent} record(s) sent");
        }
        // Bound the deliveries awaited at once; surface the first failure early.
        while pending.len() > 10_000 {
            if let Some(f) = pending.pop_front() {
                f.await?;
            }
        }
    }
    for f in pending {
        f.await?;
    }
    producer.close(Duration::from_secs(30)).await?;
    if progress && sent >= 10_000 {
        eprintln!();
    }
    if ctx.json {
        ctx.print_json(json!({"topic": a.topic, "produced": sent}));
    } else {
        eprintln!("produced {sent} record(s) to {}", a.topic);
    }
    Ok(())
}

async fn consume(ctx: &Ctx, a: ConsumeArgs) -> Res {
    let start = match (a.from_beginning, a.offset, a.timestamp) {
        (true, _, _) => Offset::Beginning,
        (_, Some(o), _) => Offset::Offset(o),
        (_, _, Some(t)) => Offset::Timestamp(t),
        _ => Offset::End,
    };
    let reset = if a.from_beginning {
        "earliest"
    } else {
        "latest"
    };
    let mut extra = vec![("auto.offset.reset", reset)];
    if let Some(g) = &a.group {
        extra.push(("group.id", g.as_str()));
    }
    let consumer = Consumer::new(&ctx.config_with(&extra)).await?;
    let handle = consumer.handle();
    let parts: Vec<i32> = match a.partition {
        Some(p) => vec![p],
        None => handle
            .partitions_for(&a.topic)
            .await?
            .iter()
            .map(|p| p.partition)
            .collect(),
    };
    if parts.is_empty() {
        return Err(format!("topic `{}` has no partitions", a.topic).into());
    }
    // End offsets at start, for --exit-at-end.
    let mut ends: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    if a.exit_at_end {
        for p in &parts {
            let tp = TopicPartition::new(a.topic.as_str(), *p);
            let w = handle
                .fetch_watermarks(&tp, Duration::from_secs(30))
                .await?;
            ends.insert(tp, w.high);
        }
    }
    if a.group.is_some() {
        handle.subscribe(&[&a.topic])?;
    } else {
        handle.assign(
            parts
                .iter()
                .map(|p| (TopicPartition::new(a.topic.as_str(), *p), start))
                .collect(),
        )?;
    }
    let template = a.format.clone();
    let mut out = std::io::stdout().lock();
    let mut received = 0u64;
    let at_end = |handle: &kafka_sdk::ConsumerHandle| {
        let pos: BTreeMap<TopicPartition, Option<i64>> = handle.position().into_iter().collect();
        !pos.is_empty()
            && ends.iter().all(|(tp, end)| match pos.get(tp) {
                Some(Some(p)) => p >= end,
                Some(None) => false,
                // Not ours (group mode): another member reads it.
                None => true,
            })
    };
    loop {
        if a.count.is_some_and(|c| received >= c) {
            break;
        }
        if a.exit_at_end && at_end(&handle) {
            break;
        }
        let msg = match tokio::time::timeout(Duration::from_millis(250), consumer.recv()).await {
            Err(_) => continue,
            Ok(m) => m?,
        };
        received += 1;
        if ctx.json {
            writeln!(out, "{}", format::message_json(&msg))?;
        } else {
            match &template {
                Some(t) => out.write_all(&format::render(t, &msg))?,
                None => {
                    out.write_all(msg.value().map(|v| &v[..]).unwrap_or_default())?;
                    out.write_all(b"\n")?;
                }
            }
        }
        if a.group.is_some() {
            handle.store_offset_from_message(&msg)?;
        }
    }
    out.flush()?;
    drop(out);
    if a.group.is_some() {
        handle
            .commit_stored(kafka_sdk::CommitMode::Sync)
            .await
            .or_else(|e| match e {
                // Nothing consumed: nothing to commit.
                kafka_sdk::Error::InvalidArgument(_) => Ok(()),
                e => Err(e),
            })?;
    }
    consumer.close().await?;
    Ok(())
}

async fn features(ctx: &Ctx) -> Res {
    let f = ctx.admin().await?.describe_features().await?;
    if ctx.json {
        ctx.print_json(json!({
            "finalized_epoch": f.finalized_epoch,
            "features": f.supported.iter().map(|(name, (min, max))| json!({
                "name": name, "finalized": f.finalized.get(name),
                "supported_min": min, "supported_max": max,
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    println!("{:<28} {:>9} {:>9}", "FEATURE", "FINALIZED", "SUPPORTED");
    for (name, (min, max)) in &f.supported {
        let level = f.finalized.get(name).map_or("-".into(), |l| l.to_string());
        println!("{name:<28} {level:>9} {:>9}", format!("{min}-{max}"));
    }
    Ok(())
}

/// A `default` name is the entity type's default entity.
fn quota_name(n: &str) -> Option<&str> {
    (n != "default").then_some(n)
}

async fn quotas(ctx: &Ctx, op: QuotasOp) -> Res {
    use kafka_sdk::admin::{QuotaAlteration, QuotaEntity, QuotaFilter, QuotaMatch};
    let admin = ctx.admin().await?;
    match op {
        QuotasOp::Describe(e) => {
            let mut filter = QuotaFilter::all();
            for (t, n) in [("user", &e.user), ("client-id", &e.client_id)] {
                if let Some(n) = n {
                    let m = match quota_name(n) {
                        Some(n) => QuotaMatch::Exact(n.to_string()),
                        None => QuotaMatch::Default,
                    };
                    filter = filter.with(t, m);
                }
            }
            let all = admin.describe_client_quotas(&filter).await?;
            if ctx.json {
                ctx.print_json(json!(all
                    .iter()
                    .map(|(e, v)| json!({"entity": e.to_string(), "quotas": v}))
                    .collect::<Vec<_>>()));
                return Ok(());
            }
            for (e, values) in &all {
                let v: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("{e}: {}", v.join(", "));
            }
            Ok(())
        }
        QuotasOp::Alter {
            entity,
            set,
            remove,
        } => {
            let e = match (&entity.user, &entity.client_id) {
                (Some(u), Some(c)) => QuotaEntity::user(quota_name(u)).and_client_id(quota_name(c)),
                (Some(u), None) => QuotaEntity::user(quota_name(u)),
                (None, Some(c)) => QuotaEntity::client_id(quota_name(c)),
                (None, None) => return Err("name --user and/or --client-id".into()),
            };
            if set.is_empty() && remove.is_empty() {
                return Err("nothing to change: pass --set key=value and/or --remove key".into());
            }
            let mut change = QuotaAlteration::new(e.clone());
            for (k, v) in &set {
                let v: f64 = v
                    .parse()
                    .map_err(|_| format!("quota {k}: `{v}` is not a number"))?;
                change = change.set(k, v);
            }
            for k in &remove {
                change = change.remove(k);
            }
            for (e, r) in admin.alter_client_quotas(&[change], false).await? {
                r?;
                if ctx.json {
                    ctx.print_json(json!({"entity": e.to_string(), "altered": true}));
                } else {
                    println!("altered the quotas of {e}");
                }
            }
            Ok(())
        }
    }
}

async fn metadata(ctx: &Ctx, topic: Option<String>) -> Res {
    let admin = ctx.admin().await?;
    let md = admin.fetch_metadata(topic.as_deref()).await?;
    if ctx.json {
        ctx.print_json(json!({
            "cluster_id": md.cluster_id,
            "controller_id": md.controller_id,
            "brokers": md.brokers.iter().map(|b| json!({
                "id": b.node_id, "host": b.host, "port": b.port, "rack": b.rack,
            })).collect::<Vec<_>>(),
            "topics": md.topics.iter().map(|t| json!({
                "name": t.name,
                "internal": t.is_internal,
                "partitions": t.partitions.iter().map(|p| json!({
                    "partition": p.partition, "leader": p.leader,
                    "replicas": p.replicas, "isr": p.isr,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    println!(
        "cluster {} (controller {})",
        md.cluster_id.as_deref().unwrap_or("?"),
        md.controller_id.map_or("?".into(), |c| c.to_string())
    );
    println!("{} broker(s):", md.brokers.len());
    for b in &md.brokers {
        println!("  broker {} at {}:{}", b.node_id, b.host, b.port);
    }
    println!("{} topic(s):", md.topics.len());
    for t in &md.topics {
        println!(
            "  topic \"{}\" with {} partition(s):",
            t.name,
            t.partitions.len()
        );
        for p in &t.partitions {
            println!(
                "    partition {}, leader {}, replicas: {:?}, isrs: {:?}",
                p.partition,
                p.leader.map_or("none".into(), |l| l.to_string()),
                p.replicas,
                p.isr
            );
        }
    }
    Ok(())
}

async fn topics(ctx: &Ctx, op: TopicsOp) -> Res {
    let admin = ctx.admin().await?;
    match op {
        TopicsOp::Create {
            topic,
            partitions,
            replication_factor,
            configs,
        } => {
            let mut t = NewTopic::new(topic.as_str(), partitions, replication_factor);
            t.configs = configs;
            admin.create_topic(t).await?;
            if ctx.json {
                ctx.print_json(json!({"created": topic}));
            } else {
                println!("created topic {topic}");
            }
        }
        TopicsOp::Delete { topics } => {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            let mut failed = None;
            for (t, r) in admin.delete_topics(&names).await? {
                match r {
                    Ok(()) if !ctx.json => println!("deleted topic {t}"),
                    Ok(()) => {}
                    Err(e) => failed = Some(format!("delete topic {t}: {e}")),
                }
            }
            if ctx.json {
                ctx.print_json(json!({"deleted": topics}));
            }
            if let Some(f) = failed {
                return Err(f.into());
            }
        }
        TopicsOp::Describe { topics } => {
            let names: Vec<String> = if topics.is_empty() {
                admin.list_topics(false).await?
            } else {
                topics
            };
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let described = admin.describe_topics(&refs).await?;
            let resources: Vec<ConfigResource> = names.iter().map(ConfigResource::topic).collect();
            let configs = admin.describe_configs(&resources).await?;
            let mut js = Vec::new();
            for (t, (_, cfg)) in described.iter().zip(configs) {
                let set: Vec<(String, String)> = cfg?
                    .into_iter()
                    .filter(|e| e.source == ConfigSource::DynamicTopic)
                    .map(|e| (e.name, e.value.unwrap_or_else(|| "<hidden>".into())))
                    .collect();
                if ctx.json {
                    js.push(json!({
                        "name": t.name,
                        "partitions": t.partitions.iter().map(|p| json!({
                            "partition": p.partition, "leader": p.leader,
                            "replicas": p.replicas, "isr": p.isr,
                        })).collect::<Vec<_>>(),
                        "configs": set.iter().cloned().collect::<BTreeMap<_, _>>(),
                    }));
                    continue;
                }
                let cfg: Vec<String> = set.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!(
                    "Topic: {}\tPartitionCount: {}\tConfigs: {}",
                    t.name,
                    t.partitions.len(),
                    cfg.join(",")
                );
                for p in &t.partitions {
                    println!(
                        "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {:?}\tIsr: {:?}",
                        t.name,
                        p.partition,
                        p.leader.map_or("none".into(), |l| l.to_string()),
                        p.replicas,
                        p.isr
                    );
                }
            }
            if ctx.json {
                ctx.print_json(json!(js));
            }
        }
        TopicsOp::Alter {
            topic,
            partitions,
            configs,
            delete_configs,
        } => {
            if partitions.is_none() && configs.is_empty() && delete_configs.is_empty() {
                return Err(
                    "nothing to alter: pass --partitions, --config or --delete-config".into(),
                );
            }
            if let Some(n) = partitions {
                admin
                    .create_partitions(&[(&topic, n)])
                    .await?
                    .into_iter()
                    .next()
                    .ok_or("no answer for the topic")?
                    .1?;
            }
            let ops: Vec<AlterConfigOp> = configs
                .into_iter()
                .map(|(k, v)| AlterConfigOp::Set(k, v))
                .chain(delete_configs.into_iter().map(AlterConfigOp::Delete))
                .collect();
            if !ops.is_empty() {
                admin
                    .incremental_alter_configs(vec![(ConfigResource::topic(&topic), ops)])
                    .await?
                    .into_iter()
                    .next()
                    .ok_or("no answer for the topic")?
                    .1?;
            }
            if ctx.json {
                ctx.print_json(json!({"altered": topic}));
            } else {
                println!("altered topic {topic}");
            }
        }
    }
    Ok(())
}

async fn groups(ctx: &Ctx, op: GroupsOp) -> Res {
    let admin = ctx.admin().await?;
    match op {
        GroupsOp::List => {
            let gs = admin.list_groups(&[]).await?;
            if ctx.json {
                ctx.print_json(json!(gs
                    .iter()
                    .map(|g| json!({
                        "group": g.group_id, "state": g.state,
                        "type": g.group_type.as_ref().map(|t| format!("{t:?}").to_lowercase()),
                        "protocol_type": g.protocol_type,
                    }))
                    .collect::<Vec<_>>()));
            } else {
                let rows: Vec<Vec<String>> = gs
                    .iter()
                    .map(|g| {
                        vec![
                            g.group_id.clone(),
                            g.group_type
                                .as_ref()
                                .map_or("?".into(), |t| format!("{t:?}").to_lowercase()),
                            g.state.clone(),
                        ]
                    })
                    .collect();
                print!("{}", format::table(&["GROUP", "TYPE", "STATE"], &rows));
            }
        }
        GroupsOp::Describe { group } => {
            let d = admin.describe_group(&group).await?;
            let ty = format!("{:?}", d.group_type).to_lowercase();
            if ctx.json {
                ctx.print_json(json!({
                    "group": d.group_id, "type": ty, "state": d.state,
                    "assignor": d.assignor, "coordinator": d.coordinator,
                    "members": d.members.iter().map(|m| json!({
                        "member_id": m.member_id, "client_id": m.client_id,
                        "host": m.client_host, "instance_id": m.group_instance_id,
                        "assignment": m.assignment.iter().map(|tp| tp.to_string()).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                }));
            } else {
                println!(
                    "group {} ({ty}), state {}, assignor {}, coordinator {}",
                    d.group_id, d.state, d.assignor, d.coordinator
                );
                let rows: Vec<Vec<String>> = d
                    .members
                    .iter()
                    .map(|m| {
                        vec![
                            m.member_id.clone(),
                            m.client_id.clone(),
                            m.client_host.clone(),
                            m.assignment
                                .iter()
                                .map(|tp| tp.to_string())
                                .collect::<Vec<_>>()
                                .join(","),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    format::table(&["MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNMENT"], &rows)
                );
            }
        }
        GroupsOp::Delete { groups } => {
            let names: Vec<&str> = groups.iter().map(String::as_str).collect();
            let mut failed = None;
            for (g, r) in admin.delete_groups(&names).await? {
                match r {
                    Ok(()) if !ctx.json => println!("deleted group {g}"),
                    Ok(()) => {}
                    Err(e) => failed = Some(format!("delete group {g}: {e}")),
                }
            }
            if ctx.json {
                ctx.print_json(json!({"deleted": groups}));
            }
            if let Some(f) = failed {
                return Err(f.into());
            }
        }
    }
    Ok(())
}

fn lag_json(l: &GroupLag) -> serde_json::Value {
    json!({
        "group": l.group_id,
        "state": l.state,
        "total_lag": l.total_lag(),
        "partitions": l.partitions.iter().map(|p| json!({
            "topic": &*p.partition.topic,
            "partition": p.partition.partition,
            "committed": p.committed,
            "log_end_offset": p.log_end_offset,
            "last_stable_offset": p.last_stable_offset,
            "lag": p.lag,
            "owner": p.owner.as_ref().map(|(m, c, h)| json!({"member_id": m, "client_id": c, "host": h})),
        })).collect::<Vec<_>>(),
    })
}

fn lag_table(l: &GroupLag, trends: Option<&BTreeMap<TopicPartition, VecDeque<i64>>>) -> String {
    let dash = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    let rows: Vec<Vec<String>> = l
        .partitions
        .iter()
        .map(|p| {
            let mut row = vec![
                p.partition.topic.to_string(),
                p.partition.partition.to_string(),
                dash(p.committed),
                p.log_end_offset.to_string(),
                dash(p.lag),
                p.owner
                    .as_ref()
                    .map_or("-".into(), |(_, c, h)| format!("{c}@{h}")),
            ];
            if let Some(t) = trends {
                let v: Vec<i64> = t
                    .get(&p.partition)
                    .map(|d| d.iter().copied().collect())
                    .unwrap_or_default();
                row.push(format::sparkline(&v));
            }
            row
        })
        .collect();
    let mut header = vec!["TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "OWNER"];
    if trends.is_some() {
        header.push("TREND");
    }
    format!(
        "group {} ({})\n{}total lag: {}\n",
        l.group_id,
        l.state,
        format::table(&header, &rows),
        l.total_lag()
    )
}

async fn lag(ctx: &Ctx, a: LagArgs) -> Res {
    let admin = ctx.admin().await?;
    if !a.watch {
        let l = admin.consumer_group_lag(&a.group).await?;
        if ctx.json {
            ctx.print_json(lag_json(&l));
        } else {
            print!("{}", lag_table(&l, None));
        }
        return Ok(());
    }
    const TREND: usize = 20;
    let mut trends: BTreeMap<TopicPartition, VecDeque<i64>> = BTreeMap::new();
    let mut n = 0u64;
    loop {
        let l = admin.consumer_group_lag(&a.group).await?;
        for p in &l.partitions {
            let t = trends.entry(p.partition.clone()).or_default();
            t.push_back(p.lag.unwrap_or(0));
            if t.len() > TREND {
                t.pop_front();
            }
        }
        if ctx.json {
            ctx.print_json(lag_json(&l));
        } else {
            // Clear the screen and redraw.
            print!("\x1b[2J\x1b[H{}", lag_table(&l, Some(&trends)));
            std::io::stdout().flush()?;
        }
        n += 1;
        if a.iterations.is_some_and(|max| n >= max) {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(a.interval_ms)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Parses `--to-datetime`: RFC 3339, a UTC `YYYY-MM-DDTHH:MM:SS[.fff]`, or epoch ms.
fn parse_datetime(s: &str) -> Res<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    Err(format!(
        "--to-datetime `{s}`: expected RFC 3339 (2024-05-01T12:00:00Z), YYYY-MM-DDTHH:MM:SS[.sss] (UTC) or epoch milliseconds"
    )
    .into())
}

async fn reset(ctx: &Ctx, a: ResetArgs) -> Res {
    let spec = if a.to_earliest {
        ResetSpec::Earliest
    } else if a.to_latest {
        ResetSpec::Latest
    } else if let Some(d) = &a.to_datetime {
        ResetSpec::Timestamp(parse_datetime(d)?)
    } else if let Some(n) = a.shift_by {
        ResetSpec::ShiftBy(n)
    } else if let Some(o) = a.to_offset {
        ResetSpec::Offset(o)
    } else {
        return Err(
            "pass one of --to-earliest, --to-latest, --to-datetime, --shift-by, --to-offset".into(),
        );
    };
    let admin = ctx.admin().await?;
    let topics: Vec<&str> = a.topics.iter().map(String::as_str).collect();
    let plan = admin
        .reset_group_offsets(&a.group, &topics, spec, a.dry_run)
        .await?;
    if ctx.json {
        ctx.print_json(json!({
            "group": a.group,
            "dry_run": a.dry_run,
            "partitions": plan.iter().map(|(tp, o)| json!({
                "topic": &*tp.topic, "partition": tp.partition, "offset": o,
            })).collect::<Vec<_>>(),
        }));
    } else {
        let rows: Vec<Vec<String>> = plan
            .iter()
            .map(|(tp, o)| {
                vec![
                    tp.topic.to_string(),
                    tp.partition.to_string(),
                    o.to_string(),
                ]
            })
            .collect();
        print!(
            "{}",
            format::table(&["TOPIC", "PARTITION", "NEW-OFFSET"], &rows)
        );
        if a.dry_run {
            println!("(dry run: nothing committed)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime("1700000000000").unwrap(), 1_700_000_000_000);
        assert_eq!(
            parse_datetime("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_datetime("2023-11-14T22:13:20.5").unwrap(),
            1_700_000_000_500
        );
        assert!(parse_datetime("yesterday").is_err());
    }
}
