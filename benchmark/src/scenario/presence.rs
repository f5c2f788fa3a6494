//! `presence`: rooms x users join, then `presence:heartbeat` at a total rate, spread
//! round-robin over the members; a share of them carry `patchState` with the member's
//! current epoch (so every patch is accepted and broadcast as an `update`). Reports
//! join and heartbeat ack latency, patch latency, presence events received, errors.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Map, Value};

use super::Env;
use super::ack::{self, Ack};
use super::drive::{self, Window};
use super::population::{self, Population, SETUP_OPS};
use crate::client::{AckOutcome, EventSink};
use crate::measurement::Measurement;
use crate::progress::Progress;
use crate::recorder::Recorder;

const OPS: [&str; 3] = ["heartbeat", "patch", drive::SCHEDULE_LAG];
const COUNTERS: [&str; 3] = ["sent", "presence_events", "disconnects"];

/// Counts what the server pushes to a member.
struct Sink {
    rec: Arc<Recorder>,
}

impl EventSink for Sink {
    fn on_event(&self, name: &str, _args: &str) {
        if name == "presence:event" {
            self.rec.count("presence_events", self.rec.now_us(), 1);
        }
    }

    fn on_close(&self) {
        self.rec.count("disconnects", self.rec.now_us(), 1);
    }
}

/// Joined members, ready to be measured at one or more rates.
pub struct Session {
    rec: Arc<Recorder>,
    setup: Arc<Recorder>,
    pop: Population,
}

impl Session {
    pub async fn setup(env: &Env) -> anyhow::Result<Self> {
        let rec = Arc::new(Recorder::new(&OPS, &COUNTERS));
        let setup = Arc::new(Recorder::new(&SETUP_OPS, &[]));
        setup.open_all();
        // Count events from the start; the window decides what is reported.
        let sink_rec = rec.clone();
        let make_sink = move |_room: usize| -> Arc<dyn EventSink> {
            Arc::new(Sink {
                rec: sink_rec.clone(),
            })
        };
        let pop = population::join_rooms(env, &setup, &make_sink).await?;
        Ok(Self { rec, setup, pop })
    }

    /// One measured window at `rate` heartbeats per second.
    pub async fn measure(&self, env: &Env, rate: f64) -> anyhow::Result<Measurement> {
        let args = &env.args;
        let window = Window::plan(args.warmup, args.duration);
        let rec = &self.rec;
        rec.reset_window(window.start, window.end, None);
        let _progress = Progress::start(
            env.label(&format!("{}/s", crate::report::thousands(rate))),
            rec.clone(),
            env.probe.clone(),
            args.quiet,
        );
        let members = &self.pop.members;
        let share = args.patch_share;
        let offered = drive::offer(rec, &env.probe, rate, window, |i, t_us| {
            let member = &members[(i % members.len() as u64) as usize];
            let wants_patch =
                share > 0.0 && ((i + 1) as f64 * share).floor() > (i as f64 * share).floor();
            let patch = wants_patch && !member.patching.swap(true, Ordering::Relaxed);
            let payload = if patch {
                format!(
                    r#"{{"roomId":"{}","patchState":{{"n":{i}}},"epoch":{}}}"#,
                    member.room_id,
                    member.epoch.load(Ordering::Relaxed)
                )
            } else {
                format!(r#"{{"roomId":"{}"}}"#, member.room_id)
            };
            rec.issued();
            rec.count("sent", t_us, 1);
            let (cb_rec, cb_member) = (rec.clone(), member.clone());
            let callback = Box::new(move |outcome: AckOutcome<'_>| {
                let latency = cb_rec.now_us().saturating_sub(t_us);
                if patch {
                    cb_member.patching.store(false, Ordering::Relaxed);
                }
                match outcome {
                    AckOutcome::Reply(args) => match ack::parse(args) {
                        Ok(Ack::Ok { epoch, .. }) => {
                            if let Some(epoch) = epoch {
                                cb_member.epoch.fetch_max(epoch, Ordering::Relaxed);
                            }
                            cb_rec.ok("heartbeat", t_us, latency);
                            if patch {
                                cb_rec.sample("patch", t_us, latency);
                            }
                        }
                        Ok(Ack::Refused { code, epoch }) => {
                            if let Some(epoch) = epoch {
                                cb_member.epoch.fetch_max(epoch, Ordering::Relaxed);
                            }
                            cb_rec.err("heartbeat", t_us, &code);
                        }
                        Err(_) => cb_rec.err("heartbeat", t_us, "bad_ack"),
                    },
                    AckOutcome::TimedOut => cb_rec.err("heartbeat", t_us, "ack_timeout"),
                    AckOutcome::Closed => cb_rec.err("heartbeat", t_us, "closed"),
                }
            });
            if member
                .client
                .emit("presence:heartbeat", payload, Some(callback))
                .is_err()
            {
                if patch {
                    member.patching.store(false, Ordering::Relaxed);
                }
                rec.err("heartbeat", t_us, "closed");
            }
        })
        .await;
        drive::drain(
            rec,
            args.ack_timeout + std::time::Duration::from_secs(1),
            || true,
        )
        .await;

        let mut data = rec.window_data();
        let setup = self.setup.window_data();
        data.ops.extend(setup.ops);
        data.errors.extend(setup.errors);
        let mut extra = Map::new();
        let done = data.ops.get("heartbeat").map_or(0, |(ok, _, _)| *ok);
        if let Some(redis) = offered.redis_per_op(done) {
            extra.insert("redis_commands".into(), redis);
        }
        extra.insert(
            "joined".into(),
            Value::from(format!("{}/{}", self.pop.members.len(), self.pop.attempted)),
        );
        Ok(Measurement {
            scenario: "presence",
            target: env.target.clone(),
            level: rate,
            connections: self.pop.members.len() as u64,
            rooms: args.rooms(),
            users_per_room: args.users_per_room,
            window: window.length(),
            primary: "heartbeat",
            setup_ops: &SETUP_OPS,
            data,
            cpu: offered.cpu,
            memory: None,
            rounds: 1,
            extra,
        })
    }
}
