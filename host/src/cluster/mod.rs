//! Multi-node Socket.IO: the socketioxide-redis adapter over fred, so `io.to(room).emit`
//! reaches sockets on every node.
//!
//! fred's subscriber does not resubscribe after Redis restarts, so [`resubscribe`]
//! subscribes every channel the [`ShardDriver`] routes again on each reconnect (and, on
//! a Redis Cluster, every two seconds, since a failover can drop a shard channel's
//! subscription without one), so cross-node delivery comes back without restarting the
//! host.
//!
//! On a single Redis a reconnect is also a gap: what other nodes published while this
//! node's subscriber was away never reaches its sockets, and pub/sub keeps nothing to
//! replay. Under [`GapPolicy::Notify`] the node then tells its own sockets, once it is
//! subscribed again, with the event `rtm:gap` `{ ts }`, so a client knows to refetch
//! what it keeps (a snapshot, chat history) instead of trusting a stream with a silent
//! hole in it.

mod driver;

use fred::clients::SubscriberClient;
use fred::prelude::*;
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::sync::watch;

use crate::backend::RedisBackend;
pub use driver::{AdapterMetrics, Outcome, ShardDriver};

/// What a node does after its subscriber reconnected (`ADAPTER_GAP_POLICY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GapPolicy {
    /// Emit `rtm:gap` `{ ts }` to this node's sockets once subscribed again: they stay
    /// connected and know that emits from other nodes before `ts` may be missing.
    Notify,
    /// Nothing: emits published during the gap are lost to them, unannounced.
    Keep,
}

/// The event [`GapPolicy::Notify`] sends.
pub const GAP_EVENT: &str = "rtm:gap";

/// How many times the subscriber came back after a reconnect (each one a possible gap).
pub type Gaps = watch::Receiver<u64>;

/// The adapter type of a Redis-backed node.
pub type ClusterAdapter<E> = CustomRedisAdapter<E, ShardDriver>;

/// Builds the adapter constructor and starts the resubscribe task. `stream_buffer` is
/// how many messages one channel may hold unread (`ADAPTER_STREAM_BUFFER`); what
/// arrives beyond it is dropped and counted in `metrics`.
pub async fn adapter(
    redis: &RedisBackend,
    prefix: &str,
    request_timeout: std::time::Duration,
    stream_buffer: usize,
    metrics: AdapterMetrics,
) -> anyhow::Result<(RedisAdapterCtr<ShardDriver>, Gaps)> {
    let sub = redis.subscriber()?;
    let driver = ShardDriver::start(sub.clone(), metrics).await?;
    let (gaps, gaps_rx) = watch::channel(0);
    tokio::spawn(resubscribe(sub, driver.clone(), gaps));
    let config = RedisAdapterConfig::new()
        .with_prefix(format!("{prefix}sio"))
        .with_stream_buffer(stream_buffer)
        .with_request_timeout(request_timeout);
    Ok((RedisAdapterCtr::new_with_driver(driver, config), gaps_rx))
}

/// After each gap, does what `policy` says to this node's sockets in every namespace.
/// (Closing them instead would not do: socket.io-client does not reconnect by itself
/// after a server disconnect, and every room would see its members leave and join.)
pub async fn on_gaps<A: Adapter>(io: SocketIo<A>, mut gaps: Gaps, policy: GapPolicy) {
    while gaps.changed().await.is_ok() {
        let namespaces = io.nsps();
        tracing::warn!(
            ?policy,
            namespaces = namespaces.len(),
            "the adapter's subscriber reconnected: emits other nodes published meanwhile never reached this node's sockets"
        );
        match policy {
            GapPolicy::Keep => {}
            GapPolicy::Notify => {
                let notice = serde_json::json!({ "ts": crate::presence::clock::now_ms() });
                for nsp in namespaces {
                    if let Err(e) = nsp.local().emit(GAP_EVENT, &notice).await {
                        tracing::warn!(error = %e, "telling sockets about an adapter gap failed");
                    }
                }
            }
        }
    }
}

/// How often, on a Redis Cluster, every tracked channel is subscribed again. A failover
/// that moves a channel's slot to a promoted replica drops the subscription on the old
/// master without a reconnect (the demoted node's `sunsubscribe` is all the client gets),
/// so subscribing again, idempotent where nothing moved, is what brings it back.
const CLUSTER_RESUBSCRIBE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// On every reconnect of the subscriber (and, on a cluster, every
/// [`CLUSTER_RESUBSCRIBE_EVERY`]), subscribe again to every tracked channel.
/// A reconnect that resubscribed everything is announced on `gaps`.
async fn resubscribe(sub: SubscriberClient, driver: ShardDriver, gaps: watch::Sender<u64>) {
    let mut reconnects = sub.reconnect_rx();
    let mut tick = tokio::time::interval(CLUSTER_RESUBSCRIBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let cluster = sub.is_clustered();
    loop {
        let server = tokio::select! {
            got = reconnects.recv() => match got {
                Ok(server) => Some(server),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick(), if cluster => None,
        };
        let chans = driver.channels();
        let failed = subscribe_each(&sub, &chans).await;
        match (&server, failed) {
            (Some(server), 0) => {
                tracing::info!(%server, channels = chans.len(), "resubscribed after Redis reconnect");
                // On one Redis the subscriber's reconnect is the gap. On a cluster a
                // reconnect may be to a shard none of our channels lives on, and a
                // failover moves a channel without one: not announced (README).
                if !cluster {
                    gaps.send_modify(|n| *n += 1);
                }
            }
            (_, 0) => {}
            (server, failed) => {
                tracing::error!(server = ?server, failed, "resubscribing the adapter's channels failed; cross-node emits on them are lost until the next attempt")
            }
        }
    }
}

/// `SSUBSCRIBE`s each channel on its own (channels of one call must share a slot on a
/// cluster); returns how many failed.
async fn subscribe_each(sub: &SubscriberClient, chans: &[String]) -> usize {
    let mut failed = 0;
    for chan in chans {
        if let Err(e) = sub.ssubscribe(chan.clone()).await {
            tracing::debug!(chan, error = %e, "ssubscribe failed");
            failed += 1;
        }
    }
    failed
}
