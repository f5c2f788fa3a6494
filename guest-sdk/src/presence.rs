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
    raw::snapshot(room)?.into_iter().map(member).collect()
}

/// One member as the host sent it, its state decoded.
fn member(m: raw::Member) -> Result<Member, Error> {
    let state = serde_json::from_str(&m.state_json)
        .map_err(|e| Error::internal(format!("presence state does not decode: {e}")))?;
    Ok(Member {
        conn_id: m.conn_id,
        user_id: m.user_id,
        state,
        epoch: m.epoch,
        last_seen: m.last_seen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_member(state_json: &str) -> raw::Member {
        raw::Member {
            conn_id: "c1".into(),
            user_id: "ada".into(),
            state_json: state_json.into(),
            epoch: 3,
            last_seen: 1_732_900_000_000,
        }
    }

    #[test]
    fn a_member_keeps_every_field_and_its_state_decoded() {
        let m = member(raw_member(r#"{"mood":"ok","typing":true,"n":[1,2]}"#)).expect("decodes");
        assert_eq!(
            m,
            Member {
                conn_id: "c1".into(),
                user_id: "ada".into(),
                state: serde_json::json!({"mood": "ok", "typing": true, "n": [1, 2]}),
                epoch: 3,
                last_seen: 1_732_900_000_000,
            }
        );
        assert_eq!(
            member(raw_member("{}")).expect("empty state").state,
            serde_json::json!({})
        );
    }

    #[test]
    fn a_state_that_does_not_decode_is_internal() {
        let err = member(raw_member("{not json")).expect_err("bad state");
        assert_eq!(err.code, "internal");
        assert!(
            err.message.starts_with("presence state does not decode"),
            "{}",
            err.message
        );
    }
}
