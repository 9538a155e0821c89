//! Counting the rows of a COPY FROM STDIN stream as it passes, without holding or copying it.
//!
//! The count lets the stand-in refuse a COPY at the row that crosses the transaction's cap, and
//! answer the row count of a COPY that lost a conflict. Text format: one row per newline (a
//! newline inside a value is escaped as `\n`). CSV: newlines outside double quotes (the default
//! QUOTE and ESCAPE; the final count always comes from PostgreSQL's own `COPY n`). Binary: the
//! tuple structure (16-bit field count, then a 32-bit length and the bytes of each field), parsed
//! across message boundaries with a fixed four-byte carry: no allocation per row.

use crate::sql::CopyFormat;

/// The binary COPY signature and the fixed part of its header.
const SIGNATURE_AND_FLAGS: usize = 11 + 4;

#[derive(Debug, Clone, Copy)]
enum Binary {
    /// Skipping the signature and flags (bytes left).
    Header(usize),
    /// Reading the header extension's length.
    ExtensionLength,
    /// Skipping the header extension (bytes left).
    Extension(usize),
    /// Reading a tuple's field count.
    Tuple,
    /// Reading a field's length (fields left after this one).
    FieldLength(u16),
    /// Skipping a field's bytes (bytes left, fields left after this one).
    Field(usize, u16),
    /// After the trailer.
    Done,
}

/// A running row count of one COPY.
pub struct RowCounter {
    format: CopyFormat,
    rows: u64,
    in_quotes: bool,
    state: Binary,
    carry: [u8; 4],
    carried: usize,
}

impl RowCounter {
    pub fn new(format: CopyFormat) -> RowCounter {
        RowCounter {
            format,
            rows: 0,
            in_quotes: false,
            state: Binary::Header(SIGNATURE_AND_FLAGS),
            carry: [0; 4],
            carried: 0,
        }
    }

    /// Rows seen so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Feeds the payload of one CopyData message.
    pub fn feed(&mut self, data: &[u8]) {
        match self.format {
            CopyFormat::Text => {
                self.rows += data.iter().filter(|&&b| b == b'\n').count() as u64;
            }
            CopyFormat::Csv => {
                for &b in data {
                    if b == b'"' {
                        self.in_quotes = !self.in_quotes;
                    } else if b == b'\n' && !self.in_quotes {
                        self.rows += 1;
                    }
                }
            }
            CopyFormat::Binary => self.feed_binary(data),
        }
    }

    /// Takes `n` bytes (2 or 4) as a big-endian integer, carrying a partial read over.
    fn take_int(&mut self, data: &mut &[u8], n: usize) -> Option<i64> {
        let want = n - self.carried;
        let got = want.min(data.len());
        self.carry[self.carried..self.carried + got].copy_from_slice(&data[..got]);
        self.carried += got;
        *data = &data[got..];
        if self.carried < n {
            return None;
        }
        self.carried = 0;
        Some(if n == 2 {
            i16::from_be_bytes([self.carry[0], self.carry[1]]) as i64
        } else {
            i32::from_be_bytes(self.carry) as i64
        })
    }

    fn feed_binary(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            self.state = match self.state {
                Binary::Header(left) => {
                    let n = left.min(data.len());
                    data = &data[n..];
                    if left == n {
                        Binary::ExtensionLength
                    } else {
                        Binary::Header(left - n)
                    }
                }
                Binary::ExtensionLength => match self.take_int(&mut data, 4) {
                    None => Binary::ExtensionLength,
                    Some(len) => Binary::Extension(len.max(0) as usize),
                },
                Binary::Extension(left) => {
                    let n = left.min(data.len());
                    data = &data[n..];
                    if left == n {
                        Binary::Tuple
                    } else {
                        Binary::Extension(left - n)
                    }
                }
                Binary::Tuple => match self.take_int(&mut data, 2) {
                    None => Binary::Tuple,
                    Some(-1) => Binary::Done,
                    Some(0) => {
                        self.rows += 1;
                        Binary::Tuple
                    }
                    Some(fields) => {
                        self.rows += 1;
                        Binary::FieldLength(fields.max(1) as u16 - 1)
                    }
                },
                Binary::FieldLength(after) => match self.take_int(&mut data, 4) {
                    None => Binary::FieldLength(after),
                    Some(len) if len <= 0 => next_field(after),
                    Some(len) => Binary::Field(len as usize, after),
                },
                Binary::Field(left, after) => {
                    let n = left.min(data.len());
                    data = &data[n..];
                    if left == n {
                        next_field(after)
                    } else {
                        Binary::Field(left - n, after)
                    }
                }
                Binary::Done => return,
            };
        }
    }
}

fn next_field(after: u16) -> Binary {
    if after == 0 {
        Binary::Tuple
    } else {
        Binary::FieldLength(after - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(rows: &[&[Option<&[u8]>]]) -> Vec<u8> {
        let mut out = b"PGCOPY\n\xff\r\n\0".to_vec();
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        for row in rows {
            out.extend_from_slice(&(row.len() as i16).to_be_bytes());
            for f in *row {
                match f {
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(v) => {
                        out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                        out.extend_from_slice(v);
                    }
                }
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    #[test]
    fn binary_rows_are_counted_across_any_message_boundaries() {
        let data = binary(&[
            &[Some(b"abc"), None],
            &[Some(b""), Some(b"0123456789")],
            &[None, None],
        ]);
        for chunk in 1..data.len() {
            let mut c = RowCounter::new(CopyFormat::Binary);
            for piece in data.chunks(chunk) {
                c.feed(piece);
            }
            assert_eq!(c.rows(), 3, "chunks of {chunk}");
        }
    }

    #[test]
    fn text_and_csv_rows_are_lines() {
        let mut c = RowCounter::new(CopyFormat::Text);
        c.feed(b"1\ta\\nb\n2\tc\n");
        assert_eq!(c.rows(), 2);
        let mut c = RowCounter::new(CopyFormat::Csv);
        c.feed(b"1,\"two\nlines\"\n2,x\n");
        assert_eq!(c.rows(), 2);
    }
}
