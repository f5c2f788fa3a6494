//! A node: builds the store backend, the Socket.IO layer (local or Redis adapter), the
//! tenants and the HTTP routes from a [`Config`], serves them, and drains on
//! SIGTERM/SIGINT.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use socketioxide::{SocketIo, adapter::Adapter};
use tokio::net::TcpListener;
use tower_http::cors::CorsLayer;

use crate::app::SocketMount;
use crate::backend::RedisBackend;
use crate::cluster::{self, AdapterMetrics, ClusterAdapter};
use crate::config::Config;
use crate::connections::{self, ConnLimits, ConnMetrics};
use crate::http::{self, HttpState};
use crate::plugins::SharedEngine;
use crate::presence::batch::{BatchConfig, SharedBatching};
use crate::presence::ids;
use crate::presence::redis::Touches;
use crate::presence::request::Limits;
use crate::request_head;
use crate::tenancy::secret::Secret;
use crate::tenancy::{BaseSettings, NodeParts, StoreKind, Tenants};

type CloseFn = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A built node, ready to serve.
pub struct Node {
    pub router: Router,
    pub tenants: Arc<Tenants>,
    pub node_id: String,
    /// The counters [`serve`] keeps and `/metrics` renders.
    pub connections: ConnMetrics,
    close_sockets: CloseFn,
}

impl Node {
    /// Graceful stop: remove this node's registrations (announcing `leave`), then close
    /// every socket.
    pub async fn drain(self) {
        self.tenants.shutdown().await;
        (self.close_sockets)().await;
    }
}

/// Why a node could not be built. A tenants file that does not load is the operator's
/// to fix (exit 2, like any bad setting); the rest are runtime failures.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Tenants(#[from] crate::tenancy::file::FileError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Builds a node from its configuration (connects to Redis when configured).
pub async fn build(cfg: &Config) -> Result<Node, BuildError> {
    let node_id = cfg
        .node_id
        .clone()
        .unwrap_or_else(|| format!("node-{}", &ids::new_conn_id()[..12]));
    let builder = SocketIo::builder()
        .ping_interval(Duration::from_millis(cfg.socketio_ping_interval_ms))
        .ping_timeout(Duration::from_millis(cfg.socketio_ping_timeout_ms))
        .max_payload(cfg.socketio_max_payload_bytes)
        .ws_read_buffer_size(usize::try_from(cfg.socketio_ws_read_buffer_bytes).unwrap_or(1024))
        .max_buffer_size(usize::try_from(cfg.socketio_max_buffer_packets).unwrap_or(1024));
    match &cfg.redis() {
        None => {
            tracing::info!(node = %node_id, "presence store: memory (single node)");
            let (layer, io) = builder.build_layer();
            let mount = SocketMount {
                io: io.clone(),
                max_queued_events: usize::try_from(cfg.socketio_max_queued_events)
                    .unwrap_or(crate::serial::DEFAULT_MAX_QUEUED),
                init: |()| Box::pin(async { Ok(()) }),
            };
            let parts = node_parts(cfg, &node_id, StoreKind::Memory)?;
            let tenants = start_tenants(cfg, parts, Arc::new(mount)).await?;
            Ok(assemble(cfg, &io, layer, tenants, None, node_id))
        }
        Some(url) => {
            let timeout = Duration::from_millis(cfg.redis_timeout_ms);
            let pool_size = usize::try_from(cfg.redis_pool_size).unwrap_or(4);
            let redis = RedisBackend::connect(url, timeout, pool_size, cfg.tcp_nodelay).await?;
            tracing::info!(node = %node_id, cluster = redis.cluster, "presence store: redis (multi node)");
            let batching = BatchConfig {
                lanes: pool_size,
                window: Duration::from_micros(cfg.presence_batch_window_us),
            };
            let adapter_metrics = AdapterMetrics::default();
            let (adapter, gaps) = cluster::adapter(
                &redis,
                &cfg.presence_prefix,
                timeout.max(Duration::from_secs(2)),
                usize::try_from(cfg.adapter_stream_buffer).unwrap_or(16_384),
                adapter_metrics.clone(),
            )
            .await?;
            let (layer, io) = builder
                .with_adapter::<ClusterAdapter<_>>(adapter)
                .build_layer();
            let mount = SocketMount {
                io: io.clone(),
                max_queued_events: usize::try_from(cfg.socketio_max_queued_events)
                    .unwrap_or(crate::serial::DEFAULT_MAX_QUEUED),
                init: |init| {
                    Box::pin(async move { init.await.context("subscribing the cluster adapter") })
                },
            };
            let store = StoreKind::Redis {
                backend: Box::new(redis.clone()),
                batching,
                shared: SharedBatching::new(
                    Touches::new(redis.pool.clone(), cfg.presence_ttl_ms),
                    batching,
                ),
            };
            let parts = node_parts(cfg, &node_id, store)?;
            let tenants = start_tenants(cfg, parts, Arc::new(mount)).await?;
            tokio::spawn(cluster::on_gaps(io.clone(), gaps, cfg.adapter_gap_policy));
            let backing = Backing {
                redis,
                adapter: adapter_metrics,
            };
            Ok(assemble(cfg, &io, layer, tenants, Some(backing), node_id))
        }
    }
}

/// What every tenant of the node shares.
fn node_parts(cfg: &Config, node_id: &str, store: StoreKind) -> anyhow::Result<NodeParts> {
    Ok(NodeParts {
        node_id: node_id.to_owned(),
        store,
        engine: SharedEngine::new(&cfg.plugins)?,
        presence_limits: Limits {
            max_id_len: usize::try_from(cfg.presence_max_id_len).unwrap_or(128),
            max_state_bytes: usize::try_from(cfg.presence_max_state_bytes).unwrap_or(4096),
        },
        ttl_ms: cfg.presence_ttl_ms,
        prefix: cfg.presence_prefix.clone(),
        per_tenant_keys: cfg.tenants_file.is_some(),
        resume_grace: Duration::from_millis(cfg.presence_resume_grace_ms),
        reaper_interval: Duration::from_millis(cfg.presence_reaper_interval_ms),
        reaper_lookback: cfg.reaper_lookback(),
        webhook_delivery: cfg.webhooks.delivery.clone(),
        webhook_client: reqwest::Client::builder()
            .user_agent(concat!("rtm-host/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the webhook HTTP client")?,
    })
}

async fn start_tenants(
    cfg: &Config,
    parts: NodeParts,
    mount: Arc<dyn crate::tenancy::Mount>,
) -> Result<Arc<Tenants>, BuildError> {
    let base = BaseSettings {
        limits: cfg.limits.clone(),
        plugins: cfg.plugins.clone(),
        auth: cfg.auth.config().map_err(anyhow::Error::msg)?,
        api_keys: cfg.api_key.iter().cloned().map(Secret::new).collect(),
        webhook: cfg.webhooks.config().map_err(anyhow::Error::msg)?,
    };
    Tenants::start(parts, mount, base, cfg.tenants_file.clone())
        .await
        .map_err(|e| match e.downcast::<crate::tenancy::file::FileError>() {
            Ok(file) => BuildError::Tenants(file),
            Err(other) => BuildError::Other(other),
        })
}

/// What a Redis-backed node serves `/readyz` and `/metrics` from.
struct Backing {
    redis: RedisBackend,
    adapter: AdapterMetrics,
}

fn assemble<A: Adapter>(
    cfg: &Config,
    io: &SocketIo<A>,
    layer: socketioxide::layer::SocketIoLayer<A>,
    tenants: Arc<Tenants>,
    backing: Option<Backing>,
    node_id: String,
) -> Node {
    let (redis, adapter) = backing.map(|b| (b.redis, b.adapter)).unzip();
    let connections = ConnMetrics::default();
    let router = http::router(HttpState {
        redis,
        adapter,
        connections: connections.clone(),
        tenants: tenants.clone(),
        admin_token: cfg.admin_token.clone().map(Secret::new).map(Arc::new),
    })
    .merge(crate::api::router(
        tenants.clone(),
        usize::try_from(cfg.api_max_in_flight).unwrap_or(usize::MAX),
    ))
    .layer(layer)
    // Runs before the Socket.IO layer: sessions keep only owned copies of the head.
    .layer(axum::middleware::map_request(request_head::detach))
    .layer(CorsLayer::permissive());
    let io = io.clone();
    Node {
        router,
        tenants,
        node_id,
        connections,
        close_sockets: Box::new(move || Box::pin(async move { io.close().await })),
    }
}

/// The exit status when a SIGTERM drain did not finish within `SHUTDOWN_TIMEOUT_MS`: not
/// 0, so a supervisor (and a test) can tell a clean stop from one that cut the drain
/// short (registrations then expire through other nodes' reapers instead of `leave`).
pub const DRAIN_TIMEOUT_EXIT: i32 = 3;

/// Serves `node` on `listener` until SIGTERM/SIGINT, then drains within `timeout`;
/// each connection costs at most what `limits` allow (see [`connections`]).
pub async fn serve(
    node: Node,
    listener: TcpListener,
    timeout: Duration,
    limits: ConnLimits,
) -> anyhow::Result<()> {
    let router = node.router.clone();
    let metrics = node.connections.clone();
    let graceful = async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested: draining");
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            tracing::error!(
                ?timeout,
                code = DRAIN_TIMEOUT_EXIT,
                "drain did not finish in time; exiting"
            );
            std::process::exit(DRAIN_TIMEOUT_EXIT);
        });
        node.drain().await;
    };
    connections::serve(listener, router, limits, metrics, graceful).await;
    tracing::info!("stopped");
    Ok(())
}

/// Binds with a deep accept backlog: a reconnect storm (every client of a restarted node
/// at once) overflows tokio's default of 128 and turns into SYN retransmits of seconds.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Builds, binds and serves; prints `rtm-host listening on http://ADDR` once ready.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    // A tenants file that does not load is the one line this process prints (exit 2),
    // before anything else is logged.
    if let Some(path) = &cfg.tenants_file {
        let base = crate::tenancy::file::Base {
            limits: &cfg.limits,
            plugins: &cfg.plugins,
            env: &crate::tenancy::secret::process_env,
        };
        if let Err(e) = crate::tenancy::file::load(path, &base) {
            eprintln!("rtm-host: invalid TENANTS_FILE: {e}");
            std::process::exit(2);
        }
    }
    let node = match build(&cfg).await {
        Ok(node) => node,
        Err(BuildError::Tenants(e)) => {
            eprintln!("rtm-host: invalid TENANTS_FILE: {e}");
            std::process::exit(2);
        }
        Err(BuildError::Other(e)) => return Err(e),
    };
    let listener = listen(SocketAddr::new(cfg.bind_addr, cfg.port))
        .with_context(|| format!("binding {}:{}", cfg.bind_addr, cfg.port))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%addr, node = %node.node_id, "serving");
    let mut stdout = std::io::stdout();
    // Scripts and tests wait for this line (PORT=0 picks a free port).
    let _ = writeln!(stdout, "rtm-host listening on http://{addr}");
    let _ = stdout.flush();
    serve(
        node,
        listener,
        Duration::from_millis(cfg.shutdown_timeout_ms),
        cfg.conn_limits(),
    )
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
