//! Test fixtures: a private `redis-server` on a free port (killable, pausable and
//! restartable on the same port) and `rtm-host` processes on `127.0.0.1:0`.
//!
//! Many tests run at once, each with its own Redis, so the fixture never trusts that
//! whatever answers on "its" port is its own server: a port is only free until someone
//! binds it, and two tests can pick the same one. A Redis counts as started only when it
//! answers `INFO server` with the pid of the child this fixture spawned; when the child
//! exits during start-up (it lost the port), another port is tried.
#![allow(dead_code, clippy::unwrap_used)]

pub mod client;
pub mod monitor;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A free TCP port on loopback (bound then released: free only until someone binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub use rtm_host::config::is_host_setting;

/// Removes every host setting of the current environment from `cmd`.
pub fn scrub_host_settings(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(is_host_setting) {
            cmd.env_remove(&key);
        }
    }
}

/// One RESP reply, read completely.
#[derive(Debug, Clone, PartialEq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Option<Vec<Resp>>),
}

impl Resp {
    /// The text of a simple or bulk string reply.
    pub fn text(&self) -> Option<&str> {
        match self {
            Resp::Simple(s) | Resp::Bulk(Some(s)) => Some(s),
            _ => None,
        }
    }
}

fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end_matches("\r\n").to_owned())
}

fn read_resp(r: &mut impl BufRead) -> std::io::Result<Resp> {
    let line = read_line(r)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, line.clone());
    let (kind, rest) = line.split_at_checked(1).ok_or_else(bad)?;
    Ok(match kind {
        "+" => Resp::Simple(rest.to_owned()),
        "-" => Resp::Error(rest.to_owned()),
        ":" => Resp::Int(rest.parse().map_err(|_| bad())?),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| bad())?;
            if len < 0 {
                Resp::Bulk(None)
            } else {
                let mut buf = vec![0; usize::try_from(len).map_err(|_| bad())? + 2];
                r.read_exact(&mut buf)?;
                buf.truncate(buf.len() - 2);
                Resp::Bulk(Some(String::from_utf8_lossy(&buf).into_owned()))
            }
        }
        "*" => {
            let n: i64 = rest.parse().map_err(|_| bad())?;
            if n < 0 {
                Resp::Array(None)
            } else {
                let items = (0..n).map(|_| read_resp(r)).collect::<Result<_, _>>()?;
                Resp::Array(Some(items))
            }
        }
        _ => return Err(bad()),
    })
}

/// Runs one command on the Redis at `port` (None if unreachable or the reply is cut).
pub fn redis_cmd(port: u16, args: &[&str]) -> Option<Resp> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).ok()?;
    read_resp(&mut BufReader::new(s)).ok()
}

/// The `process_id` of the Redis answering on `port`.
pub fn redis_pid(port: u16) -> Option<u32> {
    let info = redis_cmd(port, &["INFO", "server"])?;
    info.text()?
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
}

/// A private redis-server for one test.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    /// What redis-server printed (its log goes to stdout), for failure messages.
    log: Arc<Mutex<String>>,
    /// Set by [`Redis::pause`], cleared by [`Redis::resume`].
    paused: AtomicBool,
    /// Further `redis-server` arguments (a cluster node's).
    extra: Vec<String>,
}

/// Ports tried before [`Redis::start`] gives up.
const START_ATTEMPTS: usize = 20;
/// How long one redis-server may take to answer (generous: CI runs many at once).
const START_DEADLINE: Duration = Duration::from_secs(30);

/// How one start attempt ended.
enum Started {
    Ours,
    /// The child exited during start-up (usually: another process has the port).
    Exited(ExitStatus),
    /// Another Redis answers on the port.
    Foreign(u32),
}

impl Redis {
    /// Starts a redis-server on a free port that is provably its own.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`Redis::start`] with further `redis-server` arguments.
    pub fn start_with(extra: &[String]) -> Self {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start_with(free_port(), extra) {
                Ok(r) => return r,
                Err(why) => failures.push(why),
            }
        }
        panic!(
            "no private redis-server after {START_ATTEMPTS} ports:\n{}",
            failures.join("\n")
        );
    }

    /// Starts a redis-server on `port`; `Err` says why the server answering there (if
    /// any) is not this fixture's child.
    pub fn try_start_on(port: u16) -> Result<Self, String> {
        Self::try_start_with(port, &[])
    }

    fn try_start_with(port: u16, extra: &[String]) -> Result<Self, String> {
        let mut r = Self {
            port,
            child: None,
            log: Arc::default(),
            paused: AtomicBool::new(false),
            extra: extra.to_vec(),
        };
        let why = match r.spawn() {
            Started::Ours => return Ok(r),
            Started::Exited(status) => format!(
                "port {port}: redis-server exited ({status}): {}",
                r.log_tail()
            ),
            Started::Foreign(pid) => format!("port {port}: answered by another Redis (pid {pid})"),
        };
        r.kill();
        Err(why)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The pid of the running child (panics when it is not running).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server is running").id()
    }

    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    /// Spawns redis-server on `self.port` and waits until it is provably the one
    /// answering there.
    fn spawn(&mut self) -> Started {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        let out = child.stdout.take().expect("redis-server stdout");
        let sink = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + START_DEADLINE;
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Started::Exited(status);
            }
            match redis_pid(self.port) {
                Some(p) if p == pid => return Started::Ours,
                // Ours may still be starting and about to fail to bind; either way the
                // port is not ours. The caller kills the child and moves on.
                Some(other) => return Started::Foreign(other),
                None => {}
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server (pid {pid}) on port {} did not answer within {START_DEADLINE:?}: {}",
            self.port,
            self.log_tail()
        );
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the running child.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} redis-server: {status}");
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        self.signal("STOP");
        self.paused.store(true, Ordering::SeqCst);
    }

    /// Thaws a [`Redis::pause`]d server.
    pub fn resume(&self) {
        self.signal("CONT");
        self.paused.store(false, Ordering::SeqCst);
    }

    /// Starts again on the same port (empty: nothing is persisted). Panics when another
    /// process took the port in between, rather than letting the test talk to it.
    pub fn restart(&mut self) {
        self.kill();
        let mut failures = Vec::new();
        // The port was ours a moment ago; retry a few times in case the old socket
        // lingers, but never accept another server there.
        for _ in 0..10 {
            match self.spawn() {
                Started::Ours => return,
                Started::Exited(status) => {
                    failures.push(format!(
                        "redis-server exited ({status}): {}",
                        self.log_tail()
                    ));
                }
                Started::Foreign(pid) => {
                    self.kill();
                    panic!(
                        "port {} was taken by another Redis (pid {pid}) while restarting",
                        self.port
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "redis-server did not restart on port {}:\n{}",
            self.port,
            failures.join("\n")
        );
    }

    /// Runs one command on this fixture's port and returns its reply (None if
    /// unreachable); [`Redis::assert_ours`] checks who answers.
    pub fn cmd(&self, args: &[&str]) -> Option<Resp> {
        redis_cmd(self.port, args)
    }

    /// Checks that the server on the port is still this fixture's child.
    pub fn assert_ours(&self) {
        let answering = redis_pid(self.port);
        assert_eq!(
            answering,
            Some(self.pid()),
            "the Redis on port {} is not this fixture's child",
            self.port
        );
    }

    /// Every key (test instances are small).
    pub fn keys(&self) -> Vec<String> {
        self.assert_ours();
        match self.cmd(&["KEYS", "*"]) {
            Some(Resp::Array(Some(items))) => items
                .iter()
                .filter_map(|k| k.text().map(str::to_owned))
                .collect(),
            other => panic!("KEYS * answered {other:?}"),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if self.paused.load(Ordering::SeqCst)
            && let Some(c) = &self.child
        {
            // A stopped server dies of SIGKILL too; CONT is only belt and braces.
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
        }
        self.kill();
    }
}

/// A spawned `rtm-host` process.
pub struct Host {
    pub url: String,
    child: Child,
    pub logs: Arc<Mutex<String>>,
}

/// Longest wait for a host to exit after SIGTERM (the drain is bounded by
/// `SHUTDOWN_TIMEOUT_MS`, 5 s by default; this only catches a host that hangs).
const EXIT_DEADLINE: Duration = Duration::from_secs(60);

impl Host {
    /// Starts the binary with `env` on a free port and waits for its ready line. None of
    /// the host's settings are taken from the test's own environment.
    pub fn spawn(env: &[(&str, String)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtm-host"));
        scrub_host_settings(&mut cmd);
        cmd.env("PORT", "0")
            .env("BIND_ADDR", "127.0.0.1")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn rtm-host");
        let logs = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("read ready line");
        let url = line
            .trim()
            .strip_prefix("rtm-host listening on ")
            .unwrap_or_else(|| {
                // Let the reader thread catch up with a host that just died.
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "no ready line; got {line:?}; logs: {}",
                    logs.lock().unwrap()
                )
            })
            .to_owned();
        // Keep draining stdout so the host never blocks on a full pipe.
        std::thread::spawn(move || for _ in out.lines().map_while(Result::ok) {});
        Self { url, child, logs }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the host logged so far.
    pub fn log_text(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the exit status (panics if the host has not exited
    /// after a generous deadline).
    pub fn terminate(self) -> ExitStatus {
        self.terminate_with_logs().0
    }

    /// [`Host::terminate`], also returning everything the host logged.
    pub fn terminate_with_logs(mut self) -> (ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM rtm-host: {status}");
        let deadline = Instant::now() + EXIT_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for rtm-host") {
                // stderr closes with the process; let the reader thread finish.
                let until = Instant::now() + Duration::from_secs(5);
                while Arc::strong_count(&self.logs) > 1 && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return (status, self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "rtm-host did not exit within {EXIT_DEADLINE:?} of SIGTERM; logs: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private Redis Cluster: 3 masters and 3 replicas on free ports, each provably this
/// fixture's child, slots assigned by `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<Redis>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "rtm-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("cluster scratch dir");
        let nodes: Vec<Redis> = (0..6)
            .map(|i| {
                let conf = dir.join(format!("nodes-{i}.conf"));
                Redis::start_with(&[
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    conf.display().to_string(),
                    "--cluster-node-timeout".into(),
                    "1000".into(),
                    "--dir".into(),
                    dir.display().to_string(),
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli must be installed (apt-get install redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Self { nodes, dir };
        cluster.wait_ok();
        cluster
    }

    /// Until every node says `cluster_state:ok` and knows 3 masters.
    fn wait_ok(&self) {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let ok = self.nodes.iter().all(|n| {
                let info = n.cmd(&["CLUSTER", "INFO"]);
                let text = info.as_ref().and_then(Resp::text).unwrap_or_default();
                text.contains("cluster_state:ok") && text.contains("cluster_size:3")
            });
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster did not become ok");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `redis-cluster://` URL with every node as a seed.
    pub fn url(&self) -> String {
        let mut url = format!("redis-cluster://127.0.0.1:{}", self.nodes[0].port);
        for (i, n) in self.nodes.iter().enumerate().skip(1) {
            url.push(if i == 1 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{}", n.port));
        }
        url
    }

    /// The ports of the current masters.
    pub fn masters(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| {
                n.cmd(&["ROLE"]).is_some_and(|r| match r {
                    Resp::Array(Some(items)) => {
                        items.first().and_then(Resp::text) == Some("master")
                    }
                    _ => false,
                })
            })
            .map(|n| n.port)
            .collect()
    }

    /// Every key on every master, with the master's port (SCAN, so it works however
    /// many keys there are).
    pub fn keys(&self) -> Vec<(u16, String)> {
        let mut out = Vec::new();
        for port in self.masters() {
            let mut cursor = "0".to_owned();
            loop {
                let reply = redis_cmd(port, &["SCAN", &cursor, "COUNT", "1000"]);
                let Some(Resp::Array(Some(parts))) = reply else {
                    panic!("SCAN on {port} answered {reply:?}");
                };
                cursor = parts[0].text().unwrap_or("0").to_owned();
                if let Resp::Array(Some(keys)) = &parts[1] {
                    out.extend(
                        keys.iter()
                            .filter_map(Resp::text)
                            .map(|k| (port, k.to_owned())),
                    );
                }
                if cursor == "0" {
                    break;
                }
            }
        }
        out
    }

    /// `CLUSTER KEYSLOT` of `key`, as the cluster computes it.
    pub fn slot(&self, key: &str) -> i64 {
        match self.nodes[0].cmd(&["CLUSTER", "KEYSLOT", key]) {
            Some(Resp::Int(n)) => n,
            other => panic!("CLUSTER KEYSLOT {key} answered {other:?}"),
        }
    }

    /// Checks every node is still this fixture's child.
    pub fn assert_ours(&self) {
        for n in &self.nodes {
            n.assert_ours();
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
