//! The per-tenant limits on clients (connections, event rate, rooms, members): their
//! environment settings, which are the single-tenant host's values and the base under a
//! tenants file's `[defaults.limits]`.

use serde::Serialize;

/// Limits on a tenant's clients. Every field is a setting (`LIMIT_*`) and a key of
/// `[defaults.limits]` / `[tenant.limits]`. The defaults are high enough that ordinary
/// applications (and the benchmark) never meet them; an operator hosting many tenants
/// sets real ones.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientLimits {
    /// Sockets of the tenant, cluster-wide on Redis (counted within about a second);
    /// a connect beyond it is refused with `quota_exceeded`. 0: no limit (and no
    /// counting through Redis).
    #[arg(
        long = "limit-max-connections",
        env = "LIMIT_MAX_CONNECTIONS",
        default_value_t = 0
    )]
    pub max_connections: u64,

    /// Client events per second per socket, sustained (presence and custom events);
    /// an event over the rate is answered `rate_limited` and not processed. 0: no limit.
    #[arg(
        long = "limit-events-per-second",
        env = "LIMIT_EVENTS_PER_SECOND",
        default_value_t = 0
    )]
    pub events_per_second: u32,

    /// Events one socket may send at once above the sustained rate.
    #[arg(long = "limit-events-burst", env = "LIMIT_EVENTS_BURST", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub events_burst: u32,

    /// Rooms one socket may have joined at once (`quota_exceeded` beyond).
    #[arg(
        long = "limit-rooms-per-socket",
        env = "LIMIT_ROOMS_PER_SOCKET",
        default_value_t = 64
    )]
    pub rooms_per_socket: u32,

    /// Registrations one room may hold, all nodes together (`quota_exceeded` beyond).
    #[arg(
        long = "limit-members-per-room",
        env = "LIMIT_MEMBERS_PER_ROOM",
        default_value_t = 100_000
    )]
    pub members_per_room: u64,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            max_connections: 0,
            events_per_second: 0,
            events_burst: 100,
            rooms_per_socket: 64,
            members_per_room: 100_000,
        }
    }
}
