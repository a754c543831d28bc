//! The rebalance listener: async callbacks run by the membership task *as part of* the
//! rebalance (not when the application happens to poll).

use futures_util::future::BoxFuture;

use super::handle::ConsumerHandle;
use crate::types::TopicPartition;

/// Callbacks for partition assignment changes of a group consumer.
///
/// The callbacks run in the middle of the rebalance, in a task of their own that the
/// background membership task waits for: `on_revoked` before the partitions are given up
/// (commit what was processed here), and `on_assigned` after new partitions are added and
/// before any of them is fetched (seek here to override the committed position). They may
/// await anything on the [`ConsumerHandle`] they receive (commits, seeks, positions), but not
/// [`Consumer::recv`](super::Consumer::recv).
///
/// The membership task keeps heartbeating while a callback runs, so a callback may take
/// longer than `session.timeout.ms`; it must end within `max.poll.interval.ms` (the rebalance
/// waits for it; past that bound heartbeats stop and the member leaves the group until the
/// next `recv`). Each callback runs to completion exactly once per event:
/// [`Consumer::close`](super::Consumer::close) waits for one in progress (within its bound)
/// instead of cutting it off.
///
/// With the cooperative protocol (`cooperative-sticky`) only partitions that move are revoked
/// and `on_assigned` receives only the newly added partitions; with eager protocols every
/// rebalance revokes everything first.
///
/// **Commit what was processed, not what was delivered.** The rebalance runs in the
/// background, possibly while the application is still processing a record `recv` returned;
/// [`commit`](ConsumerHandle::commit) (the position: everything delivered) in `on_revoked`
/// would then commit that record before it is done, and the next owner skips it. The safe
/// pattern: `enable.auto.offset.store=false`, store each record's offset once it is processed
/// ([`store_offset_from_message`](ConsumerHandle::store_offset_from_message)), and commit the
/// stored offsets on revocation ([`commit_stored`](ConsumerHandle::commit_stored), as below).
/// With `enable.auto.commit` the consumer does that last step itself: before `on_revoked`
/// it commits the stored offsets of the partitions being revoked (with
/// `enable.auto.offset.store=true`, the default, a record counts as stored as soon as `recv`
/// returns it, so this commits what was delivered).
///
/// Methods return a boxed future so the trait can be used as `Arc<dyn RebalanceListener>`:
///
/// ```
/// use kafka_sdk::consumer::{BoxFuture, CommitMode, ConsumerHandle, RebalanceListener};
/// use kafka_sdk::TopicPartition;
///
/// /// With `enable.auto.offset.store=false`, the application calling
/// /// `store_offset_from_message(&msg)` after processing each record.
/// struct CommitStoredOnRevoke;
///
/// impl RebalanceListener for CommitStoredOnRevoke {
///     fn on_revoked<'a>(
///         &'a self,
///         consumer: &'a ConsumerHandle,
///         _partitions: &'a [TopicPartition],
///     ) -> BoxFuture<'a, ()> {
///         Box::pin(async move {
///             // What was processed (stored), not what `recv` delivered.
///             if let Err(e) = consumer.commit_stored(CommitMode::Sync).await {
///                 eprintln!("commit on revoke failed: {e}");
///             }
///         })
///     }
/// }
/// ```
pub trait RebalanceListener: Send + Sync + 'static {
    /// Partitions were added to this member's assignment (the new ones only, for the
    /// cooperative protocol). Called after the partitions are assigned and before they are
    /// fetched: nothing of them is fetched or delivered until this returns, so a seek here
    /// (e.g. to an offset kept in a database) decides the first record delivered.
    fn on_assigned<'a>(
        &'a self,
        consumer: &'a ConsumerHandle,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        let _ = (consumer, partitions);
        Box::pin(async {})
    }

    /// Partitions are being taken away in an orderly rebalance (or on close). They are no
    /// longer delivered, but offsets can still be committed for them.
    fn on_revoked<'a>(
        &'a self,
        consumer: &'a ConsumerHandle,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        let _ = (consumer, partitions);
        Box::pin(async {})
    }

    /// Partitions were lost: the member was thrown out of the group (session timeout,
    /// generation fenced), so another member may already own them and commits for them will
    /// fail. The default calls [`RebalanceListener::on_revoked`], as the Java client does.
    fn on_lost<'a>(
        &'a self,
        consumer: &'a ConsumerHandle,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        self.on_revoked(consumer, partitions)
    }
}
