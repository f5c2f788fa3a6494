//! Fanout: the one way events leave this node. Presence and plugins emit through this
//! trait; the socketioxide implementation goes through the adapter, so with Redis every
//! node's sockets receive each emit once, and the callers never see socketioxide types.

use std::str::FromStr;

use async_trait::async_trait;
use serde_json::value::RawValue;
use socketioxide::extract::SocketRef;
use socketioxide::operators::BroadcastOperators;
use socketioxide::{BroadcastError, SocketIo, adapter::Adapter, socket::Sid};

/// An emit that could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error("not a socket id: {0}")]
    BadSocketId(String),
    #[error("broadcast failed: {0}")]
    Broadcast(String),
    /// Publishing to the other nodes failed (Redis unreachable or too slow); the adapter
    /// publishes before it delivers locally, so this node's sockets did not get it either.
    #[error("publishing to the other nodes failed: {0}")]
    Remote(String),
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
    /// Emit to the sockets in `room` on this node only.
    async fn to_room_local(
        &self,
        room: &str,
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
    /// Emit to every socket in `room` on every node except those in the room `except`
    /// (a registration's room, [`conn_room`]).
    async fn to_room_except_room(
        &self,
        room: &str,
        except: &str,
        event: &str,
        data: &RawValue,
    ) -> Result<(), FanoutError>;
    /// Disconnect every socket in `room` on every node (their disconnect handlers run
    /// as on any disconnect).
    async fn disconnect_room(&self, room: &str) -> Result<(), FanoutError>;
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

/// The room of every socket that presented user `user` (token `sub`, or a presence join
/// as that user), so the Server API can disconnect a user on every node. Outside the
/// room-id charset, like [`socket_room`].
pub fn user_room(user: &str) -> String {
    format!("~u:{user}")
}

/// The room of the one socket holding registration `conn_id`.
pub fn conn_room(conn_id: &str) -> String {
    format!("~c:{conn_id}")
}

/// The private room of a socket id, once the id is known to be well formed.
fn private_room(s: &str) -> Result<String, FanoutError> {
    sid(s).map(|_| socket_room(s))
}

fn broadcast_err(e: impl std::fmt::Display) -> FanoutError {
    FanoutError::Broadcast(e.to_string())
}

/// A broadcast to many sockets whose only failures are single sockets' (its queue
/// towards a slow client is full, `SOCKETIO_MAX_BUFFER_PACKETS`, or it is closing)
/// reached everyone else: that is the slow socket's loss, not the emit's, so the sender
/// is not told it failed (a chat message acked `ok`, an API publish answered 200).
/// Only an adapter or serialization failure fails the emit.
fn settle_broadcast(result: Result<(), BroadcastError>) -> Result<(), FanoutError> {
    match result {
        Ok(()) => Ok(()),
        Err(BroadcastError::Socket(errors)) => {
            slow_sockets::dropped(errors.len());
            Ok(())
        }
        Err(BroadcastError::Adapter(e)) => Err(FanoutError::Remote(e.to_string())),
        Err(e) => Err(broadcast_err(e)),
    }
}

/// Packets dropped towards slow sockets, reported at most once per interval so a busy
/// room with one stalled member cannot flood the log.
mod slow_sockets {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    const EVERY: Duration = Duration::from_secs(5);
    static PENDING: Mutex<(u64, Option<Instant>)> = Mutex::new((0, None));

    pub(super) fn dropped(n: usize) {
        let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        pending.0 += n as u64;
        let due = pending.1.is_none_or(|at| at.elapsed() >= EVERY);
        if due {
            tracing::warn!(
                packets = pending.0,
                "packets dropped towards sockets whose queue is full (SOCKETIO_MAX_BUFFER_PACKETS) or that are closing; the other recipients got them"
            );
            *pending = (0, Some(Instant::now()));
        }
    }
}

/// A tenant's sockets: the namespaces it is served on (one, or `/<id>` and `/` for a
/// tenant named `default`). Each call looks its namespace up, so a tenant removed from
/// the node emits to nobody instead of to a stale namespace.
pub struct NsFanout<A: Adapter> {
    io: SocketIo<A>,
    namespaces: Vec<String>,
}

impl<A: Adapter> NsFanout<A> {
    pub fn new(io: SocketIo<A>, namespaces: Vec<String>) -> Self {
        Self { io, namespaces }
    }

    fn each(&self) -> impl Iterator<Item = BroadcastOperators<A>> + '_ {
        self.namespaces.iter().filter_map(|ns| self.io.of(ns))
    }

    /// Emits to `room` on every node, leaving out the sockets of room `except`.
    async fn emit_room(
        &self,
        room: &str,
        except: Option<String>,
        event: &str,
        data: &RawValue,
    ) -> Result<(), FanoutError> {
        for ns in self.each() {
            let op = ns.to(room.to_owned());
            let op = match &except {
                Some(except) => op.except(except.clone()),
                None => op,
            };
            settle_broadcast(op.emit(event, data).await)?;
        }
        Ok(())
    }

    fn local_socket(&self, s: &str) -> Option<SocketRef<A>> {
        let id = sid(s).ok()?;
        self.each().find_map(|ns| ns.get_socket(id))
    }
}

#[async_trait]
impl<A: Adapter> Fanout for NsFanout<A> {
    async fn to_room(
        &self,
        room: &str,
        except: Option<&str>,
        event: &str,
        data: &RawValue,
    ) -> Result<(), FanoutError> {
        let except = except.map(private_room).transpose()?;
        self.emit_room(room, except, event, data).await
    }

    async fn to_room_local(
        &self,
        room: &str,
        event: &str,
        data: &RawValue,
    ) -> Result<(), FanoutError> {
        for ns in self.each() {
            settle_broadcast(ns.to(room.to_owned()).local().emit(event, data).await)?;
        }
        Ok(())
    }

    async fn to_socket(&self, s: &str, event: &str, data: &RawValue) -> Result<(), FanoutError> {
        let private = private_room(s)?;
        for ns in self.each() {
            ns.to(private.clone())
                .emit(event, data)
                .await
                .map_err(broadcast_err)?;
        }
        Ok(())
    }

    async fn to_all(&self, event: &str, data: &RawValue) -> Result<(), FanoutError> {
        for ns in self.each() {
            settle_broadcast(ns.emit(event, data).await)?;
        }
        Ok(())
    }

    fn join_local(&self, s: &str, room: &str) -> bool {
        match self.local_socket(s) {
            Some(socket) => {
                socket.join(room.to_owned());
                true
            }
            None => false,
        }
    }

    fn leave_local(&self, s: &str, room: &str) {
        if let Some(socket) = self.local_socket(s) {
            socket.leave(room.to_owned());
        }
    }

    fn in_room_local(&self, s: &str, room: &str) -> bool {
        self.local_socket(s)
            .is_some_and(|socket| socket.rooms().iter().any(|r| r == room))
    }

    async fn to_room_except_room(
        &self,
        room: &str,
        except: &str,
        event: &str,
        data: &RawValue,
    ) -> Result<(), FanoutError> {
        self.emit_room(room, Some(except.to_owned()), event, data)
            .await
    }

    async fn disconnect_room(&self, room: &str) -> Result<(), FanoutError> {
        for ns in self.each() {
            ns.to(room.to_owned())
                .disconnect()
                .await
                .map_err(broadcast_err)?;
        }
        Ok(())
    }

    async fn members(&self, room: &str) -> Result<Vec<String>, FanoutError> {
        let mut out = Vec::new();
        for ns in self.each() {
            let sockets = ns
                .to(room.to_owned())
                .fetch_sockets()
                .await
                .map_err(broadcast_err)?;
            out.extend(sockets.iter().map(|s| s.data().id.to_string()));
        }
        Ok(out)
    }
}
