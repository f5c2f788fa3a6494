//! Reading native presence: who is in a room.
//!
//! ```no_run
//! # fn f() -> Result<(), rtm_guest::Error> {
//! for member in rtm_guest::presence::snapshot("lobby")? {
//!     let name = member.state.get("name").and_then(|v| v.as_str()).unwrap_or("?");
//!     rtm_guest::log::info(&format!("{} ({name}) since {}", member.user_id, member.last_seen));
//! }
//! # Ok(()) }
//! ```

use crate::Error;
use crate::bindings::rtm::plugin::presence as raw;

/// One live presence registration.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The registration's id (stable across a `resume`).
    pub conn_id: String,
    pub user_id: String,
    /// The member's state object.
    pub state: serde_json::Value,
    pub epoch: u64,
    /// Milliseconds since the Unix epoch.
    pub last_seen: u64,
}

/// Every live registration in `room`, on every node.
pub fn snapshot(room: &str) -> Result<Vec<Member>, Error> {
    raw::snapshot(room)?
        .into_iter()
        .map(|m| {
            let state = serde_json::from_str(&m.state_json)
                .map_err(|e| Error::internal(format!("presence state does not decode: {e}")))?;
            Ok(Member {
                conn_id: m.conn_id,
                user_id: m.user_id,
                state,
                epoch: m.epoch,
                last_seen: m.last_seen,
            })
        })
        .collect()
}
