//! Redis's own accounting: `INFO commandstats` (calls and CPU microseconds per command)
//! read over a bare RESP connection, so a run can say which scripts and commands the
//! server's Redis time went to, not just how much there was. On a Redis Cluster the
//! masters' stats are summed: they run what the clients send (replicas replay it).

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

/// `a + b`, per command: the stats of several Redis servers as one.
pub fn sum(mut a: CommandStats, b: &CommandStats) -> CommandStats {
    for (name, stat) in b {
        let entry = a.entry(name.clone()).or_default();
        entry.calls += stat.calls;
        entry.usec += stat.usec;
    }
    a
}

/// Reads `INFO commandstats` from the Redis at `addr`; `None` if it does not answer
/// within a second (the run goes on without the breakdown).
pub async fn read(addr: SocketAddr) -> Option<CommandStats> {
    bulk(addr, "INFO commandstats")
        .await
        .map(|body| parse(&body))
}

/// [`read`] over every server in `addrs`, summed (a cluster's masters); `None` when
/// none is given or one does not answer: a missing master must not pass for an idle
/// one.
pub async fn read_all(addrs: &[SocketAddr]) -> Option<CommandStats> {
    if addrs.is_empty() {
        return None;
    }
    let mut total = CommandStats::new();
    for &addr in addrs {
        total = sum(total, &read(addr).await?);
    }
    Some(total)
}

/// Sends the inline command `command` (`INFO commandstats`, `CLUSTER INFO`) to the
/// Redis at `addr` and returns its bulk-string reply; `None` on any other reply or no
/// answer within a second.
pub async fn bulk(addr: SocketAddr, command: &str) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(1), async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .ok()?;
        let mut buf = Vec::with_capacity(4096);
        loop {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(body) = parse_bulk(&buf)? {
                return Some(body.to_owned());
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// A RESP bulk string `$<len>\r\n<body>\r\n` read so far: `Some(Some(body))` when
/// complete, `Some(None)` when more bytes are needed, `None` when it is not one (an
/// error reply, say).
fn parse_bulk(buf: &[u8]) -> Option<Option<&str>> {
    if buf.first().is_some_and(|&b| b != b'$') {
        return None;
    }
    let Some(header_end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Some(None);
    };
    let len: usize = std::str::from_utf8(&buf[1..header_end])
        .ok()?
        .parse()
        .ok()?;
    let body_start = header_end + 2;
    match buf.get(body_start..body_start.checked_add(len)?) {
        Some(body) => std::str::from_utf8(body).ok().map(Some),
        None => Some(None),
    }
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
        let both = sum(d.clone(), &d);
        assert_eq!(
            both["evalsha"],
            CommandStat {
                calls: 40,
                usec: 2000
            }
        );
        assert_eq!(sum(CommandStats::new(), &d), d);
    }

    #[test]
    fn reads_bulk_strings_in_pieces() {
        assert_eq!(parse_bulk(b"$5\r\nhello\r\n"), Some(Some("hello")));
        assert_eq!(parse_bulk(b"$5\r\nhel"), Some(None));
        assert_eq!(parse_bulk(b"$1"), Some(None));
        assert_eq!(parse_bulk(b""), Some(None));
        assert_eq!(parse_bulk(b"$0\r\n\r\n"), Some(Some("")));
        assert_eq!(parse_bulk(b"-ERR unknown command\r\n"), None);
        assert_eq!(parse_bulk(b"$x\r\n"), None);
        assert_eq!(parse_bulk(b"$18446744073709551615\r\n"), None);
    }
}
