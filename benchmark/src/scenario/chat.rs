//! `chat`: rooms x users join presence, then `chat:message {roomId, text}` at a total
//! rate through the chat plugin. Each text starts with its intended send time (µs on
//! the harness clock), so every receiving member measures end-to-end delivery latency
//! (send -> that member's `chat:message`) without any clock sync. Reports ack latency,
//! delivery latency, deliveries per second and deliveries lost (expected = joined
//! members of the room for every acknowledged message).

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

const OPS: [&str; 3] = ["message", "delivery", drive::SCHEDULE_LAG];
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

impl Session {
    pub async fn setup(env: &Env) -> anyhow::Result<Self> {
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
        // One probe message: a server without the chat plugin fails here, clearly.
        let probe = &pop.members[0];
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
        Ok(Self {
            rec,
            setup,
            pop,
            versions: Arc::new(Mutex::new(BTreeMap::new())),
        })
    }

    /// The session's recorder (reload reads its timeline).
    pub fn recorder(&self) -> &Arc<Recorder> {
        &self.rec
    }

    /// One measured window at `rate` messages per second. `on_window`, when given, is
    /// called with the planned window before load starts (reload schedules its swaps).
    pub async fn measure(
        &self,
        env: &Env,
        rate: f64,
        on_window: Option<Box<dyn FnOnce(Window) + Send>>,
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
            env.probe,
            args.quiet,
        );
        let members = &self.pop.members;
        let room_sizes = &self.pop.room_sizes;
        let pad = "x".repeat(args.text_bytes);
        let offered = drive::offer(rec, &env.probe, rate, window, |i, t_us| {
            let member = &members[(i % members.len() as u64) as usize];
            let mut text = t_us.to_string();
            text.push(' ');
            text.push_str(&pad[..args.text_bytes.saturating_sub(text.len()).min(pad.len())]);
            let payload = format!(r#"{{"roomId":"{}","text":"{text}"}}"#, member.room_id);
            rec.issued();
            rec.count("sent", t_us, 1);
            let expected = room_sizes[member.room];
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
                            if let (Some(v), true) = (version, cb_rec.in_window(t_us))
                                && let Ok(mut versions) = versions.lock()
                            {
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
        })
        .await;
        drive::drain(rec, args.ack_timeout + Duration::from_secs(1), || true).await;
        // Then give deliveries a moment to catch up with the acks.
        drive::drain(rec, Duration::from_secs(3), || {
            rec.window_ok("delivery") >= rec.window_count("expected_deliveries")
        })
        .await;

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
        let done = data.ops.get("message").map_or(0, |(ok, _, _)| *ok);
        if let Some(redis) = offered.redis_per_op(done) {
            extra.insert("redis_commands".into(), redis);
        }
        extra.insert(
            "joined".into(),
            Value::from(format!("{}/{}", self.pop.members.len(), self.pop.attempted)),
        );
        if let Ok(versions) = self.versions.lock()
            && !versions.is_empty()
        {
            let start = rec.window_start_us();
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
            extra.insert("plugin_versions".into(), Value::Object(by_version));
        }
        Ok(Measurement {
            scenario: "chat",
            target: env.target.clone(),
            level: rate,
            connections: self.pop.members.len() as u64,
            rooms: args.rooms(),
            users_per_room: args.users_per_room,
            window: window.length(),
            primary: "message",
            setup_ops: &SETUP_OPS,
            data,
            cpu: offered.cpu,
            memory: None,
            rounds: 1,
            extra,
        })
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
}
