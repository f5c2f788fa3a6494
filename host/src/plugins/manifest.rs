//! Plugin manifests as the host accepts them: validated names, event
//! patterns and hooks, and the overlap rule that keeps routing unambiguous.

use std::fmt;

/// Socket.IO event names that a plugin can never claim (the client library
/// reserves them, or the host handles them itself).
const RESERVED_EVENTS: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "error",
    "newListener",
    "removeListener",
    "ping",
    "pong",
];

/// Event namespaces the host owns.
const RESERVED_PREFIXES: &[&str] = &["presence:", "rtm:"];

const MAX_NAME_LEN: usize = 64;
const MAX_EVENT_LEN: usize = 128;
const MAX_VERSION_LEN: usize = 64;
const MAX_EVENTS: usize = 64;

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ManifestError {
    #[error("plugin name {0:?} is not 1..{MAX_NAME_LEN} chars of [A-Za-z0-9_.-]")]
    BadName(String),
    #[error("plugin version {0:?} is not 1..{MAX_VERSION_LEN} printable chars")]
    BadVersion(String),
    #[error("the manifest declares no events")]
    NoEvents,
    #[error("the manifest declares more than {MAX_EVENTS} events")]
    TooManyEvents,
    #[error(
        "event {0:?} is not 1..{MAX_EVENT_LEN} chars of [A-Za-z0-9_.:-], optionally ending in `:*`"
    )]
    BadEvent(String),
    #[error("event {0:?} is reserved by the host")]
    ReservedEvent(String),
    #[error("events {0} and {1} of the manifest overlap")]
    SelfOverlap(EventPattern, EventPattern),
}

/// One entry of a manifest's `events`: an exact name or a `prefix:*` pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum EventPattern {
    Exact(String),
    /// The prefix, including its trailing `:` (`chat:*` is `Prefix("chat:")`).
    Prefix(String),
}

impl fmt::Display for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventPattern::Exact(name) => write!(f, "`{name}`"),
            EventPattern::Prefix(prefix) => write!(f, "`{prefix}*`"),
        }
    }
}

fn is_event_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
}

/// Whether `name` is acceptable as a concrete event name.
pub(super) fn is_valid_event_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_EVENT_LEN && name.chars().all(is_event_char)
}

impl EventPattern {
    pub(crate) fn parse(raw: &str) -> Result<Self, ManifestError> {
        let pattern = match raw.strip_suffix('*') {
            Some(prefix)
                if prefix.ends_with(':') && prefix.len() > 1 && is_valid_event_name(prefix) =>
            {
                EventPattern::Prefix(prefix.to_owned())
            }
            Some(_) => return Err(ManifestError::BadEvent(raw.to_owned())),
            None if is_valid_event_name(raw) => EventPattern::Exact(raw.to_owned()),
            None => return Err(ManifestError::BadEvent(raw.to_owned())),
        };
        let text = match &pattern {
            EventPattern::Exact(name) | EventPattern::Prefix(name) => name,
        };
        let reserved = RESERVED_EVENTS.contains(&text.as_str())
            || RESERVED_PREFIXES
                .iter()
                .any(|p| text.starts_with(p) || p.strip_suffix(':') == Some(text.as_str()));
        if reserved {
            return Err(ManifestError::ReservedEvent(raw.to_owned()));
        }
        Ok(pattern)
    }

    pub(crate) fn matches(&self, event: &str) -> bool {
        match self {
            EventPattern::Exact(name) => name == event,
            EventPattern::Prefix(prefix) => event.starts_with(prefix.as_str()),
        }
    }

    /// Whether some event name would match both patterns.
    pub(super) fn overlaps(&self, other: &EventPattern) -> bool {
        match (self, other) {
            (EventPattern::Exact(a), EventPattern::Exact(b)) => a == b,
            (EventPattern::Exact(e), EventPattern::Prefix(p))
            | (EventPattern::Prefix(p), EventPattern::Exact(e)) => e.starts_with(p.as_str()),
            (EventPattern::Prefix(a), EventPattern::Prefix(b)) => {
                a.starts_with(b.as_str()) || b.starts_with(a.as_str())
            }
        }
    }

    /// The pattern as written in the manifest (`chat:message`, `chat:*`).
    pub(crate) fn to_manifest_string(&self) -> String {
        match self {
            EventPattern::Exact(name) => name.clone(),
            EventPattern::Prefix(prefix) => format!("{prefix}*"),
        }
    }
}

/// Hooks a plugin asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HookSet {
    pub connect: bool,
    pub disconnect: bool,
    pub presence: bool,
}

impl HookSet {
    pub(super) fn names(&self) -> Vec<&'static str> {
        [
            (self.connect, "connect"),
            (self.disconnect, "disconnect"),
            (self.presence, "presence"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// A manifest the host accepted.
#[derive(Debug, Clone)]
pub(crate) struct Manifest {
    pub name: String,
    pub version: String,
    pub events: Vec<EventPattern>,
    pub hooks: HookSet,
}

impl Manifest {
    pub(crate) fn validate(
        name: &str,
        version: &str,
        events: &[String],
        hooks: HookSet,
    ) -> Result<Self, ManifestError> {
        let name_ok = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !name_ok {
            return Err(ManifestError::BadName(name.to_owned()));
        }
        if version.is_empty()
            || version.len() > MAX_VERSION_LEN
            || version.chars().any(char::is_control)
        {
            return Err(ManifestError::BadVersion(version.to_owned()));
        }
        if events.is_empty() {
            return Err(ManifestError::NoEvents);
        }
        if events.len() > MAX_EVENTS {
            return Err(ManifestError::TooManyEvents);
        }
        let patterns = events
            .iter()
            .map(|e| EventPattern::parse(e))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, a) in patterns.iter().enumerate() {
            if let Some(b) = patterns[i + 1..].iter().find(|b| a.overlaps(b)) {
                return Err(ManifestError::SelfOverlap(a.clone(), b.clone()));
            }
        }
        Ok(Manifest {
            name: name.to_owned(),
            version: version.to_owned(),
            events: patterns,
            hooks,
        })
    }

    /// Whether the plugin declared `event` (used to allow its emits).
    pub(super) fn declares(&self, event: &str) -> bool {
        self.events.iter().any(|p| p.matches(event))
    }
}

#[cfg(test)]
mod tests {
    use super::{EventPattern, HookSet, Manifest, ManifestError};

    fn pat(s: &str) -> EventPattern {
        EventPattern::parse(s).expect("valid pattern")
    }

    #[test]
    fn parses_exact_and_prefix() {
        assert_eq!(
            pat("chat:message"),
            EventPattern::Exact("chat:message".into())
        );
        assert_eq!(pat("chat:*"), EventPattern::Prefix("chat:".into()));
        for bad in ["", "*", ":*", "chat*", "has space", "chat:*:x", "é"] {
            assert!(
                EventPattern::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        assert!(EventPattern::parse("r").is_ok());
        for reserved in [
            "presence:join",
            "presence:*",
            "presence",
            "disconnect",
            "rtm:x",
        ] {
            assert!(matches!(
                EventPattern::parse(reserved),
                Err(ManifestError::ReservedEvent(_))
            ));
        }
    }

    #[test]
    fn overlap_rules() {
        assert!(pat("chat:*").overlaps(&pat("chat:message")));
        assert!(pat("chat:*").overlaps(&pat("chat:x:*")));
        assert!(!pat("chat:*").overlaps(&pat("chatty:x")));
        assert!(!pat("a:b").overlaps(&pat("a:c")));
    }

    #[test]
    fn validates_manifest() {
        let ok = Manifest::validate("chat", "1.0.0", &["chat:*".into()], HookSet::default())
            .expect("valid");
        assert!(ok.declares("chat:typing"));
        assert!(!ok.declares("other:typing"));
        assert!(matches!(
            Manifest::validate("", "1", &["a:b".into()], HookSet::default()),
            Err(ManifestError::BadName(_))
        ));
        assert!(matches!(
            Manifest::validate("x", "1", &["a:*".into(), "a:b".into()], HookSet::default()),
            Err(ManifestError::SelfOverlap(..))
        ));
        assert!(matches!(
            Manifest::validate("x", "1", &[], HookSet::default()),
            Err(ManifestError::NoEvents)
        ));
    }
}
