//! The open-file limit: every connection is a file descriptor on both ends, so the
//! harness raises its soft limit to the hard limit at start (children it spawns inherit
//! it) and says how many connections that allows.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the limit now in force.
pub fn raise() -> u64 {
    let current = getrlimit(Resource::Nofile);
    if current.maximum.is_some() && current.current != current.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: current.maximum,
                maximum: current.maximum,
            },
        );
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}
