//! Test guest: `fs:read {path}` tries to read a file and reports what
//! happened. The sandbox has no preopened directories, so the host's answer
//! should always be the `fs_denied` error.

use rtm_guest::{Ctx, Error, Manifest, Plugin, Reply};
use serde::Deserialize;

struct Fs;

#[derive(Deserialize)]
struct Read {
    path: String,
}

impl Plugin for Fs {
    fn manifest() -> Manifest {
        Manifest::new("fs", "0.1.0").event("fs:*")
    }

    fn on_event(ctx: Ctx) -> Result<Reply, Error> {
        let req: Read = ctx.payload()?;
        match std::fs::read_to_string(&req.path) {
            Ok(contents) => Reply::json(&serde_json::json!({ "read": contents.len() })),
            Err(e) => Err(Error::new("fs_denied", format!("{}: {e}", req.path))),
        }
    }
}

rtm_guest::export_plugin!(Fs);
