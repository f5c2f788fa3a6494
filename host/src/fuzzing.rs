//! Entry points of the fuzz targets in `fuzz/` (cargo-fuzz) for the parsers that are not
//! public: each feeds raw bytes to one parser the way a client, a plugin or an operator
//! reaches it, and checks what must hold whatever the bytes. A panic, a hang or an
//! allocation blow-up is a finding. Not part of the host's API.

use std::path::Path;

use serde_json::Value;

use crate::auth::{AuthConfig, Authenticator, KeySource};
use crate::plugins::manifest::{HookSet, Manifest};
use crate::presence::request::{HeartbeatRequest, JoinRequest, Limits, RoomRequest};
use crate::tenancy::secret::Secret;

/// The limits a default host applies to presence payloads.
const LIMITS: Limits = Limits {
    max_id_len: 128,
    max_state_bytes: 4096,
};

/// A presence event's payload (JSON, as socketioxide hands it over) through every
/// request parser; what a parser accepts must stay within the limits it enforces.
pub fn presence_request(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(join) = JoinRequest::parse(&v, &LIMITS) {
        assert!(join.room_id.len() <= LIMITS.max_id_len, "{join:?}");
        assert!(join.user_id.len() <= LIMITS.max_id_len, "{join:?}");
        if let Some(state) = &join.state {
            let size = crate::presence::store::state_size(state);
            assert!(size <= LIMITS.max_state_bytes, "{size}: {join:?}");
        }
    }
    if let Ok(beat) = HeartbeatRequest::parse(&v, &LIMITS)
        && let Some(room) = &beat.room_id
    {
        assert!(room.len() <= LIMITS.max_id_len, "{beat:?}");
    }
    let _ = RoomRequest::parse_leave(&v, &LIMITS);
    if let Ok(room) = RoomRequest::parse_snapshot(&v, &LIMITS) {
        assert!(room.len() <= LIMITS.max_id_len, "{room}");
    }
}

/// What a plugin's `manifest()` export returns (name, version, hooks, event patterns,
/// one per line of `data`) through the host's validation. An accepted manifest has no
/// two patterns that one event name matches, and each pattern matches its own text.
pub fn manifest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\n');
    let name = fields.next().unwrap_or_default();
    let version = fields.next().unwrap_or_default();
    let hooks = fields.next().unwrap_or_default();
    let events: Vec<String> = fields.map(str::to_owned).collect();
    let hooks = HookSet {
        connect: hooks.contains('c'),
        disconnect: hooks.contains('d'),
        presence: hooks.contains('p'),
    };
    let Ok(accepted) = Manifest::validate(name, version, &events, hooks) else {
        return;
    };
    for (i, a) in accepted.events.iter().enumerate() {
        let probe = a.to_manifest_string();
        let probe = probe.trim_end_matches('*');
        assert!(a.matches(probe), "{a} must match {probe}");
        for b in &accepted.events[i + 1..] {
            assert!(
                !b.matches(probe),
                "accepted {a} and {b}, which both match {probe}"
            );
        }
    }
}

/// A tenants file's text, validated against default host settings; never reads a file
/// (the key-file path is relative to a folder that does not exist) or the environment.
pub fn tenants_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = crate::tenancy::limits::ClientLimits::default();
    let plugins = crate::plugins::PluginConfig::default();
    let base = crate::tenancy::file::Base {
        limits: &limits,
        plugins: &plugins,
        env: &|_| None,
    };
    let dir = Path::new("/nonexistent/rtm-fuzz");
    if let Ok(tenants) = crate::tenancy::file::parse(text, dir, &base) {
        let mut ids: Vec<&str> = tenants.iter().map(|t| t.id.as_str()).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "an accepted file names each tenant once");
    }
}

/// The secret the fuzzer signs with (the JWT target's tokens are forged otherwise).
const JWT_SECRET: &str = "rtm-fuzz-secret-rtm-fuzz-secret!";

/// Either a raw bearer token (first byte even: header and base64 decoding before any
/// signature check) or a claims payload signed with the host's own secret (odd: the
/// claims path a valid signature reaches). An accepted token's identity is valid.
pub fn jwt(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let Ok(claims) = serde_json::from_slice::<Box<serde_json::value::RawValue>>(rest) else {
            return;
        };
        let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes());
        match jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key) {
            Ok(token) => token,
            Err(_) => return,
        }
    };
    let cfg = AuthConfig::new(KeySource::Hs256(Secret::new(JWT_SECRET.to_owned())));
    let Ok(auth) = Authenticator::new(&cfg) else {
        return;
    };
    if let Ok(identity) = futures::executor::block_on(auth.verify(&token)) {
        assert!(
            crate::presence::ids::is_valid_id(&identity.user, 128),
            "{identity:?}"
        );
    }
}
