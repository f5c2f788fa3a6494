//! Test guest: `net:connect {addr}` tries to open a TCP connection and reports
//! what happened. The sandbox has no network, so the host's answer should
//! always be the `net_denied` error.

use rtm_guest::{Ctx, Error, Manifest, Plugin, Reply};
use serde::Deserialize;

struct Net;

#[derive(Deserialize)]
struct Connect {
    addr: String,
}

impl Plugin for Net {
    fn manifest() -> Manifest {
        Manifest::new("net", "0.1.0").event("net:*")
    }

    fn on_event(ctx: Ctx) -> Result<Reply, Error> {
        let req: Connect = ctx.payload()?;
        match std::net::TcpStream::connect(&req.addr) {
            Ok(_) => Reply::json(&serde_json::json!({ "connected": req.addr })),
            Err(e) => Err(Error::new("net_denied", format!("{}: {e}", req.addr))),
        }
    }
}

rtm_guest::export_plugin!(Net);
