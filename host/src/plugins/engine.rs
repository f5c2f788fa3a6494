//! The one wasmtime [`Engine`] of the plugin runtime and what hangs off it:
//! the pooling instance allocator sized from the config, the epoch ticker
//! thread that makes CPU deadlines work, the on-disk cache of compiled
//! artifacts, and the [`Linker`] with every host import.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{
    Cache, CacheConfig, Config, Engine, EngineWeak, InstanceAllocationStrategy,
    PoolingAllocationConfig,
};

use super::config::PluginConfig;
use super::host_api::{self, PluginState};

/// How often the epoch advances; the granularity of CPU deadlines.
pub(super) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Why the engine could not be built.
#[derive(Debug, thiserror::Error)]
pub(super) enum EngineError {
    #[error("configuring wasmtime: {0:#}")]
    Config(wasmtime::Error),
    #[error("preparing the compiled-artifact cache in {dir}: {source}")]
    CacheDir { dir: String, source: std::io::Error },
    #[error("starting the epoch ticker thread: {0}")]
    Ticker(std::io::Error),
}

/// Compiled components kept for reuse, most recent last.
const COMPILED_KEPT: usize = 64;

/// The engine and linker, shared by every plugin of every tenant of the node.
pub(super) struct PluginEngine {
    pub engine: Engine,
    pub linker: Linker<PluginState>,
    /// Components by content hash: tenants loading the same file share one compiled
    /// copy of its code (10 tenants with their own copy of the chat plugin cost 15 %
    /// more CPU per message than one: each copy is code the CPU caches hold apart).
    compiled: Mutex<VecDeque<(String, Component)>>,
}

impl PluginEngine {
    pub(super) fn new(cfg: &PluginConfig) -> Result<Self, EngineError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(cfg)));
        if let Some(dir) = cfg.resolved_cache_dir() {
            config.cache(Some(cache(&dir)?));
        }
        let engine = Engine::new(&config).map_err(EngineError::Config)?;
        let mut linker = Linker::new(&engine);
        host_api::add_to_linker(&mut linker).map_err(EngineError::Config)?;
        start_ticker(engine.weak()).map_err(EngineError::Ticker)?;
        Ok(PluginEngine {
            engine,
            linker,
            compiled: Mutex::new(VecDeque::new()),
        })
    }

    /// [`Self::compile`], reusing the component of the same bytes (`hash`) when another
    /// tenant or version loaded it already.
    pub(super) fn compile_shared(&self, hash: &str, bytes: &[u8]) -> wasmtime::Result<Component> {
        let kept = |c: &VecDeque<(String, Component)>| {
            c.iter().find(|(h, _)| h == hash).map(|(_, c)| c.clone())
        };
        if let Some(found) = kept(&self.compiled()) {
            return Ok(found);
        }
        let component = self.compile(bytes)?;
        let mut compiled = self.compiled();
        if kept(&compiled).is_none() {
            if compiled.len() >= COMPILED_KEPT {
                compiled.pop_front();
            }
            compiled.push_back((hash.to_owned(), component.clone()));
        }
        Ok(component)
    }

    fn compiled(&self) -> std::sync::MutexGuard<'_, VecDeque<(String, Component)>> {
        self.compiled.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Compiles a component (or loads it from the cache). Blocking and
    /// CPU-heavy for a cache miss: call it on a blocking thread.
    pub(super) fn compile(&self, bytes: &[u8]) -> wasmtime::Result<Component> {
        Component::new(&self.engine, bytes)
    }
}

/// Slots for every instance the runtime may hold at once. A Rust guest is
/// one component of a few core instances with one or two memories; JS and
/// Python guests use more tables.
fn pooling(cfg: &PluginConfig) -> PoolingAllocationConfig {
    let n = cfg.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(8))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(4))
        .total_stacks(n)
        .max_core_instances_per_component(32)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        .max_memory_size(cfg.memory_bytes());
    pool
}

/// wasmtime's own cache: entries are keyed by a hash of the component's bytes
/// and of the engine's compilation settings and version, and wasmtime reads
/// back only entries in its own format. The directory must be private to
/// this service, as whoever can write there can plant native code.
fn cache(dir: &Path) -> Result<Cache, EngineError> {
    let io_err = |source| EngineError::CacheDir {
        dir: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_err)?;
    }
    let mut config = CacheConfig::new();
    config.with_directory(dir);
    Cache::new(config).map_err(EngineError::Config)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is gone.
fn start_ticker(engine: EngineWeak) -> std::io::Result<()> {
    thread::Builder::new()
        .name("rtm-plugin-epoch".into())
        .spawn(move || {
            loop {
                thread::sleep(EPOCH_TICK);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })?;
    Ok(())
}
