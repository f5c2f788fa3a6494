//! Where registrations live in Redis. The single-tenant host keeps the original flat
//! layout (`<prefix>conn:<id>`, `<prefix>room:<room>`, `<prefix>seen`). With a tenants
//! file every key of a room also carries a hash tag of its tenant and room bucket,
//! `<prefix>{<tenant>:b<k>}:conn:<id>` and so on, with `k` a hash of the room: all keys
//! one atomic step touches (a registration, its room's index and its by-last-seen index)
//! share one Redis Cluster slot, and a tenant's rooms spread over [`BUCKETS`] slots
//! instead of one. The reaper visits each bucket's index.

/// Buckets a tenant's rooms are spread over.
pub const BUCKETS: u32 = 16;

/// A store's key layout.
#[derive(Debug, Clone)]
pub struct Layout {
    prefix: String,
    tags: Option<Tags>,
}

#[derive(Debug, Clone)]
struct Tags {
    tenant: String,
    buckets: u32,
}

/// FNV-1a: stable across builds and platforms (the bucket of a room must never move).
fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

impl Layout {
    /// Keys under `prefix`, without hash tags (the single-tenant host).
    pub fn flat(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            tags: None,
        }
    }

    /// Keys under `prefix` with a hash tag per tenant and room bucket.
    pub fn tagged(prefix: &str, tenant: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            tags: Some(Tags {
                tenant: tenant.to_owned(),
                buckets: BUCKETS,
            }),
        }
    }

    fn bucket_base(&self, tags: &Tags, k: u32) -> String {
        format!("{}{{{}:b{k}}}:", self.prefix, tags.tenant)
    }

    /// What every key of `room` starts with.
    pub fn base(&self, room: &str) -> String {
        match &self.tags {
            None => self.prefix.clone(),
            Some(t) => self.bucket_base(t, fnv1a(room) % t.buckets),
        }
    }

    pub fn conn(&self, room: &str, id: &str) -> String {
        format!("{}conn:{id}", self.base(room))
    }

    pub fn room(&self, room: &str) -> String {
        format!("{}room:{room}", self.base(room))
    }

    /// The room's occupancy: registrations per user (`lua/prelude.lua`: `seen_added`).
    pub fn users(&self, room: &str) -> String {
        format!("{}users:{room}", self.base(room))
    }

    pub fn seen(&self, room: &str) -> String {
        format!("{}seen", self.base(room))
    }

    /// The base of every bucket, for the reaper (one for the flat layout).
    pub fn bases(&self) -> Vec<String> {
        match &self.tags {
            None => vec![self.prefix.clone()],
            Some(t) => (0..t.buckets).map(|k| self.bucket_base(t, k)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keeps_the_original_names_and_tagged_shares_a_tag_per_room() {
        let flat = Layout::flat("prs:");
        assert_eq!(flat.conn("lobby", "c1"), "prs:conn:c1");
        assert_eq!(flat.room("lobby"), "prs:room:lobby");
        assert_eq!(flat.seen("lobby"), "prs:seen");
        assert_eq!(flat.bases(), ["prs:"]);
        let t = Layout::tagged("prs:acme:", "acme");
        let tag = |k: &str| k[k.find('{').unwrap_or(0)..=k.find('}').unwrap_or(0)].to_owned();
        let (c, r, s) = (t.conn("lobby", "c1"), t.room("lobby"), t.seen("lobby"));
        assert!(
            c.starts_with("prs:acme:{acme:b") && c.ends_with("}:conn:c1"),
            "{c}"
        );
        assert_eq!(tag(&c), tag(&r));
        assert_eq!(tag(&c), tag(&s));
        assert_eq!(t.bases().len(), BUCKETS as usize);
        assert!(t.bases().iter().any(|b| r.starts_with(b.as_str())));
        let spread: std::collections::BTreeSet<String> = (0..200)
            .map(|i| tag(&t.room(&format!("room-{i}"))))
            .collect();
        assert_eq!(
            spread.len(),
            BUCKETS as usize,
            "rooms spread over every bucket"
        );
    }
}
