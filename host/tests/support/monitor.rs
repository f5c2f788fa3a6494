//! `MONITOR` on a test's own Redis: every command the server ran, a script's own calls
//! included (`[0 lua]` lines, right after the `EVAL`/`EVALSHA` line that ran them), so a
//! test can check which keys each script really touched against the keys it declared.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Redis, free_port, redis_cmd};

const DEADLINE: Duration = Duration::from_secs(30);

/// A `redis-cli monitor` writing to a file until dropped.
pub struct Monitor {
    child: Child,
    path: PathBuf,
    port: u16,
}

impl Monitor {
    /// Starts monitoring `redis`; returns once the monitor is attached.
    pub fn start(redis: &Redis) -> Self {
        let path = std::env::temp_dir().join(format!(
            "rtm-monitor-{}-{}.txt",
            std::process::id(),
            free_port()
        ));
        let out = std::fs::File::create(&path).expect("monitor output file");
        let child = Command::new("redis-cli")
            .args(["-p", &redis.port.to_string(), "monitor"])
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-cli must be installed (apt-get install redis-tools)");
        let mut monitor = Self {
            child,
            path,
            port: redis.port,
        };
        // Attached once a command sent now shows up.
        monitor.wait_for_marker();
        monitor
    }

    /// Sends a unique `ECHO` and waits until the monitor has printed it, so everything
    /// the server ran before is in the file.
    fn wait_for_marker(&mut self) -> String {
        let marker = format!("rtm-monitor-mark-{}", free_port());
        let start = Instant::now();
        loop {
            redis_cmd(self.port, &["ECHO", &marker]);
            let text = std::fs::read_to_string(&self.path).unwrap_or_default();
            if text.contains(&marker) {
                return text;
            }
            assert!(start.elapsed() < DEADLINE, "MONITOR never printed {marker}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every command a script ran on a key its call did not pass in `KEYS`, as
    /// `"<sha> <COMMAND> <key>"`; and how many script commands were checked.
    pub fn undeclared(&mut self) -> (Vec<String>, usize) {
        let text = self.wait_for_marker();
        let mut declared: Option<(String, HashSet<String>)> = None;
        let (mut bad, mut checked) = (Vec::new(), 0);
        for line in text.lines() {
            let Some((lua, args)) = parse_line(line) else {
                continue;
            };
            let cmd = args
                .first()
                .map(|c| c.to_ascii_uppercase())
                .unwrap_or_default();
            if !lua {
                declared = matches!(cmd.as_str(), "EVAL" | "EVALSHA").then(|| {
                    let n: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(0);
                    let sha: String = args.get(1).map_or("", |s| s).chars().take(40).collect();
                    (sha, args.iter().skip(3).take(n).cloned().collect())
                });
                continue;
            }
            if cmd == "TIME" {
                continue;
            }
            checked += 1;
            let key = args.get(1).cloned().unwrap_or_default();
            match &declared {
                Some((_, keys)) if keys.contains(&key) => {}
                Some((sha, _)) => bad.push(format!("{sha} {cmd} {key}")),
                None => bad.push(format!("(no EVAL before) {cmd} {key}")),
            }
        }
        (bad, checked)
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `<time> [<db> <source>] "arg" "arg" ...` -> (whether a script ran it, its args).
pub fn parse_line(line: &str) -> Option<(bool, Vec<String>)> {
    let open = line.find('[')?;
    let close = open + line[open..].find(']')?;
    let lua = line[open..close].ends_with(" lua");
    Some((lua, quoted(&line[close + 1..])))
}

/// The `"..."` strings of a MONITOR line, unescaped (Redis's `sdscatrepr`).
fn quoted(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut arg = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => arg.push('\n'),
                    Some('r') => arg.push('\r'),
                    Some('t') => arg.push('\t'),
                    Some('x') => {
                        let hex: String = chars.by_ref().take(2).collect();
                        let byte = u8::from_str_radix(&hex, 16).unwrap_or(b'?');
                        arg.push(char::from(byte));
                    }
                    Some(other) => arg.push(other),
                    None => break,
                },
                c => arg.push(c),
            }
        }
        out.push(arg);
    }
    out
}
