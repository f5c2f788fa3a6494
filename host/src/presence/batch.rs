//! Request coalescing for the Redis store: heartbeats and joins from many sockets share
//! one script call.
//!
//! Every call to Redis costs a round trip, a write and a read on both sides and the
//! script's setup, whatever it carries. Requests therefore queue here, and a dispatcher
//! gathers what arrives within a short window (`PRESENCE_BATCH_WINDOW_MS`), waits for a
//! free lane (a pool connection; more requests queue meanwhile) and sends the lot as one
//! call. At ordinary rates this is what makes a heartbeat cheap (a few per call instead
//! of one); under a join storm it is what keeps Redis ahead (one call per batch, one
//! snapshot read per room instead of one per joiner). Every other operation passes through.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::error::StoreError;
use super::redis::{RedisStore, TouchKeys, Touches};
use super::store::*;

/// Most registrations refreshed by one heartbeat call.
const MAX_HEARTBEATS: usize = 512;
/// Most joins in one call: each writes a registration and the batch reads each room once,
/// so a call stays a few milliseconds of Redis time.
const MAX_JOINS: usize = 128;

/// How requests are gathered into calls.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Calls in flight at once (the pool's connections).
    pub lanes: usize,
    /// How long the first request of a batch waits for company; zero sends at once.
    pub window: Duration,
}

/// What the batchers of one node share. The tenants of a node share one Redis pool, so
/// they share its lanes, and their heartbeats share one queue: heartbeats of every
/// tenant go out together in one script call (10 tenants with a queue each sent twice
/// the calls of one at 20,000 heartbeats/s). Joins queue per tenant (their script reads
/// a tenant's rooms) on lanes shared by all.
#[derive(Clone)]
pub struct SharedBatching {
    heartbeats: Coalescer<TouchKeys, Touch>,
    join_lanes: Arc<Semaphore>,
}

impl SharedBatching {
    pub fn new(touches: Touches, cfg: BatchConfig) -> Self {
        let lanes = cfg.lanes.max(1);
        let heartbeats = Coalescer::start(
            cfg.window,
            Arc::new(Semaphore::new(lanes)),
            MAX_HEARTBEATS,
            move |items: Vec<TouchKeys>| {
                let touches = touches.clone();
                async move { touches.run(&items).await }
            },
        );
        Self {
            heartbeats,
            join_lanes: Arc::new(Semaphore::new(lanes)),
        }
    }
}

/// Where a request's results go (one result per item, in order).
type Reply<R> = oneshot::Sender<Result<Vec<R>, StoreError>>;

/// Items of one request and where their results go.
struct Queued<T, R> {
    items: Vec<T>,
    reply: Reply<R>,
}

/// A queue and its dispatcher for one kind of request (clones share the queue).
struct Coalescer<T, R> {
    tx: mpsc::UnboundedSender<Queued<T, R>>,
}

impl<T, R> Clone for Coalescer<T, R> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Coalescer<T, R> {
    /// Starts the dispatcher; `flush` sends one batch and returns one result per item.
    fn start<F, Fut>(window: Duration, lanes: Arc<Semaphore>, max: usize, flush: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<R>, StoreError>> + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(dispatch(rx, window, lanes, max, flush));
        Self { tx }
    }

    /// Queues `items` and waits for their results.
    async fn call(&self, items: Vec<T>) -> Result<Vec<R>, StoreError> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Queued { items, reply }).is_err() {
            return Err(StoreError::Unavailable("batch dispatcher stopped".into()));
        }
        rx.await
            .map_err(|_| StoreError::Unavailable("batch dropped".into()))?
    }
}

/// Gathers a batch (the window, then whatever queued while waiting for a lane) and sends
/// it. Requests arriving during the window only queue: the dispatcher sleeps once per
/// batch instead of waking for each of them (at ordinary rates a wake-up costs more
/// than the request). After a full batch the next one goes without a window.
async fn dispatch<T, R, F, Fut>(
    mut rx: mpsc::UnboundedReceiver<Queued<T, R>>,
    window: Duration,
    lanes: Arc<Semaphore>,
    max: usize,
    flush: F,
) where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<R>, StoreError>> + Send + 'static,
{
    let mut backlog = false;
    while let Some(first) = rx.recv().await {
        if !backlog && !window.is_zero() {
            tokio::time::sleep(window).await;
        }
        let Ok(permit) = lanes.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Batch::new(first);
        while batch.size < max {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        backlog = batch.size >= max;
        let (items, replies) = batch.split();
        let sent = flush(items);
        tokio::spawn(async move {
            let result = sent.await;
            drop(permit);
            answer(replies, result);
        });
    }
}

/// Requests gathered for one call.
struct Batch<T, R> {
    size: usize,
    jobs: Vec<Queued<T, R>>,
}

impl<T, R> Batch<T, R> {
    fn new(first: Queued<T, R>) -> Self {
        Self {
            size: first.items.len(),
            jobs: vec![first],
        }
    }

    fn push(&mut self, job: Queued<T, R>) {
        self.size += job.items.len();
        self.jobs.push(job);
    }

    /// All items in order, and per request how many of them were its own.
    #[allow(clippy::type_complexity)]
    fn split(
        self,
    ) -> (
        Vec<T>,
        Vec<(usize, oneshot::Sender<Result<Vec<R>, StoreError>>)>,
    ) {
        let mut items = Vec::with_capacity(self.size);
        let mut replies = Vec::with_capacity(self.jobs.len());
        for job in self.jobs {
            replies.push((job.items.len(), job.reply));
            items.extend(job.items);
        }
        (items, replies)
    }
}

/// Hands each request its share of the results (or the batch's error).
fn answer<R>(replies: Vec<(usize, Reply<R>)>, result: Result<Vec<R>, StoreError>) {
    match result {
        Ok(results) => {
            let mut results = results.into_iter();
            for (n, reply) in replies {
                let mine: Vec<R> = results.by_ref().take(n).collect();
                let outcome = if mine.len() == n {
                    Ok(mine)
                } else {
                    Err(StoreError::Malformed("batch reply too short".into()))
                };
                // The requester may have gone (its socket closed): nothing to do.
                let _ = reply.send(outcome);
            }
        }
        Err(e) => {
            for (_, reply) in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// An owned join item.
struct JoinItem {
    conn_id: String,
    room_id: String,
    user_id: String,
    state: Option<Map<String, Value>>,
    owner: String,
    node: String,
    info: Option<Map<String, Value>>,
    max_members: u64,
}

impl JoinItem {
    fn spec(&self) -> JoinSpec<'_> {
        JoinSpec {
            conn_id: &self.conn_id,
            room_id: &self.room_id,
            user_id: &self.user_id,
            state: self.state.as_ref(),
            owner: &self.owner,
            node: &self.node,
            info: self.info.as_ref(),
            max_members: self.max_members,
        }
    }
}

/// A [`PresenceStore`] that batches `heartbeat` and `join` calls of the Redis store.
pub struct Batcher {
    inner: Arc<RedisStore>,
    heartbeats: Coalescer<TouchKeys, Touch>,
    joins: Coalescer<JoinItem, JoinReply>,
}

impl Batcher {
    /// A batcher of its own (one tenant, or a test).
    pub fn new(inner: Arc<RedisStore>, cfg: BatchConfig) -> Self {
        let shared = SharedBatching::new(inner.touches().clone(), cfg);
        Self::sharing(inner, cfg, &shared)
    }

    /// A batcher whose heartbeats and lanes are the node's (`shared`).
    pub fn sharing(inner: Arc<RedisStore>, cfg: BatchConfig, shared: &SharedBatching) -> Self {
        let store = inner.clone();
        let joins = Coalescer::start(
            cfg.window,
            shared.join_lanes.clone(),
            MAX_JOINS,
            move |items: Vec<JoinItem>| {
                let store = store.clone();
                async move {
                    let specs: Vec<JoinSpec<'_>> = items.iter().map(JoinItem::spec).collect();
                    store.join_batch(&specs).await
                }
            },
        );
        Self {
            inner,
            heartbeats: shared.heartbeats.clone(),
            joins,
        }
    }
}

#[async_trait]
impl PresenceStore for Batcher {
    async fn join(&self, spec: JoinSpec<'_>) -> Result<JoinReply, StoreError> {
        let item = JoinItem {
            conn_id: spec.conn_id.to_owned(),
            room_id: spec.room_id.to_owned(),
            user_id: spec.user_id.to_owned(),
            state: spec.state.cloned(),
            owner: spec.owner.to_owned(),
            node: spec.node.to_owned(),
            info: spec.info.cloned(),
            max_members: spec.max_members,
        };
        let mut results = self.joins.call(vec![item]).await?;
        results
            .pop()
            .ok_or_else(|| StoreError::Malformed("join batch without a result".into()))
    }

    async fn join_batch(&self, specs: &[JoinSpec<'_>]) -> Result<Vec<JoinReply>, StoreError> {
        self.inner.join_batch(specs).await
    }

    async fn resume(&self, spec: ResumeSpec<'_>) -> Result<Option<Resumed>, StoreError> {
        self.inner.resume(spec).await
    }

    async fn heartbeat(&self, specs: &[TouchSpec<'_>]) -> Result<Vec<Touch>, StoreError> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        let items = specs.iter().map(|s| self.inner.touch_keys(s)).collect();
        self.heartbeats.call(items).await
    }

    async fn patch(
        &self,
        touch: TouchSpec<'_>,
        epoch: Option<Epoch>,
        patch: &Map<String, Value>,
        max_state_bytes: usize,
    ) -> Result<Patched, StoreError> {
        self.inner.patch(touch, epoch, patch, max_state_bytes).await
    }

    async fn remove(&self, spec: RemoveSpec<'_>) -> Result<Option<Removed>, StoreError> {
        self.inner.remove(spec).await
    }

    async fn snapshot(&self, room_id: &str) -> Result<Vec<Registration>, StoreError> {
        self.inner.snapshot(room_id).await
    }

    async fn reap(&self, lookback_ms: u64, limit: usize) -> Result<Vec<Reaped>, StoreError> {
        self.inner.reap(lookback_ms, limit).await
    }

    async fn ping(&self) -> bool {
        self.inner.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records the size of every batch `flush` receives.
    fn recording(cfg: BatchConfig) -> (Coalescer<u32, u32>, Arc<Mutex<Vec<usize>>>) {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let lanes = Arc::new(Semaphore::new(cfg.lanes));
        let c = Coalescer::start(cfg.window, lanes, 8, move |items: Vec<u32>| {
            seen.lock().map(|mut s| s.push(items.len())).ok();
            async move { Ok(items.into_iter().map(|i| i * 10).collect()) }
        });
        (c, sizes)
    }

    #[tokio::test]
    async fn queued_requests_share_one_call_and_get_their_own_results() {
        let cfg = BatchConfig {
            lanes: 1,
            window: Duration::ZERO,
        };
        let (c, sizes) = recording(cfg);
        let (a, b, d) = tokio::join!(c.call(vec![1]), c.call(vec![2, 3]), c.call(vec![4]));
        assert_eq!(a.ok(), Some(vec![10]));
        assert_eq!(b.ok(), Some(vec![20, 30]));
        assert_eq!(d.ok(), Some(vec![40]));
        assert_eq!(sizes.lock().map(|s| s.clone()).ok(), Some(vec![4]));
    }

    #[tokio::test]
    async fn a_request_sent_during_the_window_joins_the_waiting_batch() {
        let cfg = BatchConfig {
            lanes: 1,
            window: Duration::from_secs(2),
        };
        let (c, sizes) = recording(cfg);
        let c = Arc::new(c);
        let early = tokio::spawn({
            let c = c.clone();
            async move { c.call(vec![1]).await }
        });
        // On this single-threaded test runtime each yield runs every other ready task
        // first: the early request is sent and the dispatcher takes it and starts its
        // window. Without a window that request would already have gone alone.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        let late = c.call(vec![2]).await;
        assert_eq!(late.ok(), Some(vec![20]));
        assert_eq!(early.await.ok().and_then(Result::ok), Some(vec![10]));
        assert_eq!(sizes.lock().map(|s| s.clone()).ok(), Some(vec![2]));
    }

    #[tokio::test]
    async fn a_full_batch_leaves_the_rest_for_the_next_call() {
        let cfg = BatchConfig {
            lanes: 1,
            window: Duration::ZERO,
        };
        let (c, sizes) = recording(cfg);
        let calls: Vec<_> = (0..9).map(|i| c.call(vec![i])).collect();
        let results = futures::future::join_all(calls).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(sizes.lock().map(|s| s.clone()).ok(), Some(vec![8, 1]));
    }

    #[tokio::test]
    async fn a_failed_call_fails_every_request_in_it() {
        let c: Coalescer<u32, u32> =
            Coalescer::start(Duration::ZERO, Arc::new(Semaphore::new(2)), 8, |_| async {
                Err(StoreError::Unavailable("down".into()))
            });
        assert!(matches!(
            c.call(vec![1, 2]).await,
            Err(StoreError::Unavailable(_))
        ));
    }
}
