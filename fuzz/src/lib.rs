//! The fuzz targets that need a running host: one in-process host per fuzzing process
//! (memory store, no plugins, the Server API on), served on a real loopback port.
//! A panic here (a 5xx answer, a host that stops answering) is a finding.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap_free::config;
use futures::{SinkExt, StreamExt};
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;

/// The host's API key in these targets.
const API_KEY: &str = "rtm-fuzz-api-key-rtm-fuzz-api-key";

/// How long the host may take to answer the liveness probe before it counts as hung.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

struct Live {
    rt: Runtime,
    addr: SocketAddr,
    router: axum::Router,
}

mod clap_free {
    //! The host's configuration from arguments only: the fuzzing process's environment
    //! must not change what is fuzzed.
    pub fn config(args: &[&str]) -> rtm_host::config::Config {
        use clap::Parser as _;
        for (key, _) in std::env::vars() {
            if rtm_host::config::is_host_setting(&key) {
                // SAFETY: called once, before the runtime's threads start.
                unsafe { std::env::remove_var(key) };
            }
        }
        let mut all = vec!["rtm-host"];
        all.extend_from_slice(args);
        rtm_host::config::Config::try_parse_from(all).expect("the fuzz host's settings parse")
    }
}

fn live() -> &'static Live {
    static LIVE: OnceLock<Live> = OnceLock::new();
    LIVE.get_or_init(|| {
        let cfg = config(&["--api-key", API_KEY]);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let (addr, router) = rt.block_on(async {
            let node = rtm_host::server::build(&cfg)
                .await
                .expect("the host builds");
            let router = node.router.clone();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a loopback port");
            let addr = listener.local_addr().expect("its address");
            let served = router.clone();
            tokio::spawn(async move {
                // The node lives as long as the process: its tenants hold the service.
                let _node = node;
                axum::serve(listener, served).await
            });
            (addr, router)
        });
        Live { rt, addr, router }
    })
}

/// Routes a Server API body can go to (the first input byte picks one).
const ROUTES: [&str; 4] = ["publish", "broadcast", "batch", "disconnect"];

/// One Server API request with a fuzzed body.
pub fn api_body(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let live = live();
    let route = ROUTES[usize::from(pick) % ROUTES.len()];
    let request = Request::post(format!("/api/v1/default/{route}"))
        .header("authorization", format!("Bearer {API_KEY}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .expect("a request");
    let response = live
        .rt
        .block_on(live.router.clone().oneshot(request))
        .expect("the router always answers");
    let status = response.status();
    assert!(
        !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "POST {route} answered {status} for {:?}",
        String::from_utf8_lossy(body)
    );
}

/// Splits `data` into WebSocket frames: 0xFF separates frames; a frame starting with
/// 0xFE is sent as binary (the rest), any other as text (lossy UTF-8).
fn frames_of(data: &[u8]) -> Vec<Message> {
    data.split(|&b| b == 0xFF)
        .take(64)
        .map(|f| match f.split_first() {
            Some((0xFE, rest)) => Message::Binary(rest.to_vec().into()),
            _ => Message::Text(String::from_utf8_lossy(f).into_owned().into()),
        })
        .collect()
}

/// Sends the frames of `data` on a fresh Engine.IO WebSocket, then proves the host
/// still serves a well-behaved client (connect, join with an ack).
pub fn frames(data: &[u8]) {
    let live = live();
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", live.addr);
    live.rt.block_on(async {
        if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await {
            for frame in frames_of(data) {
                if ws.send(frame).await.is_err() {
                    break;
                }
            }
            // Read what the host answers until it closes or goes quiet.
            while let Ok(Some(Ok(_))) =
                tokio::time::timeout(Duration::from_millis(20), ws.next()).await
            {}
            let _ = ws.close(None).await;
        }
        let probe = tokio::time::timeout(PROBE_TIMEOUT, probe(&url)).await;
        assert!(
            matches!(probe, Ok(Ok(()))),
            "the host stopped serving after {:?}: {probe:?}",
            String::from_utf8_lossy(data)
        );
    });
}

/// Connect, join a room, wait for the join's ack.
async fn probe(url: &str) -> Result<(), String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    ws.send(Message::Text("40".into()))
        .await
        .map_err(|e| format!("send: {e}"))?;
    let join = r#"421["presence:join",{"roomId":"fuzz-probe","userId":"probe"}]"#;
    let mut joined = false;
    while let Some(msg) = ws.next().await {
        let text = match msg.map_err(|e| format!("read: {e}"))? {
            Message::Text(t) => t.to_string(),
            Message::Ping(p) => {
                let _ = ws.send(Message::Pong(p)).await;
                continue;
            }
            _ => continue,
        };
        if text == "2" {
            let _ = ws.send(Message::Text("3".into())).await;
        } else if text.starts_with("40") && !joined {
            joined = true;
            ws.send(Message::Text(join.into()))
                .await
                .map_err(|e| format!("send join: {e}"))?;
        } else if text.starts_with("431[") {
            let _ = ws.close(None).await;
            return if text.contains(r#""ok":true"#) {
                Ok(())
            } else {
                Err(format!("join refused: {text}"))
            };
        }
    }
    Err("closed before the join's ack".into())
}
