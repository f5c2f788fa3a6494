//! The Server API as a tenant's backend calls it (PROTOCOL.md "Server API"):
//! `POST /api/v1/<tenant>/publish` with `Authorization: Bearer <key>`, over one
//! keep-alive HTTP/1.1 pool to the target's nodes. Calls are open loop like the socket
//! ops: a publish never waits for an earlier answer, and at most `max_in_flight` wait
//! at once; a publish due beyond that is refused on the spot (an [`Overrun`]) instead
//! of queueing, so a slow server shows as errors and latency, never as a quietly
//! lower offered rate.

use std::fmt::Write as _;
use std::io::Read as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;

use crate::target::Node;

/// The tenant of a host without a tenants file.
pub const DEFAULT_TENANT: &str = "default";

/// Why the API client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("the API key cannot be sent in a header (printable ASCII only)")]
    Key,
    #[error("{url} is not a URL: {why}")]
    Url { url: String, why: String },
    #[error("the target has no node to call")]
    NoNodes,
}

/// A publish not sent: this many calls already await their answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} Server API calls already in flight")]
pub struct Overrun(pub usize);

/// How one call ended: `Ok` for `200 {"ok":true}`, else a short label for error tables
/// (the API's error `code`, `http_<status>`, `timeout`, `connect`, ...).
pub type Answer = Result<(), String>;

/// A random API key for a spawned host: 128 bits from the kernel, as hex.
pub fn random_key() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let mut key = String::with_capacity(32);
    for b in bytes {
        let _ = write!(key, "{b:02x}");
    }
    Ok(key)
}

/// `http://<node>/api/v1/<tenant>/publish`.
fn publish_url(node: &Node, tenant: &str) -> Result<reqwest::Url, ApiError> {
    let url = format!("http://{}/api/v1/{tenant}/publish", node.authority);
    reqwest::Url::parse(&url).map_err(|e| ApiError::Url {
        why: e.to_string(),
        url,
    })
}

/// Publishes to one tenant of a target, spread over its nodes by the caller.
pub struct ServerApi {
    client: reqwest::Client,
    /// One per node, in the target's order.
    publish_urls: Vec<reqwest::Url>,
    auth: HeaderValue,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
}

impl ServerApi {
    /// A client for tenant [`DEFAULT_TENANT`] on `nodes` with `key`; a call not answered
    /// within `timeout` fails as `timeout`.
    pub fn new(
        nodes: &[Node],
        key: &str,
        max_in_flight: usize,
        timeout: Duration,
    ) -> Result<Self, ApiError> {
        let publish_urls = nodes
            .iter()
            .map(|node| publish_url(node, DEFAULT_TENANT))
            .collect::<Result<Vec<_>, _>>()?;
        if publish_urls.is_empty() {
            return Err(ApiError::NoNodes);
        }
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| ApiError::Key)?;
        auth.set_sensitive(true);
        let client = reqwest::Client::builder()
            .http1_only()
            // The target is local: an `http_proxy` in the shell must not reroute it.
            .no_proxy()
            .tcp_nodelay(true)
            // Every connection a burst opened stays for the next one: keep-alive only.
            .pool_max_idle_per_host(max_in_flight)
            .pool_idle_timeout(None::<Duration>)
            .timeout(timeout)
            .build()?;
        Ok(Self {
            client,
            publish_urls,
            auth,
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight,
        })
    }

    /// Nodes this client calls.
    pub fn nodes(&self) -> usize {
        self.publish_urls.len()
    }

    /// Sends `body` to node `node` and waits for the answer (a check before load).
    pub async fn call(&self, node: usize, body: String) -> Answer {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.publish(node, body, move |answer| {
            let _ = tx.send(answer);
        })
        .map_err(|e| e.to_string())?;
        rx.await.unwrap_or_else(|_| Err("no_answer".into()))
    }

    /// Sends `body` (a publish request's JSON) to node `node` (modulo the nodes) and
    /// returns at once; `done` gets the answer. An [`Overrun`] when `max_in_flight`
    /// calls are waiting already: nothing was sent, and `done` is not called.
    pub fn publish(
        &self,
        node: usize,
        body: String,
        done: impl FnOnce(Answer) + Send + 'static,
    ) -> Result<(), Overrun> {
        if self.in_flight.fetch_add(1, Ordering::Relaxed) >= self.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return Err(Overrun(self.max_in_flight));
        }
        let url = self.publish_urls[node % self.publish_urls.len()].clone();
        let request = self
            .client
            .post(url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body);
        let in_flight = self.in_flight.clone();
        tokio::spawn(async move {
            let answer = answer(request.send().await).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            done(answer);
        });
        Ok(())
    }
}

/// Reads the whole answer (so its connection goes back to the pool) and judges it.
async fn answer(sent: Result<reqwest::Response, reqwest::Error>) -> Answer {
    let response = sent.map_err(|e| failure(&e))?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| failure(&e))?;
    judge(status, &body)
}

/// The API's answer body: `{ok: true}` or `{ok: false, error: {code, message}}`.
#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    error: Option<ReplyError>,
}

#[derive(Deserialize)]
struct ReplyError {
    code: String,
}

/// `200 {"ok":true}` is success; a refusal is labelled by its error `code` when that
/// is a short identifier, else by its status.
fn judge(status: u16, body: &[u8]) -> Answer {
    let reply = serde_json::from_slice::<Reply>(body).ok();
    match (status, reply) {
        (200, Some(Reply { ok: true, .. })) => Ok(()),
        (200, _) => Err("bad_answer".into()),
        (_, Some(Reply { error: Some(e), .. })) if is_label(&e.code) => Err(e.code),
        (status, _) => Err(format!("http_{status}")),
    }
}

/// Whether `code` is fit for an error table (`unauthorized`, `invalid_payload`).
fn is_label(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A call that got no answer, by what failed.
fn failure(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "http"
    };
    kind.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(authority: &str) -> anyhow::Result<Node> {
        Ok(Node {
            url: format!("ws://{authority}/"),
            addr: authority.parse()?,
            authority: authority.to_owned(),
        })
    }

    #[test]
    fn judges_answers() {
        assert_eq!(judge(200, br#"{"ok":true}"#), Ok(()));
        assert_eq!(judge(200, b"{}"), Err("bad_answer".into()));
        assert_eq!(judge(200, b"<html>"), Err("bad_answer".into()));
        let refused = br#"{"ok":false,"error":{"code":"unauthorized","message":"no"}}"#;
        assert_eq!(judge(401, refused), Err("unauthorized".into()));
        let odd = br#"{"ok":false,"error":{"code":"has spaces","message":"?"}}"#;
        assert_eq!(judge(500, odd), Err("http_500".into()));
        assert_eq!(judge(502, b"bad gateway"), Err("http_502".into()));
    }

    #[test]
    fn keys_are_random_hex() -> std::io::Result<()> {
        let (a, b) = (random_key()?, random_key()?);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        Ok(())
    }

    #[test]
    fn publishes_over_http_whatever_the_node_url() -> anyhow::Result<()> {
        let url = publish_url(&node("127.0.0.1:3000")?, DEFAULT_TENANT)?;
        assert_eq!(url.as_str(), "http://127.0.0.1:3000/api/v1/default/publish");
        assert!(matches!(
            ServerApi::new(&[], "k", 1, Duration::from_secs(1)),
            Err(ApiError::NoNodes)
        ));
        let nodes = [node("127.0.0.1:3000")?];
        assert!(matches!(
            ServerApi::new(&nodes, "bad\nkey", 1, Duration::from_secs(1)),
            Err(ApiError::Key)
        ));
        Ok(())
    }

    #[tokio::test]
    async fn refuses_beyond_the_in_flight_bound() -> anyhow::Result<()> {
        // A server that accepts and never answers: both calls stay in flight.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let nodes = [node(&listener.local_addr()?.to_string())?];
        let api = ServerApi::new(&nodes, "k", 2, Duration::from_secs(30))?;
        assert_eq!(api.publish(0, "{}".into(), |_| {}), Ok(()));
        assert_eq!(api.publish(1, "{}".into(), |_| {}), Ok(()));
        assert_eq!(api.publish(0, "{}".into(), |_| {}), Err(Overrun(2)));
        Ok(())
    }
}
