//! A loaded plugin version: what turning a `.wasm` file into something
//! callable produced (compiled component, pre-linked instance template,
//! validated manifest, warm pool, breaker), and how that is done.
//!
//! Loading = compile (blocking thread, cached) -> link against our imports ->
//! instantiate once -> read and validate the manifest. Whatever fails, the
//! file is refused with a [`LoadError`] and nothing else changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::Shared;
use super::bindings::{Hooks, PluginPre};
use super::host_api::{HostApi, PluginState};
use super::instance::{CallFailure, CallLimits, Instance};
use super::manifest::{HookSet, Manifest, ManifestError};
use super::metrics::PluginMetrics;
use super::pool::InstancePool;
use super::quarantine::{Breaker, BreakerConfig};

/// Why a plugin file was refused.
#[derive(Debug, thiserror::Error)]
pub(super) enum LoadError {
    #[error("reading the file: {0}")]
    Read(#[from] std::io::Error),
    #[error("not a valid component for this host: {0}")]
    Compile(String),
    #[error("does not match world rtm:plugin/plugin@0.1.0 (imports or exports): {0}")]
    Link(String),
    #[error("instantiating to read the manifest: {0}")]
    Instantiate(CallFailure),
    #[error("calling manifest(): {0}")]
    ManifestCall(CallFailure),
    #[error("invalid manifest: {0}")]
    Manifest(#[from] ManifestError),
    #[error("compile task failed: {0}")]
    Task(String),
}

/// One loaded version of a plugin. Shared (`Arc`) by the registry and by the
/// calls in flight on it; dropped, with its pool, when both are done with it.
pub(super) struct LoadedPlugin {
    pub manifest: Arc<Manifest>,
    pub path: PathBuf,
    /// Hex SHA-256 of the file's bytes.
    pub hash: String,
    pub loaded_at: SystemTime,
    pub pre: PluginPre<PluginState>,
    pub api: Arc<HostApi>,
    pub pool: InstancePool,
    /// One permit per call allowed to run at once (PLUGIN_MAX_CONCURRENCY).
    pub slots: tokio::sync::Semaphore,
    pub max_concurrency: usize,
    pub breaker: Breaker,
    pub metrics: Arc<PluginMetrics>,
    pub limits: CallLimits,
}

impl LoadedPlugin {
    pub(super) fn name(&self) -> &str {
        &self.manifest.name
    }

    /// A warm instance from the pool, or a fresh one.
    pub(super) async fn instance(&self) -> Result<Instance, CallFailure> {
        match self.pool.take() {
            Some(instance) => Ok(instance),
            None => Instance::new(&self.pre, self.api.clone(), self.limits).await,
        }
    }
}

/// Hex SHA-256 of `bytes`.
pub(super) fn content_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hook_set(hooks: Hooks) -> HookSet {
    HookSet {
        connect: hooks.contains(Hooks::CONNECT),
        disconnect: hooks.contains(Hooks::DISCONNECT),
        presence: hooks.contains(Hooks::PRESENCE),
    }
}

/// Loads `bytes` (read from `path`) into a [`LoadedPlugin`], not yet registered.
pub(super) async fn load(
    shared: &Arc<Shared>,
    path: &Path,
    bytes: Vec<u8>,
) -> Result<LoadedPlugin, LoadError> {
    let hash = content_hash(&bytes);
    let compiling = shared.clone();
    let key = hash.clone();
    let component =
        tokio::task::spawn_blocking(move || compiling.engine.compile_shared(&key, &bytes))
            .await
            .map_err(|e| LoadError::Task(e.to_string()))?
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
    let pre = shared
        .engine
        .linker
        .instantiate_pre(&component)
        .and_then(PluginPre::new)
        .map_err(|e| LoadError::Link(format!("{e:#}")))?;

    let label = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let limits = shared.limits;
    let mut instance = Instance::new(&pre, HostApi::loading(&label), limits)
        .await
        .map_err(LoadError::Instantiate)?;
    let raw = tokio::time::timeout(shared.cfg.timeout(), instance.manifest(limits.cpu_ticks))
        .await
        .map_err(|_| LoadError::ManifestCall(CallFailure::Timeout(shared.cfg.timeout_ms)))?
        .map_err(LoadError::ManifestCall)?;
    let manifest = Arc::new(Manifest::validate(
        &raw.name,
        &raw.version,
        &raw.events,
        hook_set(raw.hooks),
    )?);

    let quota = super::kv::Quota {
        max_bytes: shared.cfg.kv_max_bytes,
        max_keys: shared.cfg.kv_max_keys,
    };
    let kv = shared.kv.namespace(&shared.tenant, &manifest.name, quota);
    let api = HostApi::live(shared.host.clone(), kv, manifest.clone());
    let warm = if shared.cfg.fresh_instance {
        0
    } else {
        shared.cfg.warm_instances
    };
    let pool = InstancePool::new(warm, shared.cfg.instance_max_uses);
    let max_concurrency = shared.cfg.max_concurrency.max(1);
    // The instance that read the manifest becomes the first warm instance.
    instance.set_api(api.clone());
    pool.put(instance);

    Ok(LoadedPlugin {
        metrics: shared.metrics.for_plugin(&manifest.name),
        manifest,
        path: path.to_path_buf(),
        hash,
        loaded_at: SystemTime::now(),
        pre,
        api,
        pool,
        slots: tokio::sync::Semaphore::new(max_concurrency),
        max_concurrency,
        breaker: Breaker::new(BreakerConfig::from_config(&shared.cfg)),
        limits,
    })
}
