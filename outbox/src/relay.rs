//! The relay: reads outbox rows in order, publishes them, deletes them once acknowledged.
//!
//! # Ordering and several relays
//!
//! Rows are split into `lanes` by a hash of their aggregate id (`hashtext`, computed in the
//! query). A relay publishes a lane only while it holds that lane's session-level advisory
//! lock (`pg_try_advisory_lock(class, lane)`, class derived from the table name), so at any
//! time one relay at most publishes a given aggregate, and it does so in id order, one batch
//! at a time. Relays balance: each also holds a shared "presence" lock, counts the relays
//! present and keeps `ceil(lanes / relays)` lanes, releasing extras between batches (nothing
//! in flight) and taking free ones. A relay that dies loses its database session, hence its
//! locks, and the others take its lanes over.
//!
//! The id order is the commit order of an aggregate's events when the service serialises
//! writes to one aggregate (it locks the aggregate's row, as usual): a later event of the
//! aggregate then gets a larger id and commits later.
//!
//! # Delivery
//!
//! * Idempotent mode (default): the batch is sent with an idempotent producer (`acks=all`),
//!   the acknowledged prefix is deleted. A crash between the ack and the delete publishes
//!   the rows again: at least once, and the first copy of each event is in order per key.
//! * Transactional mode ([`RelayConfig::transactional`]): one producer per lane, with
//!   `transactional.id = <prefix>-<lane>`, and one Kafka transaction per batch. The batch's
//!   rows are first marked with the lane's next batch number `n` (committed in the database),
//!   then the transaction carries the records and an offset commit `n` for partition `lane`
//!   of the progress topic `<prefix>.progress` (group `<prefix>.progress`), so Kafka records
//!   atomically which batch it holds. After the commit the rows are deleted. A relay taking a
//!   lane over first fences the previous owner (`init_transactions`, which also completes or
//!   aborts its open transaction), reads the committed batch number `c`, deletes marked rows
//!   with a batch `<= c` (they are in Kafka) and unmarks the others (they are not): every row
//!   is in exactly one committed transaction, so `read_committed` consumers see it once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use kafka_sdk::{
    AdminClient, ClientConfig, Consumer, ConsumerGroupMetadata, DeliveryFuture, NewTopic, Producer,
    ProducerRecord, TopicPartition,
};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use crate::{lock_class, Outbox, OutboxError, Result, MESSAGE_ID_HEADER};

/// The advisory lock key (second half) of the shared "presence" lock every relay holds.
const PRESENCE_KEY: i32 = -1;

/// How the relay connects and works. Built with [`RelayConfig::new`] and the setters.
#[derive(Clone)]
pub struct RelayConfig {
    database_url: String,
    kafka: ClientConfig,
    batch_size: usize,
    poll_interval: Duration,
    lanes: u32,
    transactional: Option<String>,
    backoff_initial: Duration,
    backoff_max: Duration,
}

impl std::fmt::Debug for RelayConfig {
    // The database URL may hold a password: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConfig")
            .field("database_url", &"<redacted>")
            .field("batch_size", &self.batch_size)
            .field("poll_interval", &self.poll_interval)
            .field("lanes", &self.lanes)
            .field("transactional", &self.transactional)
            .finish_non_exhaustive()
    }
}

impl RelayConfig {
    /// A relay reading the database at `database_url` (libpq URL or key=value string) and
    /// publishing with `kafka` (any producer keys; the relay adds `enable.idempotence=true`
    /// and `acks=all`, and `transactional.id` in transactional mode).
    ///
    /// Defaults: batches of 500 rows, a poll every second when no NOTIFY arrives, 16 lanes,
    /// idempotent mode, error backoff from 100 ms doubling to 10 s.
    pub fn new(database_url: impl Into<String>, kafka: ClientConfig) -> Self {
        RelayConfig {
            database_url: database_url.into(),
            kafka,
            batch_size: 500,
            poll_interval: Duration::from_secs(1),
            lanes: 16,
            transactional: None,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }

    /// Rows read and published per batch (1..=100000).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// How often the relay looks for rows when no notification woke it (the fallback of
    /// LISTEN/NOTIFY, which a dropped notification or a restarted server can miss).
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// The number of lanes (1..=1024): the unit of ownership between relays, and the
    /// parallelism of transactional mode. Every relay of one table must use the same number.
    pub fn lanes(mut self, n: u32) -> Self {
        self.lanes = n;
        self
    }

    /// Transactional mode: publish each batch in a Kafka transaction, with
    /// `transactional.id`s `<prefix>-<lane>` and the progress topic and group
    /// `<prefix>.progress`. Every relay of one table must use the same prefix.
    pub fn transactional(mut self, prefix: impl Into<String>) -> Self {
        self.transactional = Some(prefix.into());
        self
    }

    /// The backoff after an error: `initial`, doubling up to `max`.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max;
        self
    }

    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(OutboxError::InvalidArgument(m));
        if !(1..=100_000).contains(&self.batch_size) {
            return bad(format!("batch_size {} not in 1..=100000", self.batch_size));
        }
        if !(1..=1024).contains(&self.lanes) {
            return bad(format!("lanes {} not in 1..=1024", self.lanes));
        }
        if self.poll_interval.is_zero() || self.backoff_initial.is_zero() {
            return bad("poll_interval and backoff must be > 0".to_string());
        }
        if let Some(p) = &self.transactional {
            if p.is_empty() {
                return bad("empty transactional prefix".to_string());
            }
            kafka_sdk::validate_topic_name(&format!("{p}.progress"))?;
        }
        Ok(())
    }
}

/// What the relay shares with its handle.
#[derive(Default)]
struct Stats {
    /// Rows acknowledged by Kafka and deleted.
    published: AtomicU64,
    /// Age of the oldest row in the table at the last look, in ms (`u64::MAX`: never
    /// measured; 0 with an empty table).
    lag_ms: AtomicU64,
    lanes: Mutex<Vec<u32>>,
}

/// Starts relays: see [`Relay::spawn`].
#[derive(Debug)]
pub struct Relay;

impl Relay {
    /// Spawns a relay task for `outbox` on the current tokio runtime. It runs until
    /// [`RelayHandle::shutdown`] (or the handle is dropped), reconnecting to the database
    /// and Kafka with backoff after errors. A bad configuration ends it at once: see
    /// [`RelayHandle::shutdown`]'s result.
    pub fn spawn(outbox: &Outbox, config: RelayConfig) -> RelayHandle {
        let stats = Arc::new(Stats {
            lag_ms: AtomicU64::new(u64::MAX),
            ..Default::default()
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let table = outbox.table.clone();
        let st = stats.clone();
        let task = tokio::spawn(async move { run(table, config, st, stop_rx).await });
        RelayHandle {
            stats,
            stop: stop_tx,
            task: Some(task),
        }
    }
}

/// A running relay. Dropping it asks the relay to stop (without waiting).
pub struct RelayHandle {
    stats: Arc<Stats>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<()>>>,
}

impl std::fmt::Debug for RelayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayHandle")
            .field("published", &self.published())
            .field("lag", &self.lag())
            .finish()
    }
}

impl RelayHandle {
    /// Rows this relay published (acknowledged by Kafka) and deleted so far.
    pub fn published(&self) -> u64 {
        self.stats.published.load(Ordering::Relaxed)
    }

    /// The relay lag: the age of the oldest unpublished row (of any lane) at the relay's last
    /// look (`Some(0)` when the outbox was empty; `None` before the first look). Also
    /// reported as the `lag_ms` field of the relay's tracing events.
    pub fn lag(&self) -> Option<Duration> {
        match self.stats.lag_ms.load(Ordering::Relaxed) {
            u64::MAX => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// The lanes this relay holds now.
    pub fn lanes(&self) -> Vec<u32> {
        self.stats
            .lanes
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// Whether the relay task has ended (after a shutdown, or a configuration error).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops the relay gracefully: the batch in flight completes (published and deleted, or
    /// left for the next relay), the producers are closed and the locks released. Returns
    /// the error that ended the relay early, if one did (an invalid configuration).
    pub async fn shutdown(mut self) -> Result<()> {
        let _ = self.stop.send(true);
        match self.task.take() {
            Some(t) => t.await.map_err(|e| OutboxError::Task(e.to_string()))?,
            None => Ok(()),
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Per-lane state of transactional mode.
struct TxnLane {
    producer: Producer,
    next_batch: i64,
}

/// One connected relay session: database client, held lanes, producers.
struct Session {
    table: String,
    cfg: RelayConfig,
    class: i32,
    client: Client,
    wake: Arc<Notify>,
    lanes: BTreeSet<u32>,
    producer: Option<Producer>,
    txn: BTreeMap<u32, TxnLane>,
    progress: Option<Consumer>,
    last_balance: Option<Instant>,
}

async fn run(
    table: String,
    cfg: RelayConfig,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    cfg.check()?;
    let mut backoff = cfg.backoff_initial;
    let mut last_report = Instant::now();
    'connect: while !*stop.borrow() {
        let mut session = match Session::open(&table, &cfg).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(table = %table, error = %e, "outbox relay: cannot start a session; retrying");
                sleep_or_stop(&mut stop, backoff).await;
                backoff = (backoff * 2).min(cfg.backoff_max);
                continue;
            }
        };
        loop {
            if *stop.borrow() {
                session.close().await;
                break 'connect;
            }
            let step = async {
                session.balance(&stats).await?;
                let lag = session.lag().await?;
                stats.lag_ms.store(lag, Ordering::Relaxed);
                if last_report.elapsed() >= Duration::from_secs(10) {
                    last_report = Instant::now();
                    tracing::info!(
                        table = %table,
                        lag_ms = lag,
                        published = stats.published.load(Ordering::Relaxed),
                        lanes = session.lanes.len(),
                        "outbox relay lag"
                    );
                }
                session.publish_once(&stats).await
            };
            match step.await {
                Ok(n) => {
                    backoff = cfg.backoff_initial;
                    if n == 0 {
                        // Idle: a NOTIFY, the poll interval, or a stop request.
                        let notified = session.wake.notified();
                        tokio::select! {
                            _ = notified => {}
                            _ = tokio::time::sleep(cfg.poll_interval) => {}
                            _ = stop.changed() => {}
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(table = %table, error = %e, backoff_ms = backoff.as_millis() as u64, "outbox relay: batch failed; backing off");
                    let lost = session.client.is_closed();
                    if lost {
                        session.close().await;
                    }
                    sleep_or_stop(&mut stop, backoff).await;
                    backoff = (backoff * 2).min(cfg.backoff_max);
                    if lost {
                        continue 'connect;
                    }
                }
            }
        }
    }
    if let Ok(mut l) = stats.lanes.lock() {
        l.clear();
    }
    Ok(())
}

async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.changed() => {}
    }
}

fn kafka_config(cfg: &RelayConfig) -> ClientConfig {
    let mut k = cfg.kafka.clone();
    k.set("enable.idempotence", "true").set("acks", "all");
    k
}

impl Session {
    async fn open(table: &str, cfg: &RelayConfig) -> Result<Session> {
        let (client, mut connection) = tokio_postgres::connect(&cfg.database_url, NoTls).await?;
        let wake = Arc::new(Notify::new());
        let w = wake.clone();
        // Drives the connection and turns notifications into wake-ups; ends with it.
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(m) = messages.next().await {
                match m {
                    Ok(AsyncMessage::Notification(_)) => w.notify_one(),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "outbox relay: database connection ended");
                        break;
                    }
                }
            }
            w.notify_one();
        });
        client.batch_execute(&format!("LISTEN {table}")).await?;
        let class = lock_class(table);
        client
            .execute(
                "SELECT pg_advisory_lock_shared($1, $2)",
                &[&class, &PRESENCE_KEY],
            )
            .await?;
        let mut session = Session {
            table: table.to_string(),
            cfg: cfg.clone(),
            class,
            client,
            wake,
            lanes: BTreeSet::new(),
            producer: None,
            txn: BTreeMap::new(),
            progress: None,
            last_balance: None,
        };
        match &cfg.transactional {
            None => session.producer = Some(Producer::new(&kafka_config(cfg)).await?),
            Some(prefix) => {
                let progress = format!("{prefix}.progress");
                let admin = AdminClient::new(&cfg.kafka).await?;
                match admin
                    .create_topic(NewTopic::new(&progress, cfg.lanes as i32, -1))
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.code() == Some(kafka_sdk::KafkaCode::TOPIC_ALREADY_EXISTS) => {}
                    Err(e) => return Err(e.into()),
                }
                let mut c = cfg.kafka.clone();
                c.set("group.id", &progress)
                    .set("isolation.level", "read_committed")
                    .set("enable.auto.commit", "false");
                session.progress = Some(Consumer::new(&c).await?);
            }
        }
        Ok(session)
    }

    /// Releases the locks (by closing the session) and closes the producers.
    async fn close(&mut self) {
        self.lanes.clear();
        if let Some(p) = self.producer.take() {
            let _ = p.close(Duration::from_secs(10)).await;
        }
        for (_, l) in std::mem::take(&mut self.txn) {
            let _ = l.producer.close(Duration::from_secs(10)).await;
        }
        if let Some(c) = self.progress.take() {
            let _ = c.close().await;
        }
        let _ = self
            .client
            .execute("SELECT pg_advisory_unlock_all()", &[])
            .await;
    }

    fn lane_expr(&self) -> String {
        let n = self.cfg.lanes;
        format!("((hashtext(aggregate_id)::bigint % {n}) + {n}) % {n}")
    }

    /// Keeps `ceil(lanes / relays present)` lanes: releases extras, takes free ones. Advisory
    /// locks belong to one database, so only the relays of this database count.
    async fn balance(&mut self, stats: &Stats) -> Result<()> {
        if self
            .last_balance
            .is_some_and(|t| t.elapsed() < self.cfg.poll_interval)
        {
            return Ok(());
        }
        self.last_balance = Some(Instant::now());
        let row = self
            .client
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND classid = $1::int8::oid AND objid = $2::int8::oid AND objsubid = 2",
                &[&i64::from(self.class), &(u32::MAX as i64)],
            )
            .await?;
        let relays: i64 = row.get(0);
        let lanes = self.cfg.lanes;
        let target = lanes.div_ceil(relays.max(1) as u32);
        while self.lanes.len() as u32 > target {
            let Some(lane) = self.lanes.pop_last() else {
                break;
            };
            if let Some(l) = self.txn.remove(&lane) {
                let _ = l.producer.close(Duration::from_secs(10)).await;
            }
            self.client
                .execute(
                    "SELECT pg_advisory_unlock($1, $2)",
                    &[&self.class, &(lane as i32)],
                )
                .await?;
            tracing::debug!(table = %self.table, lane, "outbox relay: released lane");
        }
        let mut lane = 0;
        while (self.lanes.len() as u32) < target && lane < lanes {
            if !self.lanes.contains(&lane) {
                let got: bool = self
                    .client
                    .query_one(
                        "SELECT pg_try_advisory_lock($1, $2)",
                        &[&self.class, &(lane as i32)],
                    )
                    .await?
                    .get(0);
                if got {
                    self.lanes.insert(lane);
                    if self.cfg.transactional.is_some() {
                        if let Err(e) = self.take_over_txn_lane(lane).await {
                            self.drop_lane(lane).await;
                            return Err(e);
                        }
                    }
                    tracing::debug!(table = %self.table, lane, "outbox relay: took lane");
                }
            }
            lane += 1;
        }
        if let Ok(mut l) = stats.lanes.lock() {
            *l = self.lanes.iter().copied().collect();
        }
        Ok(())
    }

    async fn drop_lane(&mut self, lane: u32) {
        self.lanes.remove(&lane);
        if let Some(l) = self.txn.remove(&lane) {
            let _ = l.producer.close(Duration::from_secs(5)).await;
        }
        let _ = self
            .client
            .execute(
                "SELECT pg_advisory_unlock($1, $2)",
                &[&self.class, &(lane as i32)],
            )
            .await;
    }

    /// Transactional mode, on taking a lane: fence the previous owner, then settle the rows
    /// it had marked, from the batch number Kafka committed.
    async fn take_over_txn_lane(&mut self, lane: u32) -> Result<()> {
        let prefix = self.cfg.transactional.clone().unwrap_or_default();
        let mut k = kafka_config(&self.cfg);
        k.set("transactional.id", format!("{prefix}-{lane}"));
        let producer = Producer::new(&k).await?;
        producer.init_transactions().await?;
        let tp = TopicPartition::new(format!("{prefix}.progress"), lane as i32);
        let consumer = self.progress.as_ref().ok_or_else(|| {
            OutboxError::Task("transactional relay without progress consumer".into())
        })?;
        let committed = consumer
            .committed(Some(std::slice::from_ref(&tp)), Duration::from_secs(30))
            .await?
            .into_iter()
            .find(|(t, _)| *t == tp)
            .and_then(|(_, o)| o)
            .unwrap_or(0);
        let expr = self.lane_expr();
        let done = self
            .client
            .execute(
                &format!(
                    "DELETE FROM {} WHERE {expr} = $1 AND kafka_batch IS NOT NULL AND kafka_batch <= $2",
                    self.table
                ),
                &[&i64::from(lane), &committed],
            )
            .await?;
        let undone = self
            .client
            .execute(
                &format!(
                    "UPDATE {} SET kafka_batch = NULL WHERE {expr} = $1 AND kafka_batch > $2",
                    self.table
                ),
                &[&i64::from(lane), &committed],
            )
            .await?;
        tracing::debug!(table = %self.table, lane, committed, done, undone, "outbox relay: lane recovered");
        self.txn.insert(
            lane,
            TxnLane {
                producer,
                next_batch: committed + 1,
            },
        );
        Ok(())
    }

    /// Age in ms of the oldest row (0 when empty).
    async fn lag(&self) -> Result<u64> {
        let row = self
            .client
            .query_opt(
                &format!(
                    "SELECT (EXTRACT(EPOCH FROM clock_timestamp() - created_at) * 1000)::int8 \
                     FROM {} ORDER BY id LIMIT 1",
                    self.table
                ),
                &[],
            )
            .await?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
    }

    /// Publishes one batch per held lane set (idempotent) or per lane (transactional).
    /// Returns the number of rows published.
    async fn publish_once(&mut self, stats: &Stats) -> Result<usize> {
        if self.lanes.is_empty() {
            return Ok(0);
        }
        match self.cfg.transactional {
            None => {
                let lanes: Vec<i64> = self.lanes.iter().map(|&l| i64::from(l)).collect();
                let rows = self.read(&lanes).await?;
                let n = self.publish_idempotent(&rows).await?;
                stats.published.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
            Some(_) => {
                let mut total = 0;
                let lanes: Vec<u32> = self.lanes.iter().copied().collect();
                for lane in lanes {
                    let rows = self.read(&[i64::from(lane)]).await?;
                    if rows.is_empty() {
                        continue;
                    }
                    let n = match self.publish_txn(lane, &rows).await {
                        Ok(n) => n,
                        Err(e) => {
                            // Settle the lane again from Kafka's record before retrying.
                            self.drop_lane(lane).await;
                            return Err(e);
                        }
                    };
                    stats.published.fetch_add(n as u64, Ordering::Relaxed);
                    total += n;
                }
                Ok(total)
            }
        }
    }

    async fn read(&self, lanes: &[i64]) -> Result<Vec<Row>> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT id, message_id::text, topic, aggregate_id, payload FROM {} \
                     WHERE {} = ANY($1) ORDER BY id LIMIT {}",
                    self.table,
                    self.lane_expr(),
                    self.cfg.batch_size
                ),
                &[&lanes],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Row {
                id: r.get(0),
                message_id: r.get(1),
                topic: r.get(2),
                key: r.get(3),
                payload: r.get(4),
            })
            .collect())
    }

    async fn send_all(
        producer: &Producer,
        rows: &[Row],
    ) -> (Vec<DeliveryFuture>, Option<OutboxError>) {
        let mut futures = Vec::with_capacity(rows.len());
        for r in rows {
            let record = ProducerRecord::new(r.topic.as_str())
                .key(r.key.clone())
                .opt_value(r.payload.clone().map(Bytes::from))
                .header(MESSAGE_ID_HEADER, Some(r.message_id.clone()));
            match producer.send(record).await {
                Ok(f) => futures.push(f),
                Err(e) => {
                    tracing::warn!(id = r.id, topic = %r.topic, error = %e, "outbox relay: row not accepted by the producer");
                    return (futures, Some(e.into()));
                }
            }
        }
        (futures, None)
    }

    async fn publish_idempotent(&mut self, rows: &[Row]) -> Result<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        let producer = self
            .producer
            .as_ref()
            .ok_or_else(|| OutboxError::Task("idempotent relay without producer".into()))?;
        let (futures, mut err) = Self::send_all(producer, rows).await;
        // Delete only the acknowledged prefix: what follows a failure is sent again, in order.
        let mut acked = Vec::with_capacity(futures.len());
        for (f, r) in futures.into_iter().zip(rows) {
            match f.await {
                Ok(_) if err.is_none() => acked.push(r.id),
                Ok(_) => {}
                Err(e) => {
                    if err.is_none() {
                        tracing::warn!(id = r.id, topic = %r.topic, error = %e, "outbox relay: row not acknowledged");
                        err = Some(e.into());
                    }
                }
            }
        }
        if !acked.is_empty() {
            self.client
                .execute(
                    &format!("DELETE FROM {} WHERE id = ANY($1)", self.table),
                    &[&acked],
                )
                .await?;
        }
        tracing::debug!(table = %self.table, published = acked.len(), "outbox relay: batch published");
        match err {
            Some(e) => Err(e),
            None => Ok(acked.len()),
        }
    }

    async fn publish_txn(&mut self, lane: u32, rows: &[Row]) -> Result<usize> {
        let prefix = self.cfg.transactional.clone().unwrap_or_default();
        let Some(state) = self.txn.get(&lane) else {
            return Ok(0);
        };
        let batch = state.next_batch;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        // 1. Mark the rows with the batch number (committed before Kafka hears of it).
        self.client
            .execute(
                &format!(
                    "UPDATE {} SET kafka_batch = $1 WHERE id = ANY($2)",
                    self.table
                ),
                &[&batch, &ids],
            )
            .await?;
        // 2. One Kafka transaction: the records and the batch number.
        let producer = &state.producer;
        producer.begin_transaction()?;
        let (futures, err) = Self::send_all(producer, rows).await;
        let outcome = async {
            if let Some(e) = err {
                return Err(e);
            }
            let tp = TopicPartition::new(format!("{prefix}.progress"), lane as i32);
            producer
                .send_offsets_to_transaction(
                    vec![(tp, batch)],
                    &ConsumerGroupMetadata::new(format!("{prefix}.progress")),
                )
                .await?;
            producer.commit_transaction().await?;
            Ok(())
        }
        .await;
        drop(futures);
        if let Err(e) = outcome {
            let _ = producer.abort_transaction().await;
            return Err(e);
        }
        // 3. Kafka holds batch `batch`: the rows can go.
        self.client
            .execute(
                &format!(
                    "DELETE FROM {} WHERE kafka_batch = $1 AND id = ANY($2)",
                    self.table
                ),
                &[&batch, &ids],
            )
            .await?;
        if let Some(s) = self.txn.get_mut(&lane) {
            s.next_batch = batch + 1;
        }
        tracing::debug!(table = %self.table, lane, batch, published = rows.len(), "outbox relay: transaction committed");
        Ok(rows.len())
    }
}

/// One outbox row as read by the relay.
struct Row {
    id: i64,
    message_id: String,
    topic: String,
    key: String,
    payload: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_settings_end_the_relay_with_a_typed_error() {
        let outbox = Outbox::default();
        let kafka = ClientConfig::new().with("bootstrap.servers", "127.0.0.1:1");
        let url = "postgres://user:secret-password@127.0.0.1:1/db";
        for (cfg, what) in [
            (RelayConfig::new(url, kafka.clone()).lanes(0), "lanes 0"),
            (
                RelayConfig::new(url, kafka.clone()).batch_size(0),
                "batch_size 0",
            ),
            (
                RelayConfig::new(url, kafka.clone()).poll_interval(Duration::ZERO),
                "poll_interval",
            ),
        ] {
            let debug = format!("{cfg:?}");
            assert!(!debug.contains("secret-password"), "{debug}");
            let err = Relay::spawn(&outbox, cfg).shutdown().await.unwrap_err();
            assert!(
                matches!(&err, OutboxError::InvalidArgument(m) if m.contains(what)),
                "{err}"
            );
        }
        let err = Relay::spawn(
            &outbox,
            RelayConfig::new(url, kafka).transactional("bad prefix!"),
        )
        .shutdown()
        .await
        .unwrap_err();
        assert!(matches!(err, OutboxError::Kafka(_)), "{err}");
    }
}
