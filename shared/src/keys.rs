//! Deterministic new keys: the UUID a rewritten integer key becomes.
//!
//! A new key is `UUIDv5(namespace, "<schema>.<table>:<old key in decimal>")`, where the
//! namespace belongs to one migration (written once into `mapping.toml`) and `<schema>.<table>`
//! is the SOURCE table whose primary key the value belongs to. It is a pure function: every chunk
//! computes a parent's new key without a join, a rerun computes the same keys (so reruns are
//! idempotent), and an application can compute new ids from old ones
//! (`snap2dsql key --table sales.customers --old 42`).

use std::io::Write;
use uuid::Uuid;

/// The default namespace of a migration: `UUIDv5(URL namespace, "snap2dsql:<migration id>")`.
/// `plan` writes it into the mapping, where it stays fixed even if the id is later edited.
pub fn default_namespace(migration_id: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("snap2dsql:{migration_id}").as_bytes(),
    )
}

/// Computes new keys for one source table; reuses its buffer, so it allocates once.
#[derive(Debug, Clone)]
pub struct KeyMaker {
    namespace: Uuid,
    buf: Vec<u8>,
    prefix_len: usize,
}

impl KeyMaker {
    /// A key maker for the source table `schema.table`.
    pub fn new(namespace: Uuid, source_table: &str) -> Self {
        let mut buf = Vec::with_capacity(source_table.len() + 24);
        buf.extend_from_slice(source_table.as_bytes());
        buf.push(b':');
        let prefix_len = buf.len();
        KeyMaker {
            namespace,
            buf,
            prefix_len,
        }
    }

    /// The new key of old key `old`.
    pub fn key(&mut self, old: i64) -> Uuid {
        self.buf.truncate(self.prefix_len);
        // Writing into a Vec cannot fail.
        let _ = write!(self.buf, "{old}");
        Uuid::new_v5(&self.namespace, &self.buf)
    }
}

/// One new key, for the `key` command and tests.
pub fn new_key(namespace: Uuid, source_table: &str, old: i64) -> Uuid {
    KeyMaker::new(namespace, source_table).key(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_uuidv5_of_table_and_old_key() {
        let ns = default_namespace("storefront");
        let k = new_key(ns, "sales.customers", 42);
        assert_eq!(k, Uuid::new_v5(&ns, b"sales.customers:42"));
        assert_eq!(k.get_version_num(), 5);
        // Same inputs, same key; another table or value, another key.
        assert_eq!(k, new_key(ns, "sales.customers", 42));
        assert_ne!(k, new_key(ns, "sales.orders", 42));
        assert_ne!(k, new_key(ns, "sales.customers", 43));
        assert_ne!(
            k,
            new_key(default_namespace("other"), "sales.customers", 42)
        );
    }

    #[test]
    fn maker_reuses_its_buffer_correctly() {
        let ns = default_namespace("m");
        let mut m = KeyMaker::new(ns, "s.t");
        for v in [
            -9_223_372_036_854_775_808_i64,
            -1,
            0,
            7,
            1_000_000,
            i64::MAX,
        ] {
            assert_eq!(m.key(v), Uuid::new_v5(&ns, format!("s.t:{v}").as_bytes()));
        }
    }
}
