//! Secrets of the tenants file (JWT secrets, API keys, webhook secrets): written inline
//! or as `env:NAME`, held in a type that never prints its value, and compared in
//! constant time.

use std::fmt;

use subtle::ConstantTimeEq;

/// How the file reads the environment (a parameter so tests need not mutate theirs).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Why a secret could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    Unset(String),
    #[error("is empty")]
    Empty,
}

/// A secret value. `Debug` and `Display` show `***`, so a secret never reaches a log line,
/// metrics or admin output by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// `env:NAME` reads `NAME` from `env`; anything else is the secret itself.
    pub fn resolve(raw: &str, env: EnvLookup<'_>) -> Result<Self, SecretError> {
        let value = match raw.strip_prefix("env:") {
            Some(name) => env(name).ok_or_else(|| SecretError::Unset(name.to_owned()))?,
            None => raw.to_owned(),
        };
        if value.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Self(value))
    }

    /// A secret from a setting (the single-tenant host's `AUTH_*` and `API_KEY`).
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value, for the one place that uses it (a key, a signature).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time equality with what a client sent.
    pub fn matches(&self, sent: &str) -> bool {
        self.0.as_bytes().ct_eq(sent.as_bytes()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_references_resolve_and_never_print() {
        let env = |n: &str| (n == "K").then(|| "s3cret".to_owned());
        let s = Secret::resolve("env:K", &env).expect("set");
        assert_eq!(s.expose(), "s3cret");
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(s.matches("s3cret") && !s.matches("s3cre") && !s.matches("s3cret!"));
        assert!(
            matches!(Secret::resolve("env:NOPE", &env), Err(SecretError::Unset(n)) if n == "NOPE")
        );
        assert!(matches!(Secret::resolve("", &env), Err(SecretError::Empty)));
        assert_eq!(
            Secret::resolve("inline", &env).expect("inline").expose(),
            "inline"
        );
    }
}
