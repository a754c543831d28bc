//! Share groups (KIP-932, "queues for Kafka"): the [`ShareConsumer`].
//!
//! # Design
//!
//! A share consumer is its own client type, not a mode of [`Consumer`](crate::Consumer):
//! its records are acquired for a time and acknowledged one by one instead of consumed up
//! to a committed offset. It starts two tasks on the tokio runtime:
//! - the *membership task* (`membership.rs`): ShareGroupHeartbeat with a client-generated
//!   member id (UUID) and the member epoch; the coordinator assigns partitions (several
//!   members may get the same partition); UNKNOWN_MEMBER_ID / FENCED_MEMBER_EPOCH rejoin at
//!   epoch 0; `close` leaves with epoch -1;
//! - the *fetch driver* (`fetch.rs`): ShareFetch with one share session per leader broker
//!   (session epochs, incremental partition lists, acknowledgements piggy-backed), and
//!   ShareAcknowledge when acknowledgements are pending and nothing is fetched. It fetches
//!   only when a `recv` waits on an empty buffer, so records are acquired when asked for,
//!   at most `max.poll.records` per ShareFetch.
//!
//! **State** (`state.rs`): one `std::sync::Mutex<State>` (never held across an `.await`):
//! the subscription, the assignment (topic id -> partitions), the acquired records not handed
//! out yet, the records handed out and not acknowledged, the acknowledgements to send and the
//! `commit_sync` calls waiting for them. `tokio::sync::Notify` wakes the tasks (no lost
//! wake-up); `recv` registers wakers.
//!
//! **Acknowledgement.** Explicit mode (`share.acknowledgement.mode=explicit`): the
//! application acknowledges each record ([`AcknowledgeType`]). Implicit mode (default): the
//! records handed out are accepted when the application receives again, commits or closes.
//! Acquired offsets without a record (transaction markers) are acknowledged as gaps.
//!
//! **Errors** are classified by [`Error::classify`](crate::Error::classify): a lost share
//! session (SHARE_SESSION_NOT_FOUND, INVALID_SHARE_SESSION_EPOCH) reopens the session and
//! sends again; INVALID_RECORD_STATE (lock expired, acknowledged twice) is reported per
//! partition by `commit_sync`.
//!
//! **Not yet:** record-level `share.acquire.mode`, renewing acquisition locks (KIP-1222),
//! an acknowledgement commit callback (`commit_async` failures are logged), rack-aware
//! assignment (`client.rack`).

mod client;
mod fetch;
mod membership;
mod record;
mod state;

pub use client::{ShareConsumer, ShareConsumerBuilder};
pub use record::{AcknowledgeType, ShareRecord};
pub use state::CommitResults;
