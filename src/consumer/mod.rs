//! The consumer: partitions assigned manually or by a consumer group, fetched in the
//! background, received with [`Consumer::recv`] or as a `Stream`.
//!
//! # Design
//!
//! **Tasks.** A [`Consumer`] starts, on the tokio runtime:
//! - a *fetch manager* (`fetcher.rs`): gives each partition without a position one (committed
//!   offset via OffsetFetch, else `auto.offset.reset` via ListOffsets), and starts one
//!   *fetch task per leader broker*;
//! - the fetch tasks: each sends one Fetch at a time for the fetchable partitions its broker
//!   leads, decodes the answer outside any lock and appends messages to per-partition
//!   buffers (prefetch bounded by `max.partition.fetch.bytes` per partition and
//!   `queued.max.messages.kbytes` in total);
//! - with a `group.id`, the *membership task*: `group.rs` for `group.protocol=classic`
//!   (join/sync/heartbeat/leave, the assignor when leader), `group_consumer.rs` for
//!   `consumer` (KIP-848: ConsumerGroupHeartbeat, the broker assigns, the member reconciles),
//!   each running the [`RebalanceListener`] callbacks — all independent of `recv`;
//! - with `enable.auto.commit`, an *auto-commit task* committing the stored offsets every
//!   `auto.commit.interval.ms`.
//!
//! **State ownership.** Per-partition state (fetch offset, delivered position, stored
//! offset, buffer, paused, in-flight flag, `assigning` until `on_assigned` returned, a `session` set to a process-unique value by every
//! seek so stale fetch and lookup results are dropped, and an `incarnation` telling one
//! assignment of a partition from the next) lives in one `Mutex<State>` inside `Shared`, never
//! held across an `.await`. A seek that needs a lookup clears the position until it answers. The membership task alone owns member id, generation, protocol and the set of
//! owned partitions; commits read generation + member id from a small shared copy. Fetchers
//! are woken through a `watch` counter, `recv` through registered wakers; no lost wake-ups.
//!
//! **Delivery.** `recv` takes one message under the lock, so it is cancellation safe. What a
//! fetch response brought for a partition (a chunk) is delivered whole before the next
//! chunk, in the order the chunks arrived (as the Java client and librdkafka deliver), so a
//! response's memory goes as soon as its last chunk is read; a paused partition's chunks
//! wait behind the others. The position becomes
//! the message's offset + 1 (or the fetch offset once a partition's buffer is empty, so that
//! control records and aborted transactions do not leave a lag); with
//! `enable.auto.offset.store` the stored offset follows. Commits of positions or stored
//! offsets go straight to the coordinator, tagged once with the member's generation (never
//! re-sent under another); only a commit made while a rebalance completes (JoinGroup
//! answered, the assignment not applied: the old generation is over) waits for the new
//! generation, and fails with `NotAssigned` for a partition that leaves in it.
//!
//! **Rebalance flow.** Eager protocols (`range`, `roundrobin`, `sticky`): before each join
//! every owned partition is revoked (stop delivering → auto commit → `on_revoked` → drop).
//! Cooperative (`cooperative-sticky`, used when every configured assignor is cooperative):
//! the member joins with its owned partitions and keeps fetching them during the rebalance;
//! after SyncGroup only partitions no longer assigned are revoked, new ones are added
//! (`on_assigned`), and if anything was revoked the member rejoins at once so the leader can
//! hand those partitions to their new owner (KIP-429). ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID
//! mean the partitions were lost (`on_lost`, no commit) and the member rejoins (forgetting
//! its member id only after UNKNOWN_MEMBER_ID, static members too, as Java);
//! FENCED_INSTANCE_ID is fatal. New partitions are fetched only once `on_assigned` returned.
//! Callbacks run in their own task; the membership task heartbeats while it waits for them
//! (and for revoke-time commits), so only `max.poll.interval.ms` bounds them.
//! `max.poll.interval.ms` without `recv`: the member revokes,
//! leaves (dynamic members), and rejoins at the next `recv`.
//!
//! **Shutdown.** [`Consumer::close`] commits (auto commit), asks the membership task to
//! revoke and send LeaveGroup (after letting a callback in progress finish, never calling it
//! twice), and sets the shutdown flag, all within a bound. Dropping
//! sets the flag only: nothing blocks and no LeaveGroup is sent.
//!
//! **Modules** depend only downward: `state`, `message`, `offsets` at the bottom; `fetcher`
//! and `handle` ([`ConsumerHandle`]) on them; `listener` on `handle`; `group` on `handle` and
//! `listener`; `client` ([`Consumer`]) on everything, and nothing on `client`.
//!
//! **Leader epochs** (KIP-320): Fetch and ListOffsets carry the leader epoch from metadata;
//! positions are validated with OffsetsForLeaderEpoch after a leader change (see
//! `fetcher.rs`), and a truncated log is handled like Java's consumer does.
//!
//! **Not yet:** fetch sessions (KIP-227: every fetch is a full fetch), follower fetching,
//! Fetch's `last_fetched_epoch` divergence check (v12+).
//!
//! **KIP-848** (`group_consumer.rs`) keeps the listener guarantees above with the broker's
//! assignment: partitions leaving are revoked (commit with auto commit, `on_revoked`) before
//! new ones are added (`on_assigned`, then fetched), and the next heartbeat acknowledges;
//! FENCED_MEMBER_EPOCH / UNKNOWN_MEMBER_ID → `on_lost` and a rejoin at epoch 0.
//! `read_committed` filtering of aborted transactions is done in `fetcher.rs` from the
//! response's aborted-transactions list.

internal_modules! {
    /// Partition assignors and the consumer protocol's subscription/assignment bytes.
    assignor;
}
mod client;
mod fetcher;
mod group;
mod group_consumer;
mod handle;
mod listener;
mod message;
mod offsets;
mod state;
mod vec_pool;

pub use crate::types::ConsumerGroupMetadata;
pub use client::{Consumer, ConsumerBuilder, MessageStream};
pub use futures_util::future::BoxFuture;
pub use handle::{ConsumerHandle, ConsumerLag};
pub use listener::RebalanceListener;
pub use message::{
    CommitMode, CommitResult, Header, Message, MessageParts, Offset, TimestampType, Watermarks,
};
