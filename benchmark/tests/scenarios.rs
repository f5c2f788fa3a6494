//! The scenarios against a real rtm host served in-process on 127.0.0.1:0 (memory store):
//! small populations, short windows, asserting that the harness measures what it says
//! (acks counted, events received, nothing lost) rather than any performance number.

use std::time::Duration;

use clap::Parser;
use rtm_bench::cli::Args;
use rtm_bench::measurement::Measurement;
use rtm_bench::report::Report;
use rtm_bench::scenario::{Env, chat, connections, fanout, presence, storm};
use rtm_bench::target::{SpawnContext, Target, TargetSpec};
use rtm_bench::tenants::Tenancy;

/// The host's configuration from `argv` alone: clap would otherwise fill every setting
/// the flags leave out from the environment (`REDIS_URL`, `PRESENCE_*`, ...), and a
/// developer's shell must not point these tests at another Redis or change their limits.
fn config_without_env(argv: &[&str]) -> anyhow::Result<rtm_host::config::Config> {
    use clap::{CommandFactory, FromArgMatches};
    let cmd = rtm_host::config::Config::command().mut_args(|a| a.env(None::<&'static str>));
    let matches = cmd.try_get_matches_from(argv)?;
    let cfg = rtm_host::config::Config::from_arg_matches(&matches)?;
    cfg.validate().map_err(anyhow::Error::msg)?;
    Ok(cfg)
}

/// Serves an rtm host (memory store) on a free port; returns its URL.
async fn host() -> anyhow::Result<String> {
    host_with(&[]).await
}

/// [`host`] with more settings (`--api-key k`).
async fn host_with(extra: &[&str]) -> anyhow::Result<String> {
    let mut argv = vec!["rtm-host", "--port", "0", "--bind-addr", "127.0.0.1"];
    argv.extend_from_slice(extra);
    let cfg = config_without_env(&argv)?;
    anyhow::ensure!(cfg.redis_url.is_none(), "memory store expected");
    let node = rtm_host::server::build(&cfg).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(rtm_host::server::serve(
        node,
        listener,
        Duration::from_secs(1),
        cfg.conn_limits(),
    ));
    Ok(url)
}

#[test]
fn host_config_ignores_the_environment() -> anyhow::Result<()> {
    // Every setting parses from its default alone, whatever the environment holds: the
    // defaults of the README, not a shell's values.
    let cfg = config_without_env(&["rtm-host"])?;
    assert_eq!(cfg.redis_url, None);
    assert_eq!(cfg.port, 3000);
    assert_eq!(cfg.presence_ttl_ms, 30_000);
    assert_eq!(cfg.plugins.dir, None);
    Ok(())
}

async fn env(scenario: &str, url: &str, extra: &[&str]) -> anyhow::Result<(Env, Target)> {
    let pid = std::process::id().to_string();
    let mut argv = vec![
        "rtm-bench",
        scenario,
        "--target-url",
        url,
        "--server-pid",
        &pid,
        "--quiet",
        "--warmup",
        "200ms",
        "--duration",
        "1s",
        "--ack-timeout",
        "30s",
        "--source-addrs",
        "2",
    ];
    argv.extend_from_slice(extra);
    let args = Args::try_parse_from(argv)?;
    let spec = TargetSpec::Url {
        url: url.to_owned(),
        server_pid: args.server_pid,
        redis_pid: None,
        redis_addr: None,
        plugins_dir: None,
        tenancy: Tenancy::default(),
        api_key: args.api_key.clone(),
    };
    let ctx = SpawnContext {
        host_bin: args.host_bin.clone(),
        redis_bin: args.redis_bin.clone(),
        host_env: Vec::new(),
        work_dir: std::env::temp_dir(),
        chat_plugin: None,
        chat_plugin_file: args.chat_plugin_file.clone(),
        api_key: None,
    };
    let target = Target::resolve(&spec, &ctx, "t").await?;
    Ok((Env::new(&args, &target), target))
}

fn ok_and_errors(m: &Measurement, op: &str) -> (u64, u64) {
    m.data
        .ops
        .get(op)
        .map_or((0, 0), |(ok, err, _)| (*ok, *err))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_heartbeats_are_acked_and_patches_broadcast() -> anyhow::Result<()> {
    let url = host().await?;
    let (env, _target) = env(
        "presence",
        &url,
        &[
            "--room-count",
            "2",
            "--users-per-room",
            "3",
            "--heartbeats-per-sec",
            "300",
            "--patch-share",
            "0.5",
        ],
    )
    .await?;
    let session = presence::Session::setup(&env).await?;
    let m = session.measure(&env, 300.0).await?;
    // Every heartbeat sent in the window is accounted for, and all were acked `ok`
    // (how many the window held is the benchmark's number, not a test's).
    let (ok, err) = ok_and_errors(&m, "heartbeat");
    assert!(ok > 0, "no heartbeat acked");
    assert_eq!(err, 0, "errors: {:?}", m.data.errors);
    assert_eq!(
        ok + err,
        m.data.counters["sent"],
        "every heartbeat sent was counted once"
    );
    assert_eq!(ok_and_errors(&m, "join"), (6, 0));
    // Every accepted patch is an `update` to the 3 members of its room.
    let patches = ok_and_errors(&m, "patch").0;
    assert!(patches > 0);
    assert!(m.data.counters["presence_events"] > 0);
    let report = Report::from_measurement(&m);
    assert!(report.table().contains("heartbeat"));
    assert!(report.cpu.server_s.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_joins_everyone() -> anyhow::Result<()> {
    let url = host().await?;
    let (env, _target) = env("storm", &url, &["--connections", "60"]).await?;
    let m = storm::run(&env, 60).await?;
    assert_eq!(ok_and_errors(&m, "ready"), (60, 0));
    assert_eq!(m.connections, 60);
    assert!(m.extra["all_joined_s"].is_number());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_reads_server_memory() -> anyhow::Result<()> {
    let url = host().await?;
    let (env, _target) = env(
        "connections",
        &url,
        &["--connections", "40", "--settle", "100ms"],
    )
    .await?;
    let m = connections::run(&env, 40).await?;
    assert_eq!(ok_and_errors(&m, "ready"), (40, 0));
    let memory = m
        .memory
        .ok_or_else(|| anyhow::anyhow!("no memory report"))?;
    assert!(memory.server_after > 0 && memory.connections == 40);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_counted_not_fatal() -> anyhow::Result<()> {
    // Nothing listens there: every connect fails fast and is reported by kind.
    let port = rtm_bench::spawn::free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let (env, _target) = env("storm", &url, &["--connections", "5"]).await?;
    let m = storm::run(&env, 5).await?;
    assert_eq!(ok_and_errors(&m, "connect"), (0, 5));
    assert_eq!(m.data.errors.get("connect:tcp"), Some(&5));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_publishes_reach_every_member_through_the_server_api() -> anyhow::Result<()> {
    let url = host_with(&["--api-key", "bench-key"]).await?;
    let (env, _target) = env(
        "fanout",
        &url,
        &[
            "--via",
            "api",
            "--api-key",
            "bench-key",
            "--room-count",
            "2",
            "--users-per-room",
            "3",
            "--messages-per-sec",
            "200",
        ],
    )
    .await?;
    let measurements = fanout::run(&env, 0).await?;
    let [m] = measurements.as_slice() else {
        anyhow::bail!("one measurement expected for --via api");
    };
    assert_eq!((m.scenario, m.primary), ("fanout", "delivery"));
    assert_eq!(m.extra["via"], "api");
    // Every publish sent in the window was answered `ok`, and reached the 3 members of
    // its room, once each.
    let (ok, err) = ok_and_errors(m, "publish");
    assert!(ok > 0, "no publish answered");
    assert_eq!(err, 0, "errors: {:?}", m.data.errors);
    assert_eq!(ok, m.data.counters["sent"]);
    assert_eq!(ok_and_errors(m, "delivery"), (3 * ok, 0));
    assert_eq!(m.data.counters["lost_deliveries"], 0);
    assert_eq!(m.data.counters["extra_deliveries"], 0);
    let report = Report::from_measurement(m);
    assert!(fanout::summary(&[report]).contains("via api"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_stops_before_load_when_the_api_refuses_the_key() -> anyhow::Result<()> {
    let url = host_with(&["--api-key", "bench-key"]).await?;
    let (env, _target) = env(
        "fanout",
        &url,
        &["--via", "api", "--api-key", "wrong", "--room-count", "1"],
    )
    .await?;
    let refused = fanout::run(&env, 0).await.err().map(|e| format!("{e:#}"));
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("unauthorized")),
        "{refused:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_renew_their_registrations_between_windows() -> anyhow::Result<()> {
    let url = host().await?;
    let (env, _target) = env(
        "fanout",
        &url,
        &["--room-count", "2", "--users-per-room", "3"],
    )
    .await?;
    let session = chat::Session::join(&env).await?;
    let pop = session.population();
    assert_eq!(pop.members.len(), 6);
    assert_eq!(pop.per_node(1), [6]);
    assert_eq!(pop.heartbeat_all(4).await, 0, "every heartbeat acked ok");
    Ok(())
}
