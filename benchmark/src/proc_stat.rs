//! CPU time and resident memory of a process and its descendants, read from `/proc`.
//! The harness divides these by operations to get CPU-microseconds per operation, so it
//! counts the whole process tree: a server started through a wrapper (`sh`, `npm`) is
//! measured by what its children burn too.

use std::fs;
use std::time::Duration;

/// Why a process could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("unexpected format in {0}")]
    Format(String),
}

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub ppid: u32,
    /// User plus system time, in clock ticks.
    pub ticks: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may contain spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Stat {
        ppid,
        ticks: utime + stime,
    })
}

fn read(path: String) -> Result<String, ProcError> {
    fs::read_to_string(&path).map_err(|source| ProcError::Read { path, source })
}

/// The stat of one process.
pub fn stat(pid: u32) -> Result<Stat, ProcError> {
    let path = format!("/proc/{pid}/stat");
    let text = read(path.clone())?;
    parse_stat(&text).ok_or(ProcError::Format(path))
}

fn ticks_to_duration(ticks: u64) -> Duration {
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_micros(ticks.saturating_mul(1_000_000) / hz)
}

/// `pid` and every live descendant of it.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let Ok(entries) = fs::read_dir("/proc") else {
        return all;
    };
    let parents: Vec<(u32, u32)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| Some((p, stat(p).ok()?.ppid)))
        .collect();
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        all.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    all
}

/// User + system CPU time of `pid` alone.
pub fn cpu_time(pid: u32) -> Result<Duration, ProcError> {
    Ok(ticks_to_duration(stat(pid)?.ticks))
}

/// User + system CPU time of `pid` and its live descendants.
pub fn tree_cpu_time(pid: u32) -> Result<Duration, ProcError> {
    let mut ticks = stat(pid)?.ticks;
    for child in tree(pid).into_iter().skip(1) {
        ticks += stat(child).map_or(0, |s| s.ticks);
    }
    Ok(ticks_to_duration(ticks))
}

/// Busy CPU time of the whole machine (all cores; everything but idle and iowait),
/// from the first line of `/proc/stat`. With the server's, Redis's and our own share
/// subtracted, this says how much *other* work disturbed a measurement.
pub fn system_busy() -> Result<Duration, ProcError> {
    let text = read("/proc/stat".to_owned())?;
    parse_system_busy(&text)
        .map(ticks_to_duration)
        .ok_or_else(|| ProcError::Format("/proc/stat".to_owned()))
}

/// Busy ticks from the `cpu ` line of `/proc/stat`.
pub fn parse_system_busy(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3)? + fields.get(4)?;
    Some(total - idle)
}

/// `VmRSS` of `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64, ProcError> {
    let path = format!("/proc/{pid}/status");
    let text = read(path.clone())?;
    parse_vm_rss(&text).ok_or(ProcError::Format(path))
}

/// `VmRSS` of `pid` and its live descendants, in bytes.
pub fn tree_rss_bytes(pid: u32) -> Result<u64, ProcError> {
    let mut total = rss_bytes(pid)?;
    for child in tree(pid).into_iter().skip(1) {
        total += rss_bytes(child).unwrap_or(0);
    }
    Ok(total)
}

/// The `VmRSS:   1234 kB` line of `/proc/<pid>/status`, in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        let line =
            "1234 (tokio (rt) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                ppid: 1,
                ticks: 300
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tx\nVmPeak:\t 10 kB\nVmRSS:\t    2048 kB\nThreads: 3\n";
        assert_eq!(parse_vm_rss(status), Some(2048 * 1024));
        assert_eq!(parse_vm_rss("Name: x"), None);
    }

    #[test]
    fn parses_system_busy() {
        let stat = "cpu  100 5 50 1000 20 1 2 3 0 0\ncpu0 1 2 3 4 5 6 7 8\n";
        assert_eq!(parse_system_busy(stat), Some(161));
        assert_eq!(parse_system_busy("intr 1"), None);
    }

    #[test]
    fn reads_itself() -> Result<(), ProcError> {
        let me = std::process::id();
        assert!(rss_bytes(me)? > 0);
        let _ = cpu_time(me)?;
        assert_eq!(tree(me).first(), Some(&me));
        Ok(())
    }
}
