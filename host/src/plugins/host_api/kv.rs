//! `rtm:plugin/kv`: the plugin's private key-value namespace (see `super::super::kv`).

use super::super::kv::KvError;
use super::PluginState;
use super::bindings::{WitError, kv};

impl From<KvError> for WitError {
    fn from(e: KvError) -> Self {
        WitError::new(e.code(), e.to_string())
    }
}

/// Runs `op` on the plugin's namespace, turning both a refused call and a kv
/// failure into the plugin-visible error.
macro_rules! with_kv {
    ($state:expr, |$ns:ident| $op:expr) => {{
        Ok(match $state.api.get() {
            Ok(api) => {
                let $ns = &api.kv;
                $op.await.map_err(WitError::from)
            }
            Err(e) => Err(e),
        })
    }};
}

impl kv::Host for PluginState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, WitError>> {
        with_kv!(self, |ns| ns.get(&key))
    }

    async fn set(
        &mut self,
        key: String,
        value: String,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), WitError>> {
        with_kv!(self, |ns| ns.set(&key, &value, ttl_ms))
    }

    async fn del(&mut self, key: String) -> wasmtime::Result<Result<bool, WitError>> {
        with_kv!(self, |ns| ns.del(&key))
    }

    async fn incr(&mut self, key: String, by: i64) -> wasmtime::Result<Result<i64, WitError>> {
        with_kv!(self, |ns| ns.incr(&key, by))
    }

    async fn list_push(
        &mut self,
        key: String,
        value: String,
        max_len: Option<u32>,
    ) -> wasmtime::Result<Result<u64, WitError>> {
        with_kv!(self, |ns| ns.list_push(&key, &value, max_len))
    }

    async fn list_range(
        &mut self,
        key: String,
        start: i64,
        stop: i64,
    ) -> wasmtime::Result<Result<Vec<String>, WitError>> {
        with_kv!(self, |ns| ns.list_range(&key, start, stop))
    }

    async fn list_trim(
        &mut self,
        key: String,
        start: i64,
        stop: i64,
    ) -> wasmtime::Result<Result<(), WitError>> {
        with_kv!(self, |ns| ns.list_trim(&key, start, stop))
    }

    async fn hash_get(
        &mut self,
        key: String,
        field: String,
    ) -> wasmtime::Result<Result<Option<String>, WitError>> {
        with_kv!(self, |ns| ns.hash_get(&key, &field))
    }

    async fn hash_set(
        &mut self,
        key: String,
        field: String,
        value: String,
    ) -> wasmtime::Result<Result<(), WitError>> {
        with_kv!(self, |ns| ns.hash_set(&key, &field, &value))
    }

    async fn hash_get_all(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Vec<(String, String)>, WitError>> {
        with_kv!(self, |ns| ns.hash_get_all(&key))
    }
}
