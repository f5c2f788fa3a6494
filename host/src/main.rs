//! `rtm-host`: parse the configuration, start logging, run the node.
//!
//! Logging here owns one rule: the host never waits on its log output. Lines go through
//! a bounded buffer (`LOG_BUFFER_LINES`) to a thread of their own that writes stderr, so
//! a slow or blocked stderr (a full pipe to a log shipper) costs dropped lines, counted
//! and reported, instead of async workers stalled in a write.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rtm_host::config::Config;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// jemalloc instead of glibc's malloc: the host allocates and frees small buffers per
/// packet on every worker thread, and glibc's malloc/free was ~13 % of the host's CPU
/// at 20,000 heartbeats/s (benchmark/README.md, "Profiles"). The `jemalloc` feature
/// (default) selects it; without it the host uses the system allocator.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `LOG_BUFFER_LINES` if the configured value does not fit a `usize`.
const DEFAULT_LOG_BUFFER_LINES: usize = 65_536;

/// How often dropped log lines are looked for (and reported, if any): rarely enough that
/// a log output that stays blocked costs one more dropped line per interval, often
/// enough that the report follows the gap closely.
const DROPS_CHECKED_EVERY: Duration = Duration::from_secs(5);

/// Longest wait for a line that may be the process's last (see [`LastLine`]).
const LAST_LINE_WAIT: Duration = Duration::from_millis(500);

fn main() -> ExitCode {
    rtm_host::config::raise_open_file_limit();
    let cfg = Config::from_env_and_args();
    let logs = start_logging(&cfg);
    let outcome = run(cfg);
    // Writes out what is still buffered (waiting about a second at most on a blocked
    // stderr), so a failure line below comes after the lines that led to it.
    drop(logs);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rtm-host: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the node on its own runtime until it stops.
fn run(cfg: Config) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.worker_count())
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime
        .block_on(rtm_host::server::run(cfg))
        .map_err(|e| format!("{e:#}"))
}

/// Installs the global subscriber: the `RUST_LOG` filter (default `info`), text or JSON
/// lines (`LOG_JSON`), written through a bounded, lossy buffer of `LOG_BUFFER_LINES`
/// lines. The returned guard must live as long as the process: dropping it writes out
/// what is buffered.
fn start_logging(cfg: &Config) -> WorkerGuard {
    let limit = usize::try_from(cfg.log_buffer_lines).unwrap_or(DEFAULT_LOG_BUFFER_LINES);
    let (lines, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(limit)
        .lossy(true)
        .thread_name("rtm-log")
        .finish(io::stderr());
    let dropped = lines.error_counter();
    let writer = LastLine::default.with_filter(precedes_exit).or_else(lines);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if cfg.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    report_dropped_lines(dropped);
    guard
}

/// Warns how many log lines the buffer dropped since the last warning, checked every
/// [`DROPS_CHECKED_EVERY`]: without it a gap in the log would be silent. A warning that
/// is itself dropped is counted and reported by the next one.
fn report_dropped_lines(dropped: ErrorCounter) {
    let reporter = thread::Builder::new()
        .name("rtm-log-drops".into())
        .spawn(move || {
            let mut reported = 0;
            loop {
                thread::sleep(DROPS_CHECKED_EVERY);
                let total = dropped.dropped_lines();
                if total > reported {
                    tracing::warn!(
                        dropped = total - reported,
                        total,
                        "log lines dropped: the log output did not keep up (LOG_BUFFER_LINES)"
                    );
                    reported = total;
                }
            }
        });
    if let Err(e) = reporter {
        tracing::warn!(error = %e, "cannot watch for dropped log lines");
    }
}

/// The lines the node logs at ERROR in `rtm_host::server`: the drain timeout, logged
/// right before `std::process::exit`, which never flushes the buffer, and the failures
/// to listen for signals. Rare, and never caused by a client.
fn precedes_exit(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() == tracing::Level::ERROR && meta.target() == "rtm_host::server"
}

/// One line written to stderr directly rather than through the buffer, because the
/// process may exit right after it (see [`precedes_exit`]). The write runs on a thread
/// of its own and the logging thread waits for it at most [`LAST_LINE_WAIT`], so even
/// this line cannot hold the host on a blocked stderr for longer.
#[derive(Default)]
struct LastLine(Vec<u8>);

impl Write for LastLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LastLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.0);
        let (written, done) = mpsc::channel::<()>();
        let writer = thread::Builder::new()
            .name("rtm-log-last".into())
            .spawn(move || {
                let _ = io::stderr().write_all(&line);
                let _ = written.send(());
            });
        if writer.is_ok() {
            let _ = done.recv_timeout(LAST_LINE_WAIT);
        }
    }
}
