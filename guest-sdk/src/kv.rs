//! The plugin's private key-value store, with values as JSON.
//!
//! Keys are plain strings; the host prefixes them with the tenant and the
//! plugin's name, so they never collide with another plugin's. Values go
//! through `serde_json`; a stored value that does not decode into the
//! requested type is an `internal` error. [`raw`] has the string-valued
//! functions for values that are not JSON.
//!
//! ```no_run
//! # fn f() -> Result<(), rtm_guest::Error> {
//! use rtm_guest::kv;
//! use std::time::Duration;
//!
//! kv::set("motd", &"hello", Some(Duration::from_secs(60)))?;
//! let motd: Option<String> = kv::get("motd")?;
//! let visits = kv::incr("visits", 1)?;
//!
//! kv::list_push("history:lobby", &serde_json::json!({ "text": "hi" }), Some(100))?;
//! let last_ten: Vec<serde_json::Value> = kv::list_range("history:lobby", -10, -1)?;
//!
//! kv::hash_set("user:42", "name", &"Ada")?;
//! let name: Option<String> = kv::hash_get("user:42", "name")?;
//! let all: Vec<(String, String)> = kv::hash_get_all("user:42")?;
//! kv::del("motd")?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// The raw, string-valued kv functions generated from WIT.
pub use crate::bindings::rtm::plugin::kv as raw;

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value)
        .map_err(|e| Error::internal(format!("value does not serialize: {e}")))
}

fn decode<T: DeserializeOwned>(key: &str, json: &str) -> Result<T, Error> {
    serde_json::from_str(json)
        .map_err(|e| Error::internal(format!("kv value at {key:?} does not decode: {e}")))
}

/// The value at `key`, decoded.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    raw::get(key)?.map(|json| decode(key, &json)).transpose()
}

/// Stores `value` at `key`, expiring after `ttl` when given (millisecond precision).
pub fn set<T: Serialize + ?Sized>(
    key: &str,
    value: &T,
    ttl: Option<Duration>,
) -> Result<(), Error> {
    let ttl_ms = ttl.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1));
    raw::set(key, &encode(value)?, ttl_ms)
}

/// Deletes `key`; true if it existed.
pub fn del(key: &str) -> Result<bool, Error> {
    raw::del(key)
}

/// Adds `by` to the integer at `key` (0 when absent); returns the new value.
pub fn incr(key: &str, by: i64) -> Result<i64, Error> {
    raw::incr(key, by)
}

/// Appends `value` to the list at `key`, keeping only the last `max_len`
/// items when given (atomically). Returns the new length.
pub fn list_push<T: Serialize + ?Sized>(
    key: &str,
    value: &T,
    max_len: Option<u32>,
) -> Result<u64, Error> {
    raw::list_push(key, &encode(value)?, max_len)
}

/// Items `start..=stop` of the list at `key`, decoded; negative indexes count from the end.
pub fn list_range<T: DeserializeOwned>(key: &str, start: i64, stop: i64) -> Result<Vec<T>, Error> {
    raw::list_range(key, start, stop)?
        .iter()
        .map(|json| decode(key, json))
        .collect()
}

/// Keeps only items `start..=stop` of the list at `key`.
pub fn list_trim(key: &str, start: i64, stop: i64) -> Result<(), Error> {
    raw::list_trim(key, start, stop)
}

/// The value of `field` in the hash at `key`, decoded.
pub fn hash_get<T: DeserializeOwned>(key: &str, field: &str) -> Result<Option<T>, Error> {
    raw::hash_get(key, field)?
        .map(|json| decode(key, &json))
        .transpose()
}

/// Sets `field` of the hash at `key` to `value`.
pub fn hash_set<T: Serialize + ?Sized>(key: &str, field: &str, value: &T) -> Result<(), Error> {
    raw::hash_set(key, field, &encode(value)?)
}

/// Every field of the hash at `key`, values decoded.
pub fn hash_get_all<T: DeserializeOwned>(key: &str) -> Result<Vec<(String, T)>, Error> {
    raw::hash_get_all(key)?
        .into_iter()
        .map(|(field, json)| decode(key, &json).map(|v| (field, v)))
        .collect()
}
