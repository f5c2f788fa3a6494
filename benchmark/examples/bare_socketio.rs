//! The floor under rtm's memory per idle connection: a bare axum + socketioxide server
//! with rtm-host's transport settings, allocator and owned request heads
//! (`rtm_host::request_head`, without which each socket also pins hyper's 16 KiB read
//! buffer) and no application code (no handlers, no presence, no plugins). `rtm-bench connections --skip-join` against it and against
//! rtm-host in one invocation separates what the Socket.IO stack holds per socket from
//! what rtm adds (benchmark/README.md, "Memory per connection"):
//!
//! ```sh
//! cargo build --release -p rtm-bench --example bare_socketio
//! target/release/rtm-bench connections --spawn memory --skip-join --connections 10000 \
//!   --compare-spawn node:target/release/examples/bare_socketio
//! ```
//!
//! It reads `PORT` and `BIND_ADDR` like rtm-host and serves until killed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::extract::SocketRef;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::var("PORT")
        .unwrap_or_else(|_| "3000".into())
        .parse()?;
    let ip: IpAddr = std::env::var("BIND_ADDR")
        .unwrap_or_else(|_| "127.0.0.1".into())
        .parse()?;
    // rtm-host's defaults (host/src/config.rs).
    let (layer, io) = SocketIo::builder()
        .ping_interval(Duration::from_millis(15_000))
        .ping_timeout(Duration::from_millis(10_000))
        .ws_read_buffer_size(1024)
        .max_buffer_size(128)
        .build_layer();
    io.ns("/", |_: SocketRef| async {});
    let app = axum::Router::new()
        .layer(layer)
        .layer(axum::middleware::map_request(
            rtm_host::request_head::detach,
        ));
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, port)).await?;
    println!("rtm-host listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
