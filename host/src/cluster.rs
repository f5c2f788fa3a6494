//! Multi-node Socket.IO: the socketioxide-redis adapter over fred, so `io.to(room).emit`
//! reaches sockets on every node.
//!
//! fred's subscriber does not resubscribe after Redis restarts, and the stock driver
//! subscribes through a *clone* of the client, whose channel tracking the original never
//! sees. [`TrackingDriver`] records every channel itself and resubscribes all of them on
//! each reconnect (and, on a Redis Cluster, every two seconds, since a failover can drop
//! a shard channel's subscription without one), so cross-node delivery comes back
//! without restarting the host.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use fred::clients::SubscriberClient;
use fred::prelude::*;
use socketioxide_redis::drivers::fred::{FredDriver, FredError};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

use crate::backend::RedisBackend;

/// The adapter type of a Redis-backed node.
pub type ClusterAdapter<E> = CustomRedisAdapter<E, TrackingDriver>;

/// [`FredDriver`] plus the set of shard channels it is subscribed to.
#[derive(Clone)]
pub struct TrackingDriver {
    inner: FredDriver,
    channels: Arc<Mutex<BTreeSet<String>>>,
}

impl TrackingDriver {
    fn channels(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Driver for TrackingDriver {
    type Error = FredError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        self.inner.publish(chan, val).await
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let stream = self.inner.subscribe(chan.clone(), size).await?;
        self.channels().insert(chan);
        Ok(stream)
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.channels().remove(&chan);
        self.inner.unsubscribe(chan).await
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        self.inner.num_serv(chan).await
    }
}

/// Messages a subscribed channel may hold before the adapter reads them. The driver
/// drops (with a warning) what does not fit rather than blocking every other channel;
/// socketioxide-redis's default of 1024 is a burst of one busy room, so this matches the
/// subscriber's own broadcast capacity (`backend.rs`) instead.
const STREAM_BUFFER: usize = 16_384;

/// Builds the adapter constructor and starts the resubscribe task.
pub async fn adapter(
    redis: &RedisBackend,
    prefix: &str,
    request_timeout: std::time::Duration,
) -> anyhow::Result<RedisAdapterCtr<TrackingDriver>> {
    let sub = redis.subscriber()?;
    let inner = FredDriver::new(sub.clone()).await?;
    let driver = TrackingDriver {
        inner,
        channels: Arc::new(Mutex::new(BTreeSet::new())),
    };
    tokio::spawn(resubscribe(sub, driver.channels.clone()));
    let config = RedisAdapterConfig::new()
        .with_prefix(format!("{prefix}sio"))
        .with_stream_buffer(STREAM_BUFFER)
        .with_request_timeout(request_timeout);
    Ok(RedisAdapterCtr::new_with_driver(driver, config))
}

/// How often, on a Redis Cluster, every tracked channel is subscribed again. A failover
/// that moves a channel's slot to a promoted replica drops the subscription on the old
/// master without a reconnect (the demoted node's `sunsubscribe` is all the client gets),
/// so subscribing again, idempotent where nothing moved, is what brings it back.
const CLUSTER_RESUBSCRIBE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// On every reconnect of the subscriber (and, on a cluster, every
/// [`CLUSTER_RESUBSCRIBE_EVERY`]), subscribe again to every tracked channel.
async fn resubscribe(sub: SubscriberClient, channels: Arc<Mutex<BTreeSet<String>>>) {
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
        let chans: Vec<String> = channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        let failed = subscribe_each(&sub, &chans).await;
        match (&server, failed) {
            (Some(server), 0) if !chans.is_empty() => {
                tracing::info!(%server, channels = chans.len(), "resubscribed after Redis reconnect")
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
