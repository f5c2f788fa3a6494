//! `chat`: rooms x users join presence, then `chat:message {roomId, text}` at a total
//! rate through the chat plugin. Each text starts with its intended send time (µs on
//! the harness clock), so every receiving member measures end-to-end delivery latency
//! (send -> that member's `chat:message`) without any clock sync. Reports ack latency,
//! delivery latency, deliveries per second and deliveries lost (expected = joined
//! members of the room for every acknowledged message). A window takes any sender
//! ([`Session::window`]): `fanout` drives the same one through the Server API.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Env;
use super::ack::{self, Ack};
use super::drive::{self, Window};
use super::population::{self, Population, SETUP_OPS};
use crate::client::{AckOutcome, EventSink, packet};
use crate::measurement::Measurement;
use crate::progress::Progress;
use crate::recorder::Recorder;

/// `publish` is the Server API's send (`fanout`), beside the plugin's `message`.
const OPS: [&str; 4] = ["message", "publish", "delivery", drive::SCHEDULE_LAG];
const COUNTERS: [&str; 4] = [
    "sent",
    "expected_deliveries",
    "foreign_events",
    "disconnects",
];

#[derive(Deserialize)]
struct Delivered<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(default, borrow)]
    v: Option<Cow<'a, str>>,
}

/// The send time a text starts with.
fn sent_at(text: &str) -> Option<u64> {
    text.split(' ').next()?.parse().ok()
}

/// Measures deliveries as members receive them.
struct Sink {
    rec: Arc<Recorder>,
}

impl EventSink for Sink {
    fn on_event(&self, name: &str, args: &str) {
        if name != "chat:message" {
            return;
        }
        let now = self.rec.now_us();
        let sent = packet::event_data(args)
            .ok()
            .flatten()
            .and_then(|raw| serde_json::from_str::<Delivered<'_>>(raw.get()).ok())
            .and_then(|d| sent_at(&d.text));
        match sent {
            Some(t_us) => self.rec.sample("delivery", t_us, now.saturating_sub(t_us)),
            None => self.rec.count("foreign_events", now, 1),
        }
    }

    fn on_close(&self) {
        self.rec.count("disconnects", self.rec.now_us(), 1);
    }
}

/// Which plugin build answered, by the `v` marker of its acks (window only).
#[derive(Debug, Clone, Copy, Default)]
pub struct VersionSeen {
    pub acks: u64,
    pub first_us: u64,
    pub last_us: u64,
}

pub type Versions = Arc<Mutex<BTreeMap<String, VersionSeen>>>;

/// Joined members, ready to chat at one or more rates.
pub struct Session {
    rec: Arc<Recorder>,
    setup: Arc<Recorder>,
    pop: Population,
    pub versions: Versions,
}

/// Message text `bytes` long (or longer, if the send time alone is): the send time in
/// µs, a space, then `pad` (`x`s) — what [`Sink`] reads the send time back from.
pub fn message_text(t_us: u64, bytes: usize, pad: &str) -> String {
    let mut text = t_us.to_string();
    text.push(' ');
    text.push_str(&pad[..bytes.saturating_sub(text.len()).min(pad.len())]);
    text
}

impl Session {
    /// Joins the members, then checks with one message that the chat plugin answers.
    pub async fn setup(env: &Env) -> anyhow::Result<Self> {
        let session = Self::join(env).await?;
        session.probe_plugin().await?;
        Ok(session)
    }

    /// Joins the members, each measuring the `chat:message` deliveries it receives, and
    /// sends nothing (`fanout` through the Server API needs no plugin).
    pub async fn join(env: &Env) -> anyhow::Result<Self> {
        let rec = Arc::new(Recorder::new(&OPS, &COUNTERS));
        let setup = Arc::new(Recorder::new(&SETUP_OPS, &[]));
        setup.open_all();
        let sink_rec = rec.clone();
        let make_sink = move |_room: usize| -> Arc<dyn EventSink> {
            Arc::new(Sink {
                rec: sink_rec.clone(),
            })
        };
        let pop = population::join_rooms(env, &setup, &make_sink).await?;
        Ok(Self {
            rec,
            setup,
            pop,
            versions: Arc::new(Mutex::new(BTreeMap::new())),
        })
    }

    /// One probe message: a server without the chat plugin fails here, clearly.
    async fn probe_plugin(&self) -> anyhow::Result<()> {
        let probe = &self.pop.members[0];
        let reply = probe
            .client
            .request(
                "chat:message",
                format!(r#"{{"roomId":"{}","text":"0 probe"}}"#, probe.room_id),
            )
            .await?;
        if let Ok(Ack::Refused { code, .. }) = ack::parse(&reply) {
            anyhow::bail!(
                "the server refused chat:message ({code}): is the chat plugin loaded? ack: {reply}"
            );
        }
        Ok(())
    }

    /// The session's recorder (reload reads its timeline).
    pub fn recorder(&self) -> &Arc<Recorder> {
        &self.rec
    }

    /// The joined members and their rooms.
    pub fn population(&self) -> &Population {
        &self.pop
    }

    /// One measured window at `rate` messages per second through the chat plugin.
    /// `on_window`, when given, is called with the planned window before load starts
    /// (reload schedules its swaps).
    pub async fn measure(
        &self,
        env: &Env,
        rate: f64,
        on_window: Option<Box<dyn FnOnce(Window) + Send>>,
    ) -> anyhow::Result<Measurement> {
        let send = |i, t_us, text: &str| self.send_message(i, t_us, text);
        self.window(env, rate, on_window, "message", send).await
    }

    /// Message `i`, sent at `t_us`, from member `i % members` through the chat plugin:
    /// its ack is the `message` op, and an `ok` ack expects one delivery per member of
    /// the room.
    pub fn send_message(&self, i: u64, t_us: u64, text: &str) {
        let rec = &self.rec;
        let members = &self.pop.members;
        let member = &members[(i % members.len() as u64) as usize];
        let payload = format!(r#"{{"roomId":"{}","text":"{text}"}}"#, member.room_id);
        let expected = self.pop.room_sizes[member.room];
        let (cb_rec, versions) = (rec.clone(), self.versions.clone());
        let callback = Box::new(move |outcome: AckOutcome<'_>| {
            let latency = cb_rec.now_us().saturating_sub(t_us);
            match outcome {
                AckOutcome::Reply(args) => match ack::parse(args) {
                    Ok(Ack::Ok { data, .. }) => {
                        cb_rec.ok("message", t_us, latency);
                        cb_rec.count("expected_deliveries", t_us, expected);
                        let version = data
                            .and_then(|d| serde_json::from_str::<Reply<'_>>(d.get()).ok())
                            .and_then(|r| r.v.map(Cow::into_owned));
                        if let (Some(v), true) = (version, cb_rec.in_window(t_us)) {
                            note_version(&versions, v, t_us);
                        }
                    }
                    Ok(Ack::Refused { code, .. }) => cb_rec.err("message", t_us, &code),
                    Err(_) => cb_rec.err("message", t_us, "bad_ack"),
                },
                AckOutcome::TimedOut => cb_rec.err("message", t_us, "ack_timeout"),
                AckOutcome::Closed => cb_rec.err("message", t_us, "closed"),
            }
        });
        if member
            .client
            .emit("chat:message", payload, Some(callback))
            .is_err()
        {
            rec.err("message", t_us, "closed");
        }
    }

    /// One measured window at `rate` messages per second: message `i` is due at
    /// `t_us` with its `text`, and `send(i, t_us, text)` sends it, records its outcome
    /// (one `ok` or `err` for the `issued` this loop records) and, once the server has
    /// taken it, counts the `expected_deliveries`. `primary` is the op the rates and
    /// CPU are per. `on_window`: see [`Self::measure`].
    pub async fn window(
        &self,
        env: &Env,
        rate: f64,
        on_window: Option<Box<dyn FnOnce(Window) + Send>>,
        primary: &'static str,
        mut send: impl FnMut(u64, u64, &str),
    ) -> anyhow::Result<Measurement> {
        let args = &env.args;
        let window = Window::plan(args.warmup, args.duration);
        let rec = &self.rec;
        let timeline = on_window.as_ref().map(|_| "message");
        rec.reset_window(window.start, window.end, timeline);
        if let Ok(mut versions) = self.versions.lock() {
            versions.clear();
        }
        if let Some(hook) = on_window {
            hook(window);
        }
        let _progress = Progress::start(
            env.label(&format!("{}/s", crate::report::thousands(rate))),
            rec.clone(),
            env.probe.clone(),
            args.quiet,
        );
        let pad = "x".repeat(args.text_bytes);
        let offered = drive::offer(rec, &env.probe, rate, window, |i, t_us| {
            let text = message_text(t_us, args.text_bytes, &pad);
            rec.issued();
            rec.count("sent", t_us, 1);
            send(i, t_us, &text);
        })
        .await;
        drive::drain(rec, args.ack_timeout + Duration::from_secs(1), || true).await;
        // Then give deliveries a moment to catch up with the acks.
        drive::drain(rec, Duration::from_secs(3), || {
            rec.window_ok("delivery") >= rec.window_count("expected_deliveries")
        })
        .await;
        Ok(self.measurement(env, rate, window, primary, offered))
    }

    /// The window's numbers: deliveries lost and extra against those expected, the
    /// setup's ops, Redis per `primary` op, and the plugin builds that answered.
    fn measurement(
        &self,
        env: &Env,
        rate: f64,
        window: Window,
        primary: &'static str,
        offered: drive::Offered,
    ) -> Measurement {
        let args = &env.args;
        let rec = &self.rec;
        let mut data = rec.window_data();
        let delivered = data.ops.get("delivery").map_or(0, |(ok, _, _)| *ok);
        let expected = data
            .counters
            .get("expected_deliveries")
            .copied()
            .unwrap_or(0);
        data.counters
            .insert("lost_deliveries", expected.saturating_sub(delivered));
        data.counters
            .insert("extra_deliveries", delivered.saturating_sub(expected));
        let setup = self.setup.window_data();
        data.ops.extend(setup.ops);
        data.errors.extend(setup.errors);
        let mut extra = Map::new();
        let done = data.ops.get(primary).map_or(0, |(ok, _, _)| *ok);
        if let Some(redis) = offered.redis_per_op(done) {
            extra.insert("redis_commands".into(), redis);
        }
        extra.insert(
            "joined".into(),
            Value::from(format!("{}/{}", self.pop.members.len(), self.pop.attempted)),
        );
        if let Some(by_version) = self.versions_seen() {
            extra.insert("plugin_versions".into(), by_version);
        }
        Measurement {
            scenario: "chat",
            target: env.target.clone(),
            level: rate,
            connections: self.pop.members.len() as u64,
            rooms: args.rooms(),
            users_per_room: args.users_per_room,
            window: window.length(),
            primary,
            setup_ops: &SETUP_OPS,
            data,
            cpu: offered.cpu,
            memory: None,
            rounds: 1,
            extra,
        }
    }

    /// Which plugin builds answered in the window and when, if any acks said.
    fn versions_seen(&self) -> Option<Value> {
        let versions = self.versions.lock().ok()?;
        if versions.is_empty() {
            return None;
        }
        let start = self.rec.window_start_us();
        let by_version: Map<String, Value> = versions
            .iter()
            .map(|(v, seen)| {
                (
                    v.clone(),
                    json!({
                        "acks": seen.acks,
                        "first_s": seen.first_us.saturating_sub(start) as f64 / 1e6,
                        "last_s": seen.last_us.saturating_sub(start) as f64 / 1e6,
                    }),
                )
            })
            .collect();
        Some(Value::Object(by_version))
    }
}

/// Notes that build `v` acked a message sent at `t_us`.
fn note_version(versions: &Versions, v: String, t_us: u64) {
    if let Ok(mut versions) = versions.lock() {
        let seen = versions.entry(v).or_insert(VersionSeen {
            acks: 0,
            first_us: t_us,
            last_us: t_us,
        });
        seen.acks += 1;
        seen.first_us = seen.first_us.min(t_us);
        seen.last_us = seen.last_us.max(t_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_send_times() {
        assert_eq!(sent_at("123456 xxxx"), Some(123_456));
        assert_eq!(sent_at("hello"), None);
        assert_eq!(sent_at(""), None);
    }

    #[test]
    fn texts_carry_their_send_time_and_length() {
        let pad = "x".repeat(64);
        let text = message_text(123_456, 24, &pad);
        assert_eq!(text.len(), 24);
        assert_eq!(sent_at(&text), Some(123_456));
        // Too short for the time: the time wins, unpadded.
        assert_eq!(message_text(123_456, 3, &pad), "123456 ");
    }
}
