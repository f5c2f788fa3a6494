//! Test guest: every `spin:*` event loops forever, so only the host's CPU
//! deadline or wall-clock timeout can end it.

use rtm_guest::{Ctx, Error, Manifest, Plugin, Reply};

struct Spin;

impl Plugin for Spin {
    fn manifest() -> Manifest {
        Manifest::new("spin", "0.1.0").event("spin:*")
    }

    fn on_event(_ctx: Ctx) -> Result<Reply, Error> {
        let mut n: u64 = 0;
        loop {
            // black_box keeps the optimizer from reasoning the loop away.
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

rtm_guest::export_plugin!(Spin);
