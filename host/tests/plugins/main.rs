//! Integration tests of the plugin runtime against real guests built from
//! `plugins/` (see `support::guests`). One test binary, one module per behaviour.

mod chat;
mod conflicts;
mod failures;
mod hooks;
mod hot_reload;
mod kv_namespacing;
mod kv_redis;
#[path = "../support/mod.rs"]
mod procs;
mod quarantine;
mod shared_engine;
mod support;
