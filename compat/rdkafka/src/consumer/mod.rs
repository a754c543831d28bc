//! Consumers: [`StreamConsumer`] (async `recv` / `stream`) and [`BaseConsumer`] (`poll`),
//! with the [`Consumer`] trait (subscriptions, assignments, offsets, commits, metadata) and
//! the [`ConsumerContext`] callbacks.
//!
//! Both sit on one [`kafka_sdk::Consumer`], built on the facade's runtime. Group membership,
//! fetching and rebalancing are kafka-sdk's: the context's `rebalance` (by default:
//! `pre_rebalance`, then `post_rebalance`) is called from kafka-sdk's rebalance listener (on
//! a blocking thread, so it may call this API), with `ASSIGN_PARTITIONS` / `REVOKE_PARTITIONS`
//! ([`Rebalance::Assign`] / [`Rebalance::Revoke`]).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use kafka_sdk::{ConsumerHandle, RebalanceListener, TopicPartition};

use crate::client::{Client, ClientContext, DefaultClientContext, Source, NEVER};
use crate::config::ClientConfig;
use crate::error::{code_of, KafkaError, KafkaResult, RDKafkaErrorCode};
use crate::message::{BorrowedMessage, Message};
use crate::metadata::Metadata;
use crate::rt;
use crate::topic_partition_list::{Offset, TopicPartitionList};
use crate::util::Timeout;

pub mod base_consumer;
pub mod stream_consumer;

#[doc(inline)]
pub use self::base_consumer::BaseConsumer;
#[doc(inline)]
pub use self::stream_consumer::{MessageStream, StreamConsumer};

/// A rebalance event handed to [`ConsumerContext::pre_rebalance`] /
/// [`ConsumerContext::post_rebalance`].
#[derive(Clone, Debug)]
pub enum Rebalance<'a> {
    /// Partitions were assigned (for the cooperative protocol: the added ones).
    Assign(&'a TopicPartitionList),
    /// Partitions are revoked (or were lost: see [`Consumer::assignment_lost`]).
    Revoke(&'a TopicPartitionList),
    /// The rebalance failed.
    Error(KafkaError),
}

/// Callbacks of a consumer.
///
/// Unlike rdkafka's, the trait is `'static`: every consumer of this crate keeps its context
/// in tasks on its runtime, so [`Consumer`] needs `C: 'static`, and with the bound on the
/// trait a generic `fn f<C: Consumer<X>, X: ConsumerContext>` written for rdkafka compiles
/// unchanged (a context type that borrows could not be given to a consumer anyway).
pub trait ConsumerContext: ClientContext + Sized + 'static {
    /// A rebalance event, as rdkafka calls it: `err` is
    /// `RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS` or `..._REVOKE_PARTITIONS`, `tpl`
    /// the partitions. The default calls [`ConsumerContext::pre_rebalance`], then
    /// [`ConsumerContext::post_rebalance`]; an override that replaces it must call them itself
    /// if it wants them. kafka-sdk's group protocol applies the assignment itself: inside this
    /// callback, `assign`, `unassign`, `incremental_assign` and `incremental_unassign` on
    /// `base_consumer` are accepted and do nothing (so rdkafka code that applies the
    /// assignment here keeps working).
    #[allow(unused_variables)]
    fn rebalance(
        &self,
        base_consumer: &BaseConsumer<Self>,
        err: crate::types::RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let event = match err {
            RDKafkaErrorCode::AssignPartitions => Rebalance::Assign(tpl),
            RDKafkaErrorCode::RevokePartitions => Rebalance::Revoke(tpl),
            other => Rebalance::Error(KafkaError::Rebalance(other)),
        };
        self.pre_rebalance(base_consumer, &event);
        self.post_rebalance(base_consumer, &event);
    }

    /// Before kafka-sdk applies a rebalance... in kafka-sdk the assignment is applied by the
    /// group protocol itself; this is called when it is (before fetching newly assigned
    /// partitions, before giving revoked ones up).
    #[allow(unused_variables)]
    fn pre_rebalance(&self, base_consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {}

    /// Right after [`ConsumerContext::pre_rebalance`] for the same event.
    #[allow(unused_variables)]
    fn post_rebalance(&self, base_consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {}

    /// The result of a commit: for `CommitMode::Sync` on the committing thread, for
    /// `CommitMode::Async` on a blocking thread of the facade's runtime. kafka-sdk's own
    /// automatic commits (`enable.auto.commit`) are not reported here.
    #[allow(unused_variables)]
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {}

    /// How often the main queue must be polled (no effect here).
    fn main_queue_min_poll_interval(&self) -> Timeout {
        Timeout::After(Duration::from_secs(1))
    }
}

/// The consumer context with no callbacks.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultConsumerContext;

impl ClientContext for DefaultConsumerContext {}
impl ConsumerContext for DefaultConsumerContext {}

/// Whether a commit waits for the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitMode {
    /// Wait for the coordinator's answer.
    Sync = 0,
    /// Return at once; the result goes to [`ConsumerContext::commit_callback`].
    Async = 1,
}

impl CommitMode {
    fn sdk(self) -> kafka_sdk::CommitMode {
        match self {
            CommitMode::Sync => kafka_sdk::CommitMode::Sync,
            CommitMode::Async => kafka_sdk::CommitMode::Async,
        }
    }
}

/// A consumer's group state, for
/// [`Producer::send_offsets_to_transaction`](crate::producer::Producer::send_offsets_to_transaction).
#[derive(Clone, Debug)]
pub struct ConsumerGroupMetadata(pub(crate) kafka_sdk::ConsumerGroupMetadata);

/// The rebalance protocol in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebalanceProtocol {
    /// Not in a group.
    None,
    /// Eager (stop-the-world) rebalancing.
    Eager,
    /// Cooperative (incremental) rebalancing.
    Cooperative,
}

/// The state shared by a consumer, its handles and its rebalance listener.
pub struct Inner<C: ConsumerContext + 'static> {
    /// `None` only while `Inner` is dropped (no lock: nothing else takes it out).
    consumer: Option<kafka_sdk::Consumer>,
    pub(crate) handle: ConsumerHandle,
    pub(crate) client: Client<C>,
    subscription: Mutex<Vec<String>>,
    lost: AtomicBool,
    cooperative: bool,
}

thread_local! {
    static IN_CALLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread runs a rebalance callback (`ConsumerContext::rebalance`).
fn in_rebalance_callback() -> bool {
    IN_CALLBACK.with(|c| c.get())
}

impl<C: ConsumerContext + 'static> Drop for Inner<C> {
    fn drop(&mut self) {
        let Some(consumer) = self.consumer.take() else {
            return;
        };
        // Leave the group. Inside a rebalance callback, closing would wait for that very
        // callback: close in the background then.
        let close = async move {
            if let Err(e) = consumer.close_with_timeout(Duration::from_secs(30)).await {
                tracing::debug!("kafka-sdk-rdkafka: consumer close: {e}");
            }
        };
        if IN_CALLBACK.with(|c| c.get()) {
            rt::handle().spawn(close);
        } else {
            rt::block(close);
        }
    }
}

struct Listener<C: ConsumerContext + 'static> {
    slot: Arc<OnceLock<Weak<Inner<C>>>>,
}

impl<C: ConsumerContext + 'static> Listener<C> {
    async fn call(&self, partitions: &[TopicPartition], assign: bool, lost: bool) {
        let Some(inner) = self.slot.get().and_then(Weak::upgrade) else {
            return;
        };
        inner.lost.store(lost, Ordering::Relaxed);
        let mut tpl = TopicPartitionList::from_partitions(partitions);
        rt::callback(move || {
            IN_CALLBACK.with(|c| c.set(true));
            let base = BaseConsumer::from_inner(inner);
            let context = base.inner.client.context().clone();
            let err = if assign {
                RDKafkaErrorCode::AssignPartitions
            } else {
                RDKafkaErrorCode::RevokePartitions
            };
            context.rebalance(&base, err, &mut tpl);
            drop(base);
            IN_CALLBACK.with(|c| c.set(false));
        })
        .await;
    }
}

impl<C: ConsumerContext + 'static> RebalanceListener for Listener<C> {
    fn on_assigned<'a>(
        &'a self,
        _consumer: &'a ConsumerHandle,
        partitions: &'a [TopicPartition],
    ) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(self.call(partitions, true, false))
    }

    fn on_revoked<'a>(
        &'a self,
        _consumer: &'a ConsumerHandle,
        partitions: &'a [TopicPartition],
    ) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(self.call(partitions, false, false))
    }

    fn on_lost<'a>(
        &'a self,
        _consumer: &'a ConsumerHandle,
        partitions: &'a [TopicPartition],
    ) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(self.call(partitions, false, true))
    }
}

impl<C: ConsumerContext + 'static> Inner<C> {
    /// Builds the kafka-sdk consumer on the facade's runtime.
    pub(crate) fn create(config: &ClientConfig, context: C) -> KafkaResult<Arc<Inner<C>>> {
        let sdk = config.to_sdk(crate::config::Role::Consumer);
        let cooperative = config
            .get("partition.assignment.strategy")
            .is_some_and(|s| s.split(',').all(|a| a.trim().contains("cooperative")));
        let slot: Arc<OnceLock<Weak<Inner<C>>>> = Arc::new(OnceLock::new());
        let listener = Arc::new(Listener { slot: slot.clone() });
        let consumer = rt::block(async move {
            // As rdkafka's `create()`: never waits for the cluster (it may be down).
            kafka_sdk::Consumer::builder(&sdk)
                .rebalance_listener(listener)
                .lazy_bootstrap(true)
                .build()
                .await
        })
        .map_err(|e| config.creation_error(e))?;
        let handle = consumer.handle();
        let context = Arc::new(context);
        crate::client::forward_stats(handle.subscribe_statistics(), context.clone());
        crate::client::forward_events(handle.subscribe_events(), context.clone());
        // Async commit results go to the context.
        let mut results = handle.commit_results();
        let ctx = context.clone();
        rt::handle().spawn(async move {
            while let Some(r) = results.recv().await {
                let ctx = ctx.clone();
                rt::callback(move || {
                    let tpl = TopicPartitionList::from_offsets(
                        r.offsets.into_iter().map(|(tp, o)| (tp, Offset::Offset(o))),
                    );
                    let res = r
                        .result
                        .map_err(|e| KafkaError::ConsumerCommit(code_of(&e)));
                    ctx.commit_callback(res, &tpl);
                })
                .await;
            }
        });
        let inner = Arc::new(Inner {
            consumer: Some(consumer),
            client: Client::new(context, Source::Consumer(handle.clone())),
            handle,
            subscription: Mutex::new(Vec::new()),
            lost: AtomicBool::new(false),
            cooperative,
        });
        let _ = slot.set(Arc::downgrade(&inner));
        Ok(inner)
    }

    /// Polls kafka-sdk's consumer for the next message.
    pub(crate) fn poll_recv(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<KafkaResult<BorrowedMessage<'static>>> {
        let Some(c) = self.consumer.as_ref() else {
            return std::task::Poll::Ready(Err(KafkaError::MessageConsumptionFatal(
                RDKafkaErrorCode::DestroyBroker,
            )));
        };
        match c.poll_recv(cx) {
            std::task::Poll::Ready(Ok(m)) => {
                std::task::Poll::Ready(Ok(BorrowedMessage::from_sdk(m)))
            }
            std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(consume_error(&e))),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }

    fn commit_done(&self, result: &KafkaResult<()>, offsets: &TopicPartitionList) {
        self.client
            .context()
            .commit_callback(result.clone(), offsets);
    }
}

/// librdkafka's error for a failed `recv`. kafka-sdk reports `enable.partition.eof` as
/// `Error::State("partition EOF: <topic>-<partition> at offset <n>")` (no typed variant
/// yet); it becomes [`KafkaError::PartitionEOF`] here. Out of line: not on the per-message
/// path.
#[cold]
#[inline(never)]
fn consume_error(e: &kafka_sdk::Error) -> KafkaError {
    if let kafka_sdk::Error::State(text) = e {
        let partition = text
            .strip_prefix("partition EOF: ")
            .and_then(|rest| rest.split(" at offset ").next())
            .and_then(|tp| tp.rsplit('-').next())
            .and_then(|p| p.parse::<i32>().ok());
        if let Some(p) = partition {
            return KafkaError::PartitionEOF(p);
        }
    }
    KafkaError::MessageConsumption(code_of(e))
}

/// Low and high watermarks through a consumer handle.
pub(crate) fn watermarks(
    handle: ConsumerHandle,
    topic: &str,
    partition: i32,
    timeout: Timeout,
) -> KafkaResult<(i64, i64)> {
    let tp = TopicPartition::new(topic, partition);
    let limit = timeout.or(NEVER);
    rt::block(async move { handle.fetch_watermarks(&tp, limit).await })
        .map(|w| (w.low, w.high))
        .map_err(|e| KafkaError::MetadataFetch(code_of(&e)))
}

fn to_tpl_opt(list: Vec<(TopicPartition, Option<i64>)>, none: Offset) -> TopicPartitionList {
    TopicPartitionList::from_offsets(
        list.into_iter()
            .map(|(tp, o)| (tp, o.map_or(none, Offset::Offset))),
    )
}

/// The consumer calls shared by [`BaseConsumer`] and [`StreamConsumer`].
pub trait Consumer<C = DefaultConsumerContext>
where
    C: ConsumerContext + 'static,
{
    /// The client.
    fn client(&self) -> &Client<C>;

    #[doc(hidden)]
    fn inner(&self) -> &Arc<Inner<C>>;

    /// The context.
    fn context(&self) -> &Arc<C> {
        self.client().context()
    }

    /// The group metadata for transactional offset commits (`None` without `group.id`).
    fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        self.inner()
            .handle
            .group_metadata()
            .ok()
            .map(ConsumerGroupMetadata)
    }

    /// Subscribes to `topics` (a name starting with `^` is a regular expression).
    fn subscribe(&self, topics: &[&str]) -> KafkaResult<()> {
        let h = &self.inner().handle;
        let (regex, names): (Vec<&str>, Vec<&str>) =
            topics.iter().partition(|t| t.starts_with('^'));
        let r = match (regex.as_slice(), names.is_empty()) {
            ([], _) => h.subscribe(&names),
            ([one], true) => h.subscribe_regex(one),
            _ => {
                return Err(KafkaError::Subscription(
                    "kafka-sdk-rdkafka: mixing regular expressions with names, or several \
                     regular expressions, in one subscription is not supported"
                        .into(),
                ))
            }
        };
        r.map_err(|e| KafkaError::Subscription(e.to_string()))?;
        *self
            .inner()
            .subscription
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = topics.iter().map(|t| t.to_string()).collect();
        Ok(())
    }

    /// Leaves the subscription.
    fn unsubscribe(&self) {
        if let Err(e) = self.inner().handle.unsubscribe() {
            tracing::warn!("kafka-sdk-rdkafka: unsubscribe: {e}");
        }
        self.inner()
            .subscription
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Assigns partitions manually ([`Offset::Invalid`] = the committed offset).
    fn assign(&self, assignment: &TopicPartitionList) -> KafkaResult<()> {
        if in_rebalance_callback() {
            return Ok(());
        }
        let list = assignment
            .with_offsets()
            .into_iter()
            .map(|(tp, o)| (tp, o.to_sdk().unwrap_or(kafka_sdk::Offset::Stored)))
            .collect();
        self.inner()
            .handle
            .assign(list)
            .map_err(|e| KafkaError::Subscription(e.to_string()))
    }

    /// Removes the manual assignment.
    fn unassign(&self) -> KafkaResult<()> {
        if in_rebalance_callback() {
            return Ok(());
        }
        self.inner()
            .handle
            .unassign()
            .map_err(|e| KafkaError::Subscription(e.to_string()))
    }

    /// Adds partitions to the manual assignment (partitions already assigned keep their
    /// position). In a group, kafka-sdk applies assignments itself: a no-op there.
    fn incremental_assign(&self, assignment: &TopicPartitionList) -> KafkaResult<()> {
        if in_rebalance_callback() {
            return Ok(());
        }
        change_assignment(self.inner(), assignment, true)
    }

    /// Removes partitions from the manual assignment (a no-op in a group, as above).
    fn incremental_unassign(&self, assignment: &TopicPartitionList) -> KafkaResult<()> {
        if in_rebalance_callback() {
            return Ok(());
        }
        change_assignment(self.inner(), assignment, false)
    }

    /// Moves the position of an assigned partition.
    fn seek<T: Into<Timeout>>(
        &self,
        topic: &str,
        partition: i32,
        offset: Offset,
        timeout: T,
    ) -> KafkaResult<()> {
        let _ = timeout;
        let target = offset
            .to_sdk()
            .ok_or_else(|| KafkaError::Seek("cannot seek to Offset::Invalid".into()))?;
        self.inner()
            .handle
            .seek(&TopicPartition::new(topic, partition), target)
            .map_err(|e| KafkaError::Seek(e.to_string()))
    }

    /// Seeks several partitions; per-partition errors are set on the returned list.
    fn seek_partitions<T: Into<Timeout>>(
        &self,
        topic_partition_list: TopicPartitionList,
        timeout: T,
    ) -> KafkaResult<TopicPartitionList> {
        let _ = timeout;
        for (tp, o) in topic_partition_list.with_offsets() {
            let r = match o.to_sdk() {
                Some(target) => self
                    .inner()
                    .handle
                    .seek(&tp, target)
                    .map_err(|e| code_of(&e)),
                None => Err(RDKafkaErrorCode::InvalidArgument),
            };
            if let Err(code) = r {
                topic_partition_list.set_error(&tp.topic, tp.partition, code);
            }
        }
        Ok(topic_partition_list)
    }

    /// Commits the offsets of the list (each the next offset to read), of partitions
    /// assigned to this consumer or not (as librdkafka).
    fn commit(
        &self,
        topic_partition_list: &TopicPartitionList,
        mode: CommitMode,
    ) -> KafkaResult<()> {
        let mut offsets = Vec::new();
        for (tp, o) in topic_partition_list.with_offsets() {
            match o {
                Offset::Offset(n) => offsets.push((tp, n)),
                other => {
                    return Err(KafkaError::ConsumerCommit(if other == Offset::Invalid {
                        RDKafkaErrorCode::NoOffset
                    } else {
                        RDKafkaErrorCode::InvalidArgument
                    }))
                }
            }
        }
        let h = self.inner().handle.clone();
        // librdkafka commits any partition given, assigned or not.
        let r = rt::block(async move { h.commit_offsets_unchecked(offsets, mode.sdk()).await })
            .map_err(|e| KafkaError::ConsumerCommit(code_of(&e)));
        if mode == CommitMode::Sync {
            self.inner().commit_done(&r, topic_partition_list);
        }
        r
    }

    /// Commits the current position of every assigned partition.
    fn commit_consumer_state(&self, mode: CommitMode) -> KafkaResult<()> {
        let h = self.inner().handle.clone();
        let positions = to_tpl_opt(h.position(), Offset::Invalid);
        let r = rt::block(async move { h.commit(mode.sdk()).await })
            .map_err(|e| KafkaError::ConsumerCommit(code_of(&e)));
        if mode == CommitMode::Sync {
            self.inner().commit_done(&r, &positions);
        }
        r
    }

    /// Commits the offset after `message`.
    fn commit_message(&self, message: &BorrowedMessage<'_>, mode: CommitMode) -> KafkaResult<()> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(
            message.topic(),
            message.partition(),
            Offset::Offset(message.offset() + 1),
        )?;
        self.commit(&tpl, mode)
    }

    /// Stores `offset + 1` as the offset the next commit of the partition commits (as
    /// librdkafka's `rd_kafka_offset_store`).
    fn store_offset(&self, topic: &str, partition: i32, offset: i64) -> KafkaResult<()> {
        self.inner()
            .handle
            .store_offset(&TopicPartition::new(topic, partition), offset + 1)
            .map_err(|e| KafkaError::StoreOffset(code_of(&e)))
    }

    /// Stores the offset after `message`.
    fn store_offset_from_message(&self, message: &BorrowedMessage<'_>) -> KafkaResult<()> {
        self.store_offset(message.topic(), message.partition(), message.offset())
    }

    /// Stores the offsets of the list as they are (each the next offset to read).
    fn store_offsets(&self, tpl: &TopicPartitionList) -> KafkaResult<()> {
        for (tp, o) in tpl.with_offsets() {
            let Offset::Offset(n) = o else {
                return Err(KafkaError::StoreOffset(RDKafkaErrorCode::InvalidArgument));
            };
            self.inner()
                .handle
                .store_offset(&tp, n)
                .map_err(|e| KafkaError::StoreOffset(code_of(&e)))?;
        }
        Ok(())
    }

    /// The subscribed topics (partition `-1` each).
    fn subscription(&self) -> KafkaResult<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for t in self
            .inner()
            .subscription
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            tpl.add_topic_unassigned(t);
        }
        Ok(tpl)
    }

    /// The assigned partitions.
    fn assignment(&self) -> KafkaResult<TopicPartitionList> {
        Ok(TopicPartitionList::from_partitions(
            self.inner().handle.assignment().iter(),
        ))
    }

    /// Whether the last revocation was a loss (session expired, fenced).
    fn assignment_lost(&self) -> bool {
        self.inner().lost.load(Ordering::Relaxed)
    }

    /// The committed offsets of the assigned partitions ([`Offset::Invalid`] = none).
    fn committed<T>(&self, timeout: T) -> KafkaResult<TopicPartitionList>
    where
        T: Into<Timeout>,
        Self: Sized,
    {
        let tpl = self.assignment()?;
        self.committed_offsets(tpl, timeout)
    }

    /// The committed offsets of the listed partitions.
    fn committed_offsets<T>(
        &self,
        tpl: TopicPartitionList,
        timeout: T,
    ) -> KafkaResult<TopicPartitionList>
    where
        T: Into<Timeout>,
    {
        let h = self.inner().handle.clone();
        let parts = tpl.partitions();
        let limit = timeout.into().or(NEVER);
        let r = rt::block(async move { h.committed(Some(&parts), limit).await })
            .map_err(|e| KafkaError::OffsetFetch(code_of(&e)))?;
        Ok(to_tpl_opt(r, Offset::Invalid))
    }

    /// For every assigned partition, the first offset at or after `timestamp`.
    fn offsets_for_timestamp<T>(
        &self,
        timestamp: i64,
        timeout: T,
    ) -> KafkaResult<TopicPartitionList>
    where
        T: Into<Timeout>,
        Self: Sized,
    {
        let tpl = self.assignment()?;
        tpl.set_all_offsets_quiet(Offset::Offset(timestamp));
        self.offsets_for_times(tpl, timeout)
    }

    /// For each partition of the list (its offset holding a timestamp), the first offset at
    /// or after it ([`Offset::End`] when there is none).
    fn offsets_for_times<T>(
        &self,
        timestamps: TopicPartitionList,
        timeout: T,
    ) -> KafkaResult<TopicPartitionList>
    where
        T: Into<Timeout>,
        Self: Sized,
    {
        let mut query = Vec::new();
        for (tp, o) in timestamps.with_offsets() {
            let Offset::Offset(ts) = o else {
                return Err(KafkaError::OffsetFetch(RDKafkaErrorCode::InvalidArgument));
            };
            query.push((tp, ts));
        }
        let h = self.inner().handle.clone();
        let limit = timeout.into().or(NEVER);
        let r = rt::block(async move { h.offsets_for_times(query, limit).await })
            .map_err(|e| KafkaError::OffsetFetch(code_of(&e)))?;
        Ok(to_tpl_opt(r, Offset::End))
    }

    /// The positions of the assigned partitions ([`Offset::Invalid`] = not known yet).
    fn position(&self) -> KafkaResult<TopicPartitionList> {
        Ok(to_tpl_opt(self.inner().handle.position(), Offset::Invalid))
    }

    /// Cluster metadata.
    fn fetch_metadata<T>(&self, topic: Option<&str>, timeout: T) -> KafkaResult<Metadata>
    where
        T: Into<Timeout>,
        Self: Sized,
    {
        self.client().fetch_metadata(topic, timeout)
    }

    /// Low and high watermarks of a partition.
    fn fetch_watermarks<T>(
        &self,
        topic: &str,
        partition: i32,
        timeout: T,
    ) -> KafkaResult<(i64, i64)>
    where
        T: Into<Timeout>,
        Self: Sized,
    {
        watermarks(
            self.inner().handle.clone(),
            topic,
            partition,
            timeout.into(),
        )
    }

    /// Stops fetching the listed partitions.
    fn pause(&self, partitions: &TopicPartitionList) -> KafkaResult<()> {
        self.inner()
            .handle
            .pause(&partitions.partitions())
            .map_err(|e| KafkaError::PauseResume(e.to_string()))
    }

    /// Resumes fetching the listed partitions.
    fn resume(&self, partitions: &TopicPartitionList) -> KafkaResult<()> {
        self.inner()
            .handle
            .resume(&partitions.partitions())
            .map_err(|e| KafkaError::PauseResume(e.to_string()))
    }

    /// The rebalance protocol: cooperative when every configured assignor is cooperative.
    fn rebalance_protocol(&self) -> RebalanceProtocol {
        if self.inner().handle.group_id().is_none() {
            RebalanceProtocol::None
        } else if self.inner().cooperative {
            RebalanceProtocol::Cooperative
        } else {
            RebalanceProtocol::Eager
        }
    }
}

fn change_assignment<C: ConsumerContext + 'static>(
    inner: &Inner<C>,
    change: &TopicPartitionList,
    add: bool,
) -> KafkaResult<()> {
    let h = &inner.handle;
    if h.group_membership().is_some()
        || !inner
            .subscription
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    {
        return Ok(());
    }
    let changed: BTreeSet<TopicPartition> = change.partitions().into_iter().collect();
    let mut list: Vec<(TopicPartition, kafka_sdk::Offset)> = h
        .position()
        .into_iter()
        .filter(|(tp, _)| !changed.contains(tp))
        .map(|(tp, o)| {
            (
                tp,
                o.map_or(kafka_sdk::Offset::Stored, kafka_sdk::Offset::Offset),
            )
        })
        .collect();
    if add {
        list.extend(
            change
                .with_offsets()
                .into_iter()
                .map(|(tp, o)| (tp, o.to_sdk().unwrap_or(kafka_sdk::Offset::Stored))),
        );
    }
    h.assign(list)
        .map_err(|e| KafkaError::Subscription(e.to_string()))
}

impl<C: ConsumerContext + 'static> std::fmt::Debug for Inner<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group", &self.handle.group_id())
            .finish()
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Inner<DefaultConsumerContext>>();
    let _ = DefaultClientContext;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_eof_is_mapped() {
        let e = kafka_sdk::Error::State("partition EOF: my-topic-7 at offset 42".into());
        assert_eq!(consume_error(&e), KafkaError::PartitionEOF(7));
        let e = kafka_sdk::Error::State("something else".into());
        assert_eq!(
            consume_error(&e),
            KafkaError::MessageConsumption(RDKafkaErrorCode::State)
        );
    }
}
