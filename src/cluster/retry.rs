//! The one retry policy of kafka-sdk: an overall [`Deadline`], jittered exponential
//! [`Backoff`] (`retry.backoff.ms` .. `retry.backoff.max.ms`) and the classification of
//! [`Error::classify`], with the few knobs the call sites need.
//!
//! Every retry loop goes through a [`RetryPolicy`]: [`Cluster::retry`] (metadata refreshes,
//! FindCoordinator, admin requests, the idempotent producer's InitProducerId), the topic
//! metadata wait, the coordinator requests of the consumer (OffsetFetch, OffsetCommit) and of
//! the transactional producer, ListOffsets, and the admin client's waits.
//!
//! What it does with a failed attempt (see [`RetryPolicy::failed`]):
//! - `Fatal` -> give up with the error; `Ambiguous` -> retry, unless the policy says not to
//!   ([`RetryPolicy::retry_ambiguous`]);
//! - `RefreshAndRetry` -> refresh the metadata first (unless
//!   [`RetryPolicy::refresh_metadata`] is off, as inside the refresh itself);
//! - for a coordinator request ([`RetryPolicy::run_on_coordinator`]): forget the cached
//!   coordinator when it may have moved (`RefreshAndRetry`, `Ambiguous`, or no answer at all);
//! - then wait the next backoff delay, bounded by the deadline; at the deadline, give up with
//!   the last error.

use std::future::Future;
use std::ops::ControlFlow;
use std::time::Duration;

use super::{Cluster, CoordinatorKind};
use crate::backoff::{Backoff, Deadline};
use crate::connection::Connection;
use crate::error::{Error, ErrorAction, KafkaCode, Result};

/// One retry policy: what is retried (by [`Error::classify`]), how long to wait between
/// attempts, and until when. Built by [`Cluster::retry_policy`]; runs an operation with
/// [`run`](Self::run) or [`run_on_coordinator`](Self::run_on_coordinator), or drives a hand
/// loop through [`failed`](Self::failed).
#[derive(Debug)]
pub struct RetryPolicy<'a> {
    cluster: &'a Cluster,
    what: String,
    deadline: Deadline,
    backoff: Backoff,
    retry_ambiguous: bool,
    refresh_metadata: bool,
    /// A broker code that ends the retries here although it is retriable elsewhere
    /// ([`RetryPolicy::not_retrying`]).
    not_retried: Option<KafkaCode>,
    /// The setting that bounds the call (name, value), named in the timeout error.
    bound: Option<(&'static str, Duration)>,
    /// Set by `run_on_coordinator`: the coordinator to forget when it may have moved.
    coordinator: Option<(CoordinatorKind, &'a str)>,
    /// The previous attempt's error: returned when the deadline cuts an attempt short.
    last: Option<Error>,
}

impl<'a> RetryPolicy<'a> {
    pub(super) fn new(cluster: &'a Cluster, what: String, deadline: Deadline) -> Self {
        let opts = &cluster.inner.opts;
        RetryPolicy {
            cluster,
            what,
            deadline,
            backoff: Backoff::new(opts.retry_backoff, opts.retry_backoff_max),
            retry_ambiguous: true,
            refresh_metadata: true,
            not_retried: None,
            bound: None,
            coordinator: None,
            last: None,
        }
    }

    /// Whether an `Ambiguous` failure (the request may have taken effect) is retried: yes by
    /// default, which is right for reads and for requests the broker deduplicates. A write
    /// that must not be applied twice sets `false` and gets the ambiguous error back.
    pub fn retry_ambiguous(mut self, yes: bool) -> Self {
        self.retry_ambiguous = yes;
        self
    }

    /// Ends the retries at a broker error with `code` (whatever its classification), where
    /// the caller knows it cannot get better: UNKNOWN_TOPIC_OR_PARTITION for the consumer's
    /// own commits (auto commit, before a rebalance, at close) of a deleted topic.
    pub fn not_retrying(mut self, code: KafkaCode) -> Self {
        self.not_retried = Some(code);
        self
    }

    /// Whether a `RefreshAndRetry` failure refreshes the cluster metadata before the retry
    /// (default yes). Off inside the metadata refresh itself, and where the operation
    /// re-resolves what it needs on its own.
    pub fn refresh_metadata(mut self, yes: bool) -> Self {
        self.refresh_metadata = yes;
        self
    }

    /// Replaces the backoff (default: `retry.backoff.ms` .. `retry.backoff.max.ms`), for
    /// loops that poll for a state rather than retry a failure.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Names the setting that gave the deadline (e.g. `max.block.ms`) and its value, for the
    /// timeout error when the deadline cuts the first attempt short.
    pub fn bounded_by(mut self, setting: &'static str, value: Duration) -> Self {
        self.bound = Some((setting, value));
        self
    }

    /// The deadline of the whole operation.
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// Whether `err` ends the retries under this policy (whatever the deadline says).
    pub fn gives_up(&self, err: &Error) -> bool {
        if self.not_retried.is_some() && err.code() == self.not_retried {
            return true;
        }
        match err.action() {
            ErrorAction::Fatal => true,
            ErrorAction::Ambiguous => !self.retry_ambiguous,
            ErrorAction::Retry | ErrorAction::RefreshAndRetry => false,
        }
    }

    /// Deals with one failed attempt: gives `err` back when it ends the retries (see
    /// [`gives_up`](Self::gives_up)); otherwise does what the error asks for (metadata
    /// refresh, forgetting a coordinator that may have moved), waits the next backoff delay
    /// and returns `Ok(())` to try again. When the deadline passes during the wait, `err`
    /// comes back.
    pub async fn failed(&mut self, err: Error) -> Result<()> {
        let action = err.action();
        tracing::debug!(what = %self.what, error = %err, ?action, attempt = self.backoff.attempts(), "retrying");
        if self.gives_up(&err) {
            return Err(err);
        }
        if let Some((kind, key)) = self.coordinator {
            if coordinator_may_have_moved(&err, action) {
                self.cluster.invalidate_coordinator(kind, key);
            }
        }
        if action == ErrorAction::RefreshAndRetry && self.refresh_metadata {
            // Boxed: the refresh itself runs under a policy.
            let _ = Box::pin(self.cluster.refresh_with_deadline(self.deadline)).await;
        }
        if !self.deadline.sleep(self.backoff.next_delay()).await {
            return Err(err);
        }
        self.last = Some(err);
        Ok(())
    }

    /// Runs `op` until it succeeds, the policy gives up, or the deadline passes (then the last
    /// error; a timeout error when the first attempt is still running at the deadline).
    pub async fn run<T, F, Fut>(mut self, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        loop {
            if let ControlFlow::Break(v) = self.attempt(op()).await? {
                return Ok(v);
            }
        }
    }

    /// Like [`run`](Self::run) for a request to the `kind` coordinator of `key`: each attempt
    /// looks the coordinator up (cached by the cluster) and hands `op` a connection to it; a
    /// failure after which the coordinator may have moved makes the next attempt look it up
    /// again.
    pub async fn run_on_coordinator<T, F, Fut>(
        mut self,
        kind: CoordinatorKind,
        key: &'a str,
        mut op: F,
    ) -> Result<T>
    where
        F: FnMut(Connection) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.coordinator = Some((kind, key));
        let cluster = self.cluster;
        let deadline = self.deadline;
        loop {
            let attempt = async {
                let (_, conn) = cluster.coordinator(kind, key, deadline).await?;
                op(conn).await
            };
            if let ControlFlow::Break(v) = self.attempt(attempt).await? {
                return Ok(v);
            }
        }
    }

    /// One attempt, bounded by the deadline: `Break` with the value, `Continue` to go again,
    /// or the error that ends the retries.
    async fn attempt<T>(
        &mut self,
        attempt: impl Future<Output = Result<T>>,
    ) -> Result<ControlFlow<T>> {
        let remaining = self.deadline.remaining();
        match tokio::time::timeout(remaining, attempt).await {
            Ok(Ok(v)) => Ok(ControlFlow::Break(v)),
            Ok(Err(e)) => self.failed(e).await.map(ControlFlow::Continue),
            // The deadline cut this attempt short: the previous attempt's error says more
            // about why nothing worked than "timed out" does.
            Err(_) => Err(self.last.take().unwrap_or_else(|| match self.bound {
                Some((setting, value)) => {
                    Error::timeout(format!("{} ({setting})", self.what), value, true)
                }
                None => Error::timeout(self.what.clone(), remaining, true),
            })),
        }
    }
}

/// After a failed coordinator request: may the coordinator have moved? Yes when the failure
/// says the cached view is stale (`RefreshAndRetry`: NOT_COORDINATOR,
/// COORDINATOR_NOT_AVAILABLE, a connection that failed), when the outcome is unknown
/// (`Ambiguous`: the request timed out or the connection broke with it in flight), and when no
/// broker answered at all. A coordinator that answered with a transient code
/// (COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS, ...) is still the coordinator.
fn coordinator_may_have_moved(err: &Error, action: ErrorAction) -> bool {
    match action {
        ErrorAction::RefreshAndRetry | ErrorAction::Ambiguous => true,
        ErrorAction::Retry => err.code().is_none(),
        ErrorAction::Fatal => false,
    }
}

impl Cluster {
    /// The retry policy for `what`, bounded by `deadline`, with this cluster's backoff
    /// (`retry.backoff.ms` .. `retry.backoff.max.ms`, jittered); it retries every failure that
    /// [`Error::classify`] does not call `Fatal` and refreshes metadata on `RefreshAndRetry`.
    pub fn retry_policy(&self, what: impl Into<String>, deadline: Deadline) -> RetryPolicy<'_> {
        RetryPolicy::new(self, what.into(), deadline)
    }

    /// Shorthand for `retry_policy(what, deadline).refresh_metadata(refresh).run(op)`: runs
    /// `op` until it succeeds, fails fatally, or `deadline` passes (then the last error).
    /// `Ambiguous` errors are retried too: use this only for operations safe to repeat.
    pub async fn retry<T, F, Fut>(
        &self,
        what: &str,
        deadline: Deadline,
        refresh: bool,
        op: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.retry_policy(what, deadline)
            .refresh_metadata(refresh)
            .run(op)
            .await
    }
}

#[cfg(test)]
impl Cluster {
    /// A cluster handle that knows no broker (for unit tests that must not need one), with a
    /// 1..4 ms backoff.
    pub(crate) fn offline_for_tests() -> Cluster {
        use std::sync::atomic::AtomicU64;
        use std::sync::Arc;

        use super::{ClusterOptions, Inner, MetadataSnapshot};
        let mut opts = ClusterOptions::new(vec!["127.0.0.1:1".into()]);
        opts.retry_backoff = Duration::from_millis(1);
        opts.retry_backoff_max = Duration::from_millis(4);
        let (snapshot, _) = tokio::sync::watch::channel(Arc::new(MetadataSnapshot::default()));
        Cluster {
            inner: Arc::new(Inner {
                opts,
                snapshot,
                generation: AtomicU64::new(0),
                refresh_lock: tokio::sync::Mutex::new(None),
                topics: Default::default(),
                endpoints: Default::default(),
                coordinators: Default::default(),
                events: crate::events::EventHub::new(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::error::KafkaCode;

    /// A cluster handle that knows no broker (nothing here may need one), with a 1..4 ms
    /// backoff.
    fn offline_cluster() -> Cluster {
        Cluster::offline_for_tests()
    }

    /// Runs a policy over an operation that fails with `errs` in turn, then succeeds;
    /// returns the outcome and the number of attempts.
    async fn run_with(policy: RetryPolicy<'_>, errs: Vec<Error>) -> (Result<&'static str>, u32) {
        let attempts = AtomicU32::new(0);
        let r = policy
            .run(|| {
                let n = attempts.fetch_add(1, Ordering::SeqCst) as usize;
                let r = errs.get(n).cloned().map_or(Ok("done"), Err);
                async move { r }
            })
            .await;
        (r, attempts.load(Ordering::SeqCst))
    }

    fn secs(n: u64) -> Deadline {
        Deadline::after(Duration::from_secs(n))
    }

    #[tokio::test]
    async fn retries_what_the_classification_retries() {
        let c = offline_cluster();
        let errs = vec![
            Error::broker(KafkaCode::COORDINATOR_LOAD_IN_PROGRESS, ""),
            Error::timeout("t", Duration::from_millis(1), true), // ambiguous
            Error::broker(KafkaCode::CONCURRENT_TRANSACTIONS, ""),
        ];
        let (r, n) = run_with(c.retry_policy("op", secs(10)), errs).await;
        assert_eq!((r.unwrap(), n), ("done", 4));
    }

    #[tokio::test]
    async fn gives_up_on_fatal_and_on_ambiguous_when_told() {
        let c = offline_cluster();
        let (r, n) = run_with(
            c.retry_policy("op", secs(10)),
            vec![Error::broker(KafkaCode::ILLEGAL_GENERATION, "")],
        )
        .await;
        assert_eq!(r.unwrap_err().code(), Some(KafkaCode::ILLEGAL_GENERATION));
        assert_eq!(n, 1);
        let (r, n) = run_with(
            c.retry_policy("op", secs(10)).retry_ambiguous(false),
            vec![Error::broker(KafkaCode::REQUEST_TIMED_OUT, "")],
        )
        .await;
        assert_eq!(r.unwrap_err().code(), Some(KafkaCode::REQUEST_TIMED_OUT));
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn a_code_not_retried_ends_the_retries_and_only_that_code() {
        let c = offline_cluster();
        let unknown = || Error::broker(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION, "");
        let policy = || c.retry_policy("op", secs(10)).refresh_metadata(false);
        let (r, n) = run_with(policy(), vec![unknown()]).await;
        assert_eq!((r.unwrap(), n), ("done", 2), "retried by default");
        let not_retried = || policy().not_retrying(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION);
        let (r, n) = run_with(not_retried(), vec![unknown()]).await;
        assert_eq!(r.unwrap_err().code(), Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION));
        assert_eq!(n, 1);
        let other = Error::broker(KafkaCode::COORDINATOR_LOAD_IN_PROGRESS, "");
        let (r, n) = run_with(not_retried(), vec![other]).await;
        assert_eq!((r.unwrap(), n), ("done", 2), "other codes still retried");
    }

    #[tokio::test]
    async fn at_the_deadline_the_last_error_comes_back() {
        let c = offline_cluster();
        let errs = vec![Error::broker(KafkaCode::NOT_ENOUGH_REPLICAS, ""); 100_000];
        let started = std::time::Instant::now();
        let policy = c.retry_policy("op", Deadline::after(Duration::from_millis(150)));
        let (r, n) = run_with(policy, errs).await;
        assert_eq!(r.unwrap_err().code(), Some(KafkaCode::NOT_ENOUGH_REPLICAS));
        assert!(n > 3, "backoff 1..4 ms: many attempts in 150 ms, got {n}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn an_attempt_outliving_the_deadline_is_cut_short() {
        let c = offline_cluster();
        let hang = || std::future::pending::<Result<()>>();
        // First attempt: a timeout naming the bound.
        let e = c
            .retry_policy("EndTxn", Deadline::after(Duration::from_millis(50)))
            .bounded_by("max.block.ms", Duration::from_millis(50))
            .run(hang)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Timeout {
                    in_flight: true,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("EndTxn (max.block.ms)"), "{e}");
        // A later attempt: the previous attempt's error says more.
        let mut first = true;
        let e = c
            .retry_policy("op", Deadline::after(Duration::from_millis(80)))
            .run(|| {
                let fail = std::mem::take(&mut first);
                async move {
                    if fail {
                        return Err(Error::broker(KafkaCode::NOT_ENOUGH_REPLICAS, ""));
                    }
                    std::future::pending::<Result<()>>().await
                }
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(KafkaCode::NOT_ENOUGH_REPLICAS));
    }

    #[tokio::test]
    async fn a_hand_loop_uses_failed() {
        let c = offline_cluster();
        let mut retry = c.retry_policy("poll", Deadline::after(Duration::from_millis(60)));
        let mut rounds = 0;
        let e = loop {
            rounds += 1;
            let not_yet = Error::timeout("state to show", Duration::from_millis(60), false);
            if let Err(e) = retry.failed(not_yet).await {
                break e;
            }
        };
        assert!(
            matches!(
                e,
                Error::Timeout {
                    in_flight: false,
                    ..
                }
            ),
            "{e}"
        );
        assert!(rounds > 3, "{rounds}");
        let mut retry = c.retry_policy("poll", secs(10));
        let fatal = Error::broker(KafkaCode::TOPIC_AUTHORIZATION_FAILED, "");
        assert!(retry.gives_up(&fatal));
        assert!(retry.failed(fatal).await.is_err());
    }

    fn conn_err(in_flight: bool) -> Error {
        Error::Connection {
            broker: "b:9092".into(),
            reason: "reset".into(),
            in_flight,
        }
    }

    #[test]
    fn coordinator_moves_on_stale_unknown_or_unanswered() {
        let moved = |e: Error| coordinator_may_have_moved(&e, e.action());
        assert!(moved(Error::broker(KafkaCode::NOT_COORDINATOR, "")));
        assert!(moved(Error::broker(
            KafkaCode::COORDINATOR_NOT_AVAILABLE,
            ""
        )));
        assert!(moved(Error::broker(KafkaCode::REQUEST_TIMED_OUT, "")));
        assert!(moved(conn_err(false)));
        assert!(moved(conn_err(true)));
        assert!(moved(Error::timeout("x", Duration::from_millis(1), false)));
        assert!(moved(Error::timeout("x", Duration::from_millis(1), true)));
        assert!(!moved(Error::broker(
            KafkaCode::COORDINATOR_LOAD_IN_PROGRESS,
            ""
        )));
        assert!(!moved(Error::broker(
            KafkaCode::CONCURRENT_TRANSACTIONS,
            ""
        )));
        assert!(!moved(Error::broker(KafkaCode::PRODUCER_FENCED, "")));
        assert!(!moved(Error::broker(KafkaCode::ILLEGAL_GENERATION, "")));
    }
}
