//! Processes the harness starts for itself: an `rtm-host`, a private `redis-server`, or
//! any server command (e.g. the Node.js original). Each is a [`Spawned`] guard that asks
//! the process to drain (SIGTERM) when dropped and kills it if it does not exit in time,
//! so one command measures a fresh server and leaves nothing behind.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// Why a process could not be started or did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("starting {what}: {source}")]
    Start {
        what: String,
        source: std::io::Error,
    },
    #[error("{what} was not ready after {after:?}; its log ends with:\n{log_tail}")]
    NotReady {
        what: String,
        after: Duration,
        log_tail: String,
    },
    #[error("{what} exited during start-up; its log ends with:\n{log_tail}")]
    Exited { what: String, log_tail: String },
    #[error("finding a free port: {0}")]
    Port(std::io::Error),
}

/// A child process that is stopped (SIGTERM, then SIGKILL after 5 s) when dropped.
pub struct Spawned {
    what: String,
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl Spawned {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    /// Whether the process has exited (or cannot be waited for).
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and wait until it is gone (a crash, as far as its peers can tell).
    pub async fn kill9(&mut self) -> std::io::Result<()> {
        self.child.kill().await
    }

    /// Sends `signal` (SIGSTOP / SIGCONT to freeze and thaw it).
    pub fn signal(&self, signal: rustix::process::Signal) -> std::io::Result<()> {
        let pid = rustix::process::Pid::from_raw(self.pid as i32)
            .ok_or_else(|| std::io::Error::other("no pid"))?;
        rustix::process::kill_process(pid, signal).map_err(std::io::Error::from)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        for _ in 0..100 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.start_kill();
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> Result<u16, SpawnError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(SpawnError::Port)?;
    Ok(listener.local_addr().map_err(SpawnError::Port)?.port())
}

/// Creates `<dir>/<name>.log`; returns its path and the open file.
pub fn log_file(dir: &Path, name: &str) -> Result<(PathBuf, std::fs::File), SpawnError> {
    let path = dir.join(format!("{name}.log"));
    let file = std::fs::File::create(&path).map_err(|source| SpawnError::Start {
        what: format!("log file {}", path.display()),
        source,
    })?;
    Ok((path, file))
}

/// Spawns `cmd` with no stdin and stdout and stderr both into `file` (its log).
fn spawn_logged(cmd: &mut Command, file: std::fs::File, what: &str) -> Result<Child, SpawnError> {
    let start_err = |source| SpawnError::Start {
        what: what.to_owned(),
        source,
    };
    let stdout = file.try_clone().map_err(start_err)?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(file))
        .spawn()
        .map_err(start_err)
}

/// The last 15 lines of the log at `path`, for error messages.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// How to start an `rtm-host`.
#[derive(Debug, Clone)]
pub struct HostSpec {
    pub bin: PathBuf,
    pub redis_url: Option<String>,
    pub plugins_dir: Option<PathBuf>,
    /// Extra `KEY=VALUE` settings (e.g. `RUST_LOG=warn`; `PORT` and `BIND_ADDR` here
    /// override the free port on 127.0.0.1).
    pub env: Vec<(String, String)>,
    /// A network namespace to run it in (`ip netns exec`, which execs: the pid is the
    /// host's own).
    pub netns: Option<String>,
}

/// What a spawned server inherits from the harness's shell; everything else (a
/// `REDIS_URL`, any `PRESENCE_*` or `PLUGIN_*` setting) would change what is measured,
/// so a server gets only these plus the settings the harness gives it.
const INHERITED: [&str; 7] = [
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "RUST_LOG",
    "RUST_BACKTRACE",
];

/// Clears `cmd`'s environment down to [`INHERITED`].
fn clean_env(cmd: &mut Command) {
    cmd.env_clear();
    for key in INHERITED {
        if let Some(value) = std::env::var_os(key) {
            cmd.env(key, value);
        }
    }
}

/// Starts `rtm-host` on a free port and waits for its `listening on` line; returns the
/// guard and the URL it printed.
pub async fn host(
    spec: &HostSpec,
    logs: &Path,
    name: &str,
) -> Result<(Spawned, String), SpawnError> {
    let (log, file) = log_file(logs, name)?;
    let mut cmd = match &spec.netns {
        Some(ns) => {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", ns.as_str()]).arg(&spec.bin);
            cmd
        }
        None => Command::new(&spec.bin),
    };
    clean_env(&mut cmd);
    cmd.env("PORT", "0").env("BIND_ADDR", "127.0.0.1");
    if let Some(url) = &spec.redis_url {
        cmd.env("REDIS_URL", url);
    }
    if let Some(dir) = &spec.plugins_dir {
        cmd.env("PLUGINS_DIR", dir);
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(file));
    let what = format!("rtm-host ({})", spec.bin.display());
    let mut child = cmd.spawn().map_err(|source| SpawnError::Start {
        what: what.clone(),
        source,
    })?;
    let pid = child.id().unwrap_or(0);
    let Some(stdout) = child.stdout.take() else {
        return Err(SpawnError::Exited {
            what,
            log_tail: tail(&log),
        });
    };
    let guard = Spawned {
        what: what.clone(),
        child,
        pid,
        log: log.clone(),
    };
    let mut lines = BufReader::new(stdout).lines();
    let wait = Duration::from_secs(60);
    let ready = tokio::time::timeout(wait, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("rtm-host listening on ") {
                return Some(url.trim().to_owned());
            }
        }
        None
    })
    .await;
    match ready {
        Ok(Some(url)) => {
            // Keep draining stdout so the host never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            Ok((guard, url))
        }
        Ok(None) => Err(SpawnError::Exited {
            what,
            log_tail: tail(&log),
        }),
        Err(_) => Err(SpawnError::NotReady {
            what,
            after: wait,
            log_tail: tail(&log),
        }),
    }
}

/// Starts a private, non-persistent `redis-server` on a free port; returns the guard and
/// its URL once it answers as *our* child (`INFO server` `process_id`). A port lost to
/// another process between picking and binding is retried with a new one, so two
/// harnesses never measure against one Redis.
pub async fn redis(bin: &str, logs: &Path, name: &str) -> Result<(Spawned, String), SpawnError> {
    let (guard, port) = redis_with(bin, logs, name, &|_| Ok(Vec::new())).await?;
    Ok((guard, format!("redis://127.0.0.1:{port}")))
}

/// Further `redis-server` arguments for an attempt on a given port (a cluster node's
/// config file is named after its port, and its bus needs a port of its own).
pub type RedisArgs<'a> = &'a (dyn Fn(u16) -> Result<Vec<String>, SpawnError> + Sync);

/// [`redis`] with further arguments per port; returns the guard and the port it is ours
/// on.
pub async fn redis_with(
    bin: &str,
    logs: &Path,
    name: &str,
    extra: RedisArgs<'_>,
) -> Result<(Spawned, u16), SpawnError> {
    let mut last = None;
    for _ in 0..20 {
        match redis_once(bin, logs, name, free_port()?, extra).await? {
            Ok(started) => return Ok(started),
            Err(lost) => last = Some(lost),
        }
    }
    Err(last.unwrap_or(SpawnError::Exited {
        what: "redis-server".into(),
        log_tail: String::new(),
    }))
}

/// Starts Redis again on the `port` it had (its clients reconnect to the same address):
/// fails if that port is no longer ours to take.
pub async fn redis_on(
    bin: &str,
    logs: &Path,
    name: &str,
    port: u16,
    extra: RedisArgs<'_>,
) -> Result<Spawned, SpawnError> {
    match redis_once(bin, logs, name, port, extra).await? {
        Ok((guard, _)) => Ok(guard),
        Err(lost) => Err(lost),
    }
}

/// One attempt on `port`: `Ok(Err(_))` when the port was taken (retry), `Err` when
/// Redis cannot start at all.
async fn redis_once(
    bin: &str,
    logs: &Path,
    name: &str,
    port: u16,
    extra: RedisArgs<'_>,
) -> Result<Result<(Spawned, u16), SpawnError>, SpawnError> {
    let (log, file) = log_file(logs, name)?;
    let what = format!("redis-server on port {port}");
    let mut cmd = Command::new(bin);
    cmd.args(["--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
        .args(extra(port)?);
    let child = spawn_logged(&mut cmd, file, &what)?;
    let pid = child.id().unwrap_or(0);
    let mut guard = Spawned {
        what: what.clone(),
        child,
        pid,
        log: log.clone(),
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let wait = Duration::from_secs(10);
    let deadline = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < deadline {
        if guard.exited() {
            // Exited: most likely the port was bound by someone else meanwhile.
            return Ok(Err(SpawnError::Exited {
                what,
                log_tail: tail(&log),
            }));
        }
        match redis_pid(addr).await {
            Some(p) if p == pid => return Ok(Ok((guard, port))),
            Some(_) => {
                // Another Redis answers on this port: not ours, try another port.
                return Ok(Err(SpawnError::Exited {
                    what: format!("{what} (port answered by another redis-server)"),
                    log_tail: tail(&log),
                }));
            }
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    Err(SpawnError::NotReady {
        what,
        after: wait,
        log_tail: tail(&log),
    })
}

/// The `process_id` the Redis on `addr` reports, if one answers.
async fn redis_pid(addr: SocketAddr) -> Option<u32> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream.write_all(b"INFO server\r\n").await.ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            reply.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&reply);
            // Only a complete line: a read may end in the middle of the number.
            if let Some((_, rest)) = text.split_once("process_id:")
                && let Some((pid, _)) = rest.split_once("\r\n")
            {
                return pid.trim().parse().ok();
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(1), read)
        .await
        .ok()
        .flatten()
}

/// Starts an arbitrary server command through `sh -c 'exec CMD'` with `PORT` set to a
/// free port (plus `env`), and waits until that port accepts connections.
pub async fn command(
    shell_cmd: &str,
    env: &[(String, String)],
    logs: &Path,
    name: &str,
) -> Result<(Spawned, String), SpawnError> {
    let (log, file) = log_file(logs, name)?;
    let port = free_port()?;
    let what = format!("`{shell_cmd}` on port {port}");
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("exec {shell_cmd}"));
    clean_env(&mut cmd);
    cmd.env("PORT", port.to_string())
        .env("BIND_ADDR", "127.0.0.1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = spawn_logged(&mut cmd, file, &what)?;
    let pid = child.id().unwrap_or(0);
    let mut guard = Spawned {
        what: what.clone(),
        child,
        pid,
        log: log.clone(),
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let wait = Duration::from_secs(60);
    let deadline = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < deadline {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok((guard, format!("http://127.0.0.1:{port}")));
        }
        if guard.exited() {
            return Err(SpawnError::Exited {
                what,
                log_tail: tail(&log),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(SpawnError::NotReady {
        what,
        after: wait,
        log_tail: tail(&log),
    })
}
