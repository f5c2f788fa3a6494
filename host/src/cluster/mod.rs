//! Multi-node Socket.IO: the socketioxide-redis adapter over fred, so `io.to(room).emit`
//! reaches sockets on every node.
//!
//! fred's subscriber does not resubscribe after Redis restarts, so [`resubscribe`]
//! subscribes every channel the [`ShardDriver`] routes again on each reconnect (and, on
//! a Redis Cluster, every two seconds, since a failover can drop a shard channel's
//! subscription without one), so cross-node delivery comes back without restarting the
//! host.
//!
//! A reconnect is also a gap: what other nodes published while this node's subscriber
//! was away never reaches its sockets, and pub/sub keeps nothing to replay. Under
//! [`GapPolicy::Disconnect`] the node then closes its own sockets once it is subscribed
//! again, so each client reconnects (and `resume`s) knowing it may have missed emits,
//! instead of staying connected to a stream with a silent hole in it.

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
    /// Close this node's sockets once subscribed again: clients reconnect and resume, and
    /// none stays connected past emits it never received.
    Disconnect,
    /// Keep the sockets: emits published during the gap are lost to them, unannounced.
    Keep,
}

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

/// Under [`GapPolicy::Disconnect`], closes this node's sockets in every namespace after
/// each gap (their disconnect handlers run as on any disconnect: with a resume grace
/// the registrations wait for the clients to come back).
pub async fn close_on_gaps<A: Adapter>(io: SocketIo<A>, mut gaps: Gaps, policy: GapPolicy) {
    while gaps.changed().await.is_ok() {
        if policy == GapPolicy::Keep {
            tracing::warn!(
                "the adapter's subscriber reconnected: emits published meanwhile are lost to this node's sockets (ADAPTER_GAP_POLICY=keep)"
            );
            continue;
        }
        let namespaces = io.nsps();
        tracing::warn!(
            namespaces = namespaces.len(),
            "the adapter's subscriber reconnected: closing this node's sockets so their clients reconnect past the gap"
        );
        for nsp in namespaces {
            if let Err(e) = nsp.local().disconnect().await {
                tracing::error!(error = %e, "closing sockets after an adapter gap failed");
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
                gaps.send_modify(|n| *n += 1);
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
