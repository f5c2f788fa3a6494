//! `storm`: N clients connect and join at once (or `--storm-concurrency` at a time);
//! the time until all are joined, per-client connect/join latency, errors, and the
//! server's CPU per joined connection.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use super::Env;
use super::population::{self, Plan, SETUP_OPS};
use crate::client::{EventSink, NoEvents};
use crate::measurement::Measurement;
use crate::progress::Progress;
use crate::recorder::Recorder;

pub async fn run(env: &Env, connections: u32) -> anyhow::Result<Measurement> {
    let args = &env.args;
    let rooms = args.rooms_for(connections);
    let rec = Arc::new(Recorder::new(&SETUP_OPS, &[]));
    rec.open_all();
    let sink: Arc<dyn EventSink> = Arc::new(NoEvents);
    let make_sink = move |_room: usize| sink.clone();
    let concurrency = args.storm_concurrency.unwrap_or(connections).max(1) as usize;
    let before = env.probe.sample();
    let started = Instant::now();
    let pop = {
        let _progress = Progress::start(
            env.label("storm"),
            rec.clone(),
            env.probe.clone(),
            args.quiet,
        );
        population::populate(
            env,
            Plan {
                rooms,
                total: connections,
                concurrency,
                join: !args.skip_join,
            },
            &rec,
            &make_sink,
        )
        .await
    };
    let elapsed = started.elapsed();
    let cpu = env.probe.sample().since(&before);
    let joined = pop.members.len();
    let mut extra = Map::new();
    extra.insert(
        "joined".into(),
        Value::from(format!("{joined}/{}", pop.attempted)),
    );
    extra.insert(
        "all_joined_s".into(),
        if joined as u64 == pop.attempted {
            Value::from((elapsed.as_secs_f64() * 1000.0).round() / 1000.0)
        } else {
            Value::Null
        },
    );
    extra.insert(
        "storm_s".into(),
        Value::from((elapsed.as_secs_f64() * 1000.0).round() / 1000.0),
    );
    drop(pop);
    Ok(Measurement {
        scenario: "storm",
        target: env.target.clone(),
        level: f64::from(connections),
        connections: joined as u64,
        rooms,
        users_per_room: connections.div_ceil(rooms),
        window: elapsed,
        primary: "ready",
        setup_ops: &[],
        data: rec.window_data(),
        cpu,
        memory: None,
        rounds: 1,
        extra,
    })
}
