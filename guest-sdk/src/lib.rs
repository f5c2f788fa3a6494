//! `rtm-guest`: write [rtm](https://example.invalid) plugins in Rust.
//!
//! This crate owns everything a Rust plugin needs to become a WebAssembly
//! component for the rtm host: the WIT bindings of `rtm:plugin@0.1.0`
//! (generated here with `wit-bindgen`, re-exported as [`wit_bindgen`] and
//! [`bindings`]), the [`Plugin`] trait, the [`export_plugin!`] macro, and typed
//! JSON helpers over every host capability ([`emit`], [`rooms`], [`kv`],
//! [`presence`], [`log`], [`clock`]). A plugin crate depends on this crate alone.
//!
//! ```no_run
//! use rtm_guest::{Ctx, Error, Manifest, Plugin, Reply};
//! use serde::{Deserialize, Serialize};
//!
//! struct Echo;
//!
//! #[derive(Deserialize, Serialize)]
//! struct Say {
//!     text: String,
//! }
//!
//! impl Plugin for Echo {
//!     fn manifest() -> Manifest {
//!         Manifest::new("echo", "0.1.0").event("echo:*")
//!     }
//!
//!     fn on_event(ctx: Ctx) -> Result<Reply, Error> {
//!         let say: Say = ctx.payload()?;
//!         Reply::json(&say)
//!     }
//! }
//!
//! rtm_guest::export_plugin!(Echo);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` on a `cdylib`
//! crate: the toolchain emits a component directly. Drop the `.wasm` file into
//! the host's `PLUGINS_DIR`.

pub mod clock;
mod ctx;
pub mod emit;
mod error;
pub mod kv;
pub mod log;
mod manifest;
pub mod presence;
mod reply;
pub mod rooms;

/// The raw bindings generated from `wit/` (world `rtm:plugin/plugin`).
///
/// Prefer the typed wrappers of this crate; the raw functions are here for
/// what the wrappers do not cover.
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "::rtm_guest::bindings",
        export_macro_name: "__export_world",
    });
}

pub use ctx::Ctx;
pub use error::Error;
pub use manifest::{Hooks, Manifest};
pub use reply::Reply;
pub use wit_bindgen;

/// A plugin: one type per component, exported with [`export_plugin!`].
///
/// Only [`Plugin::manifest`] and [`Plugin::on_event`] are required. The hooks
/// default to doing nothing; the host calls a hook only when the manifest
/// asks for it with [`Manifest::hook`], so implementing one means declaring it.
pub trait Plugin {
    /// Name, version, handled events and wanted hooks. Called once at load;
    /// must not call host functions.
    fn manifest() -> Manifest;

    /// Handles one client event routed to this plugin.
    fn on_event(ctx: Ctx) -> Result<Reply, Error>;

    /// A socket of the tenant connected (needs [`Hooks::CONNECT`]).
    fn on_connect(_socket: String) {}

    /// A socket of the tenant disconnected (needs [`Hooks::DISCONNECT`]).
    fn on_disconnect(_socket: String, _user: Option<String>) {}

    /// A presence event (`presence:event` JSON) of the tenant (needs [`Hooks::PRESENCE`]).
    fn on_presence(_event_json: String) {}
}

/// Exports a [`Plugin`] implementation as the component's `handler`.
///
/// Use it once per plugin crate, at the crate root or in any module:
///
/// ```no_run
/// # use rtm_guest::{Ctx, Error, Manifest, Plugin, Reply};
/// struct Noop;
/// impl Plugin for Noop {
///     fn manifest() -> Manifest { Manifest::new("noop", "0.1.0").event("noop:*") }
///     fn on_event(_ctx: Ctx) -> Result<Reply, Error> { Ok(Reply::Empty) }
/// }
/// rtm_guest::export_plugin!(Noop);
/// ```
// rustfmt is not idempotent on this body; keep it as written.
#[rustfmt::skip]
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            struct RtmGuestExport;

            impl $crate::bindings::exports::rtm::plugin::handler::Guest for RtmGuestExport {
                fn manifest() -> $crate::bindings::exports::rtm::plugin::handler::PluginManifest {
                    $crate::__private::manifest::<$plugin>()
                }

                fn on_event(
                    ctx: $crate::bindings::exports::rtm::plugin::handler::EventCtx,
                ) -> ::core::result::Result<
                    ::core::option::Option<::std::string::String>,
                    $crate::Error,
                > {
                    $crate::__private::on_event::<$plugin>(ctx)
                }

                fn on_connect(socket: ::std::string::String) {
                    <$plugin as $crate::Plugin>::on_connect(socket)
                }

                fn on_disconnect(
                    socket: ::std::string::String,
                    user: ::core::option::Option<::std::string::String>,
                ) {
                    <$plugin as $crate::Plugin>::on_disconnect(socket, user)
                }

                fn on_presence(event: ::std::string::String) {
                    <$plugin as $crate::Plugin>::on_presence(event)
                }
            }

            $crate::bindings::__export_world!(RtmGuestExport with_types_in $crate::bindings);
        };
    };
}

/// Glue used by [`export_plugin!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    use crate::bindings::exports::rtm::plugin::handler::{EventCtx, PluginManifest};
    use crate::{Ctx, Error, Plugin, Reply};

    pub fn manifest<P: Plugin>() -> PluginManifest {
        P::manifest().into_wit()
    }

    pub fn on_event<P: Plugin>(ctx: EventCtx) -> Result<Option<String>, Error> {
        match P::on_event(Ctx::from_wit(ctx))? {
            Reply::Empty => Ok(None),
            Reply::Json(json) => Ok(Some(json)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use crate::bindings::exports::rtm::plugin::handler::EventCtx;
    use crate::{__private, Ctx, Error, Hooks, Manifest, Plugin, Reply};

    /// A plugin that uses only the pure parts of the SDK (no host calls).
    struct Echo;

    #[derive(Deserialize, Serialize)]
    struct Say {
        text: String,
    }

    impl Plugin for Echo {
        fn manifest() -> Manifest {
            Manifest::new("echo", "0.1.0")
                .event("echo:*")
                .hook(Hooks::CONNECT)
        }

        fn on_event(ctx: Ctx) -> Result<Reply, Error> {
            match ctx.event.as_str() {
                "echo:say" => Reply::json(&ctx.payload::<Say>()?),
                "echo:quiet" => Ok(Reply::Empty),
                "echo:who" => Reply::json(ctx.user_or(Error::new("not_joined", "join first"))?),
                other => Err(Error::new("unknown_event", other)),
            }
        }
    }

    fn event(event: &str, user: Option<&str>, payload: &str) -> EventCtx {
        EventCtx {
            socket: "s1".into(),
            user: user.map(str::to_owned),
            event: event.into(),
            payload: payload.into(),
        }
    }

    #[test]
    fn the_export_glue_hands_the_manifest_over() {
        let m = __private::manifest::<Echo>();
        assert_eq!((m.name.as_str(), m.version.as_str()), ("echo", "0.1.0"));
        assert_eq!(m.events, ["echo:*"]);
        assert_eq!(m.hooks, Hooks::CONNECT);
    }

    #[test]
    fn replies_map_to_the_wit_result() {
        assert_eq!(
            __private::on_event::<Echo>(event("echo:say", None, r#"{"text":"hi"}"#)).expect("ok"),
            Some(r#"{"text":"hi"}"#.to_owned())
        );
        assert_eq!(
            __private::on_event::<Echo>(event("echo:quiet", None, "null")).expect("ok"),
            None,
            "Reply::Empty is an ack without data"
        );
        assert_eq!(
            __private::on_event::<Echo>(event("echo:who", Some("ada"), "null")).expect("ok"),
            Some("\"ada\"".to_owned())
        );
    }

    #[test]
    fn errors_reach_the_host_with_their_code() {
        let cases = [
            (
                event("echo:say", None, r#"{"txt":"hi"}"#),
                "invalid_payload",
            ),
            (event("echo:who", None, "null"), "not_joined"),
            (event("echo:other", None, "null"), "unknown_event"),
        ];
        for (ctx, code) in cases {
            let name = ctx.event.clone();
            let err = __private::on_event::<Echo>(ctx).expect_err(&name);
            assert_eq!(err.code, code, "{name}: {}", err.message);
        }
    }

    #[test]
    fn hooks_default_to_doing_nothing() {
        Echo::on_connect("s1".into());
        Echo::on_disconnect("s1".into(), Some("ada".into()));
        Echo::on_presence(r#"{"type":"join"}"#.into());
    }
}
