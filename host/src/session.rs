//! What the host keeps per connected socket beyond socketioxide's own: who it is (a
//! verified token, replaced by `auth:refresh`), its event-rate bucket, its place in the
//! tenant's connection count, and the timer that disconnects it when its token expires.

use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::watch;

use crate::auth::Identity;
use crate::tenancy::connections::ConnGuard;
use crate::tenancy::limits::ClientLimits;

/// One socket's session.
pub struct Session {
    identity: Mutex<Option<Identity>>,
    /// Made on the first event under a limit (none while the tenant has no rate limit).
    rate: Mutex<Option<Bucket>>,
    place: Mutex<Option<ConnGuard>>,
    /// The `exp` the expiry timer waits for; `None` tells it the socket is gone. Only
    /// sockets with a token have one (an idle anonymous socket pays nothing for it).
    expiry: Option<watch::Sender<Option<u64>>>,
}

/// A token bucket and the limits it was built for (rebuilt when a reload changes them).
struct Bucket {
    per_second: u32,
    burst: u32,
    limiter: DefaultDirectRateLimiter,
}

fn bucket(per_second: u32, burst: u32) -> Bucket {
    let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    let burst_nz = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Bucket {
        per_second,
        burst,
        limiter: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst_nz)),
    }
}

impl Session {
    pub fn new(identity: Option<Identity>, place: ConnGuard) -> Self {
        let expiry = identity.as_ref().map(|i| watch::Sender::new(Some(i.exp)));
        Self {
            identity: Mutex::new(identity),
            rate: Mutex::new(None),
            place: Mutex::new(Some(place)),
            expiry,
        }
    }

    pub fn identity(&self) -> Option<Identity> {
        self.identity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The authenticated user, if any.
    pub fn user(&self) -> Option<String> {
        self.identity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|i| i.user.clone())
    }

    /// Adopts a refreshed token (same `sub`, checked by the caller) and moves the expiry.
    pub fn refresh(&self, identity: Identity) {
        let exp = identity.exp;
        *self.identity.lock().unwrap_or_else(PoisonError::into_inner) = Some(identity);
        if let Some(expiry) = &self.expiry {
            expiry.send_replace(Some(exp));
        }
    }

    /// Takes one event from the bucket; false when the socket is over its rate.
    pub fn allow_event(&self, limits: &ClientLimits) -> bool {
        if limits.events_per_second == 0 {
            return true;
        }
        let mut slot = self.rate.lock().unwrap_or_else(PoisonError::into_inner);
        let stale = slot.as_ref().is_none_or(|b| {
            b.per_second != limits.events_per_second || b.burst != limits.events_burst
        });
        if stale {
            *slot = Some(bucket(limits.events_per_second, limits.events_burst));
        }
        slot.as_ref().is_some_and(|b| b.limiter.check().is_ok())
    }

    /// The socket is gone: its place is given back and the expiry timer stops.
    pub fn close(&self) {
        self.place
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(expiry) = &self.expiry {
            expiry.send_replace(None);
        }
    }

    /// Resolves when the token's `exp` passes without a refresh; never when the socket
    /// closes first (or has no token).
    pub async fn expired(&self) -> bool {
        let Some(expiry) = &self.expiry else {
            return false;
        };
        let mut rx = expiry.subscribe();
        loop {
            let Some(exp) = *rx.borrow_and_update() else {
                return false;
            };
            tokio::select! {
                () = tokio::time::sleep(until(exp)) => return true,
                changed = rx.changed() => if changed.is_err() { return false },
            }
        }
    }
}

/// How long until the Unix time `exp` (seconds).
fn until(exp: u64) -> Duration {
    let at = UNIX_EPOCH + Duration::from_secs(exp);
    at.duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::connections::Connections;
    use std::sync::Arc;

    fn session() -> Session {
        let place = Arc::new(Connections::default())
            .try_admit(0)
            .expect("no limit");
        Session::new(None, place)
    }

    #[test]
    fn the_bucket_allows_the_burst_then_refuses_and_follows_changed_limits() {
        let mut limits = ClientLimits {
            events_per_second: 1,
            events_burst: 3,
            ..ClientLimits::default()
        };
        let s = session();
        assert!((0..3).all(|_| s.allow_event(&limits)));
        assert!(!s.allow_event(&limits), "over the burst");
        limits.events_burst = 10;
        assert!(
            s.allow_event(&limits),
            "a raised limit applies to the next event"
        );
    }

    #[tokio::test]
    async fn expiry_fires_after_exp_and_never_after_close() {
        let s = session();
        assert!(
            !tokio::time::timeout(Duration::from_secs(5), async {
                s.close();
                s.expired().await
            })
            .await
            .expect("close ends the wait")
        );
    }
}
