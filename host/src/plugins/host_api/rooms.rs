//! `rtm:plugin/rooms`: Socket.IO room membership, through [`super::PluginHost`].

use super::PluginState;
use super::bindings::{WitError, rooms};

impl rooms::Host for PluginState {
    async fn join(
        &mut self,
        socket: String,
        room: String,
    ) -> wasmtime::Result<Result<(), WitError>> {
        Ok(match self.api.get() {
            Ok(api) => api.host.join(&socket, &room).await.map_err(Into::into),
            Err(e) => Err(e),
        })
    }

    async fn leave(
        &mut self,
        socket: String,
        room: String,
    ) -> wasmtime::Result<Result<(), WitError>> {
        Ok(match self.api.get() {
            Ok(api) => api.host.leave(&socket, &room).await.map_err(Into::into),
            Err(e) => Err(e),
        })
    }

    async fn members(&mut self, room: String) -> wasmtime::Result<Result<Vec<String>, WitError>> {
        Ok(match self.api.get() {
            Ok(api) => api.host.members(&room).await.map_err(Into::into),
            Err(e) => Err(e),
        })
    }

    async fn has(
        &mut self,
        socket: String,
        room: String,
    ) -> wasmtime::Result<Result<bool, WitError>> {
        Ok(match self.api.get() {
            Ok(api) => api.host.has(&socket, &room).await.map_err(Into::into),
            Err(e) => Err(e),
        })
    }
}
