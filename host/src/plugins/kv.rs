//! The plugin key-value store: process memory or Redis, behind one
//! per-plugin [`KvNamespace`] that prefixes every key with
//! `<prefix>plugin:<tenant>:<plugin>:` so plugins never see each other's data.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use fred::clients::Pool;
use fred::interfaces::{HashesInterface, KeysInterface, ListInterface};
use fred::types::Expiration;
use fred::types::scripts::Script;

/// Longest key a plugin may use, in bytes (before the host's prefix).
const MAX_KEY_BYTES: usize = 512;
/// Largest value (or hash field) a plugin may store, in bytes.
const MAX_VALUE_BYTES: usize = 1 << 20;
/// Longest list a plugin may keep in the memory backend.
const MAX_MEMORY_LIST_LEN: usize = 100_000;
/// Memory backend: writes between sweeps of expired keys.
const SWEEP_EVERY_WRITES: u64 = 1024;

/// RPUSH then LTRIM in one atomic step (KEYS[1] list, ARGV[1] value, ARGV[2] max length or 0).
const PUSH_CAPPED_LUA: &str = r"
local len = redis.call('RPUSH', KEYS[1], ARGV[1])
local cap = tonumber(ARGV[2])
if cap > 0 and len > cap then
  redis.call('LTRIM', KEYS[1], -cap, -1)
  len = cap
end
return len
";

/// Where plugin kv data lives. Cheap to clone.
#[derive(Clone)]
pub enum KvBackend {
    /// Process memory: single node, lost on restart.
    Memory(Arc<MemoryKv>),
    /// Redis through the host's fred pool; `prefix` is the host's key prefix
    /// (for example `rtm:`), prepended before `plugin:<tenant>:<plugin>:`.
    Redis { pool: Pool, prefix: String },
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
        }
    }

    /// The namespace of `plugin` in `tenant`.
    pub(super) fn namespace(&self, tenant: &str, plugin: &str) -> KvNamespace {
        let prefix = match self {
            KvBackend::Memory(_) => "",
            KvBackend::Redis { prefix, .. } => prefix.as_str(),
        };
        KvNamespace {
            backend: self.clone(),
            key_prefix: format!("{prefix}plugin:{tenant}:{plugin}:"),
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
}

impl KvError {
    pub(super) fn code(&self) -> &'static str {
        match self {
            KvError::Unavailable(_) => "unavailable",
            KvError::WrongType(_) | KvError::NotInteger => "wrong_type",
            KvError::TooLarge(_) => "too_large",
        }
    }

    fn from_redis(err: fred::error::Error) -> Self {
        let details = err.details();
        if details.starts_with("WRONGTYPE") {
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
    key_prefix: String,
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

impl KvNamespace {
    fn key(&self, key: &str) -> Result<String, KvError> {
        check_key(key)?;
        Ok(format!("{}{key}", self.key_prefix))
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        let key = self.key(key)?;
        match &self.backend {
            KvBackend::Memory(m) => m.get(&key),
            KvBackend::Redis { pool, .. } => pool.get(key).await.map_err(KvError::from_redis),
        }
    }

    pub(super) async fn set(
        &self,
        key: &str,
        value: &str,
        ttl_ms: Option<u64>,
    ) -> Result<(), KvError> {
        let key = self.key(key)?;
        check_value(value)?;
        let ttl_ms = ttl_ms.map(|ms| ms.max(1));
        match &self.backend {
            KvBackend::Memory(m) => {
                m.set(key, value, ttl_ms);
                Ok(())
            }
            KvBackend::Redis { pool, .. } => {
                let expire = ttl_ms.map(|ms| Expiration::PX(i64::try_from(ms).unwrap_or(i64::MAX)));
                pool.set::<(), _, _>(key, value, expire, None, false)
                    .await
                    .map_err(KvError::from_redis)
            }
        }
    }

    pub(super) async fn del(&self, key: &str) -> Result<bool, KvError> {
        let key = self.key(key)?;
        match &self.backend {
            KvBackend::Memory(m) => Ok(m.del(&key)),
            KvBackend::Redis { pool, .. } => pool
                .del::<i64, _>(key)
                .await
                .map(|n| n > 0)
                .map_err(KvError::from_redis),
        }
    }

    pub(super) async fn incr(&self, key: &str, by: i64) -> Result<i64, KvError> {
        let key = self.key(key)?;
        match &self.backend {
            KvBackend::Memory(m) => m.incr(key, by),
            KvBackend::Redis { pool, .. } => {
                pool.incr_by(key, by).await.map_err(KvError::from_redis)
            }
        }
    }

    pub(super) async fn list_push(
        &self,
        key: &str,
        value: &str,
        max_len: Option<u32>,
    ) -> Result<u64, KvError> {
        let key = self.key(key)?;
        check_value(value)?;
        match &self.backend {
            KvBackend::Memory(m) => m.list_push(key, value, max_len),
            KvBackend::Redis { pool, .. } => {
                let cap = i64::from(max_len.unwrap_or(0));
                Script::from_lua(PUSH_CAPPED_LUA)
                    .evalsha_with_reload(pool.next(), key, vec![value.to_owned(), cap.to_string()])
                    .await
                    .map_err(KvError::from_redis)
            }
        }
    }

    pub(super) async fn list_range(
        &self,
        key: &str,
        start: i64,
        stop: i64,
    ) -> Result<Vec<String>, KvError> {
        let key = self.key(key)?;
        match &self.backend {
            KvBackend::Memory(m) => m.list_range(&key, start, stop),
            KvBackend::Redis { pool, .. } => pool
                .lrange(key, start, stop)
                .await
                .map_err(KvError::from_redis),
        }
    }

    pub(super) async fn list_trim(&self, key: &str, start: i64, stop: i64) -> Result<(), KvError> {
        let key = self.key(key)?;
        match &self.backend {
            KvBackend::Memory(m) => m.list_trim(&key, start, stop),
            KvBackend::Redis { pool, .. } => pool
                .ltrim::<(), _>(key, start, stop)
                .await
                .map_err(KvError::from_redis),
        }
    }

    pub(super) async fn hash_get(&self, key: &str, field: &str) -> Result<Option<String>, KvError> {
        let key = self.key(key)?;
        match &self.backend {
            KvBackend::Memory(m) => m.hash_get(&key, field),
            KvBackend::Redis { pool, .. } => {
                pool.hget(key, field).await.map_err(KvError::from_redis)
            }
        }
    }

    pub(super) async fn hash_set(
        &self,
        key: &str,
        field: &str,
        value: &str,
    ) -> Result<(), KvError> {
        let key = self.key(key)?;
        check_key(field)?;
        check_value(value)?;
        match &self.backend {
            KvBackend::Memory(m) => m.hash_set(key, field, value),
            KvBackend::Redis { pool, .. } => pool
                .hset::<(), _, _>(key, (field, value))
                .await
                .map_err(KvError::from_redis),
        }
    }

    pub(super) async fn hash_get_all(&self, key: &str) -> Result<Vec<(String, String)>, KvError> {
        let key = self.key(key)?;
        match &self.backend {
            KvBackend::Memory(m) => m.hash_get_all(&key),
            KvBackend::Redis { pool, .. } => {
                let map: HashMap<String, String> =
                    pool.hgetall(key).await.map_err(KvError::from_redis)?;
                let mut pairs: Vec<_> = map.into_iter().collect();
                pairs.sort();
                Ok(pairs)
            }
        }
    }
}

/// The in-memory backend: one map behind one mutex, Redis semantics for the
/// few commands plugins use, expiry checked lazily plus a periodic sweep.
#[derive(Default)]
pub struct MemoryKv {
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    entries: HashMap<String, Entry>,
    writes: u64,
}

struct Entry {
    value: Value,
    expires: Option<Instant>,
}

enum Value {
    Str(String),
    List(VecDeque<String>),
    Hash(HashMap<String, String>),
}

impl MemoryState {
    /// The live entry at `key`, dropping it if it expired.
    fn live(&mut self, key: &str) -> Option<&mut Entry> {
        let expired = self
            .entries
            .get(key)
            .is_some_and(|e| e.expires.is_some_and(|t| t <= Instant::now()));
        if expired {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    fn wrote(&mut self) {
        self.writes += 1;
        if self.writes.is_multiple_of(SWEEP_EVERY_WRITES) {
            let now = Instant::now();
            self.entries
                .retain(|_, e| e.expires.is_none_or(|t| t > now));
        }
    }
}

/// Redis-style inclusive range over `len` items, negative indexes from the end.
fn resolve_range(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let norm = |i: i64| if i < 0 { len_i.saturating_add(i) } else { i };
    let (start, stop) = (norm(start).max(0), norm(stop).min(len_i - 1));
    if len == 0 || start > stop {
        return None;
    }
    Some((usize::try_from(start).ok()?, usize::try_from(stop).ok()?))
}

impl MemoryKv {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        match self.lock().live(key).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(_) => Err(KvError::WrongType("string")),
        }
    }

    fn set(&self, key: String, value: &str, ttl_ms: Option<u64>) {
        let mut state = self.lock();
        let expires = ttl_ms.and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)));
        state.entries.insert(
            key,
            Entry {
                value: Value::Str(value.to_owned()),
                expires,
            },
        );
        state.wrote();
    }

    fn del(&self, key: &str) -> bool {
        let mut state = self.lock();
        state.live(key).is_some() && state.entries.remove(key).is_some()
    }

    fn incr(&self, key: String, by: i64) -> Result<i64, KvError> {
        let mut state = self.lock();
        let current = match state.live(&key).map(|e| &e.value) {
            None => 0,
            Some(Value::Str(s)) => s.parse::<i64>().map_err(|_| KvError::NotInteger)?,
            Some(_) => return Err(KvError::WrongType("string")),
        };
        let next = current.checked_add(by).ok_or(KvError::NotInteger)?;
        match state.entries.get_mut(&key) {
            Some(entry) => entry.value = Value::Str(next.to_string()),
            None => {
                state.entries.insert(
                    key,
                    Entry {
                        value: Value::Str(next.to_string()),
                        expires: None,
                    },
                );
            }
        }
        state.wrote();
        Ok(next)
    }

    fn list_push(&self, key: String, value: &str, max_len: Option<u32>) -> Result<u64, KvError> {
        let mut state = self.lock();
        if state.live(&key).is_none() {
            state.entries.insert(
                key.clone(),
                Entry {
                    value: Value::List(VecDeque::new()),
                    expires: None,
                },
            );
        }
        let Some(Entry {
            value: Value::List(list),
            ..
        }) = state.entries.get_mut(&key)
        else {
            return Err(KvError::WrongType("list"));
        };
        let cap = max_len
            .and_then(|c| usize::try_from(c).ok())
            .filter(|c| *c > 0)
            .unwrap_or(MAX_MEMORY_LIST_LEN)
            .min(MAX_MEMORY_LIST_LEN);
        list.push_back(value.to_owned());
        while list.len() > cap {
            list.pop_front();
        }
        let len = u64::try_from(list.len()).unwrap_or(u64::MAX);
        state.wrote();
        Ok(len)
    }

    fn list_range(&self, key: &str, start: i64, stop: i64) -> Result<Vec<String>, KvError> {
        match self.lock().live(key).map(|e| &e.value) {
            None => Ok(Vec::new()),
            Some(Value::List(list)) => Ok(match resolve_range(list.len(), start, stop) {
                Some((a, b)) => list.range(a..=b).cloned().collect(),
                None => Vec::new(),
            }),
            Some(_) => Err(KvError::WrongType("list")),
        }
    }

    fn list_trim(&self, key: &str, start: i64, stop: i64) -> Result<(), KvError> {
        let mut state = self.lock();
        let emptied = match state.live(key).map(|e| &mut e.value) {
            None => return Ok(()),
            Some(Value::List(list)) => match resolve_range(list.len(), start, stop) {
                Some((a, b)) => {
                    list.truncate(b + 1);
                    list.drain(..a);
                    list.is_empty()
                }
                None => true,
            },
            Some(_) => return Err(KvError::WrongType("list")),
        };
        if emptied {
            state.entries.remove(key);
        }
        Ok(())
    }

    fn hash_get(&self, key: &str, field: &str) -> Result<Option<String>, KvError> {
        match self.lock().live(key).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::Hash(h)) => Ok(h.get(field).cloned()),
            Some(_) => Err(KvError::WrongType("hash")),
        }
    }

    fn hash_set(&self, key: String, field: &str, value: &str) -> Result<(), KvError> {
        let mut state = self.lock();
        if state.live(&key).is_none() {
            state.entries.insert(
                key.clone(),
                Entry {
                    value: Value::Hash(HashMap::new()),
                    expires: None,
                },
            );
        }
        match state.entries.get_mut(&key).map(|e| &mut e.value) {
            Some(Value::Hash(h)) => {
                h.insert(field.to_owned(), value.to_owned());
            }
            _ => return Err(KvError::WrongType("hash")),
        }
        state.wrote();
        Ok(())
    }

    fn hash_get_all(&self, key: &str) -> Result<Vec<(String, String)>, KvError> {
        match self.lock().live(key).map(|e| &e.value) {
            None => Ok(Vec::new()),
            Some(Value::Hash(h)) => {
                let mut pairs: Vec<_> = h.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                pairs.sort();
                Ok(pairs)
            }
            Some(_) => Err(KvError::WrongType("hash")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{KvBackend, KvError, resolve_range};

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
        let a = kv.namespace("t", "a");
        let b = kv.namespace("t", "b");
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
}
