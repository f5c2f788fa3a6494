//! The edge of the harness: resolve (or start) the targets, run the scenario in rounds
//! (alternating between targets with `--compare`) or as a sweep, and print the table or
//! the JSON. `main.rs` only parses arguments and builds the runtime.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::{Value, json};

use crate::cli::{Args, Scenario};
use crate::measurement::Measurement;
use crate::report::{Ratios, Report};
use crate::scenario::{self, Env, fanout};
use crate::server_api;
use crate::sweep;
use crate::target::{SpawnContext, Target, TargetSpec};

/// Facts about the harness itself, printed with every result.
fn harness_info(args: &Args, fd_limit: u64) -> Value {
    json!({
        "threads": args.threads,
        "fd_limit": fd_limit,
        "source_addrs": args.source_addrs,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "warmup_s": args.warmup.as_secs_f64(),
        "duration_s": args.duration.as_secs_f64(),
    })
}

pub async fn run(args: Args, fd_limit: u64) -> anyhow::Result<()> {
    if args.scenario == Scenario::Soak {
        return match crate::soak::run(&args).await? {
            true => Ok(()),
            false => Err(anyhow::anyhow!(
                "soak: invariants violated (see the report)"
            )),
        };
    }
    let needed = u64::from(args.connection_count());
    if needed + 64 > fd_limit && !args.quiet {
        eprintln!(
            "warning: {needed} connections need as many file descriptors here and in the server, but the limit is {fd_limit}"
        );
    }
    let temp = tempfile::Builder::new()
        .prefix("rtm-bench-")
        .tempdir()
        .context("creating a work dir")?;
    let work_dir: PathBuf = match &args.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => temp.path().to_owned(),
    };
    let ctx = SpawnContext {
        host_bin: args.host_bin.clone(),
        redis_bin: args.redis_bin.clone(),
        host_env: args.host_env.clone(),
        work_dir,
        chat_plugin: args.needs_chat_plugin().then(|| args.chat_plugin.clone()),
        chat_plugin_file: args.chat_plugin_file.clone(),
        api_key: spawned_api_key(&args)?,
    };
    // Each side has its own client settings (tenants, auth), so one invocation can
    // compare a single-tenant host with a multi-tenant one.
    let tenancy = args.tenancy().map_err(anyhow::Error::msg)?;
    let compare_tenancy = args.compare_tenancy().map_err(anyhow::Error::msg)?;
    let first = match &args.spawn {
        Some(kind) => TargetSpec::Spawn {
            kind: kind.clone(),
            tenancy,
        },
        None => TargetSpec::Url {
            url: args.target_url.clone(),
            server_pid: args.server_pid,
            redis_pid: args.redis_pid,
            redis_addr: args.redis_addr,
            plugins_dir: args.plugins_dir.clone(),
            tenancy,
            api_key: args.api_key.clone(),
        },
    };
    let second = match (&args.compare, &args.compare_spawn) {
        (Some(url), _) => Some(TargetSpec::Url {
            url: url.clone(),
            server_pid: args.compare_server_pid,
            redis_pid: args.compare_redis_pid,
            redis_addr: None,
            plugins_dir: None,
            tenancy: compare_tenancy,
            api_key: args.api_key.clone(),
        }),
        (None, Some(kind)) => Some(TargetSpec::Spawn {
            kind: kind.clone(),
            tenancy: compare_tenancy,
        }),
        (None, None) => None,
    };
    let info = harness_info(&args, fd_limit);

    let a = Target::resolve(&first, &ctx, "a").await?;
    announce(&args, "a", &a);
    let b = match &second {
        Some(spec) => {
            let b = Target::resolve(spec, &ctx, "b").await?;
            announce(&args, "b", &b);
            Some(b)
        }
        None => None,
    };

    if args.sweep {
        let env = Env::new(&args, &a);
        let result = sweep::run(&env).await;
        let result = result.with_context(|| logs_hint(&a))?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "harness": info, "sweep": result }))?
            );
        } else {
            print!("{}", result.table());
        }
        return Ok(());
    }

    // Per target, its measurements in the order a round returns them (fanout: one per
    // path), each merged over the rounds.
    let mut merged: [Vec<Measurement>; 2] = [Vec::new(), Vec::new()];
    for round in 0..args.rounds {
        for (slot, target) in [Some(&a), b.as_ref()].into_iter().enumerate() {
            let Some(target) = target else { continue };
            if !args.quiet {
                eprintln!("round {} of {} on {}", round + 1, args.rounds, target.label);
            }
            let env = Env::new(&args, target);
            let measurements = scenario::run_once(&env, round)
                .await
                .with_context(|| logs_hint(target))?;
            merge_round(&mut merged[slot], measurements);
        }
    }
    // Two targets may share a label (e.g. --spawn redis --compare-spawn redis).
    let same_label = b.as_ref().is_some_and(|b| b.label == a.label);
    let reports: Vec<Report> = merged
        .iter()
        .enumerate()
        .flat_map(|(slot, ms)| ms.iter().map(move |m| (slot, m)))
        .map(|(slot, m)| {
            let mut r = Report::from_measurement(m);
            if same_label {
                r.target = format!("{} ({})", r.target, if slot == 0 { "a" } else { "b" });
            }
            r
        })
        .collect();
    let ratio = match reports.as_slice() {
        [x, y] => Some(Ratios::new(x, y)),
        _ => None,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "harness": info,
                "runs": reports,
                "ratio": ratio,
            }))?
        );
    } else {
        for r in &reports {
            println!("{}", r.table());
        }
        if args.scenario == Scenario::Fanout {
            println!("{}", fanout::summary(&reports));
        }
        if let Some(ratio) = ratio {
            print!("{}", ratio.table());
        }
    }
    Ok(())
}

/// The key spawned servers get as `API_KEY` when the run calls the Server API: the
/// one given, else a fresh random one for this run.
fn spawned_api_key(args: &Args) -> anyhow::Result<Option<String>> {
    match (&args.api_key, args.needs_api()) {
        (Some(key), _) => Ok(Some(key.clone())),
        (None, true) => Ok(Some(
            server_api::random_key().context("generating an API key")?,
        )),
        (None, false) => Ok(None),
    }
}

/// Folds one round's measurements of a target into the totals so far, position by
/// position (a round always returns them in the same order).
fn merge_round(totals: &mut Vec<Measurement>, round: Vec<Measurement>) {
    for (i, m) in round.into_iter().enumerate() {
        match totals.get_mut(i) {
            Some(total) => total.merge(m),
            None => totals.push(m),
        }
    }
}

/// The "target a: ..." line on stderr.
fn announce(args: &Args, name: &str, target: &Target) {
    if args.quiet {
        return;
    }
    let nodes: Vec<String> = target.nodes().into_iter().map(|n| n.url).collect();
    let masters = if target.redis_master_pids.is_empty() {
        String::new()
    } else {
        format!(", masters {:?}", target.redis_master_pids)
    };
    eprintln!(
        "target {name}: {} at {} (server pids {:?}, redis pids {:?}{masters})",
        target.label,
        nodes.join(", "),
        target.server_pids,
        target.redis_pids,
    );
}

fn logs_hint(target: &Target) -> String {
    let logs: Vec<String> = target
        .logs()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    if logs.is_empty() {
        format!("running against {}", target.url)
    } else {
        format!(
            "running against {} (server logs: {}; pass --work-dir to keep them)",
            target.url,
            logs.join(", ")
        )
    }
}
