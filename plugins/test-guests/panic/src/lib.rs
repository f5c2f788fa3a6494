//! Test guest: every `panic:*` event panics (a trap once it reaches the host).

use rtm_guest::{Ctx, Error, Manifest, Plugin, Reply};

struct Panic;

impl Plugin for Panic {
    fn manifest() -> Manifest {
        Manifest::new("panic", "0.1.0").event("panic:*")
    }

    fn on_event(ctx: Ctx) -> Result<Reply, Error> {
        panic!("test guest panics on {}", ctx.event)
    }
}

rtm_guest::export_plugin!(Panic);
