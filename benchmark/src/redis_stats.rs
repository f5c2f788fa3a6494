//! Redis's own accounting: `INFO commandstats` (calls and CPU microseconds per command)
//! read over a bare RESP connection, so a run can say which scripts and commands the
//! server's Redis time went to, not just how much there was.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Calls and CPU microseconds of one command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommandStat {
    pub calls: u64,
    pub usec: u64,
}

pub type CommandStats = BTreeMap<String, CommandStat>;

/// Parses the body of `INFO commandstats`.
pub fn parse(info: &str) -> CommandStats {
    info.lines()
        .filter_map(|line| {
            let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let mut stat = CommandStat::default();
            for field in fields.split(',') {
                match field.split_once('=') {
                    Some(("calls", v)) => stat.calls = v.trim().parse().ok()?,
                    Some(("usec", v)) => stat.usec = v.trim().parse().ok()?,
                    _ => {}
                }
            }
            Some((name.to_owned(), stat))
        })
        .collect()
}

/// `later - earlier`, per command, leaving out commands with no calls in between.
pub fn delta(later: &CommandStats, earlier: &CommandStats) -> CommandStats {
    later
        .iter()
        .filter_map(|(name, l)| {
            let e = earlier.get(name).copied().unwrap_or_default();
            let d = CommandStat {
                calls: l.calls.saturating_sub(e.calls),
                usec: l.usec.saturating_sub(e.usec),
            };
            (d.calls > 0).then(|| (name.clone(), d))
        })
        .collect()
}

/// Reads `INFO commandstats` from the Redis at `addr`; `None` if it does not answer
/// within a second (the run goes on without the breakdown).
pub async fn read(addr: SocketAddr) -> Option<CommandStats> {
    tokio::time::timeout(Duration::from_secs(1), async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream.write_all(b"INFO commandstats\r\n").await.ok()?;
        let mut buf = Vec::with_capacity(4096);
        loop {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            // `$<len>\r\n<body>\r\n`
            let text = std::str::from_utf8(&buf).ok()?;
            let header_end = text.find("\r\n")?;
            let len: usize = text.strip_prefix('$')?[..header_end - 1].parse().ok()?;
            if buf.len() >= header_end + 2 + len {
                let body = &text[header_end + 2..header_end + 2 + len];
                return Some(parse(body));
            }
        }
    })
    .await
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_subtracts() {
        let a = parse(
            "# Commandstats\r\ncmdstat_evalsha:calls=10,usec=500,usec_per_call=50.00,rejected_calls=0,failed_calls=0\r\ncmdstat_ping:calls=1,usec=1,usec_per_call=1.00\r\n",
        );
        assert_eq!(
            a["evalsha"],
            CommandStat {
                calls: 10,
                usec: 500
            }
        );
        let b = parse(
            "cmdstat_evalsha:calls=30,usec=1500\r\ncmdstat_ping:calls=1,usec=1\r\ncmdstat_spublish:calls=4,usec=8\r\n",
        );
        let d = delta(&b, &a);
        assert_eq!(
            d["evalsha"],
            CommandStat {
                calls: 20,
                usec: 1000
            }
        );
        assert!(!d.contains_key("ping"));
        assert_eq!(d["spublish"].calls, 4);
    }
}
