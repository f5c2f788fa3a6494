//! `rtm-bench`: parse arguments, raise the file limit, build the runtime, run.

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use rtm_bench::cli::{Args, Scenario};

fn main() -> ExitCode {
    let matches = Args::command().get_matches();
    let mut args = match Args::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    // The soak's own default length: a 10 s soak would not fit its fault schedule.
    if args.scenario == Scenario::Soak
        && matches.value_source("duration") == Some(ValueSource::DefaultValue)
    {
        args.duration = rtm_bench::soak::DEFAULT_DURATION;
    }
    if let Err(msg) = args.validate() {
        eprintln!("rtm-bench: {msg}");
        return ExitCode::from(2);
    }
    let fd_limit = rtm_bench::fd_limit::raise();
    // One thread by default: on a small machine the server gets the other core, and a
    // single-threaded harness never contends on its own locks.
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads as usize)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rtm-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        // On a multi-threaded runtime the driver must run on a worker, not this thread.
        match tokio::spawn(rtm_bench::run::run(args, fd_limit)).await {
            Ok(result) => result,
            Err(e) => Err(anyhow::anyhow!("the harness task failed: {e}")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rtm-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
