//! A Rust Socket.IO client (rust_socketio) with request/ack as one awaitable call and
//! every `presence:event` it receives recorded in order.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use rust_socketio::Payload;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use serde_json::Value;

pub struct RustClient {
    client: Client,
    pub events: Arc<Mutex<Vec<Value>>>,
}

impl RustClient {
    pub async fn connect(url: &str) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
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
            .connect()
            .await
            .expect("connect");
        // rust_socketio resolves `connect` before the namespace CONNECT is acknowledged.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Self { client, events }
    }

    /// Emits `event` with `payload` and returns the first ack argument.
    pub async fn request(&self, event: &str, payload: Value) -> Value {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = Arc::new(Mutex::new(Some(tx)));
        self.client
            .emit_with_ack(
                event,
                payload,
                Duration::from_secs(5),
                move |p: Payload, _| {
                    if let (Payload::Text(values), Some(tx)) = (p, tx.lock().unwrap().take()) {
                        // rust_socketio hands an ack's argument list over as one JSON array.
                        let args = match values.into_iter().next() {
                            Some(Value::Array(args)) => args,
                            other => other.into_iter().collect(),
                        };
                        let _ = tx.send(args.into_iter().next().unwrap_or(Value::Null));
                    }
                    async {}.boxed()
                },
            )
            .await
            .expect("emit");
        tokio::time::timeout(Duration::from_secs(5), rx)
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
