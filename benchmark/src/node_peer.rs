//! The Node.js reference peer (`benchmark/peers/node/`): where it lives, installing its
//! npm dependencies on first use, and the command that starts it, so
//! `--spawn node-peer` / `--compare-spawn node-peer` need nothing done by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The peer's directory in this checkout.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/node")
}

/// The shell command that starts the peer, after installing its locked dependencies with
/// the peer's own `install.sh` (`npm ci`) when `node_modules` lacks them.
pub fn command() -> anyhow::Result<String> {
    let dir = dir();
    let server = dir.join("server.mjs");
    if !server.exists() {
        bail!("{} not found", server.display());
    }
    if !dir.join("node_modules/socket.io/package.json").exists() {
        eprintln!("installing the Node reference peer's packages (npm ci)");
        let status = Command::new("sh")
            .arg(dir.join("install.sh"))
            .status()
            .context("running benchmark/peers/node/install.sh (needs node and npm)")?;
        if !status.success() {
            bail!("benchmark/peers/node/install.sh failed ({status})");
        }
    }
    Ok(format!(
        "node {}",
        shell_quote(&server.display().to_string())
    ))
}

/// Single-quotes `s` for `sh -c`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
