//! How a batch's rows travel to the target, and the run's decision about it.
//!
//! Batches are always encoded once, as PostgreSQL binary COPY tuples (the encoder's output).
//! Whether DSQL accepts `COPY .. FROM STDIN (FORMAT binary)` is not recorded anywhere
//! (dsql-recorded.md §1), so the same bytes can also be sent as:
//! - **text COPY** (`FORMAT text`, the format psql's `\copy` uses and AWS documents): each
//!   binary value printed as PostgreSQL prints it ([`crate::convert::print`]) and escaped for
//!   COPY's text format;
//! - **a multi-row INSERT** with bind parameters in binary format: the very same field bytes,
//!   as many rows per statement as keep rows x columns under the protocol's 65,535 parameters.
//!
//! [`FormatDecision`] is shared by every writer of every chunk of a run (a Lambda invocation
//! makes its own): it starts at binary COPY, and the first batch that finds it refused (0A000
//! at the COPY, or one writer's connection lost at the COPY twice in a row before any batch
//! committed in that format) moves the whole run to the next format. A refused attempt wrote nothing (its
//! transaction is rolled back with its ledger row), so exactly-once is kept whatever the
//! format.

use crate::error::{Error, Result};
use crate::mapping::{Rewrite, TableMapping};
use crate::types::PgType;
use bytes::BytesMut;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// The protocol's limit on bind parameters in one statement (a 16-bit count): a multi-row
/// INSERT keeps rows x columns under it.
pub const MAX_BIND_PARAMS: usize = 65_535;
/// Connections one writer lost in a row at a COPY, before any batch committed in its format,
/// that count as that format being refused (a server that cannot parse it may drop the
/// connection instead of answering). Two: one lost connection is an ordinary fault, retried as
/// such; a second one on the same batch is the pattern of a refusal.
pub const LOSSES_MEANING_REFUSED: u32 = 2;

/// How a batch's rows are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadFormat {
    /// `COPY .. FROM STDIN (FORMAT binary)`.
    Binary,
    /// `COPY .. FROM STDIN (FORMAT text)`.
    Text,
    /// `INSERT INTO .. VALUES ($1, ..), (..)` with binary bind parameters.
    Insert,
}

impl LoadFormat {
    const ALL: [LoadFormat; 3] = [LoadFormat::Binary, LoadFormat::Text, LoadFormat::Insert];

    /// The format to try when this one is refused.
    pub fn next(self) -> Option<LoadFormat> {
        match self {
            LoadFormat::Binary => Some(LoadFormat::Text),
            LoadFormat::Text => Some(LoadFormat::Insert),
            LoadFormat::Insert => None,
        }
    }

    /// Its name in reports and flags: `binary`, `text`, `insert`.
    pub fn name(self) -> &'static str {
        match self {
            LoadFormat::Binary => "binary",
            LoadFormat::Text => "text",
            LoadFormat::Insert => "insert",
        }
    }

    /// What it sends, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            LoadFormat::Binary => "binary COPY",
            LoadFormat::Text => "text COPY",
            LoadFormat::Insert => "multi-row INSERT",
        }
    }

    /// Its number in an atomic.
    pub(crate) fn index(self) -> u8 {
        self as u8
    }

    /// The format numbered `i`, if any.
    pub(crate) fn from_index(i: u8) -> Option<LoadFormat> {
        LoadFormat::ALL.get(usize::from(i)).copied()
    }
}

impl std::fmt::Display for LoadFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for LoadFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        LoadFormat::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown load format {s:?}: expected binary, text or insert"
                ))
            })
    }
}

/// Where in a batch's transaction an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Connect,
    Begin,
    /// Sending the rows: the COPY (statement, data, end) or the INSERTs.
    Rows,
    Ledger,
    Commit,
}

/// The format of a run, shared by all its writers (see the module doc).
#[derive(Debug)]
pub struct FormatDecision {
    current: AtomicU8,
    /// A batch committed in `current`: a lost connection no longer counts as a refusal.
    confirmed: AtomicBool,
    /// Why each earlier format was left, in order.
    left: Mutex<Vec<String>>,
}

impl Default for FormatDecision {
    fn default() -> Self {
        FormatDecision::starting_at(LoadFormat::Binary)
    }
}

impl FormatDecision {
    /// A decision that starts at `first` (`--load-format`), falling back from there.
    pub fn starting_at(first: LoadFormat) -> Self {
        FormatDecision {
            current: AtomicU8::new(first.index()),
            confirmed: AtomicBool::new(false),
            left: Mutex::new(Vec::new()),
        }
    }

    /// The format batches use now.
    pub fn current(&self) -> LoadFormat {
        LoadFormat::from_index(self.current.load(Ordering::SeqCst)).unwrap_or(LoadFormat::Insert)
    }

    /// A batch committed in `format`.
    pub fn confirm(&self, format: LoadFormat) {
        if self.current() == format {
            self.confirmed.store(true, Ordering::SeqCst);
        }
    }

    /// Why earlier formats were left (`binary COPY refused: ...`), in order.
    pub fn fallbacks(&self) -> Vec<String> {
        match self.left.lock() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// After an attempt in `used` failed at `step` with `err` (`losses`: connections the writer
    /// lost in a row at the rows step, this one included): true when the batch is to be sent
    /// again, uncounted, in another format (this failure moved the run on, or another writer's
    /// already did); false when the failure is the batch's own to retry or report.
    pub fn moved_on(&self, used: LoadFormat, step: Step, err: &Error, losses: u32) -> bool {
        if self.current() != used {
            return true;
        }
        let Some(next) = used.next() else {
            return false;
        };
        if step != Step::Rows || used == LoadFormat::Insert {
            return false;
        }
        let refused = if err.sqlstate() == Some("0A000") {
            true
        } else if lost_connection(err) && !self.confirmed.load(Ordering::SeqCst) {
            losses >= LOSSES_MEANING_REFUSED
        } else {
            false
        };
        if !refused {
            return false;
        }
        if self
            .current
            .compare_exchange(
                used.index(),
                next.index(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
        {
            self.confirmed.store(false, Ordering::SeqCst);
            let why = format!("{} refused: {err}", used.describe());
            tracing::warn!(from = %used, to = %next, reason = %why, "load format falls back");
            match self.left.lock() {
                Ok(mut l) => l.push(why),
                Err(p) => p.into_inner().push(why),
            }
        }
        true
    }
}

/// True when the server closed the connection or broke the protocol (08xxx, 57xxx, a closed
/// socket): what a server that cannot read a format may do instead of answering 0A000. A
/// statement left without answer (a timeout) is not: silence is a fault, not a refusal.
pub fn lost_connection(err: &Error) -> bool {
    !matches!(err, Error::Timeout { .. } | Error::Connect { .. })
        && err.class() == crate::error::ErrorClass::Connection
}

/// How a run sent its rows, for its summary and report.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FormatReport {
    /// The format batches were sent in last; `None` when nothing was written.
    pub format: Option<LoadFormat>,
    /// Why each earlier format was left (`binary COPY refused: ...`), in order.
    pub fallbacks: Vec<String>,
}

impl FormatDecision {
    /// The report of a run that wrote (`wrote`) or did not write rows.
    pub fn report(&self, wrote: bool) -> FormatReport {
        FormatReport {
            format: wrote.then(|| self.current()),
            fallbacks: self.fallbacks(),
        }
    }
}

/// Target columns in load order, with their types: each kept column (a rewritten key or
/// reference is a uuid), then its `keep_old` column (the source's integer type). The encoder
/// writes fields in this order.
pub fn column_types(table: &TableMapping) -> Vec<(String, PgType)> {
    let mut out = Vec::new();
    for c in table.columns.iter().filter(|c| !c.drop) {
        let t = match c.rewrite {
            Rewrite::Key | Rewrite::Reference => PgType::Uuid,
            Rewrite::None => c.target_type.clone(),
        };
        out.push((c.target.clone(), t));
        if let Some(old) = &c.keep_old {
            out.push((old.clone(), c.source_type.clone()));
        }
    }
    out
}

/// The fields of a binary COPY batch (header, tuples, trailer), tuple by tuple.
pub struct Tuples<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Tuples<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Tuples {
            data,
            at: super::encode::COPY_HEADER.len(),
        }
    }

    /// The next tuple's fields (`None` for NULL); `None` at the trailer.
    pub fn next_into(&mut self, fields: &mut Vec<Option<&'a [u8]>>) -> Option<()> {
        fields.clear();
        let count = i16::from_be_bytes(self.data.get(self.at..self.at + 2)?.try_into().ok()?);
        self.at += 2;
        if count < 0 {
            return None;
        }
        for _ in 0..count {
            let len = i32::from_be_bytes(self.data.get(self.at..self.at + 4)?.try_into().ok()?);
            self.at += 4;
            if len < 0 {
                fields.push(None);
            } else {
                let end = self.at + len as usize;
                fields.push(Some(self.data.get(self.at..end)?));
                self.at = end;
            }
        }
        Some(())
    }
}

/// A binary COPY batch as COPY text: each value printed as PostgreSQL prints it (the canonical
/// text, which PostgreSQL reads back to the same value), `\N` for NULL, escaped for COPY.
/// `first_row` and `chunk` name a value that cannot be printed.
pub fn to_copy_text(
    data: &[u8],
    columns: &[(String, PgType)],
    chunk: &str,
    first_row: u64,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() * 2);
    let mut fields = Vec::with_capacity(columns.len());
    let mut tuples = Tuples::new(data);
    let mut text = String::new();
    let mut row = first_row;
    while tuples.next_into(&mut fields).is_some() {
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            let Some(bin) = field else {
                out.extend_from_slice(b"\\N");
                continue;
            };
            let (name, t) = columns.get(i).ok_or_else(|| Error::Reencode {
                chunk: chunk.to_string(),
                row,
                column: format!("#{i}"),
                reason: format!(
                    "the batch has more fields than the {} columns",
                    columns.len()
                ),
            })?;
            text.clear();
            crate::convert::print::canonical_text(t, bin, &mut text).map_err(|reason| {
                Error::Reencode {
                    chunk: chunk.to_string(),
                    row,
                    column: name.clone(),
                    reason,
                }
            })?;
            escape_copy_text(&text, &mut out);
        }
        out.push(b'\n');
        row += 1;
    }
    Ok(out)
}

/// COPY text escaping: backslash, newline, carriage return and tab become `\\`, `\n`, `\r`, `\t`.
pub fn escape_copy_text(text: &str, out: &mut Vec<u8>) {
    for b in text.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b => out.push(b),
        }
    }
}

/// Rows one INSERT statement carries: rows x columns stays under [`MAX_BIND_PARAMS`].
pub fn rows_per_insert(columns: usize) -> usize {
    ((MAX_BIND_PARAMS - 1) / columns.max(1)).max(1)
}

/// `INSERT INTO "s"."t" ("a", "b") VALUES ($1, $2), ($3, $4), ..` for `rows` rows.
pub fn insert_statement(table: &str, columns: &[String], rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut n = 0usize;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..columns.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            n += 1;
            sql.push('$');
            sql.push_str(&n.to_string());
        }
        sql.push(')');
    }
    sql
}

/// A bind parameter that is already in PostgreSQL's binary format for its column: the field
/// bytes of the binary COPY tuple, sent as they are.
#[derive(Debug)]
pub struct RawField<'a>(pub Option<&'a [u8]>);

impl ToSql for RawField<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            None => Ok(IsNull::Yes),
            Some(b) => {
                out.extend_from_slice(b);
                Ok(IsNull::No)
            }
        }
    }

    /// Any column type: the bytes were encoded for the column's own type.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::encode::{COPY_HEADER, COPY_TRAILER};

    fn tuple(fields: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = (fields.len() as i16).to_be_bytes().to_vec();
        for f in fields {
            match f {
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(b) => {
                    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    out.extend_from_slice(b);
                }
            }
        }
        out
    }

    #[test]
    fn binary_batches_become_escaped_copy_text() {
        let mut data = COPY_HEADER.to_vec();
        data.extend(tuple(&[
            Some(&7i32.to_be_bytes()),
            Some(b"tab\there\nback\\slash\r"),
            None,
        ]));
        data.extend(tuple(&[
            Some(&(-1i32).to_be_bytes()),
            Some(b""),
            Some(&[0xde, 0xad]),
        ]));
        data.extend_from_slice(COPY_TRAILER);
        let columns = vec![
            ("id".to_string(), PgType::Integer),
            ("note".to_string(), PgType::Text),
            ("blob".to_string(), PgType::Bytea),
        ];
        let text = to_copy_text(&data, &columns, "c", 0).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "7\ttab\\there\\nback\\\\slash\\r\t\\N\n-1\t\t\\\\xdead\n"
        );
    }

    #[test]
    fn an_unprintable_value_is_named() {
        let mut data = COPY_HEADER.to_vec();
        data.extend(tuple(&[Some(&[1, 2, 3])]));
        data.extend_from_slice(COPY_TRAILER);
        let columns = vec![("n".to_string(), PgType::Integer)];
        match to_copy_text(&data, &columns, "t/f#0-1", 41) {
            Err(Error::Reencode { row, column, .. }) => {
                assert_eq!((row, column.as_str()), (41, "n"))
            }
            other => panic!("expected a re-encoding error, got {other:?}"),
        }
    }

    #[test]
    fn inserts_stay_under_the_parameter_limit() {
        assert_eq!(rows_per_insert(1), 65_534);
        assert_eq!(rows_per_insert(255), 256);
        assert!(rows_per_insert(256) * 256 < MAX_BIND_PARAMS);
        assert_eq!(rows_per_insert(100_000), 1);
        assert_eq!(
            insert_statement("\"s\".\"t\"", &["\"a\"".into(), "\"b\"".into()], 2),
            "INSERT INTO \"s\".\"t\" (\"a\", \"b\") VALUES ($1, $2), ($3, $4)"
        );
    }

    #[test]
    fn refusals_move_the_run_one_format_at_a_time() {
        let d = FormatDecision::default();
        let other = Error::Usage("not a refusal".into());
        assert!(!d.moved_on(LoadFormat::Binary, Step::Rows, &other, 0));
        let silent = Error::Timeout {
            what: "COPY".into(),
            after: std::time::Duration::from_secs(1),
        };
        // Silence is a fault, however often it repeats.
        assert!(!d.moved_on(LoadFormat::Binary, Step::Rows, &silent, 5));
        let lost = Error::Batch {
            chunk: "c".into(),
            range: "rows 0..1".into(),
            table: "t".into(),
            why: "stand-in for a closed connection".into(),
            class: crate::error::ErrorClass::Connection,
            source: Box::new(silent),
        };
        // A lost connection elsewhere than at the rows, or the first one at the rows: a fault.
        assert!(!d.moved_on(LoadFormat::Binary, Step::Commit, &lost, 5));
        assert!(!d.moved_on(LoadFormat::Binary, Step::Rows, &lost, 1));
        // The same writer loses its connection at the COPY again, nothing committed: refused.
        assert!(d.moved_on(LoadFormat::Binary, Step::Rows, &lost, 2));
        assert_eq!(d.current(), LoadFormat::Text);
        // A writer still on binary just follows, without moving the run twice.
        assert!(d.moved_on(LoadFormat::Binary, Step::Rows, &other, 0));
        assert_eq!(d.current(), LoadFormat::Text);
        // Once text committed a batch, lost connections are ordinary faults.
        d.confirm(LoadFormat::Text);
        assert!(!d.moved_on(LoadFormat::Text, Step::Rows, &lost, 9));
        assert_eq!(d.current(), LoadFormat::Text);
        assert_eq!(d.fallbacks().len(), 1);
        assert!(
            d.fallbacks()[0].starts_with("binary COPY refused: "),
            "{:?}",
            d.fallbacks()
        );
        // The INSERT is the last resort: nothing follows it.
        let last = FormatDecision::starting_at(LoadFormat::Insert);
        assert!(!last.moved_on(LoadFormat::Insert, Step::Rows, &lost, 9));
        assert_eq!(last.report(true).format, Some(LoadFormat::Insert));
        assert_eq!(last.report(false).format, None);
    }
}
