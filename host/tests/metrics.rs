//! `GET /metrics` read by a strict OpenMetrics parser (the endpoint says it serves
//! `application/openmetrics-text; version=1.0.0`), and every metric family it lists
//! moves when its event happens, driven by real Socket.IO clients against a spawned
//! host (memory store; the chat and trap plugins in `PLUGINS_DIR`).
//!
//! A family the host adds without a check here fails `every_family_is_checked`'s
//! coverage assertion at the end of `every_family_moves_when_its_event_happens`, so new
//! metrics cannot go untested.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "plugins/support.rs"]
#[allow(dead_code)]
mod plugin_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use openmetrics_parser::{OpenMetricsType, OpenMetricsValue};
use serde_json::json;
use support::Host;
use support::client::RustClient;

/// Longest wait for a metric to reach its expected value (generous: busy CI).
const DEADLINE: Duration = Duration::from_secs(60);

/// Label set of one series, sorted by name.
type Labels = Vec<(String, String)>;

/// One scrape: family name -> (type, series -> value). A counter's value is its total,
/// a gauge's its value, a histogram's its count.
#[derive(Debug, Clone, Default)]
struct Scrape {
    families: BTreeMap<String, (OpenMetricsType, BTreeMap<Labels, f64>)>,
    text: String,
}

impl Scrape {
    /// The value of the series of `family` with exactly `labels`; 0 while the series
    /// (or its whole family) does not exist yet: counters and histograms appear at
    /// their first event.
    /// Every series carries its tenant; the single-tenant host's is `default`.
    /// The sample of `family{labels}`: the default tenant's unless `labels` name one, or
    /// the node-wide sample (no `tenant` label: connections, the adapter).
    fn get(&self, family: &str, labels: &[(&str, &str)]) -> f64 {
        let mut tenant = labels.to_vec();
        if !tenant.iter().any(|(k, _)| *k == "tenant") {
            tenant.push(("tenant", "default"));
        }
        let series = self.families.get(family).map(|(_, series)| series);
        series
            .and_then(|s| {
                s.get(&labels_of(&tenant))
                    .or_else(|| s.get(&labels_of(labels)))
            })
            .copied()
            .unwrap_or_default()
    }

    fn kind(&self, family: &str) -> OpenMetricsType {
        self.families
            .get(family)
            .unwrap_or_else(|| panic!("no family {family} in:\n{}", self.text))
            .0
    }
}

fn labels_of(labels: &[(&str, &str)]) -> Labels {
    let mut l: Labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    l.sort();
    l
}

fn number(n: &openmetrics_parser::MetricNumber) -> f64 {
    n.as_f64()
}

/// Parses an exposition strictly (panics with the text when it is not valid OpenMetrics).
fn parse(text: &str) -> Scrape {
    let exposition = openmetrics_parser::openmetrics::parse_openmetrics(text)
        .unwrap_or_else(|e| panic!("/metrics is not valid OpenMetrics: {e}\n{text}"));
    let mut families = BTreeMap::new();
    for (name, family) in &exposition.families {
        let mut series = BTreeMap::new();
        for sample in family.iter_samples() {
            let mut labels: Labels = sample
                .get_labelset()
                .unwrap_or_else(|e| panic!("{name}: labels: {e}"))
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            labels.sort();
            let value = match &sample.value {
                OpenMetricsValue::Counter(c) => number(&c.value),
                OpenMetricsValue::Gauge(n) | OpenMetricsValue::Unknown(n) => number(n),
                OpenMetricsValue::Histogram(h) => h
                    .count
                    .unwrap_or_else(|| panic!("{name}{labels:?}: histogram without a count"))
                    as f64,
                other => panic!("{name}: unexpected kind of sample {other:?}"),
            };
            series.insert(labels, value);
        }
        families.insert(name.clone(), (family.family_type, series));
    }
    Scrape {
        families,
        text: text.to_owned(),
    }
}

/// A host under test and the families checked on it so far.
struct Probe {
    host: Host,
    http: reqwest::Client,
    checked: BTreeSet<String>,
}

impl Probe {
    fn new(host: Host) -> Self {
        Self {
            host,
            http: reqwest::Client::new(),
            checked: BTreeSet::new(),
        }
    }

    async fn scrape(&self) -> Scrape {
        let url = format!("{}/metrics", self.host.url);
        let res = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(res.status(), 200, "GET {url}");
        let kind = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            kind.starts_with("application/openmetrics-text"),
            "content type {kind:?}"
        );
        let text = res.text().await.expect("metrics body");
        parse(&text)
    }

    /// Scrapes until `family{labels}` is `want` (panics after [`DEADLINE`] with what it
    /// was), marks the family checked and returns that scrape.
    async fn expect(
        &mut self,
        what: &str,
        family: &str,
        labels: &[(&str, &str)],
        want: f64,
    ) -> Scrape {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let s = self.scrape().await;
            let got = s.get(family, labels);
            if got == want {
                self.checked.insert(family.to_owned());
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: {family}{labels:?} is {got}, expected {want}; logs: {}\n{}",
                self.host.log_text(),
                s.text
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Copies the built guests `files` (path, file name) into a fresh plugin folder.
fn plugin_dir(files: &[(&Path, &str)]) -> PathBuf {
    let dir = plugin_support::scratch_dir("metrics");
    for (from, name) in files {
        std::fs::copy(from, dir.join(name))
            .unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
    }
    dir
}

fn env<'a>(pairs: &[(&'a str, &str)]) -> Vec<(&'a str, String)> {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

/// The tenant label of the host's plugins (single-tenant hosts serve `default`).
const TENANT: &str = "default";

/// Every family of the core and plugin metrics moves when its event happens; two hosts
/// (the reaper needs a short TTL that the plugin part must not have).
#[tokio::test(flavor = "multi_thread")]
async fn every_family_moves_when_its_event_happens() {
    let g = plugin_support::guests();
    let dir = plugin_dir(&[(&g.chat_v1, "chat.wasm"), (&g.trap, "trap.wasm")]);
    let cache = plugin_support::repo_root().join("target/plugin-cache");
    let host = Host::spawn(&env(&[
        ("PLUGINS_DIR", dir.to_str().unwrap()),
        ("PLUGIN_CACHE_DIR", cache.to_str().unwrap()),
        // Generous limits: only the trap plugin may fail, whatever the machine's load.
        ("PLUGIN_TIMEOUT_MS", "30000"),
        ("PLUGIN_CPU_MS", "10000"),
        // Two failures quarantine, and the quarantine outlasts the test.
        ("PLUGIN_QUARANTINE_FAILURES", "2"),
        ("PLUGIN_QUARANTINE_WINDOW_MS", "3600000"),
        ("PLUGIN_QUARANTINE_BASE_MS", "3600000"),
        ("PLUGIN_QUARANTINE_MAX_MS", "3600000"),
        ("PLUGIN_RELOAD_DEBOUNCE_MS", "50"),
    ]));
    let t = TENANT;
    let mut p = Probe::new(host);
    let chat = [("tenant", t), ("plugin", "chat")];
    let trap = [("tenant", t), ("plugin", "trap")];

    // Both plugins loaded: one version each.
    p.expect("chat loaded", "rtm_plugin_reloads", &chat, 1.0)
        .await;
    let s0 = p
        .expect("trap loaded", "rtm_plugin_reloads", &trap, 1.0)
        .await;

    // A socket connects: a TCP connection accepted, one more open (its WebSocket).
    let sockets = s0.get("rtm_sockets_connected", &[]);
    let accepted = [("outcome", "accepted")];
    let (conns, open) = (
        s0.get("rtm_http_connections", &accepted),
        s0.get("rtm_http_connections_open", &[]),
    );
    let a = RustClient::connect(&p.host.url).await;
    p.expect("a connected", "rtm_sockets_connected", &[], sockets + 1.0)
        .await;
    p.expect_above("a accepted", "rtm_http_connections", &accepted, conns)
        .await;
    p.expect_above("a open", "rtm_http_connections_open", &[], open)
        .await;

    // A request that succeeds and one that is refused, each counted under its code, each
    // timed.
    let join_ok = [("op", "presence:join"), ("code", "ok")];
    let join_op = [("op", "presence:join")];
    let s = p.scrape().await;
    let (joins, join_timed) = (
        s.get("rtm_requests", &join_ok),
        s.get("rtm_request_duration_seconds", &join_op),
    );
    let ack = a
        .request("presence:join", json!({"roomId": "lobby", "userId": "ada"}))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    p.expect("join acked", "rtm_requests", &join_ok, joins + 1.0)
        .await;
    p.expect(
        "join acked",
        "rtm_request_duration_seconds",
        &join_op,
        join_timed + 1.0,
    )
    .await;
    let refused = [("op", "presence:heartbeat"), ("code", "not_joined")];
    let before = p.scrape().await.get("rtm_requests", &refused);
    let ack = a
        .request("presence:heartbeat", json!({"roomId": "elsewhere"}))
        .await;
    assert_eq!(ack["error"]["code"], "not_joined", "{ack}");
    p.expect("heartbeat refused", "rtm_requests", &refused, before + 1.0)
        .await;

    // A plugin call that succeeds: counted, timed, and a custom request `ok`.
    let custom_ok = [("op", "custom"), ("code", "ok")];
    let s = p.scrape().await;
    let (calls, timed, custom) = (
        s.get("rtm_plugin_calls", &chat),
        s.get("rtm_plugin_call_duration_seconds", &chat),
        s.get("rtm_requests", &custom_ok),
    );
    let ack = a
        .request(
            "chat:message",
            json!({"roomId": "lobby", "text": "metrics"}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    p.expect("chat call", "rtm_plugin_calls", &chat, calls + 1.0)
        .await;
    p.expect(
        "chat call",
        "rtm_plugin_call_duration_seconds",
        &chat,
        timed + 1.0,
    )
    .await;
    p.expect("chat call", "rtm_requests", &custom_ok, custom + 1.0)
        .await;

    // A plugin error: a socket that joined no room may not post.
    let b = RustClient::connect(&p.host.url).await;
    p.expect("b connected", "rtm_sockets_connected", &[], sockets + 2.0)
        .await;
    let errors = p.scrape().await.get("rtm_plugin_errors", &chat);
    let ack = b
        .request("chat:message", json!({"roomId": "lobby", "text": "no"}))
        .await;
    assert_eq!(ack["ok"], false, "{ack}");
    p.expect("chat refused", "rtm_plugin_errors", &chat, errors + 1.0)
        .await;

    // Plugin failures: the trap guest fails; its instance is dropped rather than kept
    // warm; the second failure quarantines it; then calls are rejected unrun.
    let s = p.scrape().await;
    let warm = s.get("rtm_plugin_warm_instances", &trap);
    assert!(warm >= 1.0, "the instance that read the manifest is warm");
    assert_eq!(s.get("rtm_plugin_quarantined", &trap), 0.0);
    let failures = s.get("rtm_plugin_failures", &trap);
    let ack = a.request("trap:now", json!({})).await;
    assert_eq!(ack["error"]["code"], "plugin_failed", "{ack}");
    p.expect("trap failed", "rtm_plugin_failures", &trap, failures + 1.0)
        .await;
    p.expect(
        "trap failed",
        "rtm_plugin_warm_instances",
        &trap,
        warm - 1.0,
    )
    .await;
    let ack = a.request("trap:now", json!({})).await;
    assert_eq!(ack["error"]["code"], "plugin_failed", "{ack}");
    p.expect("trap failed twice", "rtm_plugin_quarantined", &trap, 1.0)
        .await;
    let rejected = p.scrape().await.get("rtm_plugin_rejected", &trap);
    let ack = a.request("trap:now", json!({})).await;
    assert_eq!(ack["error"]["code"], "plugin_failed", "{ack}");
    p.expect(
        "trap quarantined",
        "rtm_plugin_rejected",
        &trap,
        rejected + 1.0,
    )
    .await;

    // A new version of chat is loaded; a file that is not a component is refused.
    plugin_support::replace_by_rename(&g.chat_v2, &dir, "chat.wasm");
    p.expect("chat v2 loaded", "rtm_plugin_reloads", &chat, 2.0)
        .await;
    let tenant_only = [("tenant", t)];
    let load_failures = p
        .scrape()
        .await
        .get("rtm_plugin_load_failures", &tenant_only);
    plugin_support::write_by_rename(b"\0asm not a component", &dir, "broken.wasm");
    p.expect(
        "broken file refused",
        "rtm_plugin_load_failures",
        &tenant_only,
        load_failures + 1.0,
    )
    .await;

    // A socket leaves.
    b.disconnect().await;
    p.expect(
        "b disconnected",
        "rtm_sockets_connected",
        &[],
        sockets + 1.0,
    )
    .await;

    // The reaper, on a host with a short TTL.
    let reaper = reaped_counter_moves().await;
    // Webhooks, on a host with a receiver.
    let hooks = webhook_counters_move().await;

    // Every family has the type its name promises.
    let last = p.scrape().await;
    for family in [
        "rtm_requests",
        "rtm_presence_reaped",
        "rtm_plugin_calls",
        "rtm_plugin_errors",
        "rtm_plugin_failures",
        "rtm_plugin_rejected",
        "rtm_plugin_reloads",
        "rtm_plugin_load_failures",
        "rtm_http_connections",
    ] {
        assert_eq!(last.kind(family), OpenMetricsType::Counter, "{family}");
    }
    for family in [
        "rtm_request_duration_seconds",
        "rtm_plugin_call_duration_seconds",
    ] {
        assert_eq!(last.kind(family), OpenMetricsType::Histogram, "{family}");
    }
    for family in ["rtm_webhook_events", "rtm_webhook_attempts"] {
        assert_eq!(
            hooks.scrape().await.kind(family),
            OpenMetricsType::Counter,
            "{family}"
        );
    }
    assert_eq!(
        hooks.scrape().await.kind("rtm_webhook_queue_depth"),
        OpenMetricsType::Gauge
    );
    for family in [
        "rtm_sockets_connected",
        "rtm_plugin_quarantined",
        "rtm_plugin_warm_instances",
        "rtm_http_connections_open",
    ] {
        assert_eq!(last.kind(family), OpenMetricsType::Gauge, "{family}");
    }

    let mut checked = p.checked.clone();
    checked.extend(reaper.checked.iter().cloned());
    checked.extend(hooks.checked.iter().cloned());
    for s in [
        p.scrape().await,
        reaper.scrape().await,
        hooks.scrape().await,
    ] {
        let listed: BTreeSet<String> = s.families.keys().cloned().collect();
        let unchecked: Vec<&String> = listed.difference(&checked).collect();
        assert!(
            unchecked.is_empty(),
            "families in /metrics that no check moved: {unchecked:?}"
        );
    }
    drop(a);
}

/// `rtm_presence_reaped` moves when the reaper expires a registration: a client joins
/// and then stays connected without heartbeating (a disconnect would be a `leave`, not
/// a reap), while an observer in the room keeps heartbeating and sees the `expire`.
async fn reaped_counter_moves() -> Probe {
    let host = Host::spawn(&env(&[
        ("PRESENCE_TTL_MS", "3000"),
        ("PRESENCE_REAPER_INTERVAL_MS", "100"),
    ]));
    let mut p = Probe::new(host);
    let reaped = p.scrape().await.get("rtm_presence_reaped", &[]);

    let observer = Arc::new(RustClient::connect(&p.host.url).await);
    let ack = observer
        .request("presence:join", json!({"roomId": "r", "userId": "watcher"}))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let stop = Arc::new(AtomicBool::new(false));
    let beats = Arc::new(AtomicU64::new(0));
    let heartbeats = {
        let (observer, stop, beats) = (observer.clone(), stop.clone(), beats.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let ack = observer
                    .request("presence:heartbeat", json!({"roomId": "r"}))
                    .await;
                assert_eq!(ack["ok"], true, "observer heartbeat: {ack}");
                beats.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let silent = RustClient::connect(&p.host.url).await;
    let ack = silent
        .request("presence:join", json!({"roomId": "r", "userId": "silent"}))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let conn = ack["self"]["connId"].as_str().unwrap().to_owned();
    observer
        .wait_for(DEADLINE, |ev| {
            ev.iter()
                .any(|e| e["type"] == "expire" && e["connId"] == conn.as_str())
        })
        .await;
    p.expect(
        "the reaper expired a registration (the observer saw its `expire`)",
        "rtm_presence_reaped",
        &[],
        reaped + 1.0,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    heartbeats.await.expect("observer heartbeats");
    assert!(beats.load(Ordering::Relaxed) > 0);
    drop(silent);
    p
}

/// A webhook receiver whose first request waits for `gate` and then fails (500), and
/// whose later requests succeed; `requests` counts what arrived.
struct Receiver {
    url: String,
    gate: Arc<tokio::sync::Semaphore>,
    requests: Arc<AtomicU64>,
}

async fn start_receiver() -> Receiver {
    use axum::http::StatusCode;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let (g, r) = (gate.clone(), requests.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let (gate, requests) = (g.clone(), r.clone());
            async move {
                if requests.fetch_add(1, Ordering::SeqCst) == 0 {
                    let _held = gate.acquire().await;
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver {
        url,
        gate,
        requests,
    }
}

impl Probe {
    /// Scrapes until `family{labels}` is above `floor`, marks the family checked.
    async fn expect_above(
        &mut self,
        what: &str,
        family: &str,
        labels: &[(&str, &str)],
        floor: f64,
    ) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let s = self.scrape().await;
            if s.get(family, labels) > floor {
                self.checked.insert(family.to_owned());
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: {family}{labels:?} stayed at or below {floor}; logs: {}\n{}",
                self.host.log_text(),
                s.text
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The webhook families move: one event per batch, one batch in flight at a time
/// (`WEBHOOK_CONCURRENCY=1`) and the first one held by the receiver, so later events
/// wait in the queue (its depth rises); once released that attempt fails (`status`), the retry and the rest succeed
/// (`ok`), and all nine events (three rooms: occupied, user joined, member joined) are
/// `delivered`.
async fn webhook_counters_move() -> Probe {
    let receiver = start_receiver().await;
    let host = Host::spawn(&env(&[
        ("WEBHOOK_URL", receiver.url.as_str()),
        ("WEBHOOK_SECRET", "metrics-test-secret"),
        ("WEBHOOK_CONCURRENCY", "1"),
        // One event per batch: with the first held and the second waiting for its
        // slot, at most two of the nine events ever leave the queue.
        ("WEBHOOK_BATCH_MAX", "1"),
        ("WEBHOOK_BATCH_MS", "0"),
        ("WEBHOOK_RETRY_BASE_MS", "10"),
    ]));
    let mut p = Probe::new(host);
    let client = RustClient::connect(&p.host.url).await;
    for room in ["w1", "w2", "w3"] {
        let ack = client
            .request("presence:join", json!({"roomId": room, "userId": "ada"}))
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
    }
    // The first batch is held, the second waits for its slot: the other seven events
    // are still queued.
    p.expect_above(
        "events wait behind a held batch",
        "rtm_webhook_queue_depth",
        &[],
        0.0,
    )
    .await;
    receiver.gate.add_permits(1);
    p.expect(
        "every event delivered after one failed attempt",
        "rtm_webhook_events",
        &[("outcome", "delivered")],
        9.0,
    )
    .await;
    p.expect(
        "the held attempt failed with a status",
        "rtm_webhook_attempts",
        &[("result", "status")],
        1.0,
    )
    .await;
    p.expect("nothing left queued", "rtm_webhook_queue_depth", &[], 0.0)
        .await;
    assert!(
        p.scrape()
            .await
            .get("rtm_webhook_attempts", &[("result", "ok")])
            >= 2.0
    );
    assert!(receiver.requests.load(Ordering::SeqCst) >= 3);
    drop(client);
    p
}
