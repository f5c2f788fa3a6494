//! The plugin key-value store: process memory or Redis, behind one
//! per-plugin [`KvNamespace`] that prefixes every key with
//! `<prefix>plugin:<tenant>:<plugin>:` so plugins never see each other's data, and
//! keeps the plugin within its quota of bytes and keys (`kv_max_bytes`,
//! `kv_max_keys`). On Redis every write and its accounting are one script
//! (`write.lua`), so concurrent writers on many nodes cannot overshoot the quota.
//! The accounting lives beside the data, outside the plugin's key prefix:
//! `<prefix>plugin-usage:<tenant>:<plugin>:{sizes,totals,expiry}`.

mod memory;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use fred::clients::Pool;
use fred::interfaces::{HashesInterface, KeysInterface, ListInterface};
use fred::types::Value as RedisValue;
use fred::types::scripts::Script;

pub use memory::MemoryKv;
use memory::Scope;

/// Longest key a plugin may use, in bytes (before the host's prefix).
const MAX_KEY_BYTES: usize = 512;
/// Largest value (or hash field) a plugin may store, in bytes.
const MAX_VALUE_BYTES: usize = 1 << 20;

static WRITE: LazyLock<Script> = LazyLock::new(|| Script::from_lua(include_str!("write.lua")));

/// Bytes and keys a plugin's namespace holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Usage {
    pub bytes: u64,
    pub keys: u64,
}

/// A plugin's kv quota (0: no limit).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Quota {
    pub max_bytes: u64,
    pub max_keys: u64,
}

impl Quota {
    /// Refuses a write that takes the namespace from `before` to `after` beyond a
    /// limit (a write that shrinks it always passes).
    fn check(&self, before: &Usage, after: &Usage) -> Result<(), KvError> {
        if self.max_bytes > 0 && after.bytes > self.max_bytes && after.bytes > before.bytes {
            return Err(KvError::Quota(format!(
                "the plugin's kv would hold {} bytes, over kv_max_bytes ({})",
                after.bytes, self.max_bytes
            )));
        }
        if self.max_keys > 0 && after.keys > self.max_keys && after.keys > before.keys {
            return Err(KvError::Quota(format!(
                "the plugin's kv would hold {} keys, over kv_max_keys ({})",
                after.keys, self.max_keys
            )));
        }
        Ok(())
    }
}

/// Where plugin kv data lives. Cheap to clone.
#[derive(Clone)]
pub enum KvBackend {
    /// Process memory: single node, lost on restart.
    Memory(Arc<MemoryKv>),
    /// Redis through the host's fred pool; `prefix` is the host's key prefix
    /// (for example `rtm:`), prepended before `plugin:<tenant>:<plugin>:`. `tagged`:
    /// `plugin:{<tenant>:<plugin>}:` instead, a Redis Cluster hash tag, so a plugin's
    /// data and its quota accounting (one script touches both) share one slot.
    Redis {
        pool: Pool,
        prefix: String,
        tagged: bool,
    },
}

impl KvBackend {
    /// A fresh in-memory store.
    pub fn memory() -> Self {
        KvBackend::Memory(Arc::new(MemoryKv::default()))
    }

    /// Redis through `pool`, keys under `prefix`.
    pub fn redis(pool: Pool, prefix: impl Into<String>) -> Self {
        KvBackend::Redis {
            pool,
            prefix: prefix.into(),
            tagged: false,
        }
    }

    /// Redis through `pool`, keys under `prefix` with a hash tag per tenant and plugin
    /// (a tenant of a tenants file).
    pub fn redis_tagged(pool: Pool, prefix: impl Into<String>) -> Self {
        KvBackend::Redis {
            pool,
            prefix: prefix.into(),
            tagged: true,
        }
    }

    /// The namespace of `plugin` in `tenant`, under `quota`.
    pub(super) fn namespace(&self, tenant: &str, plugin: &str, quota: Quota) -> KvNamespace {
        let (prefix, id) = match self {
            KvBackend::Memory(_) => ("", format!("{tenant}:{plugin}")),
            KvBackend::Redis {
                prefix,
                tagged: false,
                ..
            } => (prefix.as_str(), format!("{tenant}:{plugin}")),
            KvBackend::Redis { prefix, .. } => (prefix.as_str(), format!("{{{tenant}:{plugin}}}")),
        };
        let usage = format!("{prefix}plugin-usage:{id}:");
        KvNamespace {
            backend: self.clone(),
            key_prefix: format!("{prefix}plugin:{id}:").into(),
            accounting: [
                format!("{usage}sizes"),
                format!("{usage}totals"),
                format!("{usage}expiry"),
            ],
            quota,
        }
    }
}

/// Why a kv operation failed; its `code` is what the plugin sees.
#[derive(Debug, thiserror::Error)]
pub(super) enum KvError {
    #[error("kv backend unavailable: {0}")]
    Unavailable(String),
    #[error("the value at this key is not a {0}")]
    WrongType(&'static str),
    #[error("the value at this key is not an integer, or the result overflows")]
    NotInteger,
    #[error("{0}")]
    TooLarge(String),
    /// The write would take the plugin over `kv_max_bytes` / `kv_max_keys`.
    #[error("{0}")]
    Quota(String),
}

impl KvError {
    pub(super) fn code(&self) -> &'static str {
        match self {
            KvError::Unavailable(_) => "unavailable",
            KvError::WrongType(_) | KvError::NotInteger => "wrong_type",
            KvError::TooLarge(_) => "too_large",
            KvError::Quota(_) => "quota_exceeded",
        }
    }

    fn from_redis(err: fred::error::Error) -> Self {
        let details = err.details();
        if details.contains("WRONGTYPE") {
            KvError::WrongType("value of the requested kind")
        } else if details.contains("not an integer") || details.contains("overflow") {
            KvError::NotInteger
        } else {
            KvError::Unavailable(err.to_string())
        }
    }
}

/// One plugin's view of the store: every key it passes is prefixed here.
#[derive(Clone)]
pub(super) struct KvNamespace {
    backend: KvBackend,
    key_prefix: Arc<str>,
    /// On Redis: the sizes hash, totals hash and expiry zset of `write.lua`.
    accounting: [String; 3],
    quota: Quota,
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(KvError::TooLarge(format!(
            "key longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), KvError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(KvError::TooLarge(format!(
            "value larger than {MAX_VALUE_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Redis-style inclusive range over `len` items, negative indexes from the end.
pub(super) fn resolve_range(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let norm = |i: i64| if i < 0 { len_i.saturating_add(i) } else { i };
    let (start, stop) = (norm(start).max(0), norm(stop).min(len_i - 1));
    if len == 0 || start > stop {
        return None;
    }
    Some((usize::try_from(start).ok()?, usize::try_from(stop).ok()?))
}

/// A write of `write.lua`: its op name and the arguments after the common ones.
struct Write<'a> {
    op: &'static str,
    args: Vec<&'a str>,
}

impl KvNamespace {
    fn key(&self, key: &str) -> Result<String, KvError> {
        check_key(key)?;
        Ok(format!("{}{key}", self.key_prefix))
    }

    fn scope(&self, key: &str) -> Scope<'_> {
        Scope {
            ns: &self.key_prefix,
            key_len: key.len(),
            quota: self.quota,
        }
    }

    /// Bytes and keys the plugin holds now.
    #[cfg(test)]
    pub(super) async fn usage(&self) -> Result<Usage, KvError> {
        match &self.backend {
            KvBackend::Memory(m) => Ok(m.usage(&self.key_prefix)),
            KvBackend::Redis { pool, .. } => {
                let t: HashMap<String, i64> = pool
                    .hgetall(&self.accounting[1])
                    .await
                    .map_err(KvError::from_redis)?;
                let get = |f: &str| u64::try_from(t.get(f).copied().unwrap_or(0)).unwrap_or(0);
                Ok(Usage {
                    bytes: get("bytes"),
                    keys: get("keys"),
                })
            }
        }
    }

    /// Runs one write of `write.lua`: the data key, its accounting, the quota.
    async fn redis_write(
        &self,
        pool: &Pool,
        key: &str,
        w: Write<'_>,
    ) -> Result<RedisValue, KvError> {
        let keys = vec![
            self.key(key)?,
            self.accounting[0].clone(),
            self.accounting[1].clone(),
            self.accounting[2].clone(),
        ];
        let mut args = vec![
            w.op.to_owned(),
            key.len().to_string(),
            self.quota.max_bytes.to_string(),
            self.quota.max_keys.to_string(),
        ];
        args.extend(w.args.iter().map(|a| (*a).to_owned()));
        let reply: Vec<RedisValue> = WRITE
            .evalsha_with_reload(pool.next(), keys, args)
            .await
            .map_err(KvError::from_redis)?;
        let mut parts = reply.into_iter();
        let status = parts.next().and_then(|v| v.as_i64());
        let value = parts.next().unwrap_or(RedisValue::Null);
        match status {
            Some(1) => Ok(value),
            Some(0) => {
                let which = value.as_str().map(|s| s.into_owned()).unwrap_or_default();
                let limit = if which == "keys" {
                    self.quota.max_keys
                } else {
                    self.quota.max_bytes
                };
                Err(KvError::Quota(format!(
                    "the write would take the plugin's kv over kv_max_{which} ({limit})"
                )))
            }
            _ => Err(KvError::Unavailable("unexpected kv script reply".into())),
        }
    }

    async fn write(
        &self,
        key: &str,
        op: &'static str,
        args: Vec<&str>,
    ) -> Result<RedisValue, KvError> {
        match &self.backend {
            KvBackend::Redis { pool, .. } => self.redis_write(pool, key, Write { op, args }).await,
            KvBackend::Memory(_) => Err(KvError::Unavailable("not a Redis namespace".into())),
        }
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        let full = self.key(key)?;
        match &self.backend {
            KvBackend::Memory(m) => m.get(&full),
            KvBackend::Redis { pool, .. } => pool.get(full).await.map_err(KvError::from_redis),
        }
    }

    pub(super) async fn set(
        &self,
        key: &str,
        value: &str,
        ttl_ms: Option<u64>,
    ) -> Result<(), KvError> {
        let full = self.key(key)?;
        check_value(value)?;
        let ttl_ms = ttl_ms.map(|ms| ms.max(1));
        if let KvBackend::Memory(m) = &self.backend {
            return m.set(&full, value, ttl_ms, &self.scope(key));
        }
        let ttl = ttl_ms.map(|ms| ms.to_string()).unwrap_or_default();
        self.write(key, "set", vec![value, &ttl]).await.map(|_| ())
    }

    pub(super) async fn del(&self, key: &str) -> Result<bool, KvError> {
        let full = self.key(key)?;
        if let KvBackend::Memory(m) = &self.backend {
            return m.del(&full, &self.scope(key));
        }
        let n = self.write(key, "del", vec![]).await?;
        Ok(n.as_i64().unwrap_or(0) > 0)
    }

    pub(super) async fn incr(&self, key: &str, by: i64) -> Result<i64, KvError> {
        let full = self.key(key)?;
        if let KvBackend::Memory(m) = &self.backend {
            return m.incr(&full, by, &self.scope(key));
        }
        let by = by.to_string();
        let v = self.write(key, "incr", vec![&by]).await?;
        v.as_i64().ok_or(KvError::NotInteger)
    }

    pub(super) async fn list_push(
        &self,
        key: &str,
        value: &str,
        max_len: Option<u32>,
    ) -> Result<u64, KvError> {
        let full = self.key(key)?;
        check_value(value)?;
        if let KvBackend::Memory(m) = &self.backend {
            return m.list_push(&full, value, max_len, &self.scope(key));
        }
        let cap = max_len.unwrap_or(0).to_string();
        let v = self.write(key, "push", vec![value, &cap]).await?;
        Ok(v.as_u64().unwrap_or(0))
    }

    pub(super) async fn list_range(
        &self,
        key: &str,
        start: i64,
        stop: i64,
    ) -> Result<Vec<String>, KvError> {
        let full = self.key(key)?;
        match &self.backend {
            KvBackend::Memory(m) => m.list_range(&full, start, stop),
            KvBackend::Redis { pool, .. } => pool
                .lrange(full, start, stop)
                .await
                .map_err(KvError::from_redis),
        }
    }

    pub(super) async fn list_trim(&self, key: &str, start: i64, stop: i64) -> Result<(), KvError> {
        let full = self.key(key)?;
        if let KvBackend::Memory(m) = &self.backend {
            return m.list_trim(&full, start, stop, &self.scope(key));
        }
        let (start, stop) = (start.to_string(), stop.to_string());
        self.write(key, "trim", vec![&start, &stop])
            .await
            .map(|_| ())
    }

    pub(super) async fn hash_get(&self, key: &str, field: &str) -> Result<Option<String>, KvError> {
        let full = self.key(key)?;
        match &self.backend {
            KvBackend::Memory(m) => m.hash_get(&full, field),
            KvBackend::Redis { pool, .. } => {
                pool.hget(full, field).await.map_err(KvError::from_redis)
            }
        }
    }

    pub(super) async fn hash_set(
        &self,
        key: &str,
        field: &str,
        value: &str,
    ) -> Result<(), KvError> {
        let full = self.key(key)?;
        check_key(field)?;
        check_value(value)?;
        if let KvBackend::Memory(m) = &self.backend {
            return m.hash_set(&full, field, value, &self.scope(key));
        }
        self.write(key, "hset", vec![field, value])
            .await
            .map(|_| ())
    }

    pub(super) async fn hash_get_all(&self, key: &str) -> Result<Vec<(String, String)>, KvError> {
        let full = self.key(key)?;
        match &self.backend {
            KvBackend::Memory(m) => m.hash_get_all(&full),
            KvBackend::Redis { pool, .. } => {
                let map: HashMap<String, String> =
                    pool.hgetall(full).await.map_err(KvError::from_redis)?;
                let mut pairs: Vec<_> = map.into_iter().collect();
                pairs.sort();
                Ok(pairs)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{KvBackend, KvError, Quota, Usage, resolve_range};

    #[test]
    fn ranges_follow_redis() {
        assert_eq!(resolve_range(5, 0, -1), Some((0, 4)));
        assert_eq!(resolve_range(5, -2, -1), Some((3, 4)));
        assert_eq!(resolve_range(5, -100, 1), Some((0, 1)));
        assert_eq!(resolve_range(5, 3, 1), None);
        assert_eq!(resolve_range(0, 0, -1), None);
        assert_eq!(resolve_range(5, 10, 20), None);
    }

    #[tokio::test]
    async fn memory_namespaces_and_kinds() {
        let kv = KvBackend::memory();
        let a = kv.namespace("t", "a", Quota::default());
        let b = kv.namespace("t", "b", Quota::default());
        a.set("k", "1", None).await.expect("set");
        assert_eq!(a.get("k").await.expect("get").as_deref(), Some("1"));
        assert_eq!(b.get("k").await.expect("get"), None);
        assert_eq!(a.incr("k", 41).await.expect("incr"), 42);
        assert!(matches!(
            a.list_push("k", "x", None).await,
            Err(KvError::WrongType(_))
        ));
        for i in 0..5 {
            b.list_push("l", &i.to_string(), Some(3))
                .await
                .expect("push");
        }
        assert_eq!(
            b.list_range("l", 0, -1).await.expect("range"),
            ["2", "3", "4"]
        );
        b.list_trim("l", -1, -1).await.expect("trim");
        assert_eq!(b.list_range("l", 0, -1).await.expect("range"), ["4"]);
        b.hash_set("h", "f", "v").await.expect("hset");
        assert_eq!(
            b.hash_get_all("h").await.expect("hgetall"),
            [("f".to_owned(), "v".to_owned())]
        );
        assert!(b.del("h").await.expect("del"));
        assert!(!b.del("h").await.expect("del"));
        a.set("ttl", "x", Some(1)).await.expect("set");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert_eq!(a.get("ttl").await.expect("get"), None);
    }

    #[tokio::test]
    async fn memory_quota_counts_keys_and_bytes_and_refuses_without_writing() {
        let kv = KvBackend::memory();
        let q = Quota {
            max_bytes: 20,
            max_keys: 2,
        };
        let ns = kv.namespace("t", "p", q);
        ns.set("ab", "12345", None).await.expect("7 bytes");
        assert_eq!(
            ns.usage().await.expect("usage"),
            Usage { bytes: 7, keys: 1 }
        );
        ns.list_push("l", "xyz", None).await.expect("4 bytes");
        assert!(
            matches!(ns.set("c", "1", None).await, Err(KvError::Quota(_))),
            "a third key"
        );
        assert!(matches!(
            ns.set("ab", "x".repeat(20).as_str(), None).await,
            Err(KvError::Quota(_))
        ));
        assert_eq!(
            ns.get("ab").await.expect("get").as_deref(),
            Some("12345"),
            "refused write changed nothing"
        );
        ns.set("ab", "123456789", None)
            .await
            .expect("overwrite within quota: 11 bytes");
        assert_eq!(
            ns.usage().await.expect("usage"),
            Usage { bytes: 15, keys: 2 }
        );
        assert!(ns.del("l").await.expect("del"));
        ns.set("c", "1", None).await.expect("a key came back");
        let other = kv.namespace("t", "other", q);
        other
            .set("ab", "12345", None)
            .await
            .expect("another plugin has its own quota");
    }
}
