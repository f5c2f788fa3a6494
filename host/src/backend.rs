//! Redis connections: one command pool shared by presence and plugin kv, and the
//! subscriber the cluster adapter uses. Both fail fast (a bounded command timeout) while
//! Redis is away and reconnect on their own when it returns. A `redis-cluster://` URL
//! makes both cluster clients (commands routed by hash slot, sharded pub/sub), following
//! slot moves and failovers on their own.

use std::time::Duration;

use anyhow::Context;
use fred::clients::{Pool, SubscriberClient};
use fred::prelude::*;
use fred::types::RespVersion;

/// The Redis side of a node.
#[derive(Clone)]
pub struct RedisBackend {
    pub pool: Pool,
    /// A Redis Cluster: every atomic step must then stay within one hash slot.
    pub cluster: bool,
    builder: Builder,
}

impl RedisBackend {
    /// Connects the command pool. Fails when Redis cannot be reached at start, so a
    /// misconfigured `REDIS_URL` stops the process instead of serving `unavailable`.
    /// `nodelay`: fred pipelines commands, and with Nagle a command written while an
    /// earlier one is unacknowledged waits for Redis's delayed ACK.
    pub async fn connect(
        url: &str,
        timeout: Duration,
        pool_size: usize,
        nodelay: bool,
    ) -> anyhow::Result<Self> {
        let mut config = Config::from_url(url).context("parsing REDIS_URL")?;
        // socketioxide-redis needs RESP3 and fred ignores the URL's protocol parameter.
        config.version = RespVersion::RESP3;
        let cluster = config.server.is_clustered();
        let mut builder = Builder::from_config(config);
        builder
            .with_connection_config(|c| {
                c.connection_timeout = timeout;
                c.internal_command_timeout = timeout;
                c.max_command_attempts = 2;
                c.tcp.nodelay = Some(nodelay);
            })
            .with_performance_config(|p| {
                p.default_command_timeout = timeout;
                // The default 32 drops pub/sub messages under load.
                p.broadcast_channel_capacity = 16_384;
            })
            .set_policy(ReconnectPolicy::new_constant(0, 250));
        let pool = builder
            .build_pool(pool_size)
            .context("building the Redis pool")?;
        pool.init()
            .await
            .with_context(|| format!("connecting to Redis at {url}"))?;
        Ok(Self {
            pool,
            cluster,
            builder,
        })
    }

    /// A fresh subscriber client (not yet connected: the adapter's driver connects it).
    pub fn subscriber(&self) -> anyhow::Result<SubscriberClient> {
        self.builder
            .build_subscriber_client()
            .context("building the Redis subscriber")
    }

    /// True when Redis answers a PING within the command timeout.
    pub async fn ping(&self) -> bool {
        self.pool.next().ping::<String>(None).await.is_ok()
    }
}
