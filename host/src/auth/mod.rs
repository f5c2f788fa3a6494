//! JWT authentication of a tenant's sockets: which keys a tenant trusts
//! ([`AuthConfig`]), checking a token against them ([`Authenticator::verify`]) and
//! what a valid token says about its bearer ([`Identity`]).
//!
//! A token's `alg` must be the one its key allows: an HMAC secret allows HS256 only, a
//! public key the algorithm of its type, a JWKS key the algorithm it names (or of its
//! type). `none` does not parse, and a public key is never used as an HMAC secret.

mod identity;
mod jwks;
pub mod settings;

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

pub use identity::{Claims, Identity, MAX_INFO_BYTES};
use jwks::JwksCache;

use crate::tenancy::secret::Secret;

/// Where a tenant's verification keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Hs256(Secret),
    /// A PEM public key: RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA).
    PublicPem(String),
    /// A JWKS document URL.
    Jwks(String),
}

impl KeySource {
    /// The kind, as `/admin/tenants` shows it (never the key).
    pub fn kind(&self) -> &'static str {
        match self {
            KeySource::Hs256(_) => "hs256",
            KeySource::PublicPem(_) => "public_key",
            KeySource::Jwks(_) => "jwks",
        }
    }
}

/// A tenant's `[tenant.auth]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub key: KeySource,
    /// Required `aud`, when set.
    pub audience: Option<String>,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_s: u64,
    /// An unknown `kid` refetches the JWKS at most this often.
    pub jwks_refetch_min_s: u64,
    pub jwks_timeout_ms: u64,
    /// The fetched key set is refetched on first use after this long, so a key removed
    /// from the set stops working even when no new `kid` shows up.
    pub jwks_cache_s: u64,
}

impl AuthConfig {
    /// A configuration with the defaults of everything but the key.
    pub fn new(key: KeySource) -> Self {
        Self {
            key,
            audience: None,
            issuer: None,
            leeway_s: 0,
            jwks_refetch_min_s: 10,
            jwks_timeout_ms: 3_000,
            jwks_cache_s: 300,
        }
    }
}

/// Why a configured key cannot be used (a tenants-file or settings error).
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("public_key_pem is not an RSA, EC P-256 or Ed25519 public key in PEM")]
    Pem,
    #[error("building the JWKS client: {0}")]
    Client(String),
}

/// Why a token was refused. Every variant is `unauthorized` to the client; the message
/// is for logs (it never contains the token).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no token in the handshake")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("algorithm {0:?} is not allowed for this tenant's key")]
    Algorithm(Algorithm),
    #[error("no key with kid {0:?}")]
    UnknownKey(String),
    #[error("token refused: {0}")]
    Invalid(jsonwebtoken::errors::Error),
    #[error("bad claims: {0}")]
    Claims(String),
    #[error("JWKS unavailable: {0}")]
    Jwks(String),
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        "unauthorized"
    }
}

/// One tenant's verifier.
pub struct Authenticator {
    keys: Keys,
    audience: Option<String>,
    issuer: Option<String>,
    leeway_s: u64,
}

enum Keys {
    /// One key, one algorithm (HS256 secret or PEM public key).
    Fixed(DecodingKey, Algorithm),
    Jwks(JwksCache),
}

impl Authenticator {
    pub fn new(cfg: &AuthConfig) -> Result<Self, AuthConfigError> {
        let keys = match &cfg.key {
            KeySource::Hs256(secret) => Keys::Fixed(
                DecodingKey::from_secret(secret.expose().as_bytes()),
                Algorithm::HS256,
            ),
            KeySource::PublicPem(pem) => {
                let (key, alg) = public_pem(pem.as_bytes())?;
                Keys::Fixed(key, alg)
            }
            KeySource::Jwks(url) => Keys::Jwks(JwksCache::new(
                url,
                Duration::from_secs(cfg.jwks_refetch_min_s),
                Duration::from_millis(cfg.jwks_timeout_ms.max(1)),
                Duration::from_secs(cfg.jwks_cache_s),
            )?),
        };
        Ok(Self {
            keys,
            audience: cfg.audience.clone(),
            issuer: cfg.issuer.clone(),
            leeway_s: cfg.leeway_s,
        })
    }

    /// Checks signature, algorithm, `exp`, `nbf`, `aud`, `iss` and the claims rtm needs.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        let (key, alg) = match &self.keys {
            Keys::Fixed(key, alg) => (key.clone(), *alg),
            Keys::Jwks(cache) => cache.key(header.kid.as_deref()).await?,
        };
        if header.alg != alg {
            return Err(AuthError::Algorithm(header.alg));
        }
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation(alg))
            .map_err(AuthError::Invalid)?;
        Identity::from_claims(data.claims)
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.leeway_s;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "sub"]);
        match &self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                v.required_spec_claims.insert("aud".into());
            }
            None => v.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            v.required_spec_claims.insert("iss".into());
        }
        v
    }
}

/// A PEM public key and the one algorithm it verifies.
fn public_pem(pem: &[u8]) -> Result<(DecodingKey, Algorithm), AuthConfigError> {
    let text = std::str::from_utf8(pem).map_err(|_| AuthConfigError::Pem)?;
    if !text.contains("-----BEGIN") {
        return Err(AuthConfigError::Pem);
    }
    if let Ok(k) = DecodingKey::from_ed_pem(pem) {
        return Ok((k, Algorithm::EdDSA));
    }
    if let Ok(k) = DecodingKey::from_ec_pem(pem) {
        return Ok((k, Algorithm::ES256));
    }
    if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
        return Ok((k, Algorithm::RS256));
    }
    Err(AuthConfigError::Pem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn hs(secret: &str, claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encodes")
    }

    fn auth(cfg: AuthConfig) -> Authenticator {
        Authenticator::new(&cfg).expect("valid config")
    }

    #[tokio::test]
    async fn hs256_accepts_a_good_token_and_refuses_the_rest() {
        let mut cfg = AuthConfig::new(KeySource::Hs256(Secret::new("k".into())));
        cfg.audience = Some("app".into());
        let a = auth(cfg);
        let good = hs(
            "k",
            json!({ "sub": "u1", "exp": now() + 60, "aud": "app", "rooms": ["r*"] }),
        );
        let id = a.verify(&good).await.expect("accepted");
        assert_eq!(id.user, "u1");
        assert!(id.may_join("r1") && !id.may_join("x"));
        for (token, why) in [
            (
                hs(
                    "other",
                    json!({ "sub": "u1", "exp": now() + 60, "aud": "app" }),
                ),
                "signature",
            ),
            (
                hs("k", json!({ "sub": "u1", "exp": now() - 5, "aud": "app" })),
                "expired",
            ),
            (
                hs(
                    "k",
                    json!({ "sub": "u1", "exp": now() + 60, "aud": "other" }),
                ),
                "audience",
            ),
            (
                hs("k", json!({ "sub": "u1", "exp": now() + 60 })),
                "no audience",
            ),
            (
                hs("k", json!({ "exp": now() + 60, "aud": "app" })),
                "no sub",
            ),
            (hs("k", json!({ "sub": "u1", "aud": "app" })), "no exp"),
            (
                hs(
                    "k",
                    json!({ "sub": "u1", "exp": now() + 60, "nbf": now() + 60, "aud": "app" }),
                ),
                "nbf",
            ),
            (
                hs(
                    "k",
                    json!({ "sub": "bad id!", "exp": now() + 60, "aud": "app" }),
                ),
                "sub charset",
            ),
            ("not.a.token".to_owned(), "malformed"),
            (
                "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9.".to_owned(),
                "alg none",
            ),
        ] {
            assert!(a.verify(&token).await.is_err(), "{why} must be refused");
        }
    }

    #[test]
    fn a_pem_that_is_no_public_key_is_a_config_error() {
        let err = Authenticator::new(&AuthConfig::new(KeySource::PublicPem("nope".into())));
        assert!(matches!(err, Err(AuthConfigError::Pem)));
    }
}
