//! `fanout` (issue 12): one fan-out, two ways in, on the same joined clients, each in
//! its own window at `--messages-per-sec`:
//!
//! - `plugin`: members emit `chat:message {roomId, text}` and the chat plugin fans it
//!   out to the room, as in `chat`;
//! - `api`: the harness, as a tenant's backend would, publishes event `chat:message`
//!   with `{roomId, text}` to the room through the Server API (`POST
//!   /api/v1/default/publish`), room after room, each room's publishes alternating
//!   between the target's nodes ([`node_of`]).
//!
//! Both texts start with the send time, so the members' sinks measure deliveries the
//! same way (see [`chat`]). On a multi-node target (`redis-nodes:<N>`) every room has
//! members on every node, so every message reaches some members across nodes. Each
//! path is one [`Measurement`] whose primary op is `delivery`: its rate, latency and
//! CPU-µs are per delivered message, and `message` (the plugin's ack) or `publish`
//! (the HTTP answer) is the send's own latency. The order of the two windows alternates
//! by round, so neither always runs on the fresher server.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use serde_json::Value;

use super::Env;
use super::chat::Session;
use super::drive;
use super::population::node_of;
use crate::cli::Via;
use crate::measurement::Measurement;
use crate::report::{Report, thousands};
use crate::server_api::{Answer, ServerApi};

/// One way a message enters the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Plugin,
    Api,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::Plugin => "plugin",
            Route::Api => "api",
        }
    }

    /// The op timing the send itself: the plugin's ack, or the API's HTTP answer.
    pub fn send_op(self) -> &'static str {
        match self {
            Route::Plugin => "message",
            Route::Api => "publish",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Route::Plugin, Route::Api]
            .into_iter()
            .find(|r| r.name() == name)
    }
}

/// The windows of round `round` (from 0), in the order they run: with both paths, the
/// plugin first in even rounds and the API first in odd ones.
pub fn order(via: Via, round: u32) -> Vec<Route> {
    match via {
        Via::Plugin => vec![Route::Plugin],
        Via::Api => vec![Route::Api],
        Via::Both if round.is_multiple_of(2) => vec![Route::Plugin, Route::Api],
        Via::Both => vec![Route::Api, Route::Plugin],
    }
}

/// A publish to a room nobody joins, to learn before any load whether the API takes
/// the key.
const PROBE_PUBLISH: &str =
    r#"{"room":"rtm-bench-probe","event":"chat:message","data":{"text":"0 probe"}}"#;

/// One round: join, then a window per path; the measurements come plugin first,
/// whatever order they ran in.
pub async fn run(env: &Env, round: u32) -> anyhow::Result<Vec<Measurement>> {
    let via = env.args.via;
    let api = if via.api() {
        Some(server_api(env).await?)
    } else {
        None
    };
    let session = if via.plugin() {
        Session::setup(env).await?
    } else {
        Session::join(env).await?
    };
    let (mut plugin, mut published) = (None, None);
    for (i, route) in order(via, round).into_iter().enumerate() {
        if i > 0 {
            renew(&session, env).await?;
            // The first window's teardown must not bill the second.
            drive::quiesce(&env.probe, std::time::Duration::from_secs(10)).await;
        }
        let m = match (route, &api) {
            (Route::Plugin, _) => measure_plugin(&session, env).await?,
            (Route::Api, Some(api)) => measure_api(&session, env, api).await?,
            (Route::Api, None) => bail!("no Server API client"),
        };
        let m = labelled(m, env, &session, route);
        match route {
            Route::Plugin => plugin = Some(m),
            Route::Api => published = Some(m),
        }
    }
    Ok([plugin, published].into_iter().flatten().collect())
}

/// Renews every member's registration before the next window, so two windows in a row
/// stay within the presence TTL (each window alone must: `--warmup` + `--duration`
/// under `PRESENCE_TTL_MS`).
async fn renew(session: &Session, env: &Env) -> anyhow::Result<()> {
    let pop = session.population();
    let refused = pop
        .heartbeat_all(env.args.connect_concurrency as usize)
        .await;
    if refused > 0 {
        bail!(
            "{refused} of {} members could not renew their registration between the windows",
            pop.members.len()
        );
    }
    Ok(())
}

/// The target's Server API, checked with one publish on every node.
async fn server_api(env: &Env) -> anyhow::Result<ServerApi> {
    let args = &env.args;
    let key = env
        .api_key
        .as_deref()
        .context("fanout through the Server API needs the target's key (--api-key)")?;
    let api = ServerApi::new(
        &env.nodes,
        key,
        args.api_max_in_flight as usize,
        args.ack_timeout,
    )?;
    for (node, at) in env.nodes.iter().enumerate() {
        if let Err(code) = api.call(node, PROBE_PUBLISH.to_owned()).await {
            bail!(
                "the Server API of {} refused a publish ({code}): is it an rtm-host with API_KEY set to the key given?",
                at.url
            );
        }
    }
    Ok(api)
}

/// A window of `chat:message` emits from the members, fanned out by the plugin.
async fn measure_plugin(session: &Session, env: &Env) -> anyhow::Result<Measurement> {
    let send = |i, t_us, text: &str| session.send_message(i, t_us, text);
    session
        .window(env, env.args.messages_per_sec, None, "delivery", send)
        .await
}

/// The publish request of message `text` to `room_id`: event `chat:message` with the
/// fields of the plugin's broadcast that matter here (`text`, which the sink reads the
/// send time from, and `roomId`).
fn publish_body(room_id: &str, text: &str) -> String {
    format!(
        r#"{{"room":"{room_id}","event":"chat:message","data":{{"roomId":"{room_id}","text":"{text}"}}}}"#
    )
}

/// A window of Server API publishes: publish `i` goes to room `i % rooms` through node
/// [`node_of`]`(i, rooms, nodes)`; a `200 {"ok":true}` expects one delivery per member.
async fn measure_api(session: &Session, env: &Env, api: &ServerApi) -> anyhow::Result<Measurement> {
    let pop = session.population();
    let rec = session.recorder();
    let rooms = pop.room_ids.len();
    let send = |i: u64, t_us: u64, text: &str| {
        let room = (i % rooms as u64) as usize;
        let body = publish_body(&pop.room_ids[room], text);
        let expected = pop.room_sizes[room];
        let answered = rec.clone();
        let done = move |answer: Answer| {
            let latency = answered.now_us().saturating_sub(t_us);
            match answer {
                Ok(()) => {
                    answered.ok("publish", t_us, latency);
                    answered.count("expected_deliveries", t_us, expected);
                }
                Err(code) => answered.err("publish", t_us, &code),
            }
        };
        if api
            .publish(node_of(i, rooms, api.nodes()), body, done)
            .is_err()
        {
            rec.err("publish", t_us, "overrun");
        }
    };
    session
        .window(env, env.args.messages_per_sec, None, "delivery", send)
        .await
}

/// Names the measurement after its path, with how the members sat on the nodes.
fn labelled(mut m: Measurement, env: &Env, session: &Session, route: Route) -> Measurement {
    m.scenario = "fanout";
    m.target = format!("{} via {}", env.target, route.name());
    m.extra.insert("via".into(), Value::from(route.name()));
    let per_node = session.population().per_node(env.nodes.len());
    m.extra
        .insert("members_per_node".into(), Value::from(per_node));
    m
}

/// The paths side by side, one row each: what issue 12 asks to see.
pub fn summary(reports: &[Report]) -> String {
    let mut out = String::new();
    let Some(first) = reports.first() else {
        return out;
    };
    let _ = writeln!(
        out,
        "== fanout: {} clients ({} rooms x {}), {}/s offered per path\n  {:<28} {:>8} {:>15} {:>15} {:>12} {:>6} {:>6} {:>7} {:>11} {:>10}",
        thousands(first.connections as f64),
        first.rooms,
        first.users_per_room,
        thousands(first.level),
        "path",
        "sends/s",
        "send p50/p99",
        "deliv p50/p99",
        "deliveries/s",
        "lost",
        "extra",
        "errors",
        "server us/d",
        "redis us/d",
    );
    for r in reports {
        let route = r
            .extra
            .get("via")
            .and_then(Value::as_str)
            .and_then(Route::from_name);
        let Some(route) = route else { continue };
        let send = r.ops.get(route.send_op());
        let delivery = r.primary_latency();
        let counter = |k: &str| thousands(r.counters.get(k).copied().unwrap_or(0) as f64);
        let us = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"));
        let _ = writeln!(
            out,
            "  {:<28} {:>8} {:>15} {:>15} {:>12} {:>6} {:>6} {:>7} {:>11} {:>10}",
            r.target,
            thousands(send.and_then(|o| o.ok_per_s).unwrap_or(0.0)),
            send.map_or_else(
                || "-".to_owned(),
                |o| format!("{:.2} / {:.2}", o.latency.p50_ms, o.latency.p99_ms)
            ),
            format!("{:.2} / {:.2}", delivery.p50_ms, delivery.p99_ms),
            thousands(r.ops_per_s),
            counter("lost_deliveries"),
            counter("extra_deliveries"),
            r.error_total,
            us(r.cpu.server_us_per_op),
            us(r.cpu.redis_us_per_op),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_alternate_which_path_goes_first() {
        assert_eq!(order(Via::Both, 0), [Route::Plugin, Route::Api]);
        assert_eq!(order(Via::Both, 1), [Route::Api, Route::Plugin]);
        assert_eq!(order(Via::Both, 2), [Route::Plugin, Route::Api]);
        assert_eq!(order(Via::Api, 1), [Route::Api]);
        assert_eq!(order(Via::Plugin, 1), [Route::Plugin]);
    }

    #[test]
    fn publishes_what_the_sink_reads() -> anyhow::Result<()> {
        let body: Value = serde_json::from_str(&publish_body("b1x0-r3", "123 xx"))?;
        assert_eq!(body["room"], "b1x0-r3");
        assert_eq!(body["event"], "chat:message");
        assert_eq!(body["data"]["text"], "123 xx");
        assert_eq!(body["data"]["roomId"], "b1x0-r3");
        let probe: Value = serde_json::from_str(PROBE_PUBLISH)?;
        assert_eq!(probe["event"], "chat:message");
        assert_eq!(Route::from_name("api"), Some(Route::Api));
        assert_eq!(Route::from_name("x"), None);
        Ok(())
    }
}
