//! The tenants file (`TENANTS_FILE`): TOML parsed and validated into one
//! [`TenantConfig`] per tenant, each limit resolved over `[defaults]` and over the
//! host's own settings. Nothing here touches a running tenant: a file that fails any
//! check yields an error and the caller keeps what it had.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::limits::ClientLimits;
use super::secret::{EnvLookup, Secret, SecretError};
use crate::auth::{AuthConfig, KeySource};
use crate::plugins::PluginConfig;

/// Why a tenants file was refused. The message names the tenant and key at fault.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// The events a webhook may subscribe to (PROTOCOL.md "Webhooks").
pub const WEBHOOK_EVENTS: [&str; 6] = [
    "member_joined",
    "member_left",
    "room_occupied",
    "room_vacated",
    "user_joined",
    "user_left",
];

/// A tenant's webhook receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: Secret,
    pub events: Vec<String>,
}

impl WebhookConfig {
    /// Checks a receiver: an http(s) URL and known event names (none: every event).
    pub fn new(url: &str, secret: Secret, events: &[String]) -> Result<Self, String> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("url {url:?} is not an http(s) URL"));
        }
        if let Some(bad) = events
            .iter()
            .find(|e| !WEBHOOK_EVENTS.contains(&e.as_str()))
        {
            return Err(format!(
                "unknown event {bad:?} (known: {})",
                WEBHOOK_EVENTS.join(", ")
            ));
        }
        let events = if events.is_empty() {
            WEBHOOK_EVENTS.iter().map(|e| (*e).to_owned()).collect()
        } else {
            events.to_vec()
        };
        Ok(Self {
            url: url.to_owned(),
            secret,
            events,
        })
    }
}

/// One tenant, fully resolved: nothing optional is left to the caller but `auth` and
/// `webhook`, which are absent when not configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantConfig {
    pub id: String,
    pub limits: ClientLimits,
    /// The tenant's plugin runtime: its folder (`dir`) and per-call limits.
    pub plugins: PluginConfig,
    pub auth: Option<AuthConfig>,
    pub api_keys: Vec<Secret>,
    pub webhook: Option<WebhookConfig>,
}

impl TenantConfig {
    /// The tenant of a host without a tenants file: `default`, configured by the
    /// environment alone.
    pub fn single(base: &super::BaseSettings) -> Self {
        Self {
            id: super::DEFAULT_TENANT.to_owned(),
            limits: base.limits.clone(),
            plugins: base.plugins.clone(),
            auth: base.auth.clone(),
            api_keys: base.api_keys.clone(),
            webhook: base.webhook.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    #[serde(default)]
    defaults: Section,
    #[serde(default)]
    tenant: Vec<TenantDoc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    #[serde(default)]
    limits: LimitsDoc,
    #[serde(default)]
    plugins: PluginsDoc,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsDoc {
    max_connections: Option<u64>,
    events_per_second: Option<u32>,
    events_burst: Option<u32>,
    rooms_per_socket: Option<u32>,
    members_per_room: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginsDoc {
    memory_mb: Option<u64>,
    cpu_ms: Option<u64>,
    timeout_ms: Option<u64>,
    max_concurrency: Option<usize>,
    kv_max_bytes: Option<u64>,
    kv_max_keys: Option<u64>,
    emits_per_call: Option<u32>,
    log_bytes_per_call: Option<usize>,
    reply_max_bytes: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantDoc {
    id: String,
    plugins_dir: Option<PathBuf>,
    #[serde(default)]
    api_keys: Vec<String>,
    auth: Option<AuthDoc>,
    #[serde(default)]
    limits: LimitsDoc,
    #[serde(default)]
    plugins: PluginsDoc,
    webhook: Option<WebhookDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthDoc {
    hs256_secret: Option<String>,
    public_key_pem: Option<String>,
    jwks_url: Option<String>,
    audience: Option<String>,
    issuer: Option<String>,
    #[serde(default)]
    leeway_s: u64,
    jwks_refetch_min_s: Option<u64>,
    jwks_timeout_ms: Option<u64>,
    jwks_cache_s: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookDoc {
    url: String,
    secret: String,
    #[serde(default)]
    events: Vec<String>,
}

impl LimitsDoc {
    fn over(&self, base: &ClientLimits) -> ClientLimits {
        ClientLimits {
            max_connections: self.max_connections.unwrap_or(base.max_connections),
            events_per_second: self.events_per_second.unwrap_or(base.events_per_second),
            events_burst: self.events_burst.unwrap_or(base.events_burst),
            rooms_per_socket: self.rooms_per_socket.unwrap_or(base.rooms_per_socket),
            members_per_room: self.members_per_room.unwrap_or(base.members_per_room),
        }
    }
}

impl PluginsDoc {
    fn over(&self, base: &PluginConfig) -> PluginConfig {
        let mut cfg = base.clone();
        cfg.memory_mb = self.memory_mb.unwrap_or(base.memory_mb);
        cfg.cpu_ms = self.cpu_ms.unwrap_or(base.cpu_ms);
        cfg.timeout_ms = self.timeout_ms.unwrap_or(base.timeout_ms);
        cfg.max_concurrency = self.max_concurrency.unwrap_or(base.max_concurrency);
        cfg.kv_max_bytes = self.kv_max_bytes.unwrap_or(base.kv_max_bytes);
        cfg.kv_max_keys = self.kv_max_keys.unwrap_or(base.kv_max_keys);
        cfg.emits_per_call = self.emits_per_call.unwrap_or(base.emits_per_call);
        cfg.log_bytes_per_call = self.log_bytes_per_call.unwrap_or(base.log_bytes_per_call);
        cfg.reply_max_bytes = self.reply_max_bytes.unwrap_or(base.reply_max_bytes);
        cfg
    }
}

/// What a tenants file is resolved against: the host's own settings.
pub struct Base<'a> {
    pub limits: &'a ClientLimits,
    pub plugins: &'a PluginConfig,
    /// Where `env:NAME` secrets are read.
    pub env: EnvLookup<'a>,
}

/// Reads, parses and validates the file at `path`.
pub fn load(path: &Path, base: &Base<'_>) -> Result<Vec<TenantConfig>, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse(&text, dir, base).map_err(|e| match e {
        Refusal::Parse(message) => FileError::Parse {
            path: path.display().to_string(),
            message,
        },
        Refusal::Invalid(message) => FileError::Invalid {
            path: path.display().to_string(),
            message,
        },
    })
}

pub(crate) enum Refusal {
    Parse(String),
    Invalid(String),
}

fn invalid(msg: String) -> Refusal {
    Refusal::Invalid(msg)
}

/// Parses `text`; relative plugin folders are resolved against `dir` (the file's own).
/// Parses and validates a tenants file's `text`; relative key files are under `dir`.
pub(crate) fn parse(text: &str, dir: &Path, base: &Base<'_>) -> Result<Vec<TenantConfig>, Refusal> {
    let doc: Doc = toml::from_str(text)
        .map_err(|e| Refusal::Parse(e.to_string().lines().collect::<Vec<_>>().join(" ")))?;
    if doc.tenant.is_empty() {
        return Err(invalid("no [[tenant]] is defined".into()));
    }
    let limits = doc.defaults.limits.over(base.limits);
    let plugins = doc.defaults.plugins.over(base.plugins);
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(doc.tenant.len());
    for t in doc.tenant {
        if !seen.insert(t.id.clone()) {
            return Err(invalid(format!("tenant {:?} is defined twice", t.id)));
        }
        out.push(tenant(t, dir, &limits, &plugins, base.env).map_err(invalid)?);
    }
    Ok(out)
}

fn tenant(
    t: TenantDoc,
    dir: &Path,
    limits: &ClientLimits,
    plugins: &PluginConfig,
    env: EnvLookup<'_>,
) -> Result<TenantConfig, String> {
    if !super::is_valid_tenant_id(&t.id) {
        return Err(format!(
            "tenant id {:?} must match [a-z0-9][a-z0-9-]{{0,31}}",
            t.id
        ));
    }
    let at = |key: &str, e: SecretError| format!("tenant {:?}: {key}: {e}", t.id);
    let mut plugin_cfg = t.plugins.over(plugins);
    plugin_cfg.dir = plugins_dir(&t, dir, plugins)?;
    check_limits(&t.id, &t.limits.over(limits), &plugin_cfg)?;
    let api_keys = t
        .api_keys
        .iter()
        .map(|k| Secret::resolve(k, env).map_err(|e| at("api_keys", e)))
        .collect::<Result<Vec<_>, _>>()?;
    let auth = match &t.auth {
        None => None,
        Some(a) => Some(auth(a, env).map_err(|m| format!("tenant {:?}: auth: {m}", t.id))?),
    };
    let webhook = match &t.webhook {
        None => None,
        Some(w) => Some(webhook(w, env).map_err(|m| format!("tenant {:?}: webhook: {m}", t.id))?),
    };
    Ok(TenantConfig {
        limits: t.limits.over(limits),
        id: t.id,
        plugins: plugin_cfg,
        auth,
        api_keys,
        webhook,
    })
}

/// `plugins_dir` relative to the file; absent: `PLUGINS_DIR/<id>` when that folder exists.
fn plugins_dir(t: &TenantDoc, dir: &Path, base: &PluginConfig) -> Result<Option<PathBuf>, String> {
    match &t.plugins_dir {
        Some(p) => {
            let p = if p.is_relative() {
                dir.join(p)
            } else {
                p.clone()
            };
            if !p.is_dir() {
                return Err(format!(
                    "tenant {:?}: plugins_dir {} is not a directory",
                    t.id,
                    p.display()
                ));
            }
            Ok(Some(p))
        }
        None => Ok(base
            .dir
            .as_ref()
            .map(|root| root.join(&t.id))
            .filter(|p| p.is_dir())),
    }
}

fn check_limits(id: &str, l: &ClientLimits, p: &PluginConfig) -> Result<(), String> {
    let zero = [
        ("limits.events_burst", u64::from(l.events_burst)),
        ("plugins.memory_mb", p.memory_mb),
        ("plugins.cpu_ms", p.cpu_ms),
        ("plugins.timeout_ms", p.timeout_ms),
        ("plugins.max_concurrency", p.max_concurrency as u64),
    ];
    match zero.iter().find(|(_, v)| *v == 0) {
        Some((key, _)) => Err(format!("tenant {id:?}: {key} must be at least 1")),
        None => Ok(()),
    }
}

fn auth(a: &AuthDoc, env: EnvLookup<'_>) -> Result<AuthConfig, String> {
    let sources = [&a.hs256_secret, &a.public_key_pem, &a.jwks_url];
    if sources.iter().filter(|s| s.is_some()).count() != 1 {
        return Err("set exactly one of hs256_secret, public_key_pem, jwks_url".into());
    }
    let resolve = |key: &str, v: &str| Secret::resolve(v, env).map_err(|e| format!("{key}: {e}"));
    let key = if let Some(s) = &a.hs256_secret {
        KeySource::Hs256(resolve("hs256_secret", s)?)
    } else if let Some(pem) = &a.public_key_pem {
        KeySource::PublicPem(resolve("public_key_pem", pem)?.expose().to_owned())
    } else {
        let url = a.jwks_url.clone().unwrap_or_default();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("jwks_url {url:?} is not an http(s) URL"));
        }
        KeySource::Jwks(url)
    };
    let defaults = AuthConfig::new(key.clone());
    let cfg = AuthConfig {
        key,
        audience: a.audience.clone(),
        issuer: a.issuer.clone(),
        leeway_s: a.leeway_s,
        jwks_refetch_min_s: a.jwks_refetch_min_s.unwrap_or(defaults.jwks_refetch_min_s),
        jwks_timeout_ms: a.jwks_timeout_ms.unwrap_or(defaults.jwks_timeout_ms),
        jwks_cache_s: a.jwks_cache_s.unwrap_or(defaults.jwks_cache_s),
    };
    // Keys are checked now, so a bad PEM refuses the file instead of every connect.
    crate::auth::Authenticator::new(&cfg).map_err(|e| e.to_string())?;
    Ok(cfg)
}

fn webhook(w: &WebhookDoc, env: EnvLookup<'_>) -> Result<WebhookConfig, String> {
    let secret = Secret::resolve(&w.secret, env).map_err(|e| format!("secret: {e}"))?;
    WebhookConfig::new(&w.url, secret, &w.events)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `env:` reference resolves to a made-up value.
    fn any_env(name: &str) -> Option<String> {
        Some(format!("value-of-{name}"))
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse_with(text: &str, env: EnvLookup<'_>) -> Result<Vec<TenantConfig>, String> {
        let limits = ClientLimits::default();
        let plugins = PluginConfig::default();
        let b = Base {
            limits: &limits,
            plugins: &plugins,
            env,
        };
        parse(text, Path::new("."), &b).map_err(|e| match e {
            Refusal::Parse(m) | Refusal::Invalid(m) => m,
        })
    }

    fn parse_str(text: &str) -> Result<Vec<TenantConfig>, String> {
        parse_with(text, &no_env)
    }

    #[test]
    fn defaults_apply_under_tenant_overrides() {
        let t = parse_str(
            r#"
            [defaults.limits]
            events_per_second = 7
            rooms_per_socket = 3
            [defaults.plugins]
            cpu_ms = 40
            [[tenant]]
            id = "acme"
            [tenant.limits]
            rooms_per_socket = 5
            [tenant.plugins]
            emits_per_call = 9
            [[tenant]]
            id = "beta"
            "#,
        )
        .expect("valid");
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].limits.events_per_second, 7);
        assert_eq!(t[0].limits.rooms_per_socket, 5);
        assert_eq!(t[0].plugins.cpu_ms, 40);
        assert_eq!(t[0].plugins.emits_per_call, 9);
        assert_eq!(t[1].limits.rooms_per_socket, 3);
        assert_eq!(t[1].plugins.emits_per_call, 1_000);
        assert_eq!(t[1].limits.members_per_room, 100_000);
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        for (text, needle) in [
            ("[[tenant]]\nid = \"Bad\"", "must match"),
            ("[[tenant]]\nid = \"a\"\n[[tenant]]\nid = \"a\"", "twice"),
            ("[[tenant]]\nid = \"a\"\nmystery = 1", "unknown field"),
            ("", "no [[tenant]]"),
            (
                "[[tenant]]\nid = \"a\"\n[tenant.auth]\naudience = \"x\"",
                "exactly one",
            ),
            (
                "[[tenant]]\nid = \"a\"\n[tenant.auth]\nhs256_secret = \"env:RTM_NOT_SET\"",
                "RTM_NOT_SET",
            ),
            (
                "[[tenant]]\nid = \"a\"\n[tenant.auth]\npublic_key_pem = \"not a pem\"",
                "public key",
            ),
            (
                "[[tenant]]\nid = \"a\"\n[tenant.limits]\nevents_burst = 0",
                "at least 1",
            ),
            (
                "[[tenant]]\nid = \"a\"\n[tenant.webhook]\nurl = \"http://x\"\nsecret = \"s\"\nevents = [\"nope\"]",
                "unknown event",
            ),
            (
                "[[tenant]]\nid = \"a\"\nplugins_dir = \"/surely/not/here\"",
                "not a directory",
            ),
        ] {
            let err = parse_str(text).expect_err(text);
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_example_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tenants.example.toml");
        let text = std::fs::read_to_string(&path).expect("tenants.example.toml");
        let tenants = parse_with(&text, &any_env).expect("the example is valid");
        assert!(tenants.iter().any(|t| t.auth.is_some()));
        assert!(tenants.iter().any(|t| t.id == "default"));
    }
}
