//! Test guest: a kv probe for namespacing tests. Every build uses the same kv
//! key names, so two builds loaded side by side must not see each other's data.
//!
//! `RTM_PLUGIN_NAME` (build time, default `kv-a`) names the plugin; its events
//! are that name without dashes plus `:*` (`kv-a` -> `kva:*`, `kv-b` -> `kvb:*`):
//! - `<p>:set {value}`: stores `value` at key `shared`, pushes it on list
//!   `shared-list` (last 3 kept), sets field `value` of hash `shared-hash`, and
//!   increments `counter`; ack `{}`.
//! - `<p>:get`: ack `{value, list, hash, counter}` read back from those keys.
//! - `<p>:put {key, value, ttlMs?}`: stores `value` at `key` (expiring after `ttlMs`
//!   when given); ack `{}`. For quota and expiry tests.

use rtm_guest::{Ctx, Error, Manifest, Plugin, Reply, kv};
use serde::Deserialize;

const NAME: &str = match option_env!("RTM_PLUGIN_NAME") {
    Some(name) => name,
    None => "kv-a",
};

/// The keys every build uses.
const KEY: &str = "shared";
const LIST_KEY: &str = "shared-list";
const HASH_KEY: &str = "shared-hash";

struct KvProbe;

#[derive(Deserialize)]
struct Set {
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Put {
    key: String,
    value: String,
    ttl_ms: Option<u64>,
}

fn prefix() -> String {
    NAME.replace('-', "")
}

impl Plugin for KvProbe {
    fn manifest() -> Manifest {
        Manifest::new(NAME, "0.1.0").event(format!("{}:*", prefix()))
    }

    fn on_event(ctx: Ctx) -> Result<Reply, Error> {
        let action = ctx.event.rsplit(':').next().unwrap_or_default();
        match action {
            "set" => {
                let req: Set = ctx.payload()?;
                kv::set(KEY, &req.value, None)?;
                kv::list_push(LIST_KEY, &req.value, Some(3))?;
                kv::hash_set(HASH_KEY, "value", &req.value)?;
                kv::incr("counter", 1)?;
                Reply::json(&serde_json::json!({}))
            }
            "put" => {
                let req: Put = ctx.payload()?;
                kv::set(
                    &req.key,
                    &req.value,
                    req.ttl_ms.map(std::time::Duration::from_millis),
                )?;
                Reply::json(&serde_json::json!({}))
            }
            "get" => {
                let value: Option<String> = kv::get(KEY)?;
                let list: Vec<String> = kv::list_range(LIST_KEY, 0, -1)?;
                let hash: Option<String> = kv::hash_get(HASH_KEY, "value")?;
                let counter = kv::incr("counter", 0)?;
                Reply::json(
                    &serde_json::json!({ "value": value, "list": list, "hash": hash, "counter": counter }),
                )
            }
            other => Err(Error::new(
                "unknown_action",
                format!("{NAME} has no action {other:?}"),
            )),
        }
    }
}

rtm_guest::export_plugin!(KvProbe);
