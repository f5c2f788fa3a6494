//! The adapter's pub/sub driver: shard channels over fred's subscriber (`SSUBSCRIBE`,
//! `SPUBLISH`, so each channel lives on one shard of a Redis Cluster), one dispatcher
//! task that routes every message to its channel's bounded queue, and the set of
//! subscribed channels that resubscription replays.
//!
//! socketioxide-redis's own fred driver drops a message whose channel queue is full, and
//! skips what fred's broadcast lagged past, with nothing but a warning. A burst of
//! cross-node emits that outruns the adapter must not vanish unseen: here every message
//! is counted by its fate (`rtm_adapter_messages_total{outcome}`), the warning is rate
//! limited so a burst cannot flood the log, and nothing on this path can panic.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::Message;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use socketioxide_redis::drivers::fred::FredError;
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::{broadcast, mpsc};

use crate::metrics::OutcomeLabel;

type Routes = HashMap<String, mpsc::Sender<ChanItem>>;

/// What became of one message the subscriber received.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Outcome {
    /// Put on its channel's queue for the adapter.
    Queued,
    /// Its channel's queue was full (the adapter is that far behind): dropped.
    Full,
    /// fred's broadcast to the dispatcher overflowed before the dispatcher read it.
    Lagged,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Queued => "queued",
            Outcome::Full => "dropped_full",
            Outcome::Lagged => "dropped_lagged",
        }
    }
}

/// Per-node counters of the adapter's incoming messages.
#[derive(Clone, Default)]
pub struct AdapterMetrics {
    messages: Family<OutcomeLabel, Counter>,
}

impl AdapterMetrics {
    fn add(&self, outcome: Outcome, n: u64) {
        self.messages
            .get_or_create(&OutcomeLabel {
                outcome: outcome.label(),
            })
            .inc_by(n);
    }

    /// How many messages met `outcome` so far.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.messages
            .get_or_create(&OutcomeLabel {
                outcome: outcome.label(),
            })
            .get()
    }

    /// The counters in text exposition format (no `# EOF`), for `/metrics`.
    pub fn render(&self, out: &mut String) {
        let mut registry = Registry::with_prefix("rtm");
        registry.register(
            "adapter_messages",
            "Cross-node messages this node received, by outcome: queued for the adapter, dropped_full (the channel's queue, ADAPTER_STREAM_BUFFER, was full), dropped_lagged (the subscriber's broadcast overflowed)",
            self.messages.clone(),
        );
        crate::metrics::append_registry(&registry, out);
    }
}

/// The driver socketioxide-redis's adapter talks to.
#[derive(Clone)]
pub struct ShardDriver {
    conn: SubscriberClient,
    routes: Arc<RwLock<Routes>>,
}

impl ShardDriver {
    /// Starts the dispatcher on `conn`'s messages and connects `conn`.
    pub async fn start(conn: SubscriberClient, metrics: AdapterMetrics) -> Result<Self, FredError> {
        let routes = Arc::new(RwLock::new(Routes::new()));
        tokio::spawn(dispatch(conn.message_rx(), routes.clone(), metrics));
        conn.init().await?;
        Ok(Self { conn, routes })
    }

    /// Every channel the adapter is subscribed to.
    pub fn channels(&self) -> Vec<String> {
        read(&self.routes).keys().cloned().collect()
    }
}

impl Driver for ShardDriver {
    type Error = FredError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        self.conn.spublish::<u16, _, _>(chan, val).await?;
        Ok(())
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size.max(1));
        // Routed before subscribing, so nothing published right after the SSUBSCRIBE
        // answer is dropped for want of a route.
        write(&self.routes).insert(chan.clone(), tx);
        if let Err(e) = self.conn.ssubscribe(chan.as_str()).await {
            write(&self.routes).remove(&chan);
            return Err(e.into());
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        write(&self.routes).remove(&chan);
        self.conn.sunsubscribe(chan).await?;
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let (_, num): (String, u16) = self.conn.pubsub_shardnumsub(chan).await?;
        Ok(num)
    }
}

/// A poisoned lock only means a panic elsewhere mid-insert; the map is still whole.
fn read(routes: &RwLock<Routes>) -> std::sync::RwLockReadGuard<'_, Routes> {
    routes.read().unwrap_or_else(|p| p.into_inner())
}

fn write(routes: &RwLock<Routes>) -> std::sync::RwLockWriteGuard<'_, Routes> {
    routes.write().unwrap_or_else(|p| p.into_inner())
}

/// At most one drop warning per this long: a burst is counted in full, logged once.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// Routes each message to its channel's queue without waiting: one slow channel must
/// not hold up the others (the adapter's response channel answers a request of another).
async fn dispatch(
    mut rx: broadcast::Receiver<Message>,
    routes: Arc<RwLock<Routes>>,
    metrics: AdapterMetrics,
) {
    let mut warned: Option<Instant> = None;
    loop {
        let dropped = match rx.recv().await {
            Ok(msg) => route(msg, &routes, &metrics),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                metrics.add(Outcome::Lagged, n);
                Some(("(subscriber broadcast)".to_owned(), Outcome::Lagged))
            }
            // fred keeps the sender for the client's lifetime: closed means it is gone.
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if let Some((chan, outcome)) = dropped
            && warned.is_none_or(|at| at.elapsed() >= WARN_EVERY)
        {
            warned = Some(Instant::now());
            tracing::warn!(
                chan,
                full = metrics.count(Outcome::Full),
                lagged = metrics.count(Outcome::Lagged),
                ?outcome,
                "cross-node messages dropped: the adapter is behind (totals so far; see rtm_adapter_messages_total)"
            );
        }
    }
}

/// Queues one message; returns its channel when it had to be dropped.
fn route(
    msg: Message,
    routes: &RwLock<Routes>,
    metrics: &AdapterMetrics,
) -> Option<(String, Outcome)> {
    let chan = msg.channel.to_string();
    let data = msg.value.into_owned_bytes()?;
    let tx = read(routes).get(&chan).cloned();
    let Some(tx) = tx else {
        // Unsubscribed a moment ago: nobody on this node wants it.
        tracing::debug!(chan, "message for a channel without a route");
        return None;
    };
    match tx.try_send((chan, data)) {
        Ok(()) => {
            metrics.add(Outcome::Queued, 1);
            None
        }
        Err(mpsc::error::TrySendError::Full((chan, _))) => {
            metrics.add(Outcome::Full, 1);
            Some((chan, Outcome::Full))
        }
        Err(mpsc::error::TrySendError::Closed((chan, _))) => {
            // The adapter dropped its stream without unsubscribing: forget the route.
            write(routes).remove(&chan);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fred::prelude::Server;
    use fred::types::{MessageKind, Value};

    fn message(chan: &str, value: &'static [u8]) -> Message {
        Message {
            channel: chan.into(),
            kind: MessageKind::SMessage,
            value: Value::from_static(value),
            server: Server::new("127.0.0.1", 0),
        }
    }

    fn routes(pairs: Vec<(&str, mpsc::Sender<ChanItem>)>) -> Arc<RwLock<Routes>> {
        Arc::new(RwLock::new(
            pairs.into_iter().map(|(c, t)| (c.to_owned(), t)).collect(),
        ))
    }

    #[tokio::test]
    async fn a_full_channel_counts_its_drops_and_others_still_flow() {
        let (slow_tx, mut slow_rx) = mpsc::channel(2);
        let (other_tx, mut other_rx) = mpsc::channel(8);
        let routes = routes(vec![("slow", slow_tx), ("other", other_tx)]);
        let (tx, rx) = broadcast::channel(64);
        let metrics = AdapterMetrics::default();
        let task = tokio::spawn(dispatch(rx, routes, metrics.clone()));
        for _ in 0..5 {
            tx.send(message("slow", b"s")).expect("receiver alive");
        }
        tx.send(message("other", b"o")).expect("receiver alive");
        let (chan, data) = other_rx.recv().await.expect("other gets its message");
        assert_eq!((chan.as_str(), data.as_slice()), ("other", &b"o"[..]));
        assert_eq!(metrics.count(Outcome::Queued), 3);
        assert_eq!(metrics.count(Outcome::Full), 3);
        assert!(slow_rx.try_recv().is_ok() && slow_rx.try_recv().is_ok());
        assert!(slow_rx.try_recv().is_err(), "only two fit");
        assert!(!task.is_finished());
    }

    #[tokio::test]
    async fn a_lagged_broadcast_is_counted_and_a_closed_route_forgotten() {
        let (closed_tx, closed_rx) = mpsc::channel(1);
        drop(closed_rx);
        let (live_tx, mut live_rx) = mpsc::channel(8);
        let routes = routes(vec![("closed", closed_tx), ("live", live_tx)]);
        let (tx, rx) = broadcast::channel(2);
        for _ in 0..5 {
            tx.send(message("live", b"x")).expect("receiver alive");
        }
        let metrics = AdapterMetrics::default();
        tokio::spawn(dispatch(rx, routes.clone(), metrics.clone()));
        for _ in 0..2 {
            live_rx.recv().await.expect("the two the broadcast kept");
        }
        assert_eq!(metrics.count(Outcome::Lagged), 3, "5 sent into 2 slots");
        tx.send(message("closed", b"c")).expect("receiver alive");
        while read(&routes).contains_key("closed") {
            tokio::task::yield_now().await;
        }
        let mut text = String::new();
        metrics.render(&mut text);
        assert!(
            text.contains("rtm_adapter_messages_total{outcome=\"dropped_lagged\"} 3"),
            "{text}"
        );
    }
}
