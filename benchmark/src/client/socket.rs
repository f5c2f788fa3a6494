//! One Socket.IO connection over WebSocket, owned by one tokio task.
//!
//! The task owns the WebSocket outright (no lock): it reads frames, answers pings,
//! resolves acks and forwards events to the scenario's [`EventSink`], and it writes the
//! commands that [`Client`] handles queue on an unbounded channel. Ack callbacks run on
//! that task, so they must be short (record a latency, bump a counter). Dropping every
//! [`Client`] handle closes the connection.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::ClientError;
use super::packet::{self, Incoming};

/// Where and how to connect; shared by every client of a run.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The server's socket address (already resolved: we bind our own source address).
    pub addr: SocketAddr,
    /// The `Host` header and URL authority, e.g. `127.0.0.1:3000`.
    pub authority: String,
    /// Engine.IO path, `/socket.io/` by default.
    pub path: String,
    /// Socket.IO namespace, `/` by default.
    pub namespace: String,
    /// The namespace connect's `auth` object as JSON (e.g. `{"token":".."}`), if any.
    pub auth: Option<String>,
    /// Bound on TCP connect + WebSocket upgrade + Engine.IO open + namespace connect.
    pub connect_timeout: Duration,
    /// An ack not received after this long is reported as [`AckOutcome::TimedOut`].
    pub ack_timeout: Duration,
}

/// How a request with an ack ended.
#[derive(Debug)]
pub enum AckOutcome<'a> {
    /// The server's ack arguments as a raw JSON array, e.g. `[{"ok":true}]`.
    Reply(&'a str),
    TimedOut,
    /// The connection ended before the ack arrived.
    Closed,
}

/// Called once on the connection task with the outcome of one request.
pub type AckCallback = Box<dyn for<'a> FnOnce(AckOutcome<'a>) + Send>;

/// Receives what the server pushes; called on the connection task.
pub trait EventSink: Send + Sync + 'static {
    /// An event `name` with its raw JSON argument array (the name included at index 0).
    fn on_event(&self, name: &str, args: &str);
    /// The server closed the connection or it failed (not called when we hang up).
    fn on_close(&self) {}
}

/// A sink that ignores everything (idle connections).
pub struct NoEvents;

impl EventSink for NoEvents {
    fn on_event(&self, _name: &str, _args: &str) {}
}

struct Command {
    event: &'static str,
    payload: String,
    ack: Option<AckCallback>,
}

struct Pending {
    sent: Instant,
    callback: AckCallback,
}

/// A handle on a connected socket. Cheap to share by reference; dropping it hangs up.
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    alive: Arc<AtomicBool>,
    sid: String,
}

impl Client {
    /// Connects (TCP from `source` when given, WebSocket upgrade, Engine.IO open,
    /// namespace connect) within `opts.connect_timeout`.
    pub async fn connect(
        opts: &ClientOptions,
        source: Option<IpAddr>,
        sink: Arc<dyn EventSink>,
    ) -> Result<Self, ClientError> {
        match tokio::time::timeout(opts.connect_timeout, handshake(opts, source)).await {
            Ok(Ok((ws, sid))) => {
                let (commands, rx) = mpsc::unbounded_channel();
                let alive = Arc::new(AtomicBool::new(true));
                let task = Task {
                    ws,
                    rx,
                    sink,
                    namespace: opts.namespace.clone(),
                    ack_timeout: opts.ack_timeout,
                    alive: alive.clone(),
                    pending: BTreeMap::new(),
                    next_id: 0,
                };
                tokio::spawn(task.run());
                Ok(Self {
                    commands,
                    alive,
                    sid,
                })
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ClientError::Timeout { stage: "connect" }),
        }
    }

    /// The Engine.IO session id the server gave us.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// False once the server closed the connection or it failed.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// Sends `42["event",payload]` (`payload` is JSON) and, with `ack`, asks for an ack.
    pub fn emit(
        &self,
        event: &'static str,
        payload: String,
        ack: Option<AckCallback>,
    ) -> Result<(), ClientError> {
        self.commands
            .send(Command {
                event,
                payload,
                ack,
            })
            .map_err(|_| ClientError::Closed)
    }

    /// Sends an event and waits for its ack; returns the raw ack argument array.
    pub async fn request(
        &self,
        event: &'static str,
        payload: String,
    ) -> Result<String, ClientError> {
        let (tx, rx) = oneshot::channel();
        let callback: AckCallback = Box::new(move |outcome: AckOutcome<'_>| {
            let result = match outcome {
                AckOutcome::Reply(args) => Ok(args.to_owned()),
                AckOutcome::TimedOut => Err(ClientError::Timeout { stage: "ack" }),
                AckOutcome::Closed => Err(ClientError::Closed),
            };
            let _ = tx.send(result);
        });
        self.emit(event, payload, Some(callback))?;
        rx.await.map_err(|_| ClientError::Closed)?
    }
}

type Ws = WebSocketStream<TcpStream>;

async fn handshake(
    opts: &ClientOptions,
    source: Option<IpAddr>,
) -> Result<(Ws, String), ClientError> {
    let socket = if opts.addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(opts.addr).await?;
    stream.set_nodelay(true)?;
    let url = format!(
        "ws://{}{}?EIO=4&transport=websocket",
        opts.authority, opts.path
    );
    // Small eager read buffers: a run may hold 20,000+ of these.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(16 * 1024);
    let (mut ws, _response) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;

    let sid = loop {
        let frame = next_text(&mut ws).await?;
        match packet::decode(&frame, &opts.namespace)? {
            Incoming::Open(info) => break info.sid,
            Incoming::Noop | Incoming::Other => {}
            _ => {
                return Err(ClientError::Handshake(format!(
                    "expected open, got {frame:?}"
                )));
            }
        }
    };
    ws.send(Message::text(packet::connect(
        &opts.namespace,
        opts.auth.as_deref(),
    )))
    .await?;
    loop {
        let frame = next_text(&mut ws).await?;
        match packet::decode(&frame, &opts.namespace)? {
            Incoming::Connect => return Ok((ws, sid)),
            Incoming::ConnectError(why) => return Err(ClientError::Refused(why.to_owned())),
            Incoming::Ping(payload) => ws.send(Message::text(packet::pong(payload))).await?,
            Incoming::Close => return Err(ClientError::Closed),
            _ => {}
        }
    }
}

async fn next_text(ws: &mut Ws) -> Result<String, ClientError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Close(_))) | None => return Err(ClientError::Closed),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

/// Why the task stopped.
enum Exit {
    /// Every [`Client`] handle was dropped: we hung up.
    HungUp,
    /// The server closed or the connection failed.
    Lost,
}

struct Task {
    ws: Ws,
    rx: mpsc::UnboundedReceiver<Command>,
    sink: Arc<dyn EventSink>,
    namespace: String,
    ack_timeout: Duration,
    alive: Arc<AtomicBool>,
    /// Requests awaiting their ack, by id; ids grow with send time, so the first entry
    /// is always the next one to time out.
    pending: BTreeMap<u64, Pending>,
    next_id: u64,
}

/// Commands written per flush, so one busy socket cannot starve its own reads.
const WRITE_BATCH: usize = 64;

impl Task {
    async fn run(mut self) {
        let exit = loop {
            let deadline = self
                .pending
                .first_key_value()
                .map(|(_, p)| p.sent + self.ack_timeout);
            let expiry = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                frame = self.ws.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        if self.on_frame(text.as_str()).await.is_err() {
                            break Exit::Lost;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break Exit::Lost,
                    Some(Ok(_)) => {}
                },
                command = self.rx.recv() => match command {
                    Some(command) => {
                        if self.write(command).await.is_err() {
                            break Exit::Lost;
                        }
                    }
                    None => break Exit::HungUp,
                },
                () = expiry => self.expire(),
            }
        };
        self.alive.store(false, Ordering::Relaxed);
        for (_, pending) in std::mem::take(&mut self.pending) {
            (pending.callback)(AckOutcome::Closed);
        }
        match exit {
            Exit::HungUp => {
                let _ = self.ws.close(None).await;
            }
            Exit::Lost => self.sink.on_close(),
        }
    }

    async fn on_frame(&mut self, frame: &str) -> Result<(), ClientError> {
        // A frame we cannot parse is the server's bug, not a reason to hang up; skip it.
        let Ok(packet) = packet::decode(frame, &self.namespace) else {
            return Ok(());
        };
        match packet {
            Incoming::Ping(payload) => {
                self.ws.send(Message::text(packet::pong(payload))).await?;
            }
            Incoming::Ack { id, args } => {
                if let Some(pending) = self.pending.remove(&id) {
                    (pending.callback)(AckOutcome::Reply(args));
                }
            }
            Incoming::Event { name, args, .. } => self.sink.on_event(&name, args),
            Incoming::Close | Incoming::Disconnect => return Err(ClientError::Closed),
            _ => {}
        }
        Ok(())
    }

    async fn write(&mut self, first: Command) -> Result<(), ClientError> {
        let now = Instant::now();
        let frame = self.encode(first, now);
        self.ws.feed(Message::text(frame)).await?;
        for _ in 1..WRITE_BATCH {
            let Ok(command) = self.rx.try_recv() else {
                break;
            };
            let frame = self.encode(command, now);
            self.ws.feed(Message::text(frame)).await?;
        }
        self.ws.flush().await?;
        Ok(())
    }

    fn encode(&mut self, command: Command, now: Instant) -> String {
        let id = command.ack.map(|callback| {
            let id = self.next_id;
            self.next_id += 1;
            self.pending.insert(
                id,
                Pending {
                    sent: now,
                    callback,
                },
            );
            id
        });
        packet::event(&self.namespace, command.event, &command.payload, id)
    }

    fn expire(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.pending.first_entry() {
            if entry.get().sent + self.ack_timeout > now {
                break;
            }
            (entry.remove().callback)(AckOutcome::TimedOut);
        }
    }
}
