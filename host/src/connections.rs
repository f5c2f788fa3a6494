//! Accepted TCP connections: what one may cost the node, from the accept to its close.
//!
//! `axum::serve` gives hyper no timer, so hyper's header read timeout never fires: a
//! connection that sends nothing, or a request head one byte a second, holds a task, a
//! buffer and a file descriptor for as long as its peer likes, and enough of them starve
//! every honest client of descriptors. Here each connection is served as HTTP/1.1 (with
//! upgrades) by hyper with a timer and [`ConnLimits::header_timeout`]; not by
//! hyper-util's auto builder, whose HTTP/2 sniffing reads the first 24 bytes with no
//! timer at all. A write that makes no progress for [`ConnLimits::write_timeout`] fails,
//! so a client that stopped reading cannot pin the task writing to it (and with it the
//! socket's close) forever. The node holds at most [`ConnLimits::max`] connections at
//! once (an upgraded WebSocket keeps its slot until it closes: the permit travels inside
//! the IO), and every accept is counted by its fate.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_io_timeout::TimeoutStream;

use crate::metrics::OutcomeLabel;

/// What one connection may cost before and while it is served.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// A connection that has not sent a whole request head this long after the server
    /// began waiting for one (idle keep-alive time included) is closed. `None`: never.
    pub header_timeout: Option<Duration>,
    /// A write to the connection that makes no progress this long fails, which closes
    /// it. `None`: never.
    pub write_timeout: Option<Duration>,
    /// Connections open at once, upgraded WebSockets included; `0`: no limit.
    pub max: usize,
    /// `TCP_NODELAY` on every accepted socket.
    pub nodelay: bool,
}

/// The node's connection counters, rendered on `/metrics`.
#[derive(Clone, Default)]
pub struct ConnMetrics {
    accepted: Family<OutcomeLabel, Counter>,
    open: Gauge,
}

impl ConnMetrics {
    fn count(&self, outcome: &'static str) {
        self.accepted.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// The counters in text exposition format (no `# EOF`), for `/metrics`.
    pub fn render(&self, out: &mut String) {
        let mut registry = Registry::with_prefix("rtm");
        registry.register(
            "http_connections",
            "TCP connections this node accepted, by outcome: accepted (served), refused_full (HTTP_MAX_CONNECTIONS were open: closed at once)",
            self.accepted.clone(),
        );
        registry.register(
            "http_connections_open",
            "TCP connections open now, upgraded WebSockets included",
            self.open.clone(),
        );
        crate::metrics::append_registry(&registry, out);
    }
}

/// A connection's place among the open ones: freed (and the gauge lowered) when the
/// connection's IO is dropped, which for an upgraded WebSocket is when it closes.
struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
    open: Gauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// A TCP stream with its write deadline, holding its [`Slot`].
///
/// A write that timed out kills the connection for good: every later read and write
/// fails, and the socket is shut down so a read parked on it wakes up. Failing that one
/// write alone is not enough: engineioxide's writer logs a failed write and goes on to
/// the next packet (another full timeout each), and the session's close waits for that
/// writer, so the socket would never leave.
struct Counted {
    tcp: Pin<Box<TimeoutStream<TcpStream>>>,
    stalled: bool,
    _slot: Slot,
}

impl Counted {
    fn stalled_error() -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            "a write made no progress for HTTP_WRITE_TIMEOUT_MS",
        )
    }

    /// Marks the connection dead after `result` timed out.
    fn note<T>(&mut self, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(e)) = &result
            && e.kind() == io::ErrorKind::TimedOut
            && !self.stalled
        {
            self.stalled = true;
            tracing::debug!("closing a connection whose peer stopped reading");
            let _ = rustix::net::shutdown(self.tcp.get_ref(), rustix::net::Shutdown::Both);
        }
        result
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.stalled {
            return Poll::Ready(Err(Self::stalled_error()));
        }
        self.tcp.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.stalled {
            return Poll::Ready(Err(Self::stalled_error()));
        }
        let result = self.tcp.as_mut().poll_write(cx, buf);
        self.note(result)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.stalled {
            return Poll::Ready(Err(Self::stalled_error()));
        }
        let result = self.tcp.as_mut().poll_flush(cx);
        self.note(result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp.as_mut().poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.stalled {
            return Poll::Ready(Err(Self::stalled_error()));
        }
        let result = self.tcp.as_mut().poll_write_vectored(cx, bufs);
        self.note(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.get_ref().is_write_vectored()
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and
/// waits for the HTTP connections in flight to finish (upgraded WebSockets are the
/// caller's to close: `shutdown` does that before it completes).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    metrics: ConnMetrics,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let permits = (limits.max > 0).then(|| Arc::new(Semaphore::new(limits.max)));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    // Each connection holds a receiver: once all are dropped, every connection is done.
    let (stop, stopping) = watch::channel(false);
    let service = TowerToHyperService::new(router);
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => tcp,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(io) = admit(tcp, permits.as_ref(), &limits, &metrics) else {
            continue;
        };
        let conn = builder
            .serve_connection(TokioIo::new(io), service.clone())
            .with_upgrades();
        tokio::spawn(drive(conn, stopping.clone()));
    }
    drop(listener);
    let _ = stop.send(true);
    drop(stopping);
    stop.closed().await;
}

/// One served connection.
type Conn = http1::UpgradeableConnection<TokioIo<Counted>, TowerToHyperService<Router>>;

/// Serves one connection; once `stopping` turns true it finishes the request in
/// flight and closes.
async fn drive(conn: Conn, mut stopping: watch::Receiver<bool>) {
    tokio::pin!(conn);
    let mut asked = false;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                return;
            }
            changed = stopping.changed(), if !asked => {
                asked = true;
                if changed.is_err() || *stopping.borrow() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Gives `tcp` a slot, or closes it (counted) when [`ConnLimits::max`] are open.
fn admit(
    tcp: TcpStream,
    permits: Option<&Arc<Semaphore>>,
    limits: &ConnLimits,
    metrics: &ConnMetrics,
) -> Option<Counted> {
    let permit = match permits.map(|p| p.clone().try_acquire_owned()) {
        None => None,
        Some(Ok(permit)) => Some(permit),
        Some(Err(_)) => {
            metrics.count("refused_full");
            return None;
        }
    };
    if limits.nodelay
        && let Err(e) = tcp.set_nodelay(true)
    {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    metrics.count("accepted");
    metrics.open.inc();
    let mut tcp = TimeoutStream::new(tcp);
    tcp.set_write_timeout(limits.write_timeout);
    Some(Counted {
        tcp: Box::pin(tcp),
        stalled: false,
        _slot: Slot {
            _permit: permit,
            open: metrics.open.clone(),
        },
    })
}

/// An accept error: a connection that failed before we took it is nobody's concern; out
/// of descriptors (or memory), wait a moment for some to be freed instead of spinning.
async fn accept_failed(e: io::Error) {
    let per_connection = matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    );
    if per_connection {
        return;
    }
    tracing::warn!(error = %e, "accept failed; pausing accepts for 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
