//! `rtm:plugin/presence`: read-only presence snapshots, through [`super::PluginHost`].

use super::PluginState;
use super::bindings::{WitError, presence};

impl presence::Host for PluginState {
    async fn snapshot(
        &mut self,
        room: String,
    ) -> wasmtime::Result<Result<Vec<presence::Member>, WitError>> {
        let api = match self.api.get() {
            Ok(api) => api,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match api.host.presence_snapshot(&room).await {
            Ok(members) => Ok(members
                .into_iter()
                .map(|m| presence::Member {
                    conn_id: m.conn_id,
                    user_id: m.user_id,
                    state_json: m.state.to_string(),
                    epoch: m.epoch,
                    last_seen: m.last_seen_ms,
                })
                .collect()),
            Err(e) => Err(e.into()),
        })
    }
}
