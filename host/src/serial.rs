//! Per-socket ordering: [`Serial`] runs one socket's requests one after another, in the
//! order they arrived, while different sockets still run in parallel.
//!
//! socketioxide spawns a task per event, so two events of one socket race: a later
//! `chat:message` can be delivered first and a later heartbeat patch can be overwritten
//! by an earlier one. Socket.IO promises a socket's events in order and users rely on
//! it. A handler therefore only *queues* its work here (synchronously, in the receive
//! path, which is in order); whichever handler finds the queue idle drains it.
//!
//! No task is kept per idle socket: the drain future exists only while work is queued.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::FutureExt;

/// One queued request.
pub type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Jobs drained in a row before the drainer yields to other sockets' tasks (a job on the
/// memory store can complete without ever returning `Pending`).
const BUDGET: usize = 32;

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    draining: bool,
}

/// The queue of one socket. Cloning shares it.
#[derive(Clone, Default)]
pub struct Serial {
    state: Arc<Mutex<State>>,
}

impl Serial {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job` behind this socket's earlier jobs. Returns the drain future when the
    /// queue was idle: the caller must run it (await or spawn it), and it completes once
    /// the queue is empty. `None` means a drain already in progress will run `job`.
    #[must_use]
    fn push(&self, job: Job) -> Option<impl Future<Output = ()> + Send + use<>> {
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
            ran += 1;
            if ran % BUDGET == 0 {
                tokio::task::yield_now().await;
            }
        }
    }

    /// Runs `job` after the socket's earlier jobs. The returned future (which the
    /// caller spawns) drives the queue when this call found it idle and is a no-op
    /// otherwise, so no task waits per queued job.
    pub fn run(&self, job: Job) -> impl Future<Output = ()> + Send + use<> {
        let drain = self.push(job);
        async move {
            if let Some(drain) = drain {
                drain.await;
            }
        }
    }

    /// Queues `job` and returns a future that completes once `job` has run (after every
    /// job queued before it). For the disconnect path, whose caller must not finish
    /// before the socket's cleanup has happened.
    pub fn run_last(&self, job: Job) -> impl Future<Output = ()> + Send + use<> {
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let drain = self.push(Box::pin(async move {
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_run_in_push_order_even_when_earlier_ones_are_slower() {
        let serial = Serial::default();
        let (log, make) = recorder();
        let mut handles = Vec::new();
        for i in 0..100 {
            // Earlier jobs sleep longer: concurrent execution would reverse them.
            let fut = serial.run(make(i, (100 - i as u64) * 20));
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
        let serial = Serial::default();
        let ran = Arc::new(AtomicUsize::new(0));
        let first = serial.run(Box::pin(async { panic!("boom") }));
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
    }

    #[tokio::test]
    async fn the_idle_queue_hands_out_one_drainer() {
        let serial = Serial::default();
        assert!(serial.push(Box::pin(async {})).is_some());
        assert!(serial.push(Box::pin(async {})).is_none());
    }
}
