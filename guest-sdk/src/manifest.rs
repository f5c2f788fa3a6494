//! The plugin's manifest: name, version, handled events and wanted hooks.

use crate::bindings::exports::rtm::plugin::handler::PluginManifest;

/// Hooks a plugin can ask for (combine with `|`).
pub use crate::bindings::exports::rtm::plugin::handler::Hooks;

/// What [`crate::Plugin::manifest`] returns; a builder.
///
/// ```no_run
/// use rtm_guest::{Hooks, Manifest};
/// let m = Manifest::new("chat", env!("CARGO_PKG_VERSION"))
///     .events(["chat:message", "chat:history"])
///     .event("chat:typing")
///     .hook(Hooks::DISCONNECT);
/// ```
#[derive(Debug, Clone)]
pub struct Manifest {
    name: String,
    version: String,
    events: Vec<String>,
    hooks: Hooks,
}

impl Manifest {
    /// A manifest handling no events yet. `name` is 1..64 chars of
    /// `[A-Za-z0-9_.-]` and names the plugin's kv namespace.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Manifest {
            name: name.into(),
            version: version.into(),
            events: Vec::new(),
            hooks: Hooks::empty(),
        }
    }

    /// Handles `event`: an exact name (`chat:message`) or a prefix pattern (`chat:*`).
    pub fn event(mut self, event: impl Into<String>) -> Self {
        self.events.push(event.into());
        self
    }

    /// Handles each of `events` (see [`Manifest::event`]).
    pub fn events<I, S>(mut self, events: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.events.extend(events.into_iter().map(Into::into));
        self
    }

    /// Asks the host to call the given hooks.
    pub fn hook(mut self, hooks: Hooks) -> Self {
        self.hooks |= hooks;
        self
    }

    pub(crate) fn into_wit(self) -> PluginManifest {
        PluginManifest {
            name: self.name,
            version: self.version,
            events: self.events,
            hooks: self.hooks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_manifest_handles_nothing_and_wants_no_hooks() {
        let m = Manifest::new("noop", "0.1.0").into_wit();
        assert_eq!((m.name.as_str(), m.version.as_str()), ("noop", "0.1.0"));
        assert!(m.events.is_empty());
        assert_eq!(m.hooks, Hooks::empty());
    }

    #[test]
    fn the_builder_keeps_events_in_order_and_combines_hooks() {
        let m = Manifest::new(String::from("chat"), "1.2.3")
            .events(["chat:message", "chat:history"])
            .event("chat:typing")
            .events(vec![String::from("chat:*")])
            .hook(Hooks::DISCONNECT)
            .hook(Hooks::CONNECT | Hooks::PRESENCE)
            .hook(Hooks::DISCONNECT)
            .into_wit();
        assert_eq!(m.name, "chat");
        assert_eq!(m.version, "1.2.3");
        assert_eq!(
            m.events,
            ["chat:message", "chat:history", "chat:typing", "chat:*"]
        );
        assert_eq!(
            m.hooks,
            Hooks::CONNECT | Hooks::DISCONNECT | Hooks::PRESENCE
        );
    }
}
