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
    raw::set(key, &encode(value)?, ttl_ms(ttl))
}

/// A TTL in whole milliseconds for the host; a sub-millisecond TTL becomes 1 ms (0
/// would mean "no expiry" to some backends) and a huge one saturates.
fn ttl_ms(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1))
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Stored {
        text: String,
        n: i64,
        at: Option<u64>,
    }

    #[test]
    fn values_round_trip_through_their_json_encoding() {
        let v = Stored {
            text: "quote \" and newline \n".into(),
            n: -3,
            at: Some(u64::MAX),
        };
        let json = encode(&v).expect("encodes");
        assert_eq!(decode::<Stored>("k", &json).expect("decodes"), v);
        // Strings are stored as JSON strings, so other languages' SDKs read them back.
        assert_eq!(encode("Ada").expect("str"), "\"Ada\"");
        assert_eq!(decode::<String>("k", "\"Ada\"").expect("str"), "Ada");
        assert_eq!(decode::<Option<u8>>("k", "null").expect("null"), None);
    }

    #[test]
    fn a_stored_value_of_another_shape_is_internal_naming_the_key() {
        for stored in ["\"text\"", "{\"n\":1}", "not json", ""] {
            let err = decode::<Stored>("user:42", stored).expect_err(stored);
            assert_eq!(err.code, "internal", "{stored}");
            assert!(
                err.message
                    .starts_with("kv value at \"user:42\" does not decode"),
                "{stored}: {}",
                err.message
            );
        }
    }

    #[test]
    fn a_value_that_does_not_serialize_is_internal() {
        let bad: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
        let err = encode(&bad).expect_err("non-string keys");
        assert_eq!(err.code, "internal");
        assert!(
            err.message.starts_with("value does not serialize"),
            "{}",
            err.message
        );
    }

    #[test]
    fn ttls_are_whole_milliseconds_never_zero() {
        assert_eq!(ttl_ms(None), None);
        assert_eq!(ttl_ms(Some(Duration::from_secs(60))), Some(60_000));
        assert_eq!(ttl_ms(Some(Duration::from_micros(1_500))), Some(1));
        assert_eq!(ttl_ms(Some(Duration::from_nanos(1))), Some(1));
        assert_eq!(ttl_ms(Some(Duration::ZERO)), Some(1));
        assert_eq!(ttl_ms(Some(Duration::MAX)), Some(u64::MAX));
    }
}
