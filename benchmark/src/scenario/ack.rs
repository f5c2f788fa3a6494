//! The rtm ack shape (`{ok:true,...}` / `{ok:false,error:{code,message}}`, PROTOCOL.md)
//! decoded just far enough for the scenarios: outcome, epoch, error code, plugin data.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::client::packet::{self, PacketError};

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(borrow)]
    code: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SelfInfo {
    conn_id: String,
    epoch: u64,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    epoch: Option<u64>,
    #[serde(default, borrow)]
    error: Option<ErrorBody<'a>>,
    #[serde(default, rename = "self")]
    me: Option<SelfInfo>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

/// An rtm ack, decoded.
#[derive(Debug)]
pub enum Ack<'a> {
    Ok {
        /// Heartbeat: the registration's epoch; join: `self.epoch`.
        epoch: Option<u64>,
        /// Join: `self.connId`.
        conn_id: Option<String>,
        /// Plugin replies: `data`.
        data: Option<&'a RawValue>,
    },
    Refused {
        code: Cow<'a, str>,
        /// `stale_epoch` carries the current epoch.
        epoch: Option<u64>,
    },
}

/// Decodes the first argument of an ack array (`[{"ok":..}]`).
pub fn parse(args: &str) -> Result<Ack<'_>, PacketError> {
    let Some(first) = packet::ack_data(args)? else {
        return Ok(Ack::Refused {
            code: Cow::Borrowed("empty_ack"),
            epoch: None,
        });
    };
    let body: Body<'_> = serde_json::from_str(first.get())?;
    Ok(if body.ok {
        let (conn_id, self_epoch) = body
            .me
            .map_or((None, None), |m| (Some(m.conn_id), Some(m.epoch)));
        Ack::Ok {
            epoch: body.epoch.or(self_epoch),
            conn_id,
            data: body.data,
        }
    } else {
        Ack::Refused {
            code: body
                .error
                .map_or(Cow::Borrowed("unknown_error"), |e| e.code),
            epoch: body.epoch,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_shapes() -> Result<(), PacketError> {
        let Ack::Ok { epoch, conn_id, .. } =
            parse(r#"[{"ok":true,"self":{"connId":"c1","epoch":1},"snapshot":[]}]"#)?
        else {
            panic!("join ack not ok");
        };
        assert_eq!((epoch, conn_id.as_deref()), (Some(1), Some("c1")));
        let Ack::Ok { epoch, .. } = parse(r#"[{"ok":true,"epoch":4}]"#)? else {
            panic!("heartbeat ack not ok");
        };
        assert_eq!(epoch, Some(4));
        let Ack::Ok { data, .. } = parse(r#"[{"ok":true,"data":{"id":"r-1","v":"v2"}}]"#)? else {
            panic!("plugin ack not ok");
        };
        assert_eq!(data.map(RawValue::get), Some(r#"{"id":"r-1","v":"v2"}"#));
        let Ack::Refused { code, epoch } =
            parse(r#"[{"ok":false,"error":{"code":"stale_epoch","message":"x"},"epoch":9}]"#)?
        else {
            panic!("refusal not decoded");
        };
        assert_eq!((code.as_ref(), epoch), ("stale_epoch", Some(9)));
        assert!(matches!(parse("[]")?, Ack::Refused { .. }));
        assert!(parse("[1]").is_err());
        assert!(parse("{").is_err());
        Ok(())
    }
}
