//! [`BaseConsumer`]: messages by `poll`.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

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
    pub fn poll<T: Into<Timeout>>(&self, timeout: T) -> Option<KafkaResult<BorrowedMessage<'_>>> {
        // What is buffered already is taken without leaving this thread.
        let mut cx = Context::from_waker(Waker::noop());
        if let Poll::Ready(r) = self.inner.poll_recv(&mut cx) {
            return Some(r);
        }
        let limit = timeout.into().duration();
        if limit.is_some_and(|d| d.is_zero()) {
            return None;
        }
        let inner = self.inner.clone();
        let wait = std::future::poll_fn(move |cx| inner.poll_recv(cx));
        rt::block(async move {
            match limit {
                Some(d) => tokio::time::timeout(d, wait).await.ok(),
                None => Some(wait.await),
            }
        })
    }

    /// An endless iterator of `poll(Timeout::Never)`.
    pub fn iter(&self) -> Iter<'_, C> {
        Iter(self)
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
