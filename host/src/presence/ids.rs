//! Identifier rules shared by rooms, users, connections and nodes: a short charset that
//! is safe inside Redis keys and index members (no spaces, no separators of ours).

/// True when `s` has 1..=`max_len` characters, all from `[A-Za-z0-9_.:@-]`.
pub fn is_valid_id(s: &str, max_len: usize) -> bool {
    !s.is_empty()
        && s.len() <= max_len
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'@' | b'-'))
}

/// A fresh registration id: 16 random bytes as 32 hex characters.
///
/// Random rather than derived from the socket id because a registration outlives its
/// socket when a client resumes it from a new connection.
pub fn new_conn_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_and_length() {
        assert!(is_valid_id("room-1_a.b:c@d", 128));
        assert!(!is_valid_id("", 128));
        assert!(!is_valid_id("a b", 128));
        assert!(!is_valid_id("ä", 128));
        assert!(is_valid_id(&"x".repeat(128), 128));
        assert!(!is_valid_id(&"x".repeat(129), 128));
        let id = new_conn_id();
        assert_eq!(id.len(), 32);
        assert!(is_valid_id(&id, 128));
        assert_ne!(id, new_conn_id());
    }
}
