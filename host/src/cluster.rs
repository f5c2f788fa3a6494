//! Multi-node Socket.IO: the socketioxide-redis adapter over fred, so `io.to(room).emit`
//! reaches sockets on every node.
//!
//! fred's subscriber does not resubscribe after Redis restarts, and the stock driver
//! subscribes through a *clone* of the client, whose channel tracking the original never
//! sees. [`TrackingDriver`] records every channel itself and resubscribes all of them on
//! each reconnect, so cross-node delivery comes back without restarting the host.

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
        .with_request_timeout(request_timeout);
    Ok(RedisAdapterCtr::new_with_driver(driver, config))
}

/// On every reconnect of the subscriber, subscribe again to every tracked channel.
async fn resubscribe(sub: SubscriberClient, channels: Arc<Mutex<BTreeSet<String>>>) {
    let mut reconnects = sub.reconnect_rx();
    loop {
        match reconnects.recv().await {
            Ok(server) => {
                let chans: Vec<String> = channels
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .cloned()
                    .collect();
                if chans.is_empty() {
                    continue;
                }
                match sub.ssubscribe(chans.clone()).await {
                    Ok(()) => {
                        tracing::info!(%server, channels = chans.len(), "resubscribed after Redis reconnect")
                    }
                    Err(e) => {
                        tracing::error!(%server, error = %e, "resubscribe after Redis reconnect failed; cross-node emits are lost until the next reconnect")
                    }
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
