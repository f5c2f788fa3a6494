//! The scenarios, one module each, and what they share: the [`Env`] of a run (client
//! options, source addresses, the processes to measure) and a dispatcher running one
//! round of the chosen scenario.

pub mod ack;
pub mod chat;
pub mod connections;
pub mod drive;
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
use crate::target::Target;
use crate::tenants::{Signer, Tenancy};

/// Everything a scenario needs to know about the run and its target.
pub struct Env {
    pub args: Args,
    pub opts: ClientOptions,
    pub sources: Arc<SourceAddrs>,
    pub probe: Probe,
    /// Target label for reports.
    pub target: String,
    pub plugins_dir: Option<PathBuf>,
    /// The target's tenants and auth: per-client namespace and token.
    pub tenancy: Tenancy,
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
                server_pid: target.server_pid,
                redis_pid: target.redis_pid,
                redis_addr: target.redis_addr,
            },
            target: target.label.clone(),
            plugins_dir: target.plugins_dir.clone(),
            tenancy: target.tenancy.clone(),
            signer: target.tenancy.hs256_secret.as_deref().map(Signer::new),
        }
    }

    /// Connection options of the client `user_id` of room `room`: the run's own, or,
    /// when the target has tenants or auth, with the room's tenant namespace and a
    /// token for `user_id`.
    pub fn client_options(
        &self,
        room: usize,
        user_id: &str,
    ) -> Result<Cow<'_, ClientOptions>, jsonwebtoken::errors::Error> {
        if self.tenancy.is_plain() {
            return Ok(Cow::Borrowed(&self.opts));
        }
        let mut opts = self.opts.clone();
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

/// One round of `env.args.scenario` at its configured level.
pub async fn run_once(env: &Env) -> anyhow::Result<Measurement> {
    let args = &env.args;
    let measurement = match args.scenario {
        Scenario::Presence => {
            let session = presence::Session::setup(env).await?;
            session.measure(env, args.heartbeats_per_sec).await
        }
        Scenario::Chat => {
            let session = chat::Session::setup(env).await?;
            session.measure(env, args.messages_per_sec, None).await
        }
        Scenario::Connections => connections::run(env, args.connection_count()).await,
        Scenario::Storm => storm::run(env, args.connection_count()).await,
        Scenario::Reload => reload::run(env).await,
    };
    // Let the server finish tearing the round down before anyone measures it again.
    drive::quiesce(&env.probe, std::time::Duration::from_secs(10)).await;
    measurement
}
