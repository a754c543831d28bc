//! Client events: what a client's background work runs into that no call returns — a
//! broker that cannot be reached or whose connection broke, every broker down, a broker
//! back. librdkafka hands these to its error callback (`ALL_BROKERS_DOWN`,
//! `BROKER_TRANSPORT_FAILURE`, ...); the Java client only logs them. Subscribe with
//! `subscribe_events()` on a [`Producer`](crate::Producer),
//! [`ConsumerHandle`](crate::consumer::ConsumerHandle) or
//! [`AdminClient`](crate::AdminClient); each subscriber gets every event from then on.
//!
//! Each broker endpoint (a bootstrap address, or a broker the metadata lists) is in one of
//! four states: not tried yet, up (connected), idle (its connection was closed cleanly:
//! `connections.max.idle.ms`, or by the client), or down (its last connection attempt failed,
//! or its connection broke). [`ClientEvent::BrokerDown`] comes when an endpoint goes down
//! (not again for every failed retry while it stays down), [`ClientEvent::BrokerUp`] when a
//! down endpoint connects again, and [`ClientEvent::AllBrokersDown`] when every endpoint
//! that was tried is down and none is up or idle: once per outage, again only after some
//! connection succeeded.
//!
//! Events are buffered per subscriber (64); a subscriber that falls further behind skips the
//! oldest. Nothing is buffered while nobody subscribes.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::broadcast;

use crate::error::Error;

/// How many events a subscriber may fall behind before it skips the oldest.
const BUFFER: usize = 64;

/// An event of a client's background work (see the [module docs](self)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A broker could not be reached (connection refused, TLS or SASL failure, set-up
    /// timeout), or its connection broke (closed by the broker, a read or write error).
    BrokerDown {
        /// `host:port`.
        broker: String,
        /// The broker's node id; `None` for a bootstrap address (an endpoint of its own,
        /// even when it is the same broker as a node's).
        node_id: Option<i32>,
        /// Why (an [`Error::Connection`], [`Error::Authentication`], [`Error::Tls`], ...).
        error: Error,
    },
    /// A broker that was down is connected again.
    BrokerUp {
        /// `host:port`.
        broker: String,
        /// The broker's node id; `None` for a bootstrap address.
        node_id: Option<i32>,
    },
    /// Every broker endpoint the client has tried is down, and none is connected.
    AllBrokersDown {
        /// How many endpoints are down.
        brokers: usize,
    },
}

/// A subscription to a client's [`ClientEvent`]s. It starts with the state at the time of
/// subscribing — a [`BrokerDown`](ClientEvent::BrokerDown) for each endpoint down then (with
/// its last error), and [`AllBrokersDown`](ClientEvent::AllBrokersDown) during an outage —
/// so that a subscriber made after the client (e.g. right after a lazy build whose first
/// attempt already failed) misses no outage; one of those may then come twice.
#[derive(Debug)]
pub struct ClientEvents {
    rx: broadcast::Receiver<ClientEvent>,
    /// The state at subscription, handed out first.
    first: std::collections::VecDeque<ClientEvent>,
}

impl ClientEvents {
    /// The next event; `None` once the client and all its connections are gone. Events this
    /// subscriber fell too far behind to keep are skipped.
    pub async fn recv(&mut self) -> Option<ClientEvent> {
        if let Some(e) = self.first.pop_front() {
            return Some(e);
        }
        loop {
            match self.rx.recv().await {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event already there, without waiting.
    pub fn try_recv(&mut self) -> Option<ClientEvent> {
        if let Some(e) = self.first.pop_front() {
            return Some(e);
        }
        loop {
            match self.rx.try_recv() {
                Ok(e) => return Some(e),
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    }
}

/// One client's event source (owned by its cluster handle): the endpoints' states and the
/// channel to the subscribers.
#[derive(Debug, Clone)]
pub(crate) struct EventHub {
    inner: Arc<HubInner>,
}

#[derive(Debug)]
struct HubInner {
    tx: broadcast::Sender<ClientEvent>,
    /// Every endpoint's state (an endpoint that is gone is pruned).
    endpoints: Mutex<Vec<Weak<EndpointWatch>>>,
    /// `AllBrokersDown` was sent, and no connection succeeded since.
    all_down: AtomicBool,
}

impl EventHub {
    pub(crate) fn new() -> EventHub {
        let (tx, _) = broadcast::channel(BUFFER);
        EventHub {
            inner: Arc::new(HubInner {
                tx,
                endpoints: Mutex::new(Vec::new()),
                all_down: AtomicBool::new(false),
            }),
        }
    }

    /// A new subscription, starting with the current state (see [`ClientEvents`]).
    pub(crate) fn subscribe(&self) -> ClientEvents {
        let rx = self.inner.tx.subscribe();
        let mut first = std::collections::VecDeque::new();
        let eps = self
            .inner
            .endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for e in eps.iter().filter_map(Weak::upgrade) {
            if e.state.load(Ordering::SeqCst) == DOWN {
                let error = e
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                if let Some(error) = error {
                    first.push_back(ClientEvent::BrokerDown {
                        broker: e.addr.clone(),
                        node_id: e.node_id,
                        error,
                    });
                }
            }
        }
        drop(eps);
        if self.inner.all_down.load(Ordering::SeqCst) && !first.is_empty() {
            first.push_back(ClientEvent::AllBrokersDown {
                brokers: first.len(),
            });
        }
        ClientEvents { rx, first }
    }

    /// The state of a new endpoint for `addr` (not tried yet), counted from now on;
    /// `node_id` `None` for a bootstrap address.
    pub(crate) fn watch(&self, addr: &str, node_id: Option<i32>) -> Arc<EndpointWatch> {
        let w = Arc::new(EndpointWatch {
            hub: self.inner.clone(),
            addr: addr.to_string(),
            node_id,
            state: AtomicU8::new(NOT_TRIED),
            last_error: Mutex::new(None),
        });
        let mut eps = self
            .inner
            .endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        eps.retain(|e| e.strong_count() > 0);
        eps.push(Arc::downgrade(&w));
        w
    }
}

const NOT_TRIED: u8 = 0;
const UP: u8 = 1;
const IDLE: u8 = 2;
const DOWN: u8 = 3;

/// One endpoint's state, told by its connection attempts and connections (see the
/// [module docs](self)).
#[derive(Debug)]
pub(crate) struct EndpointWatch {
    hub: Arc<HubInner>,
    addr: String,
    node_id: Option<i32>,
    state: AtomicU8,
    /// Why it last went down (for a later subscriber's first events).
    last_error: Mutex<Option<Error>>,
}

impl EndpointWatch {
    /// A connection was set up.
    pub(crate) fn up(&self) {
        let before = self.state.swap(UP, Ordering::SeqCst);
        self.hub.all_down.store(false, Ordering::SeqCst);
        if before == DOWN {
            tracing::info!(broker = %self.addr, "broker connected again");
            let _ = self.hub.tx.send(ClientEvent::BrokerUp {
                broker: self.addr.clone(),
                node_id: self.node_id,
            });
        }
    }

    /// The connection was closed cleanly (idle, or by the client).
    pub(crate) fn idle(&self) {
        let _ = self
            .state
            .compare_exchange(UP, IDLE, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// A connection attempt failed, or the connection broke.
    pub(crate) fn down(&self, error: &Error) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.clone());
        if self.state.swap(DOWN, Ordering::SeqCst) != DOWN {
            let _ = self.hub.tx.send(ClientEvent::BrokerDown {
                broker: self.addr.clone(),
                node_id: self.node_id,
                error: error.clone(),
            });
        }
        self.check_all_down();
    }

    /// Sends `AllBrokersDown` when every endpoint tried is down (once per outage).
    fn check_all_down(&self) {
        let down = {
            let eps = self.hub.endpoints.lock().unwrap_or_else(|p| p.into_inner());
            let mut down = 0;
            for e in eps.iter().filter_map(Weak::upgrade) {
                match e.state.load(Ordering::SeqCst) {
                    UP | IDLE => return,
                    DOWN => down += 1,
                    _ => {}
                }
            }
            down
        };
        if down > 0 && !self.hub.all_down.swap(true, Ordering::SeqCst) {
            tracing::warn!(brokers = down, "all brokers are down");
            let _ = self
                .hub
                .tx
                .send(ClientEvent::AllBrokersDown { brokers: down });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err() -> Error {
        Error::Connection {
            broker: "b".into(),
            reason: "refused".into(),
            in_flight: false,
        }
    }

    fn drain(rx: &mut ClientEvents) -> Vec<String> {
        std::iter::from_fn(|| rx.try_recv())
            .map(|e| match e {
                ClientEvent::BrokerDown { broker, .. } => format!("down {broker}"),
                ClientEvent::BrokerUp { broker, .. } => format!("up {broker}"),
                ClientEvent::AllBrokersDown { brokers } => format!("all {brokers}"),
            })
            .collect()
    }

    /// Down once per outage (not per failed retry); all down only when no endpoint tried is
    /// up or idle (one never tried does not count), once until a connection succeeds; up
    /// only after down; a gone endpoint no longer counts.
    #[test]
    fn endpoint_states_make_the_events() {
        let hub = EventHub::new();
        let mut rx = hub.subscribe();
        let a = hub.watch("a:1", None);
        let b = hub.watch("b:1", None);
        let _never_tried = hub.watch("c:1", None);
        a.up();
        b.down(&err());
        b.down(&err());
        assert_eq!(drain(&mut rx), ["down b:1"], "a is up");
        a.idle();
        b.down(&err());
        assert!(drain(&mut rx).is_empty(), "a is idle, not down");
        a.down(&err());
        assert_eq!(drain(&mut rx), ["down a:1", "all 2"]);
        a.down(&err());
        b.down(&err());
        assert!(drain(&mut rx).is_empty(), "once per outage");
        b.up();
        assert_eq!(drain(&mut rx), ["up b:1"]);
        b.idle();
        b.down(&err());
        assert_eq!(drain(&mut rx), ["down b:1", "all 2"], "a new outage");
        // `idle` only moves an endpoint that is up.
        a.idle();
        drop(b);
        a.down(&err());
        assert!(drain(&mut rx).is_empty());
        let d = hub.watch("d:1", None);
        d.up();
        d.down(&err());
        assert_eq!(drain(&mut rx), ["down d:1", "all 2"], "b is gone: a and d");
    }

    /// A subscriber made during an outage first gets its state: each endpoint down, then
    /// all down; after recovery a new subscriber gets nothing until the next change.
    #[test]
    fn a_late_subscriber_starts_with_the_outage() {
        let hub = EventHub::new();
        let a = hub.watch("a:1", None);
        let b = hub.watch("b:1", None);
        a.down(&err());
        b.down(&err());
        let mut late = hub.subscribe();
        assert_eq!(drain(&mut late), ["down a:1", "down b:1", "all 2"]);
        a.up();
        assert_eq!(drain(&mut late), ["up a:1"]);
        let mut later = hub.subscribe();
        assert_eq!(drain(&mut later), ["down b:1"], "b is still down");
        assert!(drain(&mut late).is_empty());
    }

    /// The subscription ends once every sender is gone.
    #[tokio::test]
    async fn subscription_ends_with_the_client() {
        let hub = EventHub::new();
        let mut rx = hub.subscribe();
        let w = hub.watch("a:1", None);
        w.down(&err());
        drop((hub, w));
        assert!(matches!(
            rx.recv().await,
            Some(ClientEvent::BrokerDown { .. })
        ));
        assert!(matches!(
            rx.recv().await,
            Some(ClientEvent::AllBrokersDown { brokers: 1 })
        ));
        assert!(rx.recv().await.is_none());
    }
}
