//! The `X-Rtm-Signature` header: `sha256=<hex HMAC-SHA256 of the body with the secret>`,
//! so a receiver can tell a batch came from this host and was not altered.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header a batch is signed in.
pub const HEADER: &str = "X-Rtm-Signature";

const SCHEME: &str = "sha256=";

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"))
}

/// The header value for `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    format!("{SCHEME}{}", hex::encode(m.finalize().into_bytes()))
}

/// True when `header` is the signature of `body` (compared in constant time).
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(sent) = header
        .strip_prefix(SCHEME)
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    let mut m = mac(secret);
    m.update(body);
    m.verify_slice(&sent).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_the_rfc_4231_vector_and_verifies_only_the_same_body() {
        // RFC 4231 test case 2.
        let sig = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(b"Jefe", b"what do ya want for nothing?", &sig));
        assert!(!verify(b"Jefe", b"what do ya want for nothing!", &sig));
        assert!(!verify(b"jefe", b"what do ya want for nothing?", &sig));
        assert!(!verify(b"Jefe", b"x", "sha1=00"));
        assert!(!verify(b"Jefe", b"x", "sha256=zz"));
    }
}
