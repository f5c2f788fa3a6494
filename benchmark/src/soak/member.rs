//! One soak member: a user in one room, connected to its home node (or the next one up
//! while home is down), joining with `resume` after every reconnect, heartbeating,
//! patching its state and chatting at a steady pace, and recording into the
//! [`Ledger`] everything it asked, was answered and received.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::fleet::Directory;
use super::ledger::{Conn, Ledger};
use crate::client::{Client, ClientError, ClientOptions, EventSink, packet};

/// Where the soak is: members chat and patch only while `Running`; in `Quiet` they only
/// heartbeat (so the rooms settle for the convergence check); at `Stop` they hang up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Running,
    Quiet,
    Stop,
}

/// What every member shares.
pub struct Shared {
    pub ledger: Arc<Ledger>,
    pub dir: Arc<Directory>,
    pub phase: watch::Receiver<Phase>,
    pub heartbeat_every: Duration,
    pub chat_every: Duration,
    /// Share of heartbeats that patch state (each an `update` to the room).
    pub patch_share: f64,
    pub ack_timeout: Duration,
    next_msg: AtomicU64,
    /// Each member's registration while it is joined: the connId its room should list.
    current: Mutex<Vec<Option<String>>>,
    pub connects: AtomicU64,
    pub connect_failures: AtomicU64,
    pub migrations: AtomicU64,
}

impl Shared {
    pub fn new(
        ledger: Arc<Ledger>,
        dir: Arc<Directory>,
        phase: watch::Receiver<Phase>,
        members: usize,
        pace: (Duration, Duration, f64),
        ack_timeout: Duration,
    ) -> Self {
        Self {
            ledger,
            dir,
            phase,
            heartbeat_every: pace.0,
            chat_every: pace.1,
            patch_share: pace.2,
            ack_timeout,
            next_msg: AtomicU64::new(1),
            current: Mutex::new(vec![None; members]),
            connects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            migrations: AtomicU64::new(0),
        }
    }

    fn set_current(&self, m: u32, conn_id: Option<String>) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = current.get_mut(m as usize) {
            *slot = conn_id;
        }
    }

    /// The connIds each room should list now, by room.
    pub fn expected_rooms(&self) -> Vec<Vec<String>> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let mut rooms: Vec<Vec<String>> = Vec::new();
        for (m, conn) in current.iter().enumerate() {
            let room = self.ledger.room_of(m as u32) as usize;
            if rooms.len() <= room {
                rooms.resize(room + 1, Vec::new());
            }
            if let Some(conn) = conn {
                rooms[room].push(conn.clone());
            }
        }
        for room in &mut rooms {
            room.sort();
        }
        rooms
    }

    fn phase(&self) -> Phase {
        *self.phase.borrow()
    }
}

/// How the soak connects to a node: the default namespace, no auth.
pub fn client_options(addr: std::net::SocketAddr, ack_timeout: Duration) -> ClientOptions {
    ClientOptions {
        addr,
        authority: addr.to_string(),
        path: "/socket.io/".into(),
        namespace: "/".into(),
        auth: None,
        connect_timeout: Duration::from_secs(10),
        ack_timeout,
    }
}

/// The room name of room number `r`.
pub fn room_name(r: u32) -> String {
    format!("soak-{r}")
}

/// Records what one connection receives.
struct Sink {
    ledger: Arc<Ledger>,
    conn: Conn,
}

#[derive(Deserialize)]
struct Text<'a> {
    #[serde(borrow)]
    text: std::borrow::Cow<'a, str>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(rename = "connId", borrow)]
    conn_id: std::borrow::Cow<'a, str>,
    #[serde(default)]
    epoch: Option<u64>,
}

impl EventSink for Sink {
    fn on_event(&self, name: &str, args: &str) {
        let Ok(Some(raw)) = packet::event_data(args) else {
            return;
        };
        let raw = raw.get();
        match name {
            "chat:message" => {
                let id = serde_json::from_str::<Text<'_>>(raw)
                    .ok()
                    .and_then(|t| t.text.strip_prefix("soak ")?.parse().ok());
                self.ledger.chat_received(id, self.conn);
            }
            "presence:event" => {
                if let Ok(ev) = serde_json::from_str::<Event<'_>>(raw) {
                    let key = (
                        ev.kind.into_owned(),
                        ev.conn_id.into_owned(),
                        ev.epoch.unwrap_or(0),
                    );
                    self.ledger.event_received(key, self.conn);
                }
            }
            // Emits from other nodes before this may be missing (the node's subscriber
            // reconnected): what was sent before it is not owed to this connection.
            "rtm:gap" => {
                self.ledger.gap_announced(self.conn);
            }
            _ => {}
        }
    }

    fn on_close(&self) {
        self.ledger.left(self.conn);
    }
}

/// One member's state across its connections.
pub struct Member {
    pub id: u32,
    pub home: usize,
    shared: Arc<Shared>,
    conns: u32,
    /// `(connId, epoch)` of its registration, offered as `resume` after a reconnect.
    held: Option<(String, u64)>,
    patches: u64,
}

/// Why a connection's session ended.
enum End {
    Closed,
    GoHome,
    Stop,
}

impl Member {
    pub fn new(id: u32, home: usize, shared: Arc<Shared>) -> Self {
        Self {
            id,
            home,
            shared,
            conns: 0,
            held: None,
            patches: 0,
        }
    }

    fn room(&self) -> String {
        room_name(self.shared.ledger.room_of(self.id))
    }

    /// Connects, joins and keeps going until the soak stops.
    pub async fn run(mut self) {
        while self.shared.phase() != Phase::Stop {
            let node = self.shared.dir.pick(self.home);
            let Some(addr) = self.shared.dir.addr(node) else {
                return;
            };
            self.conns += 1;
            let conn = (self.id, self.conns);
            let opts = client_options(addr, self.shared.ack_timeout);
            let sink = Arc::new(Sink {
                ledger: self.shared.ledger.clone(),
                conn,
            });
            let client = match Client::connect(&opts, None, sink).await {
                Ok(client) => client,
                Err(_) => {
                    self.shared.connect_failures.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(self.backoff()).await;
                    continue;
                }
            };
            self.shared.connects.fetch_add(1, Ordering::Relaxed);
            let end = self.session(&client, conn, node).await;
            self.shared.set_current(self.id, None);
            self.shared.ledger.left(conn);
            drop(client);
            match end {
                End::Stop => return,
                End::GoHome => {
                    self.shared.migrations.fetch_add(1, Ordering::Relaxed);
                }
                End::Closed => tokio::time::sleep(self.backoff()).await,
            }
        }
    }

    /// 200-700 ms, spread by member so a node's clients do not all return at once.
    fn backoff(&self) -> Duration {
        Duration::from_millis(200 + u64::from(self.id * 37 % 500))
    }

    async fn session(&mut self, client: &Client, conn: Conn, node: usize) -> End {
        if let Some(end) = self.join(client, conn).await {
            return end;
        }
        let spread = |every: Duration, salt: u32| {
            every.mul_f64(f64::from((self.id.wrapping_mul(2_654_435_761) ^ salt) % 1000) / 1000.0)
        };
        let now = Instant::now();
        let mut next_hb = now + spread(self.shared.heartbeat_every, 1);
        let mut next_chat = now + spread(self.shared.chat_every, 2);
        loop {
            let wake = next_hb
                .min(next_chat)
                .min(Instant::now() + Duration::from_secs(1));
            tokio::time::sleep_until(wake).await;
            let phase = self.shared.phase();
            if phase == Phase::Stop {
                return End::Stop;
            }
            if !client.is_alive() {
                return End::Closed;
            }
            if node != self.home && self.shared.dir.up(self.home) {
                return End::GoHome;
            }
            let now = Instant::now();
            if now >= next_hb {
                next_hb = now + self.shared.heartbeat_every;
                let patch = phase == Phase::Running && self.patch_due();
                if let Some(end) = self.heartbeat(client, conn, patch).await {
                    return end;
                }
            }
            if now >= next_chat {
                next_chat = now + self.shared.chat_every;
                if phase == Phase::Running
                    && let Some(end) = self.chat(client, conn).await
                {
                    return end;
                }
            }
        }
    }

    fn patch_due(&mut self) -> bool {
        self.patches += 1;
        let every = (1.0 / self.shared.patch_share.max(1e-6)).round().max(1.0) as u64;
        (self.patches + u64::from(self.id)).is_multiple_of(every)
    }

    /// Sends one request and records how it ended; `None` when the connection closed
    /// before the answer.
    async fn ask(
        &self,
        client: &Client,
        conn: Conn,
        event: &'static str,
        payload: Value,
    ) -> Option<Value> {
        let reply = client.request(event, payload.to_string()).await;
        let answer = match reply {
            Ok(args) => serde_json::from_str::<Vec<Value>>(&args)
                .ok()
                .and_then(|mut v| (!v.is_empty()).then(|| v.swap_remove(0))),
            Err(ClientError::Timeout { .. }) => {
                self.shared.ledger.answered(event, "timeout", conn);
                return Some(Value::Null);
            }
            Err(_) => {
                self.shared.ledger.answered(event, "closed", conn);
                return None;
            }
        };
        let outcome = match &answer {
            Some(v) if v["ok"] == true => "ok".to_owned(),
            Some(v) => v["error"]["code"]
                .as_str()
                .unwrap_or("bad_reply")
                .to_owned(),
            None => "bad_reply".to_owned(),
        };
        self.shared.ledger.answered(event, &outcome, conn);
        Some(answer.unwrap_or(Value::Null))
    }

    /// Joins (offering `resume` when it held a registration) until ok; `Some` when the
    /// session must end instead.
    async fn join(&mut self, client: &Client, conn: Conn) -> Option<End> {
        loop {
            if self.shared.phase() == Phase::Stop {
                return Some(End::Stop);
            }
            let mut payload = json!({
                "roomId": self.room(),
                "userId": format!("u{}", self.id),
                "state": { "member": self.id },
            });
            if let Some((conn_id, epoch)) = &self.held {
                payload["resume"] = json!({ "connId": conn_id, "epoch": epoch });
            }
            let sent = self.shared.ledger.now_us();
            let reply = self.ask(client, conn, "presence:join", payload).await?;
            if reply["ok"] == true {
                let conn_id = reply["self"]["connId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let epoch = reply["self"]["epoch"].as_u64().unwrap_or(0);
                let resumed = self.held.as_ref().is_some_and(|(c, _)| *c == conn_id);
                if !resumed {
                    self.shared.ledger.change_acked(
                        ("join".into(), conn_id.clone(), epoch),
                        self.id,
                        sent,
                    );
                }
                self.shared.ledger.joined(conn);
                self.shared.set_current(self.id, Some(conn_id.clone()));
                self.held = Some((conn_id, epoch));
                return None;
            }
            if !client.is_alive() {
                return Some(End::Closed);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn heartbeat(&mut self, client: &Client, conn: Conn, patch: bool) -> Option<End> {
        let mut payload = json!({ "roomId": self.room() });
        if patch && let Some((_, epoch)) = &self.held {
            payload["patchState"] = json!({ "n": self.patches });
            payload["epoch"] = json!(epoch);
        }
        let sent = self.shared.ledger.now_us();
        let reply = match self.ask(client, conn, "presence:heartbeat", payload).await {
            Some(reply) => reply,
            None => return Some(End::Closed),
        };
        let code = reply["error"]["code"].as_str();
        if reply["ok"] == true || code == Some("stale_epoch") {
            if let (Some(epoch), Some((conn_id, held))) = (reply["epoch"].as_u64(), &mut self.held)
            {
                if patch && reply["ok"] == true {
                    self.shared.ledger.change_acked(
                        ("update".into(), conn_id.clone(), epoch),
                        self.id,
                        sent,
                    );
                }
                *held = epoch;
            }
        } else if code == Some("not_joined") {
            // The registration is gone (Redis lost it, or it expired): join afresh.
            self.shared.ledger.left(conn);
            self.shared.set_current(self.id, None);
            self.held = None;
            return self.join(client, conn).await;
        }
        None
    }

    async fn chat(&mut self, client: &Client, conn: Conn) -> Option<End> {
        let id = self.shared.next_msg.fetch_add(1, Ordering::Relaxed);
        let sent = self.shared.ledger.now_us();
        self.shared.ledger.chat_sent(id, self.id, sent);
        let payload = json!({ "roomId": self.room(), "text": format!("soak {id}") });
        let reply = self.ask(client, conn, "chat:message", payload).await?;
        if reply["ok"] == true {
            self.shared.ledger.chat_acked(id);
        }
        None
    }
}
