//! UUIDv5 (RFC 9562 §5.5) of the verifier's own: SHA-1 of namespace bytes and name, the first
//! 16 bytes with the version (5) and variant (RFC) bits set. Written here, not taken from the
//! `uuid` crate the loader uses, so a wrong new key cannot appear on both sides of a comparison.

use sha1::{Digest, Sha1};
use std::fmt::Write as _;

/// The UUIDv5 of `name` in `namespace`.
pub fn uuid5(namespace: &[u8; 16], name: &[u8]) -> [u8; 16] {
    let mut h = Sha1::new();
    h.update(namespace);
    h.update(name);
    let digest = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out[6] = (out[6] & 0x0f) | 0x50;
    out[8] = (out[8] & 0x3f) | 0x80;
    out
}

/// Lower-case hex with hyphens (8-4-4-4-12): PostgreSQL's `uuid_out`.
pub fn hyphenated(b: &[u8], out: &mut String) {
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{byte:02x}");
    }
}

/// The new key text of old key `old` of source table `table` (`schema.table`):
/// `UUIDv5(namespace, "<schema>.<table>:<old>")`.
pub fn new_key_text(namespace: &[u8; 16], table: &str, old: i64, out: &mut String) {
    let name = format!("{table}:{old}");
    hyphenated(&uuid5(namespace, name.as_bytes()), out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_example_and_bits() {
        // RFC 9562 appendix A.4: UUIDv5 of "www.example.com" in the DNS namespace.
        let dns = [
            0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4,
            0x30, 0xc8,
        ];
        let mut s = String::new();
        hyphenated(&uuid5(&dns, b"www.example.com"), &mut s);
        assert_eq!(s, "2ed6657d-e927-568b-95e1-2665a8aea6a2");
    }
}
