//! Acting on a tenant's sockets from outside them (the Server API; any later entry
//! point): publish to a room, broadcast, read a room, disconnect a user or a
//! registration. One validation for all of them, and the same fan-out, presence store
//! and disconnect path the sockets use.

use std::collections::BTreeSet;

use serde_json::value::RawValue;

use super::Tenant;
use crate::fanout::{FanoutError, conn_room, user_room};
use crate::presence::ids::is_valid_id;
use crate::presence::store::Registration;

/// Socket.IO's own event names, which no application may emit.
const SOCKET_IO_RESERVED: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Prefixes of the host's own events (`presence:event`, `auth:refresh`, ...).
const HOST_PREFIXES: [&str; 3] = ["presence:", "rtm:", "auth:"];

/// Longest event name accepted.
const MAX_EVENT_LEN: usize = 128;

/// Why an outside action was refused; `code` is the PROTOCOL.md code.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    Invalid(String),
    #[error("event name {0:?} is reserved")]
    Reserved(String),
    #[error("{0}")]
    Unavailable(String),
}

impl ActionError {
    pub fn code(&self) -> &'static str {
        match self {
            ActionError::Invalid(_) => "invalid_payload",
            ActionError::Reserved(_) => "forbidden",
            ActionError::Unavailable(_) => "unavailable",
        }
    }
}

impl From<FanoutError> for ActionError {
    fn from(e: FanoutError) -> Self {
        match e {
            FanoutError::BadSocketId(s) => ActionError::Invalid(format!("not a socket id: {s}")),
            FanoutError::Broadcast(m) | FanoutError::Remote(m) => ActionError::Unavailable(m),
        }
    }
}

/// An event name an outside caller may emit.
pub fn check_event(event: &str) -> Result<(), ActionError> {
    if event.is_empty() || event.len() > MAX_EVENT_LEN {
        return Err(ActionError::Invalid(format!(
            "event must be 1..{MAX_EVENT_LEN} characters"
        )));
    }
    if SOCKET_IO_RESERVED.contains(&event) || HOST_PREFIXES.iter().any(|p| event.starts_with(p)) {
        return Err(ActionError::Reserved(event.to_owned()));
    }
    Ok(())
}

fn check_id<'a>(what: &str, id: &'a str) -> Result<&'a str, ActionError> {
    if is_valid_id(id, 128) {
        Ok(id)
    } else {
        Err(ActionError::Invalid(format!(
            "{what} must be 1..128 characters of [A-Za-z0-9_.:@-]"
        )))
    }
}

/// Members (registrations) and distinct users of a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomStats {
    pub members: usize,
    pub users: usize,
}

impl Tenant {
    /// Emits `event` to every socket of `room` on every node (except the socket holding
    /// registration `except_conn`).
    pub async fn publish(
        &self,
        room: &str,
        event: &str,
        data: &RawValue,
        except_conn: Option<&str>,
    ) -> Result<(), ActionError> {
        check_event(event)?;
        let room = check_id("room", room)?;
        match except_conn {
            None => self.fanout().to_room(room, None, event, data).await?,
            Some(conn) => {
                let conn = conn_room(check_id("exceptConnId", conn)?);
                self.fanout()
                    .to_room_except_room(room, &conn, event, data)
                    .await?;
            }
        }
        Ok(())
    }

    /// Emits `event` to every socket of the tenant on every node.
    pub async fn broadcast(&self, event: &str, data: &RawValue) -> Result<(), ActionError> {
        check_event(event)?;
        Ok(self.fanout().to_all(event, data).await?)
    }

    /// The room's live registrations, as `presence:snapshot` answers.
    pub async fn room_presence(&self, room: &str) -> Result<Vec<Registration>, ActionError> {
        let room = check_id("room", room)?;
        self.presence()
            .store()
            .snapshot(room)
            .await
            .map_err(|e| ActionError::Unavailable(e.to_string()))
    }

    pub async fn room_stats(&self, room: &str) -> Result<RoomStats, ActionError> {
        let members = self.room_presence(room).await?;
        let users: BTreeSet<&str> = members.iter().map(|r| r.user_id.as_str()).collect();
        Ok(RoomStats {
            members: members.len(),
            users: users.len(),
        })
    }

    /// Disconnects every socket of `user` on every node; their registrations leave as
    /// on any disconnect.
    pub async fn disconnect_user(&self, user: &str) -> Result<(), ActionError> {
        let user = check_id("userId", user)?;
        Ok(self.fanout().disconnect_room(&user_room(user)).await?)
    }

    /// Disconnects the socket holding registration `conn_id`, wherever it is.
    pub async fn disconnect_conn(&self, conn_id: &str) -> Result<(), ActionError> {
        let conn = check_id("connId", conn_id)?;
        Ok(self.fanout().disconnect_room(&conn_room(conn)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_socket_io_event_names_are_reserved() {
        for reserved in [
            "presence:event",
            "rtm:x",
            "auth:refresh",
            "connect",
            "disconnect",
            "newListener",
        ] {
            assert!(
                matches!(check_event(reserved), Err(ActionError::Reserved(_))),
                "{reserved}"
            );
        }
        assert!(matches!(check_event(""), Err(ActionError::Invalid(_))));
        assert!(matches!(
            check_event(&"e".repeat(129)),
            Err(ActionError::Invalid(_))
        ));
        for ok in ["chat:message", "order.updated", "presenceish"] {
            assert!(check_event(ok).is_ok(), "{ok}");
        }
    }
}
