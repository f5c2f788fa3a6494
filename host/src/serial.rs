//! Per-socket ordering and its bound: [`Serial`] runs one socket's requests one after
//! another, in the order they arrived, while different sockets still run in parallel,
//! and lets at most `SOCKETIO_MAX_QUEUED_EVENTS` of them wait.
//!
//! socketioxide spawns a task per event, so two events of one socket race: a later
//! `chat:message` can be delivered first and a later heartbeat patch can be overwritten
//! by an earlier one. Socket.IO promises a socket's events in order and users rely on
//! it. A handler therefore only *queues* its work here (synchronously, in the receive
//! path, which is in order); whichever handler finds the queue idle drains it.
//!
//! The queue is bounded because a client can keep sending while one of its requests
//! waits on a slow Redis or a slow plugin: unbounded, its events would pile up in host
//! memory. A handler first takes a place ([`Serial::try_reserve`], in the receive path,
//! before it builds anything for the event); when none is left the event is refused
//! there and the caller answers it at once. Places are taken in arrival order, so the
//! events that are queued still run in the order they arrived.
//!
//! No task is kept per idle socket: the drain future exists only while work is queued.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt;

/// One queued request.
pub type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Jobs drained in a row before the drainer yields to other sockets' tasks (a job on the
/// memory store can complete without ever returning `Pending`).
const BUDGET: usize = 32;

/// `SOCKETIO_MAX_QUEUED_EVENTS` unless set: deep enough for any honest burst (a page
/// that joins a few dozen rooms at once, 200 chat messages sent back to back while the
/// first waits), shallow enough that a stuck socket holds little memory.
pub const DEFAULT_MAX_QUEUED: usize = 256;

/// Refused events are reported at most this often per socket (see
/// [`Serial::note_refusal`]), so a client flooding a full queue cannot flood the log.
pub const REFUSAL_REPORT_EVERY: Duration = Duration::from_secs(1);

/// Why [`Serial::try_reserve`] gave no place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    /// `max` events already wait behind the one being handled.
    #[error("this socket already has {max} events waiting (SOCKETIO_MAX_QUEUED_EVENTS)")]
    Full { max: usize },
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    draining: bool,
    /// Events admitted and not yet finished: places reserved but not used yet, queued
    /// jobs, and the one running. At most `max_queued + 1`, except for disconnect
    /// cleanup ([`Serial::run_last`]), which is never refused.
    admitted: usize,
    /// Refused events not reported yet, and when they last were.
    unreported: u64,
    reported_at: Option<Instant>,
}

/// The queue of one socket. Cloning shares it.
#[derive(Clone)]
pub struct Serial {
    state: Arc<Mutex<State>>,
    max_queued: usize,
}

/// A place in a socket's queue, taken by [`Serial::try_reserve`]: [`Slot::run`] queues a
/// job in it; dropped unused, the place is given back.
#[must_use = "a reserved place is given back unless a job is run in it"]
pub struct Slot {
    serial: Option<Serial>,
}

impl Serial {
    /// A socket's queue in which `max_queued` events may wait behind the one running.
    pub fn new(max_queued: usize) -> Self {
        Self {
            state: Arc::default(),
            max_queued,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a place for one event, or says the queue is full: one event may run and
    /// `max_queued` wait behind it. Call it in the receive path, so places are taken in
    /// arrival order and the check cannot race with another event of the socket.
    pub fn try_reserve(&self) -> Result<Slot, ReserveError> {
        let mut state = self.state();
        if state.admitted > self.max_queued {
            return Err(ReserveError::Full {
                max: self.max_queued,
            });
        }
        state.admitted += 1;
        Ok(Slot {
            serial: Some(self.clone()),
        })
    }

    /// Counts one refused event. Returns how many were refused since the last report
    /// when one is due (the first refusal, then at most once per
    /// [`REFUSAL_REPORT_EVERY`]), `None` otherwise.
    pub fn note_refusal(&self) -> Option<u64> {
        let mut state = self.state();
        state.unreported += 1;
        let now = Instant::now();
        if state
            .reported_at
            .is_some_and(|at| now.duration_since(at) < REFUSAL_REPORT_EVERY)
        {
            return None;
        }
        state.reported_at = Some(now);
        Some(std::mem::take(&mut state.unreported))
    }

    /// One admitted event is done (or its place was never used).
    fn release(&self) {
        let mut state = self.state();
        state.admitted = state.admitted.saturating_sub(1);
    }

    /// Queues `job` behind this socket's earlier jobs (its place is already counted).
    /// Returns the drain future when the queue was idle: the caller must run it (await
    /// or spawn it), and it completes once the queue is empty. `None` means a drain
    /// already in progress will run `job`.
    #[must_use]
    fn enqueue(&self, job: Job) -> Option<impl Future<Output = ()> + Send + use<>> {
        let mut state = self.state();
        state.jobs.push_back(job);
        if state.draining {
            return None;
        }
        state.draining = true;
        drop(state);
        let this = self.clone();
        Some(async move { this.drain().await })
    }

    async fn drain(self) {
        let mut ran = 0;
        loop {
            let job = {
                let mut state = self.state();
                match state.jobs.pop_front() {
                    Some(job) => job,
                    None => {
                        state.draining = false;
                        return;
                    }
                }
            };
            // A panicking request must not wedge the socket's queue: it is logged and
            // the next request runs.
            if AssertUnwindSafe(job).catch_unwind().await.is_err() {
                tracing::error!("a socket request panicked; continuing with the next");
            }
            self.release();
            ran += 1;
            if ran % BUDGET == 0 {
                tokio::task::yield_now().await;
            }
        }
    }

    /// Queues `job` and returns a future that completes once `job` has run (after every
    /// job queued before it). For the disconnect path, whose caller must not finish
    /// before the socket's cleanup has happened; never refused, because a cleanup left
    /// out would leave the socket's registrations behind.
    pub fn run_last(&self, job: Job) -> impl Future<Output = ()> + Send + use<> {
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        self.state().admitted += 1;
        let drain = self.enqueue(Box::pin(async move {
            job.await;
            let _ = done.send(());
        }));
        async move {
            if let Some(drain) = drain {
                drain.await;
            }
            // Err only if the job panicked (already logged by the drainer).
            let _ = finished.await;
        }
    }
}

impl Slot {
    /// Runs `job` in this place, after the socket's earlier jobs. The returned future
    /// (which the caller spawns) drives the queue when it was idle and is a no-op
    /// otherwise, so no task waits per queued job.
    pub fn run(mut self, job: Job) -> impl Future<Output = ()> + Send + use<> {
        let drain = self.serial.take().and_then(|serial| serial.enqueue(job));
        async move {
            if let Some(drain) = drain {
                drain.await;
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(serial) = self.serial.take() {
            serial.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn recorder() -> (Arc<Mutex<Vec<usize>>>, impl Fn(usize, u64) -> Job) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let make = move |i: usize, delay_us: u64| -> Job {
            let sink = sink.clone();
            Box::pin(async move {
                tokio::time::sleep(std::time::Duration::from_micros(delay_us)).await;
                sink.lock().expect("log").push(i);
            })
        };
        (log, make)
    }

    fn run(serial: &Serial, job: Job) -> impl Future<Output = ()> + Send + use<> {
        serial.try_reserve().expect("a free place").run(job)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_run_in_push_order_even_when_earlier_ones_are_slower() {
        let serial = Serial::new(DEFAULT_MAX_QUEUED);
        let (log, make) = recorder();
        let mut handles = Vec::new();
        for i in 0..100 {
            // Earlier jobs sleep longer: concurrent execution would reverse them.
            let fut = run(&serial, make(i, (100 - i as u64) * 20));
            handles.push(tokio::spawn(fut));
        }
        for h in handles {
            h.await.expect("join");
        }
        let done = serial.run_last(Box::pin(async {}));
        done.await;
        assert_eq!(*log.lock().expect("log"), (0..100).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_panicking_job_does_not_wedge_the_queue() {
        let serial = Serial::new(DEFAULT_MAX_QUEUED);
        let ran = Arc::new(AtomicUsize::new(0));
        let first = run(&serial, Box::pin(async { panic!("boom") }));
        let counter = ran.clone();
        let second = serial.run_last(Box::pin(async move {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
        tokio::spawn(first);
        second.await;
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        // Idle again: the next push drains by itself.
        let counter = ran.clone();
        serial
            .run_last(Box::pin(async move {
                counter.fetch_add(1, Ordering::SeqCst);
            }))
            .await;
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        // The panicked job gave its place back too.
        assert_eq!(serial.state().admitted, 0);
    }

    #[tokio::test]
    async fn the_idle_queue_hands_out_one_drainer() {
        let serial = Serial::new(DEFAULT_MAX_QUEUED);
        assert!(serial.enqueue(Box::pin(async {})).is_some());
        assert!(serial.enqueue(Box::pin(async {})).is_none());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_until_a_job_finishes_and_keeps_the_order() {
        let serial = Serial::new(2);
        let (open, gate) = tokio::sync::oneshot::channel::<()>();
        let (log, make) = recorder();
        // The first job waits for the gate: it holds the running place.
        let sink = log.clone();
        let first = run(
            &serial,
            Box::pin(async move {
                let _ = gate.await;
                sink.lock().expect("log").push(100);
            }),
        );
        let drainer = tokio::spawn(first);
        // Two may wait behind it; the next is refused and never runs.
        let queued: Vec<_> = (0..2).map(|i| run(&serial, make(i, 0))).collect();
        assert_eq!(
            serial.try_reserve().err(),
            Some(ReserveError::Full { max: 2 })
        );
        open.send(()).expect("the first job waits");
        drainer.await.expect("join");
        for fut in queued {
            fut.await; // no-ops: the drainer ran them
        }
        assert_eq!(*log.lock().expect("log"), vec![100, 0, 1]);
        assert_eq!(serial.state().admitted, 0);
        // Places are free again.
        run(&serial, make(2, 0)).await;
        assert_eq!(*log.lock().expect("log"), vec![100, 0, 1, 2]);
    }

    #[test]
    fn an_unused_place_is_given_back() {
        let serial = Serial::new(0);
        let slot = serial.try_reserve().expect("the running place");
        assert!(serial.try_reserve().is_err(), "max 0: nothing may wait");
        drop(slot);
        assert!(serial.try_reserve().is_ok());
    }

    #[test]
    fn refusals_are_reported_first_then_at_most_once_per_interval() {
        let serial = Serial::new(0);
        assert_eq!(serial.note_refusal(), Some(1));
        assert_eq!(serial.note_refusal(), None);
        assert_eq!(serial.note_refusal(), None);
        assert_eq!(serial.state().unreported, 2, "kept for the next report");
    }
}
