//! One tenant on this node: what it owns alone (its presence service, plugin runtime,
//! key space, connection count, metrics) and what it currently allows (its [`Policy`]:
//! limits, auth, keys). Every entry point (sockets now, the HTTP API next) acts on a
//! tenant through this type, so publish and validation have one implementation.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use arc_swap::{ArcSwap, ArcSwapOption};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::connections::{ConnGuard, Connections};
use super::file::TenantConfig;
use crate::auth::{AuthError, Authenticator, Identity};
use crate::fanout::Fanout;
use crate::metrics::Metrics;
use crate::plugins::{KvBackend, PluginHost, Plugins, SharedEngine};
use crate::presence::{JoinGate, Presence};
use crate::webhooks::{Delivery, Webhooks};

/// What a tenant allows right now; swapped whole on reload, read per call.
pub struct Policy {
    pub cfg: TenantConfig,
    pub auth: Option<Arc<Authenticator>>,
}

impl Policy {
    pub fn new(cfg: TenantConfig) -> Result<Self, crate::auth::AuthConfigError> {
        let auth = cfg
            .auth
            .as_ref()
            .map(Authenticator::new)
            .transpose()?
            .map(Arc::new);
        Ok(Self { cfg, auth })
    }

    /// The quotas a join runs under, with the joiner's `info`.
    pub fn join_gate<'a>(&self, identity: Option<&'a Identity>) -> JoinGate<'a> {
        JoinGate {
            info: identity.and_then(|i| i.info.as_ref()),
            rooms_per_socket: self.cfg.limits.rooms_per_socket,
            members_per_room: self.cfg.limits.members_per_room,
        }
    }
}

/// What a tenant's plugin runtime is (re)built from.
pub struct PluginParts {
    pub engine: SharedEngine,
    pub host: Arc<dyn PluginHost>,
    pub kv: KvBackend,
}

/// What a tenant's webhooks are (re)started with: the node's delivery settings and client.
pub struct HookParts {
    pub delivery: Delivery,
    pub client: reqwest::Client,
}

pub struct Tenant {
    pub id: String,
    namespaces: Vec<String>,
    key_prefix: String,
    presence: Arc<Presence>,
    plugins: RwLock<Plugins>,
    plugin_parts: PluginParts,
    policy: ArcSwap<Policy>,
    connections: Arc<Connections>,
    fanout: Arc<dyn Fanout>,
    metrics: Arc<Metrics>,
    /// The webhook queue, when the tenant has a receiver; swapped when it changes.
    webhooks: ArcSwapOption<Webhooks>,
    hook_parts: HookParts,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Everything [`Tenant::new`] takes; built by the node (`tenancy::NodeParts`).
pub struct TenantParts {
    pub namespaces: Vec<String>,
    pub key_prefix: String,
    pub presence: Arc<Presence>,
    pub plugins: Plugins,
    pub plugin_parts: PluginParts,
    pub policy: Policy,
    pub fanout: Arc<dyn Fanout>,
    pub metrics: Arc<Metrics>,
    pub hooks: HookParts,
}

impl Tenant {
    pub fn new(id: String, p: TenantParts) -> Arc<Self> {
        let webhooks = p.policy.cfg.webhook.as_ref().map(|cfg| {
            Webhooks::start(
                &id,
                cfg,
                &p.hooks.delivery,
                p.hooks.client.clone(),
                p.metrics.webhooks.clone(),
            )
        });
        let tenant = Arc::new(Self {
            id,
            namespaces: p.namespaces,
            key_prefix: p.key_prefix,
            presence: p.presence,
            plugins: RwLock::new(p.plugins),
            plugin_parts: p.plugin_parts,
            policy: ArcSwap::from_pointee(p.policy),
            connections: Arc::new(Connections::default()),
            fanout: p.fanout,
            metrics: p.metrics,
            webhooks: ArcSwapOption::new(webhooks),
            hook_parts: p.hooks,
            tasks: Mutex::new(Vec::new()),
        });
        // Plugins see every presence event of the tenant; looked up per event because a
        // reload may replace the runtime.
        let weak = Arc::downgrade(&tenant);
        tenant.presence.observe(Box::new(move |event| {
            if let Some(t) = weak.upgrade() {
                t.plugins().on_presence(event);
            }
        }));
        // Webhooks hear every change this node made (looked up per change: a reload may
        // replace or remove the receiver).
        let weak = Arc::downgrade(&tenant);
        tenant.presence.observe_changes(Box::new(move |change| {
            if let Some(hooks) = weak.upgrade().and_then(|t| t.webhooks.load_full()) {
                hooks.offer(change);
            }
        }));
        tenant
    }

    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Prefix of every Redis key of the tenant.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    pub fn presence(&self) -> &Arc<Presence> {
        &self.presence
    }

    pub fn plugins(&self) -> Plugins {
        self.plugins
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    pub fn fanout(&self) -> &Arc<dyn Fanout> {
        &self.fanout
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn connections(&self) -> &Arc<Connections> {
        &self.connections
    }

    /// Keeps a background task of the tenant (reaper, connection sync) to stop at close.
    pub fn own_task(&self, task: JoinHandle<()>) {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
    }

    /// Checks a connecting socket's token: `Ok(None)` when the tenant has no auth.
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Option<Identity>, AuthError> {
        let Some(auth) = self.policy().auth.clone() else {
            return Ok(None);
        };
        let token = token.filter(|t| !t.is_empty()).ok_or(AuthError::Missing)?;
        auth.verify(token).await.map(Some)
    }

    /// A place for one more socket, or `None` when the tenant is at `max_connections`.
    pub fn admit(&self) -> Option<ConnGuard> {
        let max = self.policy().cfg.limits.max_connections;
        self.connections.try_admit(max)
    }

    /// Applies a changed configuration: limits and auth at once (next call), the plugin
    /// runtime rebuilt when its folder or limits changed.
    pub fn reconfigure(&self, cfg: TenantConfig) -> anyhow::Result<()> {
        let policy = Policy::new(cfg)?;
        if policy.cfg.plugins != self.policy().cfg.plugins {
            let fresh = Plugins::launch_on(
                &self.plugin_parts.engine,
                policy.cfg.plugins.clone(),
                self.plugin_parts.host.clone(),
                self.plugin_parts.kv.clone(),
                &self.id,
            )?;
            let old = std::mem::replace(
                &mut *self.plugins.write().unwrap_or_else(PoisonError::into_inner),
                fresh,
            );
            old.shutdown();
            tracing::info!(tenant = %self.id, "plugin runtime rebuilt for changed plugin settings");
        }
        if policy.cfg.webhook != self.policy().cfg.webhook {
            // The old queue is dropped with its last reference: what it holds is still sent.
            let fresh = policy
                .cfg
                .webhook
                .as_ref()
                .map(|cfg| self.start_webhooks(cfg));
            self.webhooks.store(fresh);
            tracing::info!(tenant = %self.id, "webhook receiver changed");
        }
        self.policy.store(Arc::new(policy));
        Ok(())
    }

    fn start_webhooks(&self, cfg: &crate::tenancy::file::WebhookConfig) -> Arc<Webhooks> {
        Webhooks::start(
            &self.id,
            cfg,
            &self.hook_parts.delivery,
            self.hook_parts.client.clone(),
            self.metrics.webhooks.clone(),
        )
    }

    /// Stops the tenant's background tasks and plugins (its sockets are closed first by
    /// the caller, so their registrations leave as on any disconnect).
    pub fn close(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
        self.webhooks.store(None);
        self.plugins().shutdown();
    }

    /// What `/admin/tenants` shows of it: never a secret.
    pub fn admin_json(&self) -> Value {
        let policy = self.policy();
        let cfg = &policy.cfg;
        let p = &cfg.plugins;
        let plugins: Vec<Value> = self.plugins().admin_json()["plugins"]
            .as_array()
            .map(|list| list.iter().map(|p| p["name"].clone()).collect())
            .unwrap_or_default();
        json!({
            "id": self.id,
            "namespaces": self.namespaces,
            "connections": self.connections.local(),
            "connectionsCluster": self.connections.cluster(),
            "plugins": plugins,
            "pluginsReady": self.plugins().ready(),
            "auth": cfg.auth.as_ref().map_or("none", |a| a.key.kind()),
            "apiKeys": cfg.api_keys.len(),
            "webhook": cfg.webhook.as_ref().map(|w| json!({ "events": w.events })),
            "limits": cfg.limits,
            "pluginLimits": {
                "memory_mb": p.memory_mb,
                "cpu_ms": p.cpu_ms,
                "timeout_ms": p.timeout_ms,
                "max_concurrency": p.max_concurrency,
                "kv_max_bytes": p.kv_max_bytes,
                "kv_max_keys": p.kv_max_keys,
                "emits_per_call": p.emits_per_call,
                "log_bytes_per_call": p.log_bytes_per_call,
                "reply_max_bytes": p.reply_max_bytes,
            },
        })
    }
}
