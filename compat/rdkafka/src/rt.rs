//! The facade's own tokio runtime.
//!
//! kafka-sdk's clients are async and keep background tasks on the runtime they were built in.
//! rdkafka's API is partly synchronous (`BaseConsumer::poll`, `commit` with
//! `CommitMode::Sync`, `fetch_metadata`, `flush`...), so every client of this crate lives on
//! one process-wide multi-thread runtime owned here, on threads of its own. A synchronous call
//! sends its work there and blocks the *calling thread* on a channel until it finishes: it
//! never calls `block_on` inside the caller's runtime, so it cannot deadlock it. On a worker
//! of a multi-thread tokio runtime the wait goes through `block_in_place`, so the runtime's
//! other tasks move to other workers; a current-thread runtime waits for the call, as with
//! rdkafka.
//! Async calls (`FutureProducer::send`, `StreamConsumer::recv`) await the work from any
//! executor. User callbacks (contexts) run on blocking threads, so a callback may call the
//! synchronous API again.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime};

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kafka-sdk-rdkafka")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("kafka-sdk-rdkafka: cannot start its runtime: {e}"))
    })
}

/// The runtime's handle.
pub(crate) fn handle() -> &'static Handle {
    runtime().handle()
}

/// Runs `fut` on the facade's runtime and blocks the calling thread until it finishes.
pub(crate) fn block<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle().spawn(async move {
        let _ = tx.send(fut.await);
    });
    let wait = move || {
        rx.recv()
            .unwrap_or_else(|_| panic!("kafka-sdk-rdkafka: runtime task ended without an answer"))
    };
    blocking(wait)
}

/// Runs `f`, which blocks the calling thread. On a worker of a caller's multi-thread tokio
/// runtime, tells the runtime first, so that its other tasks move to other workers meanwhile
/// (not possible on a current-thread runtime: that one waits, as with rdkafka).
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Runs `fut` on the facade's runtime; the returned future awaits it from any executor.
/// Dropping the returned future cancels the work.
pub(crate) fn run_async<F>(fut: F) -> impl Future<Output = F::Output> + Send + 'static
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = handle().spawn(fut);
    let guard = AbortOnDrop(task.abort_handle());
    async move {
        let out = task.await;
        drop(guard);
        out.unwrap_or_else(|e| panic!("kafka-sdk-rdkafka: runtime task failed: {e}"))
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs a user callback on a blocking thread of the runtime (so that it may call the
/// synchronous API) and waits for it.
pub(crate) async fn callback<F: FnOnce() + Send + 'static>(f: F) {
    if let Err(e) = tokio::task::spawn_blocking(f).await {
        tracing::error!("kafka-sdk-rdkafka: a context callback panicked: {e}");
    }
}
