//! A node: builds the store, the Socket.IO layer (local or Redis adapter), the reaper
//! and the HTTP routes from a [`Config`], serves them, and drains on SIGTERM/SIGINT.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::serve::ListenerExt;
use socketioxide::{SocketIo, adapter::Adapter};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower_http::cors::CorsLayer;

use crate::app::{self, Ctx};
use crate::backend::RedisBackend;
use crate::cluster::{self, ClusterAdapter};
use crate::config::Config;
use crate::fanout::Fanout;
use crate::http::{self, HttpState};
use crate::metrics::Metrics;
use crate::plugin_bridge::PluginBridge;
use crate::plugins::{KvBackend, Plugins};
use crate::presence::batch::{BatchConfig, Batcher};
use crate::presence::memory::MemoryStore;
use crate::presence::redis::RedisStore;
use crate::presence::request::Limits;
use crate::presence::store::PresenceStore;
use crate::presence::{Presence, ids, reaper};
use crate::request_head;

type CloseFn = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A built node, ready to serve.
pub struct Node {
    pub router: Router,
    pub presence: Arc<Presence>,
    pub plugins: Plugins,
    pub node_id: String,
    reaper: JoinHandle<()>,
    close_sockets: CloseFn,
}

impl Node {
    /// Graceful stop: remove this node's registrations (announcing `leave`), then close
    /// every socket.
    pub async fn drain(self) {
        self.reaper.abort();
        self.presence.shutdown().await;
        (self.close_sockets)().await;
        self.plugins.shutdown();
    }
}

/// Builds a node from its configuration (connects to Redis when configured).
pub async fn build(cfg: &Config) -> anyhow::Result<Node> {
    let metrics = Arc::new(Metrics::new());
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
    match &cfg.redis_url {
        None => {
            tracing::info!(node = %node_id, "presence store: memory (single node)");
            let store = Arc::new(MemoryStore::new(cfg.presence_ttl_ms));
            let (layer, io) = builder.build_layer();
            let ctx = context(
                cfg,
                &io,
                store,
                KvBackend::memory(),
                metrics.clone(),
                &node_id,
            )
            .await?;
            let node = assemble(cfg, &io, layer, &ctx, None, metrics, node_id);
            app::register(&io, ctx);
            Ok(node)
        }
        Some(url) => {
            let timeout = Duration::from_millis(cfg.redis_timeout_ms);
            let pool_size = usize::try_from(cfg.redis_pool_size).unwrap_or(4);
            let redis = RedisBackend::connect(url, timeout, pool_size, cfg.tcp_nodelay).await?;
            tracing::info!(node = %node_id, "presence store: redis (multi node)");
            let redis_store = RedisStore::new(
                redis.pool.clone(),
                &cfg.presence_prefix,
                cfg.presence_ttl_ms,
            )
            .await
            .context("loading presence scripts")?;
            // Heartbeats and joins from many sockets share script calls.
            let batching = BatchConfig {
                lanes: pool_size,
                window: Duration::from_micros(cfg.presence_batch_window_us),
            };
            let store = Arc::new(Batcher::new(Arc::new(redis_store), batching));
            let adapter = cluster::adapter(
                &redis,
                &cfg.presence_prefix,
                timeout.max(Duration::from_secs(2)),
            )
            .await?;
            let (layer, io) = builder
                .with_adapter::<ClusterAdapter<_>>(adapter)
                .build_layer();
            let kv = KvBackend::redis(redis.pool.clone(), cfg.presence_prefix.clone());
            let ctx = context(cfg, &io, store, kv, metrics.clone(), &node_id).await?;
            let node = assemble(cfg, &io, layer, &ctx, Some(redis), metrics, node_id);
            app::register(&io, ctx)
                .await
                .context("subscribing the cluster adapter")?;
            Ok(node)
        }
    }
}

/// Builds presence and the plugin runtime on top of `io`.
async fn context<A: Adapter>(
    cfg: &Config,
    io: &SocketIo<A>,
    store: Arc<dyn PresenceStore>,
    kv: KvBackend,
    metrics: Arc<Metrics>,
    node_id: &str,
) -> anyhow::Result<Arc<Ctx>> {
    let limits = Limits {
        max_id_len: usize::try_from(cfg.presence_max_id_len).unwrap_or(128),
        max_state_bytes: usize::try_from(cfg.presence_max_state_bytes).unwrap_or(4096),
    };
    let fanout: Arc<dyn Fanout> = Arc::new(io.clone());
    let presence = Arc::new(Presence::new(
        store,
        fanout.clone(),
        limits,
        node_id.to_owned(),
        Duration::from_millis(cfg.presence_resume_grace_ms),
    ));
    let bridge = PluginBridge {
        fanout,
        presence: presence.clone(),
    };
    // Plugins load in the background: the node serves presence meanwhile and `/readyz`
    // says 503 until every file has been tried (big guests take seconds to compile).
    let plugins = Plugins::launch(cfg.plugins.clone(), Arc::new(bridge), kv, "default")
        .context("starting the plugin runtime")?;
    let observer = plugins.clone();
    presence.observe(Box::new(move |event| observer.on_presence(event)));
    Ok(Arc::new(Ctx {
        presence,
        plugins,
        metrics,
    }))
}

fn assemble<A: Adapter>(
    cfg: &Config,
    io: &SocketIo<A>,
    layer: socketioxide::layer::SocketIoLayer<A>,
    ctx: &Ctx,
    redis: Option<RedisBackend>,
    metrics: Arc<Metrics>,
    node_id: String,
) -> Node {
    let router = http::router(HttpState {
        redis,
        metrics: metrics.clone(),
        plugins: ctx.plugins.clone(),
        admin_token: cfg.admin_token.as_deref().map(Arc::from),
    })
    .layer(layer)
    // Runs before the Socket.IO layer: sessions keep only owned copies of the head.
    .layer(axum::middleware::map_request(request_head::detach))
    .layer(CorsLayer::permissive());
    let reaper = reaper::spawn(
        ctx.presence.clone(),
        Duration::from_millis(cfg.presence_reaper_interval_ms),
        cfg.reaper_lookback(),
        metrics.reaped.clone(),
    );
    let io = io.clone();
    Node {
        router,
        presence: ctx.presence.clone(),
        plugins: ctx.plugins.clone(),
        node_id,
        reaper,
        close_sockets: Box::new(move || Box::pin(async move { io.close().await })),
    }
}

/// The exit status when a SIGTERM drain did not finish within `SHUTDOWN_TIMEOUT_MS`: not
/// 0, so a supervisor (and a test) can tell a clean stop from one that cut the drain
/// short (registrations then expire through other nodes' reapers instead of `leave`).
pub const DRAIN_TIMEOUT_EXIT: i32 = 3;

/// Serves `node` on `listener` until SIGTERM/SIGINT, then drains within `timeout`.
/// `nodelay` sets `TCP_NODELAY` on every accepted socket (see `Config::tcp_nodelay`).
pub async fn serve(
    node: Node,
    listener: TcpListener,
    timeout: Duration,
    nodelay: bool,
) -> anyhow::Result<()> {
    let router = node.router.clone();
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
    let listener = listener.tap_io(move |tcp| {
        if nodelay && let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(graceful)
        .await
        .context("serving HTTP")?;
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
    let node = build(&cfg).await?;
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
        cfg.tcp_nodelay,
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
