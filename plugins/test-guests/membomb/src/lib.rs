//! Test guest: every `membomb:*` event allocates (and touches) memory without
//! bound, so only the host's memory cap can end it.

use rtm_guest::{Ctx, Error, Manifest, Plugin, Reply};

struct MemBomb;

const CHUNK: usize = 1 << 20;

impl Plugin for MemBomb {
    fn manifest() -> Manifest {
        Manifest::new("membomb", "0.1.0").event("membomb:*")
    }

    fn on_event(_ctx: Ctx) -> Result<Reply, Error> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![0xA5; CHUNK]);
            std::hint::black_box(&hoard);
        }
    }
}

rtm_guest::export_plugin!(MemBomb);
