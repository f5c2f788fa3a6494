//! A Rust Socket.IO client (rust_socketio) with request/ack as one awaitable call and
//! every `presence:event` it receives recorded in order.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event, Payload};
use serde_json::Value;

pub struct RustClient {
    client: Client,
    pub events: Arc<Mutex<Vec<Value>>>,
    /// Set when the server closed the namespace (DISCONNECT) or the transport ended.
    pub closed: Arc<AtomicBool>,
}

/// Longest wait for an ack (generous: CI is busy).
const ACK_DEADLINE: Duration = Duration::from_secs(30);

/// Longest wait for the server's namespace CONNECT (generous: CI is busy).
const CONNECT_DEADLINE: Duration = Duration::from_secs(20);

impl RustClient {
    pub async fn connect(url: &str) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let connected = Arc::new(tokio::sync::Notify::new());
        let sink = events.clone();
        let on_connect = connected.clone();
        let on_close = closed.clone();
        let client = ClientBuilder::new(url)
            .namespace("/")
            .reconnect(false)
            .on("presence:event", move |payload: Payload, _| {
                let sink = sink.clone();
                async move {
                    if let Payload::Text(values) = payload {
                        sink.lock().unwrap().extend(values);
                    }
                }
                .boxed()
            })
            .on(Event::Connect, move |_, _| {
                // `notify_one` keeps a permit, so a CONNECT before the wait is not lost.
                on_connect.notify_one();
                async {}.boxed()
            })
            .on(Event::Close, move |_, _| {
                on_close.store(true, Ordering::SeqCst);
                async {}.boxed()
            })
            .connect()
            .await
            .expect("connect");
        // rust_socketio resolves `connect` before the namespace CONNECT arrives; events
        // sent before it would be refused, so wait for it.
        tokio::time::timeout(CONNECT_DEADLINE, connected.notified())
            .await
            .unwrap_or_else(|_| {
                panic!("no namespace CONNECT from {url} within {CONNECT_DEADLINE:?}")
            });
        Self {
            client,
            events,
            closed,
        }
    }

    /// Waits until the server has closed this client's connection (panics after `within`).
    pub async fn wait_closed(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while !self.closed.load(Ordering::SeqCst) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the server did not close the connection within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Emits `event` with `payload` and returns the first ack argument.
    pub async fn request(&self, event: &str, payload: Value) -> Value {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = Arc::new(Mutex::new(Some(tx)));
        self.client
            .emit_with_ack(event, payload, ACK_DEADLINE, move |p: Payload, _| {
                if let (Payload::Text(values), Some(tx)) = (p, tx.lock().unwrap().take()) {
                    // rust_socketio hands an ack's argument list over as one JSON array.
                    let args = match values.into_iter().next() {
                        Some(Value::Array(args)) => args,
                        other => other.into_iter().collect(),
                    };
                    let _ = tx.send(args.into_iter().next().unwrap_or(Value::Null));
                }
                async {}.boxed()
            })
            .await
            .expect("emit");
        tokio::time::timeout(ACK_DEADLINE, rx)
            .await
            .unwrap_or_else(|_| panic!("no ack for {event}"))
            .expect("ack channel")
    }

    /// Events of `kind` received so far.
    pub fn events_of(&self, kind: &str) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == kind)
            .cloned()
            .collect()
    }

    /// Waits until `pred` holds over the received events (or panics after `within`).
    pub async fn wait_for(&self, within: Duration, pred: impl Fn(&[Value]) -> bool) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if pred(&self.events.lock().unwrap()) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "condition not met; events: {:?}",
                    self.events.lock().unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
    }
}
