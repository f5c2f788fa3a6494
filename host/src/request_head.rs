//! Request heads that own their bytes, so a WebSocket session does not keep hyper's
//! connection read buffer alive.
//!
//! hyper parses a request without copying: the URI and every header value are views into
//! the connection's read buffer (16 KiB by the time an upgrade request has been read).
//! engineioxide keeps the request's head for the whole session, and axum's `OriginalUri`
//! extension holds another view, so each idle WebSocket pinned that buffer: 16 KiB of the
//! ~39 KB an idle connection cost (benchmark/README.md, "Memory"). Copying the head (a
//! few hundred bytes) before Socket.IO sees the request lets the buffer go with the
//! HTTP/1 connection at the upgrade.

use axum::extract::{OriginalUri, Request};
use axum::http::{HeaderMap, HeaderValue, Uri};

/// Replaces the URI, `OriginalUri` and header values of `req` with owned copies.
pub async fn detach(mut req: Request) -> Request {
    if let Some(uri) = owned_uri(req.uri()) {
        if let Some(original) = req.extensions_mut().get_mut::<OriginalUri>() {
            original.0 = uri.clone();
        }
        *req.uri_mut() = uri;
    }
    let headers = std::mem::take(req.headers_mut());
    *req.headers_mut() = owned_headers(&headers);
    req
}

/// A copy of `uri` in a fresh allocation (`None` only if it would not re-parse, which a
/// URI hyper accepted always does).
fn owned_uri(uri: &Uri) -> Option<Uri> {
    Uri::try_from(uri.to_string()).ok()
}

/// A copy of every header, values in fresh allocations; the names are copied or static
/// already.
fn owned_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let copy = match HeaderValue::from_bytes(value.as_bytes()) {
            Ok(mut copy) => {
                copy.set_sensitive(value.is_sensitive());
                copy
            }
            // Unreachable for a value hyper parsed; keep the original rather than drop it.
            Err(_) => value.clone(),
        };
        out.append(name.clone(), copy);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// True when `value` points into `buffer`.
    fn inside(value: &[u8], buffer: &Bytes) -> bool {
        let range = buffer.as_ptr_range();
        range.contains(&value.as_ptr())
    }

    #[tokio::test]
    async fn the_copied_head_points_outside_the_buffer_it_was_parsed_from() {
        let buffer = Bytes::from_static(b"/socket.io/?EIO=4&transport=websocket websocket");
        let uri = Uri::from_maybe_shared(buffer.slice(0..37)).expect("uri");
        let value = HeaderValue::from_maybe_shared(buffer.slice(38..)).expect("value");
        let mut req = Request::new(axum::body::Body::empty());
        *req.uri_mut() = uri.clone();
        req.headers_mut().insert("upgrade", value);
        req.extensions_mut().insert(OriginalUri(uri));
        assert!(inside(req.headers()["upgrade"].as_bytes(), &buffer));

        let req = detach(req).await;
        assert_eq!(req.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(req.headers()["upgrade"], "websocket");
        assert!(!inside(req.headers()["upgrade"].as_bytes(), &buffer));
        let query = req.uri().path_and_query().expect("path").as_str();
        assert!(!inside(query.as_bytes(), &buffer));
        let original = req.extensions().get::<OriginalUri>().expect("original uri");
        let original = original.0.path_and_query().expect("path").as_str();
        assert!(!inside(original.as_bytes(), &buffer));
    }
}
