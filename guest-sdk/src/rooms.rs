//! Socket.IO room membership within the plugin's tenant.
//!
//! ```no_run
//! # fn f(ctx: rtm_guest::Ctx) -> Result<(), rtm_guest::Error> {
//! use rtm_guest::{rooms, Error};
//! if !rooms::has(&ctx.socket, "lobby")? {
//!     return Err(Error::new("not_joined", "join lobby first"));
//! }
//! rooms::join(&ctx.socket, "lobby:mods")?;
//! let sockets: Vec<String> = rooms::members("lobby")?;
//! rooms::leave(&ctx.socket, "lobby:mods")?;
//! # Ok(()) }
//! ```

use crate::Error;
use crate::bindings::rtm::plugin::rooms as raw;

/// Puts `socket` in `room`.
pub fn join(socket: &str, room: &str) -> Result<(), Error> {
    raw::join(socket, room)
}

/// Removes `socket` from `room`.
pub fn leave(socket: &str, room: &str) -> Result<(), Error> {
    raw::leave(socket, room)
}

/// Ids of the sockets in `room`, on every node.
pub fn members(room: &str) -> Result<Vec<String>, Error> {
    raw::members(room)
}

/// Whether `socket` is in `room`.
pub fn has(socket: &str, room: &str) -> Result<bool, Error> {
    raw::has(socket, room)
}
