//! Test guest: a manifest the host must refuse. By default it declares an
//! invalid event name; built with `RTM_BAD_MANIFEST=empty-name` it has an
//! empty plugin name instead.

use rtm_guest::{Ctx, Error, Manifest, Plugin, Reply};

struct BadManifest;

impl Plugin for BadManifest {
    fn manifest() -> Manifest {
        match option_env!("RTM_BAD_MANIFEST") {
            Some("empty-name") => Manifest::new("", "0.1.0").event("bad:event"),
            _ => Manifest::new("bad-manifest", "0.1.0").events(["bad:ok", "not a valid event!"]),
        }
    }

    fn on_event(_ctx: Ctx) -> Result<Reply, Error> {
        Ok(Reply::Empty)
    }
}

rtm_guest::export_plugin!(BadManifest);
