//! A tenant's JWKS: fetched over HTTP(S), cached by `kid`, refetched when a token names
//! a `kid` the cache lacks (at most once per `jwks_refetch_min_s`) and when the cached
//! set is older than `jwks_cache_s`. One fetch at a time per tenant: connects that need
//! keys meanwhile wait for it instead of each fetching.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::{AuthConfigError, AuthError};

pub(super) struct JwksCache {
    url: String,
    client: reqwest::Client,
    refetch_min: Duration,
    max_age: Duration,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    /// When the cached set was fetched (`None`: never successfully).
    fetched: Option<Instant>,
    /// When a fetch was last tried, successful or not.
    tried: Option<Instant>,
}

impl JwksCache {
    pub(super) fn new(
        url: &str,
        refetch_min: Duration,
        timeout: Duration,
        max_age: Duration,
    ) -> Result<Self, AuthConfigError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| AuthConfigError::Client(e.to_string()))?;
        Ok(Self {
            url: url.to_owned(),
            client,
            refetch_min,
            max_age,
            state: tokio::sync::Mutex::new(State::default()),
        })
    }

    /// The key for `kid` (a token without `kid` is accepted only when the set has one key).
    pub(super) async fn key(
        &self,
        kid: Option<&str>,
    ) -> Result<(DecodingKey, Algorithm), AuthError> {
        let mut state = self.state.lock().await;
        let stale = state.fetched.is_none_or(|t| t.elapsed() >= self.max_age);
        if stale && self.may_fetch(&state) {
            self.refresh(&mut state).await?;
        }
        if let Some(found) = lookup(&state, kid) {
            return Ok(found);
        }
        if self.may_fetch(&state) {
            self.refresh(&mut state).await?;
            if let Some(found) = lookup(&state, kid) {
                return Ok(found);
            }
        }
        Err(AuthError::UnknownKey(kid.unwrap_or("").to_owned()))
    }

    fn may_fetch(&self, state: &State) -> bool {
        state.tried.is_none_or(|t| t.elapsed() >= self.refetch_min)
    }

    async fn refresh(&self, state: &mut State) -> Result<(), AuthError> {
        state.tried = Some(Instant::now());
        let set = self.fetch().await?;
        state.keys = keys_of(&set);
        state.fetched = Some(Instant::now());
        tracing::info!(url = %self.url, keys = state.keys.len(), "JWKS fetched");
        Ok(())
    }

    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        let err = |e: reqwest::Error| AuthError::Jwks(format!("{}: {e}", self.url));
        self.client
            .get(&self.url)
            .send()
            .await
            .map_err(err)?
            .error_for_status()
            .map_err(err)?
            .json::<JwkSet>()
            .await
            .map_err(err)
    }
}

fn lookup(state: &State, kid: Option<&str>) -> Option<(DecodingKey, Algorithm)> {
    match kid {
        Some(kid) => state.keys.get(kid).cloned(),
        None if state.keys.len() == 1 => state.keys.values().next().cloned(),
        None => None,
    }
}

/// The usable signature keys of a set, by `kid`. Symmetric (`oct`) keys are skipped: a
/// published key must never become an HMAC secret.
fn keys_of(set: &JwkSet) -> HashMap<String, (DecodingKey, Algorithm)> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let alg = algorithm(jwk)?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((jwk.common.key_id.clone().unwrap_or_default(), (key, alg)))
        })
        .collect()
}

/// The one algorithm a key verifies: the one it names, if that fits its type, else its
/// type's usual one.
fn algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let named = jwk.common.key_algorithm.and_then(|a| match a {
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::RS384 => Some(Algorithm::RS384),
        KeyAlgorithm::RS512 => Some(Algorithm::RS512),
        KeyAlgorithm::PS256 => Some(Algorithm::PS256),
        KeyAlgorithm::PS384 => Some(Algorithm::PS384),
        KeyAlgorithm::PS512 => Some(Algorithm::PS512),
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        KeyAlgorithm::ES384 => Some(Algorithm::ES384),
        KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        _ => None,
    });
    let fits = |alg: Algorithm| match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        AlgorithmParameters::EllipticCurve(ec) => matches!(
            (&ec.curve, alg),
            (EllipticCurve::P256, Algorithm::ES256) | (EllipticCurve::P384, Algorithm::ES384)
        ),
        AlgorithmParameters::OctetKeyPair(_) => alg == Algorithm::EdDSA,
        AlgorithmParameters::OctetKey(_) => false,
    };
    let usual = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(okp) => {
            (okp.curve == EllipticCurve::Ed25519).then_some(Algorithm::EdDSA)
        }
        AlgorithmParameters::OctetKey(_) => None,
    };
    match named {
        Some(alg) => fits(alg).then_some(alg),
        None => usual,
    }
}
