//! A tenant's connection count: this node's sockets exactly, the other nodes' as last
//! read from Redis (refreshed every second), so the `max_connections` limit holds
//! cluster-wide within about a second.
//!
//! On Redis every node keeps one field of the hash `<tenant prefix>conns`:
//! `<node> -> "<count> <unix ms>"`. Fields older than [`STALE`] belong to nodes that
//! died without cleaning up and are removed by whoever reads them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fred::clients::Pool;
use fred::prelude::*;

use crate::presence::clock::now_ms;

/// How often a node publishes its count and reads the others'.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);
/// A node whose field is this old is gone.
const STALE: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Connections {
    local: AtomicU64,
    others: AtomicU64,
}

/// One admitted socket; dropping it gives its place back.
pub struct ConnGuard(Arc<Connections>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.local.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Connections {
    /// Takes a place when fewer than `max` sockets are connected (0: no limit).
    pub fn try_admit(self: &Arc<Self>, max: u64) -> Option<ConnGuard> {
        let now = self.local.fetch_add(1, Ordering::AcqRel) + 1;
        if max > 0 && now + self.others.load(Ordering::Acquire) > max {
            self.local.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(ConnGuard(self.clone()))
    }

    /// Sockets connected to this node.
    pub fn local(&self) -> u64 {
        self.local.load(Ordering::Acquire)
    }

    /// Sockets connected to every node, as of the last sync.
    pub fn cluster(&self) -> u64 {
        self.local() + self.others.load(Ordering::Acquire)
    }

    /// Publishes this node's count and reads the other nodes' (one round trip each).
    pub async fn sync(&self, pool: &Pool, key: &str, node: &str) -> Result<(), Error> {
        let mine = self.local();
        let client = pool.next();
        if mine == 0 {
            let _: i64 = client.hdel(key, node).await?;
        } else {
            let _: i64 = client
                .hset(key, (node, format!("{mine} {}", now_ms())))
                .await?;
        }
        let fields: std::collections::HashMap<String, String> = client.hgetall(key).await?;
        let (others, stale) = tally(&fields, node, now_ms());
        self.others.store(others, Ordering::Release);
        if !stale.is_empty() {
            let _: i64 = client.hdel(key, stale).await?;
        }
        Ok(())
    }

    /// Removes this node's field (on shutdown), so others stop counting it at once.
    pub async fn forget(&self, pool: &Pool, key: &str, node: &str) {
        let _: Result<i64, _> = pool.next().hdel(key, node).await;
    }
}

/// The other nodes' total, and the fields too old to count.
fn tally(
    fields: &std::collections::HashMap<String, String>,
    me: &str,
    now: i64,
) -> (u64, Vec<String>) {
    let stale_ms = i64::try_from(STALE.as_millis()).unwrap_or(i64::MAX);
    let mut others = 0u64;
    let mut stale = Vec::new();
    for (node, value) in fields.iter().filter(|(n, _)| n.as_str() != me) {
        let mut parts = value.split(' ');
        let count = parts.next().and_then(|c| c.parse::<u64>().ok());
        let at = parts.next().and_then(|t| t.parse::<i64>().ok());
        match (count, at) {
            (Some(count), Some(at)) if now - at <= stale_ms => others += count,
            _ => stale.push(node.clone()),
        }
    }
    (others, stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_and_gives_places_back() {
        let c = Arc::new(Connections::default());
        c.others.store(1, Ordering::Release);
        let a = c.try_admit(3).expect("1 + 1 <= 3");
        let b = c.try_admit(3).expect("2 + 1 <= 3");
        assert!(c.try_admit(3).is_none(), "3 + 1 > 3");
        assert_eq!(c.local(), 2);
        drop(a);
        let _c = c.try_admit(3).expect("a place came back");
        drop(b);
        assert!(c.try_admit(0).is_some(), "0 is no limit");
    }

    #[test]
    fn tally_skips_this_node_and_stale_fields() {
        let fields = [
            ("me", "5 1000"),
            ("n2", "3 1000"),
            ("n3", "4 -9000"),
            ("n4", "junk"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let (others, mut stale) = tally(&fields, "me", 1500);
        stale.sort();
        assert_eq!(others, 3);
        assert_eq!(stale, ["n3", "n4"]);
    }
}
