//! The scenarios, one module each, and what they share: the [`Env`] of a run (client
//! options, the target's nodes, source addresses, the processes to measure) and a
//! dispatcher running one round of the chosen scenario.

pub mod ack;
pub mod chat;
pub mod connections;
pub mod drive;
pub mod fanout;
pub mod population;
pub mod presence;
pub mod reload;
pub mod storm;

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::{Args, Scenario};
use crate::client::ClientOptions;
use crate::measurement::{Measurement, Probe};
use crate::source_addr::SourceAddrs;
use crate::target::{Node, Target};
use crate::tenants::{Signer, Tenancy};

/// Everything a scenario needs to know about the run and its target.
pub struct Env {
    pub args: Args,
    pub opts: ClientOptions,
    pub sources: Arc<SourceAddrs>,
    pub probe: Probe,
    /// Target label for reports.
    pub target: String,
    /// The target's nodes, the first one's in `opts`: clients spread over them.
    pub nodes: Vec<Node>,
    pub plugins_dir: Option<PathBuf>,
    /// The target's tenants and auth: per-client namespace and token.
    pub tenancy: Tenancy,
    /// The target's Server API key, when the scenario calls the API.
    pub api_key: Option<String>,
    /// Signs the clients' tokens when the target has HS256 auth.
    signer: Option<Signer>,
}

impl Env {
    pub fn new(args: &Args, target: &Target) -> Self {
        Self {
            args: args.clone(),
            opts: ClientOptions {
                addr: target.addr,
                authority: target.authority.clone(),
                path: args.path.clone(),
                namespace: args.namespace.clone(),
                auth: None,
                connect_timeout: args.connect_timeout,
                ack_timeout: args.ack_timeout,
            },
            sources: Arc::new(SourceAddrs::new(target.addr.ip(), args.source_addrs)),
            probe: Probe {
                server_pids: target.server_pids.clone(),
                redis_pids: target.redis_pids.clone(),
                redis_master_pids: target.redis_master_pids.clone(),
                redis_addrs: target.redis_addrs.clone(),
            },
            target: target.label.clone(),
            nodes: target.nodes(),
            plugins_dir: target.plugins_dir.clone(),
            tenancy: target.tenancy.clone(),
            api_key: target.api_key.clone(),
            signer: target.tenancy.hs256_secret.as_deref().map(Signer::new),
        }
    }

    /// Connection options of the client `user_id` of room `room` on node `node`: the
    /// run's own, or that node's address, and, when the target has tenants or auth, the
    /// room's tenant namespace and a token for `user_id`.
    pub fn client_options(
        &self,
        room: usize,
        node: usize,
        user_id: &str,
    ) -> Result<Cow<'_, ClientOptions>, jsonwebtoken::errors::Error> {
        let other_node = self.nodes.get(node).filter(|_| node > 0);
        if self.tenancy.is_plain() && other_node.is_none() {
            return Ok(Cow::Borrowed(&self.opts));
        }
        let mut opts = self.opts.clone();
        if let Some(n) = other_node {
            opts.addr = n.addr;
            opts.authority = n.authority.clone();
        }
        if let Some(namespace) = self.tenancy.namespace_of(room) {
            opts.namespace = namespace;
        }
        if let Some(signer) = &self.signer {
            opts.auth = Some(signer.auth_payload(user_id)?);
        }
        Ok(Cow::Owned(opts))
    }

    /// A progress label.
    pub fn label(&self, what: &str) -> String {
        format!("{} {} {what}", self.args.scenario.name(), self.target)
    }
}

/// One round (`round`, from 0) of `env.args.scenario` at its configured level: one
/// measurement, or one per path for `fanout`, always in the same order.
pub async fn run_once(env: &Env, round: u32) -> anyhow::Result<Vec<Measurement>> {
    let args = &env.args;
    let one = |m: Measurement| vec![m];
    let measurements = match args.scenario {
        Scenario::Presence => {
            let session = presence::Session::setup(env).await?;
            session.measure(env, args.heartbeats_per_sec).await.map(one)
        }
        Scenario::Chat => {
            let session = chat::Session::setup(env).await?;
            session
                .measure(env, args.messages_per_sec, None)
                .await
                .map(one)
        }
        Scenario::Connections => connections::run(env, args.connection_count())
            .await
            .map(one),
        Scenario::Storm => storm::run(env, args.connection_count()).await.map(one),
        Scenario::Reload => reload::run(env).await.map(one),
        Scenario::Fanout => fanout::run(env, round).await,
        Scenario::Soak => Err(anyhow::anyhow!(
            "soak starts its own nodes and runs once (crate::soak)"
        )),
    };
    // Let the server finish tearing the round down before anyone measures it again.
    drive::quiesce(&env.probe, std::time::Duration::from_secs(10)).await;
    measurements
}
