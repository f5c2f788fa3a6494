//! Heartbeat coalescing: concurrent heartbeats from many sockets share one store call.
//!
//! A heartbeat is the most frequent presence request. On Redis each call is a script
//! round trip, so instead of one call per request, requests queue here and a dispatcher
//! sends whatever has queued as one batch on the next free lane. Under light load a batch
//! is a single request and nothing waits; under heavy load batches grow, so Redis work
//! and syscalls per heartbeat fall as traffic rises. Every other operation passes through.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::error::StoreError;
use super::store::*;

/// Most registrations refreshed by one store call.
const MAX_BATCH: usize = 512;

struct Job {
    specs: Vec<(String, String)>,
    reply: oneshot::Sender<Result<Vec<Touch>, StoreError>>,
}

/// A [`PresenceStore`] that batches `heartbeat` calls onto `lanes` concurrent calls of
/// the inner store.
pub struct HeartbeatBatcher {
    inner: Arc<dyn PresenceStore>,
    jobs: mpsc::UnboundedSender<Job>,
}

impl HeartbeatBatcher {
    pub fn new(inner: Arc<dyn PresenceStore>, lanes: usize) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(dispatch(inner.clone(), rx, lanes.max(1)));
        Self { inner, jobs }
    }
}

/// Takes the first waiting job, waits for a free lane (more jobs queue meanwhile), then
/// sends everything queued as one call.
async fn dispatch(
    inner: Arc<dyn PresenceStore>,
    mut rx: mpsc::UnboundedReceiver<Job>,
    lanes: usize,
) {
    let lanes = Arc::new(Semaphore::new(lanes));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = lanes.clone().acquire_owned().await else {
            return;
        };
        let mut size = first.specs.len();
        let mut batch = vec![first];
        while size < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    size += job.specs.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let inner = inner.clone();
        tokio::spawn(async move {
            let specs: Vec<TouchSpec<'_>> = batch
                .iter()
                .flat_map(|j| j.specs.iter())
                .map(|(conn_id, owner)| TouchSpec { conn_id, owner })
                .collect();
            let result = inner.heartbeat(&specs).await;
            drop(specs);
            match result {
                Ok(touches) => {
                    let mut touches = touches.into_iter();
                    for job in batch {
                        let mine: Vec<Touch> = touches.by_ref().take(job.specs.len()).collect();
                        let _ = job.reply.send(Ok(mine));
                    }
                }
                Err(e) => {
                    for job in batch {
                        let _ = job.reply.send(Err(e.clone()));
                    }
                }
            }
            drop(permit);
        });
    }
}

#[async_trait]
impl PresenceStore for HeartbeatBatcher {
    async fn join(&self, spec: JoinSpec<'_>) -> Result<Option<Joined>, StoreError> {
        self.inner.join(spec).await
    }

    async fn resume(&self, spec: ResumeSpec<'_>) -> Result<Option<Resumed>, StoreError> {
        self.inner.resume(spec).await
    }

    async fn heartbeat(&self, specs: &[TouchSpec<'_>]) -> Result<Vec<Touch>, StoreError> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        let job = Job {
            specs: specs
                .iter()
                .map(|s| (s.conn_id.to_owned(), s.owner.to_owned()))
                .collect(),
            reply,
        };
        if self.jobs.send(job).is_err() {
            return Err(StoreError::Unavailable(
                "heartbeat dispatcher stopped".into(),
            ));
        }
        rx.await
            .map_err(|_| StoreError::Unavailable("heartbeat batch dropped".into()))?
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

    async fn remove(&self, spec: RemoveSpec<'_>) -> Result<Option<Registration>, StoreError> {
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
