//! rtm-host: a realtime message host. Socket.IO for browsers, presence kept correct
//! across nodes through Redis, and application features as sandboxed WebAssembly
//! plugins. `server::build` assembles a node from a `Config`; `main.rs` only runs it.

pub mod api;
pub mod app;
pub mod auth;
pub mod backend;
pub mod cluster;
pub mod config;
pub mod connections;
pub mod fanout;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod metrics;
pub mod plugin_bridge;
pub mod plugins;
pub mod presence;
pub mod request_head;
pub mod serial;
pub mod server;
pub mod session;
pub mod tenancy;
pub mod webhooks;
