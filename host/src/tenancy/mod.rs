//! Tenants: the apps one node serves. [`Tenants`] owns the set (from the environment, or
//! from `TENANTS_FILE` with reloads on change and on SIGHUP); [`NodeParts`] is what the
//! node shares among them (one store backend, one wasmtime engine, one Socket.IO
//! instance behind [`Mount`]); a [`Tenant`] owns what is its alone.

pub mod connections;
pub mod file;
pub mod limits;
pub mod publish;
pub mod secret;
pub mod tenant;
mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use serde_json::{Value, json};

use crate::auth::AuthConfig;
use crate::backend::RedisBackend;
use crate::fanout::Fanout;
use crate::metrics::Metrics;
use crate::plugin_bridge::PluginBridge;
use crate::plugins::{KvBackend, PluginConfig, Plugins, SharedEngine};
use crate::presence::batch::{BatchConfig, Batcher, SharedBatching};
use crate::presence::clock::now_ms;
use crate::presence::layout::Layout;
use crate::presence::memory::MemoryStore;
use crate::presence::redis::RedisStore;
use crate::presence::request::Limits;
use crate::presence::store::PresenceStore;
use crate::presence::{Presence, reaper};
use file::TenantConfig;
use limits::ClientLimits;
use tenant::{PluginParts, TenantParts};
pub use tenant::{Policy, Tenant};

/// The tenant of a host without a tenants file.
pub const DEFAULT_TENANT: &str = "default";

/// `[a-z0-9][a-z0-9-]{0,31}`.
pub fn is_valid_tenant_id(id: &str) -> bool {
    let b = id.as_bytes();
    (1..=32).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Where a node keeps presence.
pub enum StoreKind {
    Memory,
    Redis {
        backend: Box<RedisBackend>,
        batching: BatchConfig,
        /// Heartbeat queue and pool lanes every tenant's batcher shares.
        shared: SharedBatching,
    },
}

/// What every tenant of the node shares, and how a tenant is built from it.
pub struct NodeParts {
    pub node_id: String,
    pub store: StoreKind,
    pub engine: SharedEngine,
    pub presence_limits: Limits,
    pub ttl_ms: u64,
    /// `PRESENCE_PREFIX`; with a tenants file each tenant's keys are under `<prefix><id>:`.
    pub prefix: String,
    pub per_tenant_keys: bool,
    pub resume_grace: Duration,
    pub reaper_interval: Duration,
    pub reaper_lookback: Duration,
    /// How webhooks are batched and retried (`WEBHOOK_*`), for every tenant.
    pub webhook_delivery: crate::webhooks::Delivery,
    /// One HTTP client (one connection pool) for every tenant's webhooks.
    pub webhook_client: reqwest::Client,
}

/// The Socket.IO side of tenants: serving a tenant's namespaces, and closing them.
#[async_trait]
pub trait Mount: Send + Sync + 'static {
    fn fanout(&self, namespaces: &[String]) -> Arc<dyn Fanout>;
    /// Starts serving the tenant's namespaces.
    async fn mount(&self, tenant: &Arc<Tenant>) -> anyhow::Result<()>;
    /// Disconnects the tenant's sockets on this node and stops serving its namespaces.
    async fn unmount(&self, tenant: &Tenant);
}

impl NodeParts {
    fn key_prefix(&self, id: &str) -> String {
        if self.per_tenant_keys {
            format!("{}{id}:", self.prefix)
        } else {
            self.prefix.clone()
        }
    }

    /// Keys must carry hash tags: a tenants file, or a Redis Cluster.
    fn tagged_keys(&self) -> bool {
        self.per_tenant_keys
            || matches!(&self.store, StoreKind::Redis { backend, .. } if backend.cluster)
    }

    /// A tenant's key layout: the original flat one for the single-tenant host on one
    /// Redis; hash tags per tenant and room bucket with a tenants file or on a Redis
    /// Cluster, so every atomic step stays in one slot.
    fn layout(&self, key_prefix: &str, tenant: &str) -> Layout {
        if self.tagged_keys() {
            Layout::tagged(key_prefix, tenant)
        } else {
            Layout::flat(key_prefix)
        }
    }

    async fn store(
        &self,
        key_prefix: &str,
        tenant: &str,
    ) -> anyhow::Result<Arc<dyn PresenceStore>> {
        Ok(match &self.store {
            StoreKind::Memory => Arc::new(MemoryStore::new(self.ttl_ms)),
            StoreKind::Redis {
                backend,
                batching,
                shared,
            } => {
                let store = RedisStore::with_layout(
                    backend.pool.clone(),
                    self.layout(key_prefix, tenant),
                    self.ttl_ms,
                )
                .await
                .context("loading presence scripts")?;
                // Heartbeats and joins from many sockets share script calls.
                Arc::new(Batcher::sharing(Arc::new(store), *batching, shared))
            }
        })
    }

    fn kv(&self, key_prefix: &str) -> KvBackend {
        match &self.store {
            StoreKind::Memory => KvBackend::memory(),
            StoreKind::Redis { backend, .. } if self.tagged_keys() => {
                KvBackend::redis_tagged(backend.pool.clone(), key_prefix.to_owned())
            }
            StoreKind::Redis { backend, .. } => {
                KvBackend::redis(backend.pool.clone(), key_prefix.to_owned())
            }
        }
    }

    /// Builds a tenant (not yet serving: see [`Mount::mount`]).
    async fn build(&self, cfg: TenantConfig, mount: &dyn Mount) -> anyhow::Result<Arc<Tenant>> {
        let namespaces = if !self.per_tenant_keys {
            vec!["/".to_owned()]
        } else if cfg.id == DEFAULT_TENANT {
            vec![format!("/{}", cfg.id), "/".to_owned()]
        } else {
            vec![format!("/{}", cfg.id)]
        };
        let key_prefix = self.key_prefix(&cfg.id);
        let fanout = mount.fanout(&namespaces);
        let presence = Arc::new(Presence::new(
            self.store(&key_prefix, &cfg.id).await?,
            fanout.clone(),
            self.presence_limits,
            self.node_id.clone(),
            self.resume_grace,
        ));
        let host = Arc::new(PluginBridge {
            fanout: fanout.clone(),
            presence: presence.clone(),
        });
        let kv = self.kv(&key_prefix);
        let policy = Policy::new(cfg.clone())?;
        // Plugins load in the background: the tenant serves presence meanwhile and
        // `/readyz` says 503 until every file has been tried.
        let plugins = Plugins::launch_on(
            &self.engine,
            cfg.plugins.clone(),
            host.clone(),
            kv.clone(),
            &cfg.id,
        )
        .with_context(|| format!("starting the plugin runtime of tenant {}", cfg.id))?;
        let metrics = Arc::new(Metrics::for_tenant(&cfg.id));
        let tenant = Tenant::new(
            cfg.id.clone(),
            TenantParts {
                namespaces,
                key_prefix: key_prefix.clone(),
                presence: presence.clone(),
                plugins,
                plugin_parts: PluginParts {
                    engine: self.engine.clone(),
                    host,
                    kv,
                },
                policy,
                fanout,
                metrics: metrics.clone(),
                hooks: tenant::HookParts {
                    delivery: self.webhook_delivery.clone(),
                    client: self.webhook_client.clone(),
                },
            },
        );
        tenant.own_task(reaper::spawn(
            presence,
            self.reaper_interval,
            self.reaper_lookback,
            metrics.reaped.clone(),
        ));
        if let StoreKind::Redis { backend, .. } = &self.store {
            tenant.own_task(tokio::spawn(sync_connections(
                Arc::downgrade(&tenant),
                self.per_tenant_keys,
                backend.pool.clone(),
                format!("{key_prefix}conns"),
                self.node_id.clone(),
            )));
        }
        Ok(tenant)
    }
}

/// Publishes this node's count of a tenant's sockets every second and reads the others'.
/// With a tenants file always (`/admin/tenants` shows the cluster-wide count); the
/// single-tenant host only while it has a connection limit, so it writes no key of its
/// own otherwise.
async fn sync_connections(
    tenant: std::sync::Weak<Tenant>,
    always: bool,
    pool: fred::clients::Pool,
    key: String,
    node: String,
) {
    let mut tick = tokio::time::interval(connections::SYNC_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut published = false;
    loop {
        tick.tick().await;
        let Some(tenant) = tenant.upgrade() else {
            return;
        };
        let conns = tenant.connections().clone();
        let limited = always || tenant.policy().cfg.limits.max_connections > 0;
        drop(tenant);
        if !limited {
            if published {
                conns.forget(&pool, &key, &node).await;
                published = false;
            }
            continue;
        }
        match conns.sync(&pool, &key, &node).await {
            Ok(()) => published = true,
            Err(e) => {
                tracing::debug!(key, error = %e, "connection count sync failed; retrying next second");
            }
        }
    }
}

/// The host's own settings, under every tenant of a file (and the single tenant).
#[derive(Clone)]
pub struct BaseSettings {
    pub limits: ClientLimits,
    pub plugins: PluginConfig,
    pub auth: Option<AuthConfig>,
    /// The single tenant's Server API keys (`API_KEY`).
    pub api_keys: Vec<secret::Secret>,
    /// The single tenant's webhook receiver (`WEBHOOK_URL`).
    pub webhook: Option<file::WebhookConfig>,
}

#[derive(Default)]
struct Status {
    loaded_at: i64,
    error: Option<String>,
}

/// The node's tenants.
pub struct Tenants {
    parts: NodeParts,
    mount: Arc<dyn Mount>,
    base: BaseSettings,
    file: Option<PathBuf>,
    map: RwLock<BTreeMap<String, Arc<Tenant>>>,
    status: Mutex<Status>,
    /// One reload at a time (file events and SIGHUP may coincide).
    reloading: tokio::sync::Mutex<()>,
}

impl Tenants {
    /// Builds and mounts the tenants. A tenants file that does not load is an error here
    /// (the caller exits 2); later reloads keep the old tenants instead.
    pub async fn start(
        parts: NodeParts,
        mount: Arc<dyn Mount>,
        base: BaseSettings,
        file: Option<PathBuf>,
    ) -> anyhow::Result<Arc<Self>> {
        let configs = match &file {
            None => vec![TenantConfig::single(&base)],
            Some(path) => load_file(path, &base).map_err(anyhow::Error::new)?,
        };
        let tenants = Arc::new(Self {
            parts,
            mount,
            base,
            file,
            map: RwLock::new(BTreeMap::new()),
            status: Mutex::new(Status::default()),
            reloading: tokio::sync::Mutex::new(()),
        });
        for cfg in configs {
            tenants.add(cfg).await?;
        }
        tenants.status().loaded_at = now_ms();
        if let Some(path) = tenants.file.clone() {
            watch::start(&tenants, &path)?;
        }
        Ok(tenants)
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn map(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Tenant>>> {
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Tenant>> {
        self.map().get(id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Tenant>> {
        self.map().values().cloned().collect()
    }

    /// True once every tenant's plugins finished their initial load.
    pub fn ready(&self) -> bool {
        self.all().iter().all(|t| t.plugins().ready())
    }

    async fn add(&self, cfg: TenantConfig) -> anyhow::Result<()> {
        let id = cfg.id.clone();
        let tenant = self.parts.build(cfg, &*self.mount).await?;
        self.mount
            .mount(&tenant)
            .await
            .with_context(|| format!("serving tenant {id}"))?;
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), tenant);
        tracing::info!(tenant = %id, "tenant serving");
        Ok(())
    }

    async fn remove(&self, id: &str) {
        let removed = self
            .map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        if let Some(tenant) = removed {
            self.mount.unmount(&tenant).await;
            tenant.close();
            tracing::info!(tenant = %id, "tenant removed; its sockets were disconnected");
        }
    }

    /// Re-reads the tenants file: added tenants start serving, removed ones are closed,
    /// the others take their new settings. A file that does not load changes nothing.
    pub async fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let _one = self.reloading.lock().await;
        let configs = match load_file(path, &self.base) {
            Ok(c) => c,
            Err(e) => return Err(self.refuse(e.to_string())),
        };
        let wanted: BTreeMap<String, TenantConfig> =
            configs.into_iter().map(|c| (c.id.clone(), c)).collect();
        let current: Vec<String> = self.map().keys().cloned().collect();
        for id in current.iter().filter(|id| !wanted.contains_key(*id)) {
            self.remove(id).await;
        }
        let mut errors = Vec::new();
        for (id, cfg) in wanted {
            let result = match self.get(&id) {
                Some(tenant) => tenant.reconfigure(cfg),
                None => self.add(cfg).await,
            };
            if let Err(e) = result {
                errors.push(format!("tenant {id}: {e:#}"));
            }
        }
        if !errors.is_empty() {
            return Err(self.refuse(errors.join("; ")));
        }
        let mut status = self.status();
        status.loaded_at = now_ms();
        status.error = None;
        tracing::info!(file = %path.display(), tenants = self.map().len(), "tenants file reloaded");
        Ok(())
    }

    fn refuse(&self, error: String) -> String {
        tracing::error!(%error, "tenants file not applied; the previous tenants keep serving");
        self.status().error = Some(error.clone());
        error
    }

    /// Closes every tenant (the node is stopping; sockets are closed by the caller).
    pub async fn shutdown(&self) {
        for tenant in self.all() {
            tenant.presence().shutdown().await;
            if let StoreKind::Redis { backend, .. } = &self.parts.store {
                let key = format!("{}conns", tenant.key_prefix());
                tenant
                    .connections()
                    .forget(&backend.pool, &key, &self.parts.node_id)
                    .await;
            }
            tenant.close();
        }
    }

    /// `/admin/tenants`.
    pub fn admin_json(&self) -> Value {
        let status = self.status();
        json!({
            "file": self.file.as_ref().map(|p| p.display().to_string()),
            "loadedAt": status.loaded_at,
            "error": status.error,
            "tenants": self.all().iter().map(|t| t.admin_json()).collect::<Vec<_>>(),
        })
    }

    /// Every tenant's metrics (host and plugins), one family header each.
    pub fn render_metrics(&self) -> String {
        let mut parts = Vec::new();
        for tenant in self.all() {
            let mut text = String::new();
            tenant.metrics().render(&mut text);
            tenant.plugins().render_prometheus(&mut text);
            parts.push(text);
        }
        crate::metrics::merge_families(&parts)
    }
}

fn load_file(
    path: &std::path::Path,
    base: &BaseSettings,
) -> Result<Vec<TenantConfig>, file::FileError> {
    file::load(
        path,
        &file::Base {
            limits: &base.limits,
            plugins: &base.plugins,
            env: &secret::process_env,
        },
    )
}
