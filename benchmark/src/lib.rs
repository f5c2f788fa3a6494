//! rtm-bench: a load harness that measures an rtm host (or any Socket.IO server) side
//! by side with another and tracks what each operation costs as load grows.
//!
//! Many clients live in one process on a lean Socket.IO client ([`client`]); scenarios
//! ([`scenario`]) offer open-loop load ([`pacer`]) and record into HDR histograms
//! ([`recorder`], [`latency`]) over a measured window that excludes ramp-up; CPU and
//! memory come from `/proc` ([`proc_stat`], [`measurement`]); [`report`] prints the
//! table and the JSON; [`run`] ties it together, [`sweep`] searches for the highest
//! sustained level; [`tenants`] points clients at a multi-tenant host's namespaces with
//! HS256 tokens; [`server_api`] publishes through the host's Server API;
//! [`redis_cluster`] starts a private Redis Cluster for a target to run on; [`soak`]
//! runs three nodes under faults and checks the invariants.

pub mod cli;
pub mod client;
pub mod fd_limit;
pub mod latency;
pub mod measurement;
pub mod node_peer;
pub mod pacer;
pub mod proc_stat;
pub mod progress;
pub mod recorder;
pub mod redis_cluster;
pub mod redis_stats;
pub mod report;
pub mod run;
pub mod scenario;
pub mod server_api;
pub mod soak;
pub mod source_addr;
pub mod spawn;
pub mod sweep;
pub mod target;
pub mod tenants;
