//! The `AUTH_*` settings: authentication of the single-tenant host (a tenants file
//! configures each tenant's own in `[tenant.auth]`).

use super::{AuthConfig, KeySource};
use crate::tenancy::secret::Secret;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct AuthSettings {
    /// HS256 secret: sockets must present a JWT signed with it (`auth: { token }`).
    #[arg(
        long = "auth-hs256-secret",
        env = "AUTH_HS256_SECRET",
        hide_env_values = true
    )]
    pub hs256_secret: Option<String>,

    /// PEM public key (RSA, EC P-256 or Ed25519) that signs the sockets' JWTs.
    #[arg(long = "auth-public-key-pem", env = "AUTH_PUBLIC_KEY_PEM")]
    pub public_key_pem: Option<String>,

    /// JWKS URL of the keys that sign the sockets' JWTs.
    #[arg(long = "auth-jwks-url", env = "AUTH_JWKS_URL")]
    pub jwks_url: Option<String>,

    /// Required `aud` claim.
    #[arg(long = "auth-audience", env = "AUTH_AUDIENCE")]
    pub audience: Option<String>,

    /// Required `iss` claim.
    #[arg(long = "auth-issuer", env = "AUTH_ISSUER")]
    pub issuer: Option<String>,

    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[arg(long = "auth-leeway-s", env = "AUTH_LEEWAY_S", default_value_t = 0)]
    pub leeway_s: u64,
}

impl AuthSettings {
    /// The configured auth, `None` without a key; an error names a contradiction.
    pub fn config(&self) -> Result<Option<AuthConfig>, String> {
        let key = match (&self.hs256_secret, &self.public_key_pem, &self.jwks_url) {
            (None, None, None) => return Ok(None),
            (Some(s), None, None) => KeySource::Hs256(Secret::new(s.clone())),
            (None, Some(p), None) => KeySource::PublicPem(p.clone()),
            (None, None, Some(u)) => KeySource::Jwks(u.clone()),
            _ => {
                return Err(
                    "set only one of AUTH_HS256_SECRET, AUTH_PUBLIC_KEY_PEM, AUTH_JWKS_URL".into(),
                );
            }
        };
        let mut cfg = AuthConfig::new(key);
        cfg.audience.clone_from(&self.audience);
        cfg.issuer.clone_from(&self.issuer);
        cfg.leeway_s = self.leeway_s;
        super::Authenticator::new(&cfg).map_err(|e| format!("invalid AUTH_*: {e}"))?;
        Ok(Some(cfg))
    }
}
