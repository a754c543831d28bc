//! [`BaseConsumer`]: messages by `poll`.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use super::{Consumer, ConsumerContext, DefaultConsumerContext, Inner};
use crate::client::Client;
use crate::config::{ClientConfig, FromClientConfig, FromClientConfigAndContext};
use crate::error::KafkaResult;
use crate::message::BorrowedMessage;
use crate::rt;
use crate::util::Timeout;

/// A consumer whose messages are taken with [`BaseConsumer::poll`]. Rebalances and fetching
/// run in the background (kafka-sdk's tasks), so `poll` only takes what is buffered.
pub struct BaseConsumer<C = DefaultConsumerContext>
where
    C: ConsumerContext + 'static,
{
    pub(crate) inner: Arc<Inner<C>>,
}

impl FromClientConfig for BaseConsumer {
    fn from_config(config: &ClientConfig) -> KafkaResult<BaseConsumer> {
        BaseConsumer::from_config_and_context(config, DefaultConsumerContext)
    }
}

impl<C: ConsumerContext + 'static> FromClientConfigAndContext<C> for BaseConsumer<C> {
    fn from_config_and_context(config: &ClientConfig, context: C) -> KafkaResult<BaseConsumer<C>> {
        Ok(BaseConsumer {
            inner: Inner::create(config, context)?,
        })
    }
}

impl<C: ConsumerContext + 'static> BaseConsumer<C> {
    pub(crate) fn from_inner(inner: Arc<Inner<C>>) -> BaseConsumer<C> {
        BaseConsumer { inner }
    }

    /// The next message, waiting up to `timeout`; `None` when none arrived in time. An
    /// error is per event (the consumer goes on).
    ///
    /// Synchronous, as rdkafka's: what is buffered is taken on the calling thread, outside
    /// tokio's cooperative budget (called inside a task, a loop of `poll`s that never
    /// yields still gets every buffered message); a wait parks the calling thread until
    /// kafka-sdk's fetcher wakes it (through `block_in_place` on a worker of a
    /// multi-thread runtime), with no task or channel per wait.
    pub fn poll<T: Into<Timeout>>(&self, timeout: T) -> Option<KafkaResult<BorrowedMessage<'_>>> {
        // The common case first, with nothing around it (each layer moves the message).
        let mut cx = Context::from_waker(Waker::noop());
        if let Poll::Ready(r) = self.inner.poll_recv(&mut cx) {
            return Some(r);
        }
        self.poll_slow(timeout.into())
    }

    /// [`BaseConsumer::poll`] when nothing was handed out at once.
    #[inline(never)]
    fn poll_slow(&self, timeout: Timeout) -> Option<KafkaResult<BorrowedMessage<'_>>> {
        let mut cx = Context::from_waker(Waker::noop());
        if let Some(r) = self.take(&mut cx) {
            return Some(r);
        }
        let limit = timeout.duration();
        if limit.is_some_and(|d| d.is_zero()) {
            return None;
        }
        let deadline = limit.and_then(|d| Instant::now().checked_add(d));
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        rt::blocking(|| loop {
            // The waker is registered before this returns `None`: a message buffered
            // after it unparks this thread (or leaves the token for the `park` below).
            if let Some(r) = self.take(&mut cx) {
                return Some(r);
            }
            match deadline {
                None => std::thread::park(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    std::thread::park_timeout(d - now);
                }
            }
        })
    }

    /// A buffered message (or error), `None` when there is none: `cx`'s waker is then
    /// woken when one comes. kafka-sdk's `poll_recv` counts against the calling task's
    /// cooperative budget; a `Pending` that may come from a used-up budget is retried
    /// outside it (a synchronous call has no task to yield).
    fn take(&self, cx: &mut Context<'_>) -> Option<KafkaResult<BorrowedMessage<'static>>> {
        if let Poll::Ready(r) = self.inner.poll_recv(cx) {
            return Some(r);
        }
        let again = std::pin::pin!(tokio::task::unconstrained(std::future::poll_fn(|cx| {
            self.inner.poll_recv(cx)
        })));
        match again.poll(cx) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        }
    }

    /// An endless iterator of `poll(Timeout::Never)`.
    pub fn iter(&self) -> Iter<'_, C> {
        Iter(self)
    }
}

/// Wakes a thread parked in [`BaseConsumer::poll`].
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Iterator over a [`BaseConsumer`]'s messages.
pub struct Iter<'a, C: ConsumerContext + 'static>(&'a BaseConsumer<C>);

impl<'a, C: ConsumerContext + 'static> Iterator for Iter<'a, C> {
    type Item = KafkaResult<BorrowedMessage<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.0.poll(Timeout::Never) {
                return Some(r);
            }
        }
    }
}

impl<'a, C: ConsumerContext + 'static> IntoIterator for &'a BaseConsumer<C> {
    type Item = KafkaResult<BorrowedMessage<'a>>;
    type IntoIter = Iter<'a, C>;

    fn into_iter(self) -> Iter<'a, C> {
        self.iter()
    }
}

impl<C: ConsumerContext + 'static> Consumer<C> for BaseConsumer<C> {
    fn client(&self) -> &Client<C> {
        &self.inner.client
    }

    fn inner(&self) -> &Arc<Inner<C>> {
        &self.inner
    }
}
