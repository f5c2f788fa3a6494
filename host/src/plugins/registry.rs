//! Which plugins are loaded and which plugin handles which event.
//!
//! The whole table is one immutable snapshot behind an `RwLock<Arc<_>>`:
//! dispatch clones the `Arc` of the plugin it needs and lets go of the lock at
//! once, so a reload (which builds a new snapshot and swaps it in) never
//! waits for calls, and calls in flight finish on the version they started on.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use super::loaded::LoadedPlugin;
use super::manifest::EventPattern;

/// Why a loaded plugin could not be registered.
#[derive(Debug, thiserror::Error)]
pub(super) enum InstallError {
    #[error("plugin name {name:?} is already loaded from {other}")]
    NameTaken { name: String, other: String },
    #[error("event {ours} conflicts with {theirs} of plugin {plugin:?} (loaded from {file})")]
    EventConflict {
        ours: EventPattern,
        theirs: EventPattern,
        plugin: String,
        file: String,
    },
}

/// One immutable routing table.
#[derive(Default)]
pub(super) struct Table {
    /// Loaded plugins by name.
    pub by_name: BTreeMap<String, Arc<LoadedPlugin>>,
    /// Plugin name by the file it was loaded from.
    by_path: HashMap<PathBuf, String>,
    exact: HashMap<String, Arc<LoadedPlugin>>,
    /// Prefix routes, longest first (they never overlap, but be deterministic).
    prefixes: Vec<(String, Arc<LoadedPlugin>)>,
}

impl Table {
    fn build(by_name: BTreeMap<String, Arc<LoadedPlugin>>) -> Self {
        let mut table = Table::default();
        for plugin in by_name.values() {
            table
                .by_path
                .insert(plugin.path.clone(), plugin.name().to_owned());
            for pattern in &plugin.manifest.events {
                match pattern {
                    EventPattern::Exact(name) => {
                        table.exact.insert(name.clone(), plugin.clone());
                    }
                    EventPattern::Prefix(prefix) => {
                        table.prefixes.push((prefix.clone(), plugin.clone()))
                    }
                }
            }
        }
        table
            .prefixes
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        table.by_name = by_name;
        table
    }

    pub(super) fn route(&self, event: &str) -> Option<&Arc<LoadedPlugin>> {
        self.exact.get(event).or_else(|| {
            self.prefixes
                .iter()
                .find(|(prefix, _)| event.starts_with(prefix.as_str()))
                .map(|(_, p)| p)
        })
    }

    pub(super) fn by_path(&self, path: &Path) -> Option<&Arc<LoadedPlugin>> {
        self.by_path
            .get(path)
            .and_then(|name| self.by_name.get(name))
    }
}

#[derive(Default)]
pub(super) struct Registry {
    table: RwLock<Arc<Table>>,
}

impl Registry {
    pub(super) fn snapshot(&self) -> Arc<Table> {
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Registers `plugin`, replacing whatever was loaded from the same file.
    /// Refused (nothing changes) when its name or events clash with a plugin
    /// loaded from another file. Returns the replaced version, if any.
    pub(super) fn install(
        &self,
        plugin: LoadedPlugin,
    ) -> Result<Option<Arc<LoadedPlugin>>, InstallError> {
        let mut guard = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let current = guard.clone();
        let replaced = current.by_path(&plugin.path).cloned();
        for other in current.by_name.values() {
            if other.path == plugin.path {
                continue;
            }
            if other.name() == plugin.name() {
                return Err(InstallError::NameTaken {
                    name: plugin.name().to_owned(),
                    other: other.path.display().to_string(),
                });
            }
            for ours in &plugin.manifest.events {
                if let Some(theirs) = other.manifest.events.iter().find(|t| ours.overlaps(t)) {
                    return Err(InstallError::EventConflict {
                        ours: ours.clone(),
                        theirs: theirs.clone(),
                        plugin: other.name().to_owned(),
                        file: other.path.display().to_string(),
                    });
                }
            }
        }
        let mut by_name = current.by_name.clone();
        if let Some(old) = &replaced {
            by_name.remove(old.name());
        }
        by_name.insert(plugin.name().to_owned(), Arc::new(plugin));
        *guard = Arc::new(Table::build(by_name));
        Ok(replaced)
    }

    /// Unregisters whatever was loaded from `path`.
    pub(super) fn remove_path(&self, path: &Path) -> Option<Arc<LoadedPlugin>> {
        let mut guard = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let removed = guard.by_path(path).cloned()?;
        let mut by_name = guard.by_name.clone();
        by_name.remove(removed.name());
        *guard = Arc::new(Table::build(by_name));
        Some(removed)
    }

    /// Unregisters everything (shutdown).
    pub(super) fn clear(&self) -> Vec<Arc<LoadedPlugin>> {
        let mut guard = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let old = std::mem::take(&mut *guard);
        old.by_name.values().cloned().collect()
    }
}
