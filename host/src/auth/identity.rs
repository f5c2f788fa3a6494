//! What a verified token says: the user (`sub`), when it stops being valid (`exp`),
//! which rooms it may join (`rooms`) and what others see of it (`info`).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::AuthError;
use crate::presence::ids::is_valid_id;

/// Largest `info` claim, serialized.
pub const MAX_INFO_BYTES: usize = 1024;

/// The claims rtm reads; others are ignored.
#[derive(Debug, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default)]
    pub rooms: Option<Vec<String>>,
    #[serde(default)]
    pub info: Option<Value>,
}

/// A verified bearer.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub user: String,
    /// Seconds since the Unix epoch.
    pub exp: u64,
    /// Room patterns (exact ids or `prefix*`); `None` allows every room.
    pub rooms: Option<Vec<String>>,
    pub info: Option<Map<String, Value>>,
}

impl Identity {
    pub(super) fn from_claims(c: Claims) -> Result<Self, AuthError> {
        if !is_valid_id(&c.sub, 128) {
            return Err(AuthError::Claims(
                "sub must be 1..128 characters of [A-Za-z0-9_.:@-]".into(),
            ));
        }
        let info = match c.info {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => {
                let size = Value::Object(m.clone()).to_string().len();
                if size > MAX_INFO_BYTES {
                    return Err(AuthError::Claims(format!(
                        "info is {size} bytes, the limit is {MAX_INFO_BYTES}"
                    )));
                }
                Some(m)
            }
            Some(_) => return Err(AuthError::Claims("info must be a JSON object".into())),
        };
        Ok(Self {
            user: c.sub,
            exp: c.exp,
            rooms: c.rooms,
            info,
        })
    }

    /// Whether the token allows joining `room`.
    pub fn may_join(&self, room: &str) -> bool {
        match &self.rooms {
            None => true,
            Some(patterns) => patterns.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => room.starts_with(prefix),
                None => p == room,
            }),
        }
    }
}
