//! What a row is to verification, in Rust; [`super::sql`] says the same in SQL.
//!
//! A row's text is its target columns in load order, each `N` (NULL) or `V<bytes>:<text>` (byte
//! length, colon, canonical text): the length prefix makes the concatenation unambiguous and
//! NULL differs from the empty string (`V0:`). Its hash is the first 8 bytes of `md5(row text)`
//! read big-endian; a table's fingerprint is the sum of its rows' hashes mod 2^64. SQL sums each
//! of the 8 bytes over the rows instead (`sum(get_byte(h, j))`, no 64-bit cast needed), and
//! [`fold_byte_sums`] weighs them back into the same sum: `Σ_rows Σ_j b_j·256^(7-j) =
//! Σ_j 256^(7-j)·Σ_rows b_j (mod 2^64)`. A row's bucket (of 256) is byte 11 of `md5(key text)`.

use md5::{Digest, Md5};
use std::fmt::Write as _;

/// Appends one column's piece of a row text.
pub fn push_piece(text: Option<&str>, out: &mut String) {
    match text {
        None => out.push('N'),
        Some(t) => {
            let _ = write!(out, "V{}:", t.len());
            out.push_str(t);
        }
    }
}

/// The 64-bit hash of a row text.
pub fn row_hash(row_text: &str) -> u64 {
    let d = Md5::digest(row_text.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

/// The bucket of a key text.
pub fn bucket(key_text: &str) -> u8 {
    Md5::digest(key_text.as_bytes())[11]
}

/// The sum mod 2^64 of row hashes from the per-byte sums SQL returns (`sums[j]` = sum over the
/// rows of byte `j` of each hash).
pub fn fold_byte_sums(sums: &[i64; 8]) -> u64 {
    sums.iter()
        .fold(0u64, |acc, s| acc.wrapping_mul(256).wrapping_add(*s as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_unambiguous() {
        let mut a = String::new();
        push_piece(Some("ab"), &mut a);
        push_piece(None, &mut a);
        push_piece(Some(""), &mut a);
        assert_eq!(a, "V2:abNV0:");
        let mut b = String::new();
        push_piece(Some("abN"), &mut b);
        push_piece(Some(""), &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn hash_is_the_md5_prefix_and_byte_sums_fold_to_the_hash_sum() {
        // md5('') = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(row_hash(""), 0xd41d8cd98f00b204);
        assert_eq!(bucket(""), 0x98);
        let texts = ["", "a", "V1:xN", "ünï"];
        let mut sums = [0i64; 8];
        let mut want = 0u64;
        for t in texts {
            let d = Md5::digest(t.as_bytes());
            for (j, s) in sums.iter_mut().enumerate() {
                *s += i64::from(d[j]);
            }
            want = want.wrapping_add(row_hash(t));
        }
        assert_eq!(fold_byte_sums(&sums), want);
    }
}
