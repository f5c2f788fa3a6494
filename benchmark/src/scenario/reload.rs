//! `reload`: chat traffic while the chat plugin file is replaced, the supported way
//! (copy the other build to a temporary name inside PLUGINS_DIR, then rename it over
//! the plugin file), `--reloads` times evenly spread over the window, alternating v2
//! and v1. Reports events lost (failed or missing acks plus missing deliveries: must
//! be 0), the worst ack latency around each swap against the window's p99, and which
//! build answered when (the chat plugin's `v` marker).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::Env;
use super::chat;
use super::drive::Window;
use crate::measurement::Measurement;

/// Replaces `dir/file` with `source` atomically: copy to a hidden temporary name in the
/// same directory (so the rename cannot cross file systems), then rename over.
pub fn swap_plugin(dir: &Path, file: &str, source: &Path) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::copy(source, &tmp)?;
    std::fs::rename(&tmp, dir.join(file))
}

/// One swap: when (from window start) and whether the file operations worked.
#[derive(Debug, Clone)]
struct Swap {
    offset_us: u64,
    build: &'static str,
    error: Option<String>,
}

pub async fn run(env: &Env) -> anyhow::Result<Measurement> {
    let args = &env.args;
    let dir = env.plugins_dir.clone().context(
        "reload needs the server's PLUGINS_DIR: use --spawn, or --plugins-dir with --target-url",
    )?;
    let v1 = args.chat_plugin.clone();
    let v2 = args.chat_plugin_v2.clone();
    for p in [&v1, &v2] {
        if !p.exists() {
            bail!(
                "plugin build {} not found: `make guests` builds chat-v1 and chat-v2",
                p.display()
            );
        }
    }
    let session = chat::Session::setup(env).await?;
    let swaps: Arc<Mutex<Vec<Swap>>> = Arc::new(Mutex::new(Vec::new()));
    let reloads = args.reloads;
    let file = args.chat_plugin_file.clone();
    let hook_swaps = swaps.clone();
    let hook = Box::new(move |window: Window| {
        tokio::spawn(schedule_swaps(
            window, reloads, dir, file, v1, v2, hook_swaps,
        ));
    });
    let mut m = session
        .measure(env, args.messages_per_sec, Some(hook))
        .await?;
    let timeline = session.recorder().timeline();
    drop(session);

    let swaps = swaps.lock().map(|s| s.clone()).unwrap_or_default();
    let baseline_p99 = m
        .data
        .ops
        .get("message")
        .map_or(0.0, |(_, _, h)| h.summary().p99_ms);
    let mut worst_spike_ms: f64 = 0.0;
    let mut per_swap = Vec::new();
    for swap in &swaps {
        // Worst ack latency of messages sent from just before the swap to 3 s after.
        let from = swap.offset_us.saturating_sub(100_000);
        let to = swap.offset_us + 3_000_000;
        let worst_us = timeline
            .iter()
            .filter(|(start, _, _)| *start >= from && *start < to)
            .map(|(_, max, _)| *max)
            .max()
            .unwrap_or(0);
        let worst_ms = worst_us as f64 / 1000.0;
        worst_spike_ms = worst_spike_ms.max(worst_ms);
        per_swap.push(json!({
            "at_s": swap.offset_us as f64 / 1e6,
            "to": swap.build,
            "worst_ack_ms_next_3s": worst_ms,
            "error": swap.error,
        }));
    }
    let message_errors = m.data.ops.get("message").map_or(0, |(_, err, _)| *err);
    let lost = message_errors + m.data.counters.get("lost_deliveries").copied().unwrap_or(0);
    m.scenario = "reload";
    m.extra.insert("events_lost".into(), Value::from(lost));
    m.extra.insert("reloads".into(), Value::Array(per_swap));
    m.extra
        .insert("baseline_ack_p99_ms".into(), Value::from(baseline_p99));
    m.extra.insert(
        "worst_ack_near_reload_ms".into(),
        Value::from(worst_spike_ms),
    );
    m.extra.insert(
        "timeline".into(),
        Value::Array(
            timeline
                .iter()
                .filter(|(_, _, n)| *n > 0)
                .map(|(start, max, n)| json!([*start as f64 / 1e6, *max as f64 / 1000.0, n]))
                .collect(),
        ),
    );
    Ok(m)
}

async fn schedule_swaps(
    window: Window,
    reloads: u32,
    dir: PathBuf,
    file: String,
    v1: PathBuf,
    v2: PathBuf,
    swaps: Arc<Mutex<Vec<Swap>>>,
) {
    let length = window.length();
    for k in 1..=reloads {
        let offset = length.mul_f64(f64::from(k) / f64::from(reloads + 1));
        tokio::time::sleep_until(tokio::time::Instant::from_std(window.start + offset)).await;
        let (build, source) = if k % 2 == 1 { ("v2", &v2) } else { ("v1", &v1) };
        let (dir, file, source) = (dir.clone(), file.clone(), source.clone());
        let at = window.start.elapsed();
        let result = tokio::task::spawn_blocking(move || swap_plugin(&dir, &file, &source)).await;
        let error = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Ok(mut swaps) = swaps.lock() {
            swaps.push(Swap {
                offset_us: u64::try_from(at.as_micros()).unwrap_or(u64::MAX),
                build,
                error,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_by_rename() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let src = dir.path().join("v2.bin");
        std::fs::write(&src, b"two")?;
        std::fs::write(dir.path().join("chat.wasm"), b"one")?;
        swap_plugin(dir.path(), "chat.wasm", &src)?;
        assert_eq!(std::fs::read(dir.path().join("chat.wasm"))?, b"two");
        assert!(!dir.path().join(".chat.wasm.tmp").exists());
        Ok(())
    }
}
