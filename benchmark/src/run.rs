//! The edge of the harness: resolve (or start) the targets, run the scenario in rounds
//! (alternating between targets with `--compare`) or as a sweep, and print the table or
//! the JSON. `main.rs` only parses arguments and builds the runtime.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::{Value, json};

use crate::cli::Args;
use crate::measurement::Measurement;
use crate::report::{Ratios, Report};
use crate::scenario::{self, Env};
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
        chat_plugin: args.scenario.needs_chat().then(|| args.chat_plugin.clone()),
        chat_plugin_file: args.chat_plugin_file.clone(),
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
        }),
        (None, Some(kind)) => Some(TargetSpec::Spawn {
            kind: kind.clone(),
            tenancy: compare_tenancy,
        }),
        (None, None) => None,
    };
    let info = harness_info(&args, fd_limit);

    let a = Target::resolve(&first, &ctx, "a").await?;
    if !args.quiet {
        eprintln!(
            "target a: {} at {} (server pid {:?}, redis pid {:?})",
            a.label, a.url, a.server_pid, a.redis_pid
        );
    }
    let b = match &second {
        Some(spec) => {
            let b = Target::resolve(spec, &ctx, "b").await?;
            if !args.quiet {
                eprintln!(
                    "target b: {} at {} (server pid {:?}, redis pid {:?})",
                    b.label, b.url, b.server_pid, b.redis_pid
                );
            }
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

    let mut merged: Vec<Option<Measurement>> = vec![None, None];
    for round in 0..args.rounds {
        for (slot, target) in [Some(&a), b.as_ref()].into_iter().enumerate() {
            let Some(target) = target else { continue };
            if !args.quiet {
                eprintln!("round {} of {} on {}", round + 1, args.rounds, target.label);
            }
            let env = Env::new(&args, target);
            let m = scenario::run_once(&env)
                .await
                .with_context(|| logs_hint(target))?;
            match &mut merged[slot] {
                Some(total) => total.merge(m),
                none => *none = Some(m),
            }
        }
    }
    // Two targets may share a label (e.g. --spawn redis --compare-spawn redis).
    let reports: Vec<Report> = merged
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, m)| {
            let mut r = Report::from_measurement(m);
            if b.is_some() && a.label == b.as_ref().map_or("", |b| b.label.as_str()) {
                r.target = format!("{} ({})", r.target, if i == 0 { "a" } else { "b" });
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
        if let Some(ratio) = ratio {
            print!("{}", ratio.table());
        }
    }
    Ok(())
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
