//! `rtm-host`: parse the configuration, start logging, run the node.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

/// jemalloc instead of glibc's malloc: the host allocates and frees small buffers per
/// packet on every worker thread, and glibc's malloc/free was ~13 % of the host's CPU
/// at 20,000 heartbeats/s (benchmark/README.md, "Profiles"). The `jemalloc` feature
/// (default) selects it; without it the host uses the system allocator.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cfg = rtm_host::config::Config::from_env_and_args();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cfg.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.worker_count())
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rtm-host: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(rtm_host::server::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rtm-host: {e:#}");
            ExitCode::FAILURE
        }
    }
}
