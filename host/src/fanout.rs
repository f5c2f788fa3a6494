//! Fanout: the one way events leave this node. Presence and plugins emit through this
//! trait; the socketioxide implementation goes through the adapter, so with Redis every
//! node's sockets receive each emit once, and the callers never see socketioxide types.

use std::str::FromStr;

use async_trait::async_trait;
use serde_json::value::RawValue;
use socketioxide::{SocketIo, adapter::Adapter, socket::Sid};

/// An emit that could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error("not a socket id: {0}")]
    BadSocketId(String),
    #[error("broadcast failed: {0}")]
    Broadcast(String),
}

/// Emitting and room membership, cluster-wide where the adapter is.
#[async_trait]
pub trait Fanout: Send + Sync + 'static {
    /// Emit to every socket in `room` on every node, except `except` when given.
    async fn to_room(
        &self,
        room: &str,
        except: Option<&str>,
        event: &str,
        data: &RawValue,
    ) -> Result<(), FanoutError>;
    /// Emit to one socket, wherever it is connected.
    async fn to_socket(&self, sid: &str, event: &str, data: &RawValue) -> Result<(), FanoutError>;
    /// Emit to every socket of the namespace (the tenant).
    async fn to_all(&self, event: &str, data: &RawValue) -> Result<(), FanoutError>;
    /// Put a socket of this node in a Socket.IO room; false when it is not connected here.
    fn join_local(&self, sid: &str, room: &str) -> bool;
    /// Take a socket of this node out of a Socket.IO room.
    fn leave_local(&self, sid: &str, room: &str);
    /// Whether a socket of this node is in a room.
    fn in_room_local(&self, sid: &str, room: &str) -> bool;
    /// Socket ids in a room on every node.
    async fn members(&self, room: &str) -> Result<Vec<String>, FanoutError>;
}

fn sid(s: &str) -> Result<Sid, FanoutError> {
    Sid::from_str(s).map_err(|_| FanoutError::BadSocketId(s.to_owned()))
}

/// The Socket.IO room only socket `sid` is in. `~` is outside the room-id charset
/// ([`crate::presence::ids::is_valid_id`]), so neither a client's `presence:join` nor a
/// plugin's `rooms.join` can enter another socket's room and receive its emits.
pub fn socket_room(sid: &str) -> String {
    format!("~{sid}")
}

/// The private room of a socket id, once the id is known to be well formed.
fn private_room(s: &str) -> Result<String, FanoutError> {
    sid(s).map(|_| socket_room(s))
}

fn broadcast_err(e: impl std::fmt::Display) -> FanoutError {
    FanoutError::Broadcast(e.to_string())
}

#[async_trait]
impl<A: Adapter> Fanout for SocketIo<A> {
    async fn to_room(
        &self,
        room: &str,
        except: Option<&str>,
        event: &str,
        data: &RawValue,
    ) -> Result<(), FanoutError> {
        let op = self.to(room.to_owned());
        let op = match except {
            Some(s) => op.except(private_room(s)?),
            None => op,
        };
        op.emit(event, data).await.map_err(broadcast_err)
    }

    async fn to_socket(&self, s: &str, event: &str, data: &RawValue) -> Result<(), FanoutError> {
        self.to(private_room(s)?)
            .emit(event, data)
            .await
            .map_err(broadcast_err)
    }

    async fn to_all(&self, event: &str, data: &RawValue) -> Result<(), FanoutError> {
        self.emit(event, data).await.map_err(broadcast_err)
    }

    fn join_local(&self, s: &str, room: &str) -> bool {
        match sid(s).ok().and_then(|id| self.get_socket(id)) {
            Some(socket) => {
                socket.join(room.to_owned());
                true
            }
            None => false,
        }
    }

    fn leave_local(&self, s: &str, room: &str) {
        if let Some(socket) = sid(s).ok().and_then(|id| self.get_socket(id)) {
            socket.leave(room.to_owned());
        }
    }

    fn in_room_local(&self, s: &str, room: &str) -> bool {
        sid(s)
            .ok()
            .and_then(|id| self.get_socket(id))
            .is_some_and(|socket| socket.rooms().iter().any(|r| r == room))
    }

    async fn members(&self, room: &str) -> Result<Vec<String>, FanoutError> {
        let sockets = self
            .to(room.to_owned())
            .fetch_sockets()
            .await
            .map_err(broadcast_err)?;
        Ok(sockets.iter().map(|s| s.data().id.to_string()).collect())
    }
}
