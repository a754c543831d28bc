//! [`StreamConsumer`]: messages by `recv().await` or as a `Stream`.

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;

use super::{BaseConsumer, Consumer, ConsumerContext, DefaultConsumerContext, Inner};
use crate::client::Client;
use crate::config::{ClientConfig, FromClientConfig, FromClientConfigAndContext};
use crate::error::{KafkaError, KafkaResult};
use crate::message::BorrowedMessage;
use crate::util::{AsyncRuntime, DefaultRuntime};

/// A consumer with an async `recv` and a `Stream`. `recv` works in any executor and is
/// cancel-safe (dropping it loses no message).
pub struct StreamConsumer<C = DefaultConsumerContext, R = DefaultRuntime>
where
    C: ConsumerContext + 'static,
{
    base: BaseConsumer<C>,
    _runtime: PhantomData<fn() -> R>,
}

impl<R: AsyncRuntime> FromClientConfig for StreamConsumer<DefaultConsumerContext, R> {
    fn from_config(config: &ClientConfig) -> KafkaResult<Self> {
        StreamConsumer::from_config_and_context(config, DefaultConsumerContext)
    }
}

impl<C, R> FromClientConfigAndContext<C> for StreamConsumer<C, R>
where
    C: ConsumerContext + 'static,
    R: AsyncRuntime,
{
    fn from_config_and_context(config: &ClientConfig, context: C) -> KafkaResult<Self> {
        Ok(StreamConsumer {
            base: BaseConsumer::from_config_and_context(config, context)?,
            _runtime: PhantomData,
        })
    }
}

impl<C, R> StreamConsumer<C, R>
where
    C: ConsumerContext + 'static,
{
    /// The messages as a stream (it never ends by itself).
    pub fn stream(&self) -> MessageStream<'_, C> {
        MessageStream {
            inner: &self.base.inner,
        }
    }

    /// The next message.
    pub async fn recv(&self) -> Result<BorrowedMessage<'_>, KafkaError> {
        let inner = &self.base.inner;
        std::future::poll_fn(|cx| inner.poll_recv(cx)).await
    }
}

impl<C, R> Consumer<C> for StreamConsumer<C, R>
where
    C: ConsumerContext + 'static,
{
    fn client(&self) -> &Client<C> {
        self.base.client()
    }

    fn inner(&self) -> &Arc<Inner<C>> {
        &self.base.inner
    }
}

/// The stream of a [`StreamConsumer`].
pub struct MessageStream<'a, C: ConsumerContext + 'static> {
    inner: &'a Arc<Inner<C>>,
}

impl<'a, C: ConsumerContext + 'static> Stream for MessageStream<'a, C> {
    type Item = KafkaResult<BorrowedMessage<'a>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_recv(cx).map(Some)
    }
}
