//! Utilities: [`Timeout`], the version functions, [`IntoOpaque`], the async runtime marker.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A timeout for a blocking or queueing operation: a duration, or no limit.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timeout {
    /// Give up after this long.
    After(Duration),
    /// Wait as long as it takes.
    Never,
}

impl Timeout {
    /// The timeout in milliseconds as librdkafka takes it (`-1` = never).
    pub fn as_millis(&self) -> i32 {
        match self {
            Timeout::After(d) => d.as_millis().min(i32::MAX as u128) as i32,
            Timeout::Never => -1,
        }
    }

    /// The duration, `None` for [`Timeout::Never`].
    pub(crate) fn duration(self) -> Option<Duration> {
        match self {
            Timeout::After(d) => Some(d),
            Timeout::Never => None,
        }
    }

    /// The duration, or `fallback` for [`Timeout::Never`] (for calls that need a bound).
    pub(crate) fn or(self, fallback: Duration) -> Duration {
        self.duration().unwrap_or(fallback)
    }
}

impl From<Duration> for Timeout {
    fn from(d: Duration) -> Timeout {
        Timeout::After(d)
    }
}

impl From<Option<Duration>> for Timeout {
    fn from(d: Option<Duration>) -> Timeout {
        d.map_or(Timeout::Never, Timeout::After)
    }
}

/// The version this crate reports in place of librdkafka's: `(hex, "kafka-sdk-rdkafka x.y.z")`.
/// The number is librdkafka 2.12.1's, the API level this crate mirrors.
pub fn get_rdkafka_version() -> (i32, String) {
    (
        0x020c_01ff,
        format!("kafka-sdk-rdkafka {}", env!("CARGO_PKG_VERSION")),
    )
}

/// Milliseconds since the Unix epoch for `time`.
pub fn millis_to_epoch(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Milliseconds since the Unix epoch, now.
pub fn current_time_millis() -> i64 {
    millis_to_epoch(SystemTime::now())
}

/// A value that travels with a produced record to its delivery callback
/// ([`ProducerContext::delivery`](crate::producer::ProducerContext::delivery)). Implemented
/// for `()`, `usize`, `Box<T>` and `Arc<T>`; no pointer juggling is involved here, the value
/// is simply moved along.
pub trait IntoOpaque: Send + Sync + Sized + 'static {}

impl IntoOpaque for () {}
impl IntoOpaque for usize {}
impl<T: Send + Sync + 'static> IntoOpaque for Box<T> {}
impl<T: Send + Sync + 'static> IntoOpaque for std::sync::Arc<T> {}

/// An async runtime the clients may use for delays. The facade always runs its work on its
/// own tokio runtime; the type parameter is kept so that signatures match.
pub trait AsyncRuntime: Send + Sync + 'static {
    /// The future returned by [`AsyncRuntime::delay_for`].
    type Delay: Future<Output = ()> + Send;

    /// Spawns `task`.
    fn spawn<T>(task: T)
    where
        T: Future<Output = ()> + Send + 'static;

    /// A future that completes after `duration`.
    fn delay_for(duration: Duration) -> Self::Delay;
}

/// The default runtime: the facade's own tokio runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

/// The default [`AsyncRuntime`].
pub type DefaultRuntime = TokioRuntime;

impl AsyncRuntime for TokioRuntime {
    type Delay = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

    fn spawn<T>(task: T)
    where
        T: Future<Output = ()> + Send + 'static,
    {
        drop(crate::rt::handle().spawn(task));
    }

    fn delay_for(duration: Duration) -> Self::Delay {
        Box::pin(crate::rt::run_async(tokio::time::sleep(duration)))
    }
}
