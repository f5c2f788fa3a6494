//! Multi-tenant targets (PROTOCOL.md "Tenants" and "Authentication"): which namespace
//! and token each client of a target uses ([`Tenancy`], from `--tenants` /
//! `--hs256-secret` or a `*-tenants:<N>[:<secret>]` spawn spec), the HS256 tokens the
//! harness signs for them ([`Signer`]), and the tenants file a spawned host gets
//! ([`file_text`]).
//!
//! Tenant `i` is `t<i>` on namespace `/t<i>`; room `r` belongs to tenant `r % N`, so a
//! room's members all share one tenant and `--room-count` rooms spread the clients
//! evenly whenever N divides it.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::cli::{SpawnKind, TenantsSpawn};

/// The environment variable through which a spawned host reads its tenants' HS256
/// secret (the file says `env:` + this, so the secret is never written to disk).
pub const SECRET_ENV: &str = "RTM_BENCH_HS256_SECRET";

/// How long a client's token is valid: longer than any round.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// How the clients of one target connect: to which tenants' namespaces, with which
/// token. The default is the single-tenant host: `--namespace`, no token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tenancy {
    /// Tenants `t0..t{N-1}`; `None`: every client uses `--namespace`.
    pub tenants: Option<u32>,
    /// Each client presents an HS256 JWT signed with this (`sub` = its user id).
    pub hs256_secret: Option<String>,
}

impl Tenancy {
    /// The settings a `*-tenants` spawn spec implies for its clients.
    pub fn of_spawn(spec: &TenantsSpawn) -> Self {
        Self {
            tenants: Some(spec.tenants),
            hs256_secret: spec.hs256_secret.clone(),
        }
    }

    /// One side's settings: a `*-tenants` spawn spec brings its own (and then `flags`,
    /// the side's `tenants` / `hs256_secret` options, must be absent); any other target
    /// takes the options.
    pub fn for_side(
        kind: Option<&SpawnKind>,
        tenants: Option<u32>,
        hs256_secret: Option<&str>,
        flags: &str,
    ) -> Result<Self, String> {
        if hs256_secret == Some("") {
            return Err(format!("{flags}: the HS256 secret is empty"));
        }
        match kind {
            Some(SpawnKind::Tenants(spec)) => {
                if tenants.is_some() || hs256_secret.is_some() {
                    return Err(format!(
                        "{flags} do not combine with a *-tenants spawn spec, which sets its clients' tenants and secret itself"
                    ));
                }
                Ok(Self::of_spawn(spec))
            }
            _ => Ok(Self {
                tenants,
                hs256_secret: hs256_secret.map(str::to_owned),
            }),
        }
    }

    /// True for the single-tenant host without auth: every client uses the run's
    /// options as they are.
    pub fn is_plain(&self) -> bool {
        self.tenants.is_none() && self.hs256_secret.is_none()
    }

    /// The namespace of the clients of room `room` (`None`: the run's `--namespace`).
    pub fn namespace_of(&self, room: usize) -> Option<String> {
        let tenants = self.tenants?.max(1) as usize;
        Some(format!("/{}", tenant_id(room % tenants)))
    }

    /// `10 tenants, hs256`, `hs256`, ... for report labels; `None` when plain.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        match self.tenants {
            Some(1) => parts.push("1 tenant".to_owned()),
            Some(n) => parts.push(format!("{n} tenants")),
            None => {}
        }
        if self.hs256_secret.is_some() {
            parts.push("hs256".to_owned());
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// The id of tenant `i` (its namespace is `/` + this).
pub fn tenant_id(i: usize) -> String {
    format!("t{i}")
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    exp: u64,
}

/// Signs the clients' HS256 tokens: `sub` = the client's user id, `exp` = now + 1 h.
pub struct Signer {
    header: Header,
    key: EncodingKey,
}

impl Signer {
    pub fn new(secret: &str) -> Self {
        Self {
            header: Header::new(Algorithm::HS256),
            key: EncodingKey::from_secret(secret.as_bytes()),
        }
    }

    /// A token for `sub`, valid for an hour from now.
    pub fn token(&self, sub: &str) -> Result<String, jsonwebtoken::errors::Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let exp = (now + TOKEN_LIFETIME).as_secs();
        jsonwebtoken::encode(&self.header, &Claims { sub, exp }, &self.key)
    }

    /// The handshake's `auth` JSON for `sub`: `{"token":"<jwt>"}`.
    pub fn auth_payload(&self, sub: &str) -> Result<String, jsonwebtoken::errors::Error> {
        let token = self.token(sub)?;
        Ok(serde_json::json!({ "token": token }).to_string())
    }
}

/// The tenants file of a spawned host: tenants `t0..t{tenants-1}` under limits no
/// client of the harness meets, each with HS256 auth read from [`SECRET_ENV`] when
/// `auth`, and, with `plugins`, its plugins from the folder named after its id next to
/// the file (relative `plugins_dir` is resolved against the file's directory).
pub fn file_text(tenants: u32, auth: bool, plugins: bool) -> String {
    let mut out = format!(
        "# Written by rtm-bench for one spawned rtm-host: {tenants} tenants{}.\n\
         [defaults.limits]\n\
         max_connections = 0\n\
         events_per_second = 100000\n\
         events_burst = 100000\n",
        if auth { ", HS256 auth" } else { "" }
    );
    for i in 0..tenants as usize {
        let id = tenant_id(i);
        let _ = write!(out, "\n[[tenant]]\nid = \"{id}\"\n");
        if plugins {
            let _ = writeln!(out, "plugins_dir = \"{id}\"");
        }
        if auth {
            let _ = write!(out, "[tenant.auth]\nhs256_secret = \"env:{SECRET_ENV}\"\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_follow_rooms() {
        let t = Tenancy {
            tenants: Some(10),
            hs256_secret: None,
        };
        assert_eq!(t.namespace_of(0).as_deref(), Some("/t0"));
        assert_eq!(t.namespace_of(13).as_deref(), Some("/t3"));
        assert_eq!(Tenancy::default().namespace_of(13), None);
        assert!(Tenancy::default().is_plain());
        assert_eq!(t.describe().as_deref(), Some("10 tenants"));
    }

    #[test]
    fn signs_hs256_tokens_with_sub_and_exp() -> Result<(), Box<dyn std::error::Error>> {
        let token = Signer::new("k").token("user-1")?;
        let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(b"k"),
            &validation,
        )?;
        assert_eq!(data.claims["sub"], "user-1");
        let payload = Signer::new("k").auth_payload("u")?;
        assert!(payload.starts_with(r#"{"token":"ey"#));
        Ok(())
    }

    #[test]
    fn writes_a_tenants_file() {
        let text = file_text(2, true, true);
        assert!(text.contains("events_per_second = 100000"));
        assert!(text.contains("max_connections = 0"));
        assert_eq!(text.matches("[[tenant]]").count(), 2);
        assert!(text.contains("id = \"t1\"\nplugins_dir = \"t1\"\n[tenant.auth]\n"));
        assert!(text.contains("hs256_secret = \"env:RTM_BENCH_HS256_SECRET\""));
        let plain = file_text(1, false, false);
        assert!(!plain.contains("auth") && !plain.contains("plugins_dir"));
    }
}
