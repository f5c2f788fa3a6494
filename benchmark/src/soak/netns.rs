//! A network namespace for one soak node, so the soak can cut that node off from Redis
//! while its clients still reach it: two veth pairs, one towards the clients and one
//! towards Redis, and a cut that takes the Redis pair's link down (packets in flight are
//! lost, connections stay open, as in a real partition). Needs root (`ip netns`); the
//! namespace and its links are removed when the guard is dropped.

use std::net::Ipv4Addr;
use std::process::Command;

/// A namespace with a clients link and a Redis link.
pub struct Netns {
    pub name: String,
    /// The node's address, as the clients (in the root namespace) reach it.
    pub node_ip: Ipv4Addr,
    /// Redis's address as the node reaches it (Redis must also bind it).
    pub redis_ip: Ipv4Addr,
    /// The root-namespace end of the Redis link: what [`Netns::cut`] takes down.
    redis_link: String,
}

/// Runs `ip <args>`; the error names the command and what it printed.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

impl Netns {
    /// Creates `rtm-soak-<tag>` with its links (subnets 10.201.<k>.0/24 towards the
    /// clients and 10.202.<k>.0/24 towards Redis, `k` from `tag`). Every step that
    /// failed is undone; the error says why (most often: not root).
    pub fn create(tag: u32) -> Result<Self, String> {
        let k = tag % 250 + 1;
        let ns = Self {
            name: format!("rtm-soak-{tag}"),
            node_ip: Ipv4Addr::new(10, 201, k as u8, 2),
            redis_ip: Ipv4Addr::new(10, 202, k as u8, 1),
            redis_link: format!("rsr{tag}"),
        };
        // On an error `ns` is dropped, which removes what was built.
        ns.build(tag, k)?;
        Ok(ns)
    }

    fn build(&self, tag: u32, k: u32) -> Result<(), String> {
        let n = self.name.as_str();
        let (client_root, client_ns) = (format!("rsc{tag}"), format!("rsc{tag}n"));
        let redis_ns = format!("rsr{tag}n");
        ip(&["netns", "add", n])?;
        ip(&["-n", n, "link", "set", "lo", "up"])?;
        for (root, inner, root_ip, inner_ip) in [
            (
                client_root.as_str(),
                client_ns.as_str(),
                format!("10.201.{k}.1/24"),
                format!("10.201.{k}.2/24"),
            ),
            (
                self.redis_link.as_str(),
                redis_ns.as_str(),
                format!("10.202.{k}.1/24"),
                format!("10.202.{k}.2/24"),
            ),
        ] {
            ip(&["link", "add", root, "type", "veth", "peer", "name", inner])?;
            ip(&["link", "set", inner, "netns", n])?;
            ip(&["addr", "add", &root_ip, "dev", root])?;
            ip(&["link", "set", root, "up"])?;
            ip(&["-n", n, "addr", "add", &inner_ip, "dev", inner])?;
            ip(&["-n", n, "link", "set", inner, "up"])?;
        }
        Ok(())
    }

    /// Cuts the node off from Redis (the clients' link stays up).
    pub fn cut(&self) -> Result<(), String> {
        ip(&["link", "set", &self.redis_link, "down"])
    }

    /// Restores the Redis link.
    pub fn heal(&self) -> Result<(), String> {
        ip(&["link", "set", &self.redis_link, "up"])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth ends inside it, and with them the pairs.
        let _ = ip(&["netns", "del", &self.name]);
    }
}
