//! `connections`: N idle connections, each joined to a room; the server's resident
//! memory (VmRSS of the process tree) before and after, per connection, and the CPU
//! the idle population costs while it is held for the window (pings, timers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::Env;
use super::population::{self, Plan, SETUP_OPS};
use crate::client::{EventSink, NoEvents};
use crate::measurement::{Measurement, Memory};
use crate::progress::Progress;
use crate::recorder::Recorder;

pub async fn run(env: &Env, connections: u32) -> anyhow::Result<Measurement> {
    let args = &env.args;
    let rooms = args.rooms_for(connections);
    let Some(server_before) = env.probe.server_rss() else {
        anyhow::bail!("the connections scenario needs the server's pid (--spawn or --server-pid)");
    };
    let redis_before = env.probe.redis_rss();
    let rec = Arc::new(Recorder::new(&SETUP_OPS, &[]));
    rec.open_all();
    let sink: Arc<dyn EventSink> = Arc::new(NoEvents);
    let make_sink = move |_room: usize| sink.clone();
    let started = Instant::now();
    let before_setup = env.probe.sample();
    let pop = {
        let _progress = Progress::start(
            env.label("joining"),
            rec.clone(),
            env.probe.clone(),
            args.quiet,
        );
        population::populate(
            env,
            Plan {
                rooms,
                total: connections,
                concurrency: args.connect_concurrency as usize,
                join: !args.skip_join,
            },
            &rec,
            &make_sink,
        )
        .await
    };
    let setup_cpu = env.probe.sample().since(&before_setup);
    let setup_time = started.elapsed();
    tokio::time::sleep(args.settle).await;
    let server_after = env.probe.server_rss().unwrap_or(server_before);
    let redis_after = env.probe.redis_rss();
    let bench_after = crate::proc_stat::rss_bytes(std::process::id()).unwrap_or(0);

    // Hold the population idle and see what it costs.
    let idle_start = env.probe.sample();
    tokio::time::sleep(args.duration).await;
    let idle = env.probe.sample().since(&idle_start);
    let alive = pop.members.iter().filter(|m| m.client.is_alive()).count();
    let joined = pop.members.len();

    let mut data = rec.window_data();
    if alive < joined {
        data.errors
            .insert("idle:disconnected".into(), (joined - alive) as u64);
    }
    let mut extra = Map::new();
    extra.insert(
        "joined".into(),
        Value::from(format!("{joined}/{}", pop.attempted)),
    );
    extra.insert(
        "setup_s".into(),
        Value::from((setup_time.as_secs_f64() * 1000.0).round() / 1000.0),
    );
    let per_conn_s = |cpu: Option<Duration>| {
        cpu.map(|c| c.as_secs_f64() * 1e6 / (joined.max(1) as f64 * args.duration.as_secs_f64()))
    };
    extra.insert(
        "idle_server_us_per_conn_s".into(),
        per_conn_s(idle.server).map_or(Value::Null, Value::from),
    );
    extra.insert(
        "idle_server_cores".into(),
        idle.server.map_or(Value::Null, |c| {
            Value::from(c.as_secs_f64() / args.duration.as_secs_f64())
        }),
    );
    drop(pop);
    Ok(Measurement {
        scenario: "connections",
        target: env.target.clone(),
        level: f64::from(connections),
        connections: joined as u64,
        rooms,
        users_per_room: connections.div_ceil(rooms),
        // The setup is the measured window here: CPU per op is per joined connection.
        window: setup_time,
        primary: "ready",
        setup_ops: &[],
        data,
        cpu: setup_cpu,
        memory: Some(Memory {
            server_before,
            server_after,
            redis_before,
            redis_after,
            bench_after,
            connections: joined as u64,
        }),
        rounds: 1,
        extra,
    })
}
