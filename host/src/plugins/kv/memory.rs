//! The in-memory kv backend (single node, lost on restart): one map behind one mutex,
//! Redis semantics for the few commands plugins use, expiry checked lazily plus a
//! periodic sweep. Quotas are kept as on Redis: every entry remembers its namespace and
//! size, and a write lands only if its namespace's totals stay within the quota.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{KvError, Quota, Usage, resolve_range};

/// Longest list a plugin may keep in the memory backend.
const MAX_MEMORY_LIST_LEN: usize = 100_000;
/// Writes between sweeps of expired keys.
const SWEEP_EVERY_WRITES: u64 = 1024;

#[derive(Default)]
pub struct MemoryKv {
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    entries: HashMap<String, Entry>,
    /// Totals per namespace (its key prefix).
    usage: HashMap<Arc<str>, Usage>,
    writes: u64,
}

#[derive(Clone)]
struct Entry {
    value: Value,
    expires: Option<Instant>,
    ns: Arc<str>,
    /// Bytes counted against the namespace: the plugin's key plus the value.
    size: u64,
}

#[derive(Clone)]
enum Value {
    Str(String),
    List(VecDeque<String>),
    Hash(HashMap<String, String>),
}

/// What a write is for: the namespace, the plugin's key length and the quota.
pub(super) struct Scope<'a> {
    pub ns: &'a Arc<str>,
    pub key_len: usize,
    pub quota: Quota,
}

fn value_size(v: &Value) -> u64 {
    let bytes = match v {
        Value::Str(s) => s.len(),
        Value::List(l) => l.iter().map(String::len).sum(),
        Value::Hash(h) => h.iter().map(|(k, v)| k.len() + v.len()).sum(),
    };
    bytes as u64
}

impl MemoryState {
    fn drop_entry(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        if let Some(u) = self.usage.get_mut(&entry.ns) {
            u.bytes = u.bytes.saturating_sub(entry.size);
            u.keys = u.keys.saturating_sub(1);
        }
        Some(entry)
    }

    /// The live entry at `key`, dropping it if it expired.
    fn live(&mut self, key: &str) -> Option<&mut Entry> {
        let expired = self
            .entries
            .get(key)
            .is_some_and(|e| e.expires.is_some_and(|t| t <= Instant::now()));
        if expired {
            self.drop_entry(key);
        }
        self.entries.get_mut(key)
    }

    fn wrote(&mut self) {
        self.writes += 1;
        if self.writes.is_multiple_of(SWEEP_EVERY_WRITES) {
            let now = Instant::now();
            let expired: Vec<String> = self
                .entries
                .iter()
                .filter(|(_, e)| e.expires.is_some_and(|t| t <= now))
                .map(|(k, _)| k.clone())
                .collect();
            for key in expired {
                self.drop_entry(&key);
            }
        }
    }

    /// Runs `op` on a copy of the entry at `key` (`None`: absent) and keeps the result
    /// only if the namespace stays within its quota; otherwise nothing changes.
    fn write<T>(
        &mut self,
        key: &str,
        scope: &Scope<'_>,
        op: impl FnOnce(&mut Option<Entry>) -> Result<T, KvError>,
    ) -> Result<T, KvError> {
        let before = self.live(key).cloned();
        let mut slot = before.clone();
        let out = op(&mut slot)?;
        if let Some(e) = &mut slot {
            e.size = scope.key_len as u64 + value_size(&e.value);
        }
        let usage = self.usage.get(scope.ns).copied().unwrap_or_default();
        let old = before.as_ref().map_or(0, |e| e.size);
        let next = Usage {
            bytes: usage.bytes.saturating_sub(old) + slot.as_ref().map_or(0, |e| e.size),
            keys: usage.keys.saturating_sub(u64::from(before.is_some()))
                + u64::from(slot.is_some()),
        };
        scope.quota.check(&usage, &next)?;
        self.usage.insert(scope.ns.clone(), next);
        match slot {
            Some(entry) => {
                self.entries.insert(key.to_owned(), entry);
            }
            None => {
                self.entries.remove(key);
            }
        }
        self.wrote();
        Ok(out)
    }
}

fn new_entry(value: Value, scope: &Scope<'_>) -> Entry {
    Entry {
        value,
        expires: None,
        ns: scope.ns.clone(),
        size: 0,
    }
}

impl MemoryKv {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes and keys a namespace holds now.
    #[cfg(test)]
    pub(super) fn usage(&self, ns: &str) -> Usage {
        self.lock().usage.get(ns).copied().unwrap_or_default()
    }

    pub(super) fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        match self.lock().live(key).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(_) => Err(KvError::WrongType("string")),
        }
    }

    pub(super) fn set(
        &self,
        key: &str,
        value: &str,
        ttl_ms: Option<u64>,
        scope: &Scope<'_>,
    ) -> Result<(), KvError> {
        let expires = ttl_ms.and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)));
        self.lock().write(key, scope, |slot| {
            let mut entry = new_entry(Value::Str(value.to_owned()), scope);
            entry.expires = expires;
            *slot = Some(entry);
            Ok(())
        })
    }

    pub(super) fn del(&self, key: &str, scope: &Scope<'_>) -> Result<bool, KvError> {
        self.lock()
            .write(key, scope, |slot| Ok(slot.take().is_some()))
    }

    pub(super) fn incr(&self, key: &str, by: i64, scope: &Scope<'_>) -> Result<i64, KvError> {
        self.lock().write(key, scope, |slot| {
            let current = match slot.as_ref().map(|e| &e.value) {
                None => 0,
                Some(Value::Str(s)) => s.parse::<i64>().map_err(|_| KvError::NotInteger)?,
                Some(_) => return Err(KvError::WrongType("string")),
            };
            let next = current.checked_add(by).ok_or(KvError::NotInteger)?;
            let entry = slot.get_or_insert_with(|| new_entry(Value::Str(String::new()), scope));
            entry.value = Value::Str(next.to_string());
            Ok(next)
        })
    }

    pub(super) fn list_push(
        &self,
        key: &str,
        value: &str,
        max_len: Option<u32>,
        scope: &Scope<'_>,
    ) -> Result<u64, KvError> {
        let cap = max_len
            .and_then(|c| usize::try_from(c).ok())
            .filter(|c| *c > 0)
            .unwrap_or(MAX_MEMORY_LIST_LEN)
            .min(MAX_MEMORY_LIST_LEN);
        self.lock().write(key, scope, |slot| {
            let entry = slot.get_or_insert_with(|| new_entry(Value::List(VecDeque::new()), scope));
            let Value::List(list) = &mut entry.value else {
                return Err(KvError::WrongType("list"));
            };
            list.push_back(value.to_owned());
            while list.len() > cap {
                list.pop_front();
            }
            Ok(u64::try_from(list.len()).unwrap_or(u64::MAX))
        })
    }

    pub(super) fn list_range(
        &self,
        key: &str,
        start: i64,
        stop: i64,
    ) -> Result<Vec<String>, KvError> {
        match self.lock().live(key).map(|e| &e.value) {
            None => Ok(Vec::new()),
            Some(Value::List(list)) => Ok(match resolve_range(list.len(), start, stop) {
                Some((a, b)) => list.range(a..=b).cloned().collect(),
                None => Vec::new(),
            }),
            Some(_) => Err(KvError::WrongType("list")),
        }
    }

    pub(super) fn list_trim(
        &self,
        key: &str,
        start: i64,
        stop: i64,
        scope: &Scope<'_>,
    ) -> Result<(), KvError> {
        self.lock().write(key, scope, |slot| {
            let emptied = match slot.as_mut().map(|e| &mut e.value) {
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
                *slot = None;
            }
            Ok(())
        })
    }

    pub(super) fn hash_get(&self, key: &str, field: &str) -> Result<Option<String>, KvError> {
        match self.lock().live(key).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::Hash(h)) => Ok(h.get(field).cloned()),
            Some(_) => Err(KvError::WrongType("hash")),
        }
    }

    pub(super) fn hash_set(
        &self,
        key: &str,
        field: &str,
        value: &str,
        scope: &Scope<'_>,
    ) -> Result<(), KvError> {
        self.lock().write(key, scope, |slot| {
            let entry = slot.get_or_insert_with(|| new_entry(Value::Hash(HashMap::new()), scope));
            let Value::Hash(h) = &mut entry.value else {
                return Err(KvError::WrongType("hash"));
            };
            h.insert(field.to_owned(), value.to_owned());
            Ok(())
        })
    }

    pub(super) fn hash_get_all(&self, key: &str) -> Result<Vec<(String, String)>, KvError> {
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
