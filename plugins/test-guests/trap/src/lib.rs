//! Test guest: every `trap:*` event executes `unreachable`, a wasm trap.

use rtm_guest::{Ctx, Error, Manifest, Plugin, Reply};

struct Trap;

impl Plugin for Trap {
    fn manifest() -> Manifest {
        Manifest::new("trap", "0.1.0").event("trap:*")
    }

    fn on_event(_ctx: Ctx) -> Result<Reply, Error> {
        core::arch::wasm32::unreachable()
    }
}

rtm_guest::export_plugin!(Trap);
