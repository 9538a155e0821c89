//! The library's error type: one enum whose variants exist because a caller branches on them.
//!
//! Messages are lower case, name the thing (file, row group, row, column, value) and put the cause
//! after `: `. Callers ask questions of an error ([`Error::is_retryable`], [`Error::sqlstate`])
//! instead of reading its text.

use std::path::PathBuf;
use std::time::Duration;

/// Where in the export a value came from: enough for a user to find it with any Parquet tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub row_group: usize,
    /// Row number within the row group, counted from 0.
    pub row: usize,
    pub column: String,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "file {}, row group {}, row {}, column {:?}",
            self.file, self.row_group, self.row, self.column
        )
    }
}

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The export's metadata is missing, unreadable or contradicts itself.
    #[error("export metadata {file}: {reason}")]
    Metadata { file: String, reason: String },

    /// The export exists but did not finish; its data cannot be trusted.
    #[error(
        "export {export_id} has status {status:?}, not COMPLETE: only a complete export can be migrated"
    )]
    ExportNotComplete { export_id: String, status: String },

    /// A part file is not readable Parquet, or its schema contradicts the metadata.
    #[error("parquet file {file}: {reason}")]
    Parquet { file: String, reason: String },

    /// A value did not convert to its target type.
    #[error("{location}: value {value:?} is not a valid {expected}: {reason}")]
    Convert {
        location: Box<Location>,
        value: String,
        expected: String,
        reason: String,
    },

    /// A reference points at a parent row that does not exist and the mapping says fail.
    #[error(
        "{location}: orphan reference {value} to {parent}: no such row in the export (set on_orphan = \"null\" or \"keep\" on this column in mapping.toml to load it anyway)"
    )]
    Orphan {
        location: Box<Location>,
        value: String,
        parent: String,
    },

    /// More distinct orphan values in one reference column than the loaders are handed
    /// ([`crate::load::orphans::MAX_ORPHAN_VALUES`]): a wrong mapping or a missing parent.
    #[error(
        "{table}.{column}: more than {limit} distinct orphan reference values ({distinct} found so far): too many to load as orphans; check the column's references in mapping.toml, and that the parent table is in the export"
    )]
    TooManyOrphans {
        table: String,
        column: String,
        distinct: u64,
        limit: u64,
    },

    /// The mapping file is unreadable or inconsistent with the export.
    #[error("mapping {file}: {reason}")]
    Mapping { file: String, reason: String },

    /// The source schema (DDL file or live database) could not be read.
    #[error("source schema {source_name}: {reason}")]
    Schema { source_name: String, reason: String },

    /// A batch of a chunk failed for good (retries exhausted, or not retryable).
    #[error("chunk {chunk}, {range} into {table}: {why}: {source}")]
    Batch {
        chunk: String,
        range: String,
        table: String,
        why: String,
        class: ErrorClass,
        #[source]
        source: Box<Error>,
    },

    /// A user-supplied argument is unusable.
    #[error("{0}")]
    Usage(String),

    /// Local file I/O.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An S3 call failed.
    #[error("s3 {operation} s3://{bucket}/{key}: {reason}")]
    S3 {
        operation: &'static str,
        bucket: String,
        key: String,
        reason: String,
    },

    /// A database call failed; `context` says what was being done (and, for a statement the
    /// server refused, the statement as sent, shortened: [`Error::statement`]).
    #[error("{context}: {}", pg_text(source))]
    Db {
        context: String,
        #[source]
        source: tokio_postgres::Error,
    },

    /// The target's host could not be reached (resolution, TCP connect, socket options).
    #[error("{what}: {source}")]
    Connect {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// A call to the target did not answer within its bound (a silent connection: no bytes,
    /// socket open). The connection is dropped and the work retried on a new one.
    #[error("{what}: no answer within {} s (the connection is dropped)", after.as_secs_f64())]
    Timeout { what: String, after: Duration },

    /// A COMMIT whose command tag is not `COMMIT`. `ROLLBACK`: the server rolled the
    /// transaction back (it had been aborted) and nothing of it was written. Any other tag
    /// leaves the outcome unknown until the ledger is read.
    #[error("{what}: COMMIT answered {tag:?}: {}", commit_tag_meaning(tag))]
    CommitTag { what: String, tag: String },

    /// A converted value could not be written in a fallback load format (text COPY): the
    /// encoder and the text printer disagree, which is a bug.
    #[error(
        "chunk {chunk}, row {row}, column {column:?}: cannot write the value as COPY text: {reason}"
    )]
    Reencode {
        chunk: String,
        row: u64,
        column: String,
        reason: String,
    },

    /// The server answered something the tool cannot use (a malformed job id, a value out of
    /// range): `what` names the statement.
    #[error("{what}: unusable answer: {reason}")]
    UnexpectedAnswer { what: String, reason: String },

    /// A post-load job (`CREATE INDEX ASYNC`, `ALTER TABLE ASYNC .. VALIDATE CONSTRAINT`) ended
    /// without doing its work; `details` is DSQL's own account (`sys.jobs.details`).
    #[error("{what}: DSQL job {job} ended {status}: {details}")]
    JobFailed {
        what: String,
        job: String,
        status: String,
        details: String,
    },
}

/// A tokio-postgres error with its cause: its own text is only "db error" (or "error
/// communicating with the server"), the server's message and the I/O error are its source. A
/// server's answer is printed as `SQLSTATE <code>: <message>` (with its detail and hint).
fn pg_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!(
            "server answered SQLSTATE {}: {}",
            db.code().code(),
            db.message()
        );
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" (detail: {detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
        return text;
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// The tag `ROLLBACK` on a COMMIT.
pub const ROLLBACK_TAG: &str = "ROLLBACK";

fn commit_tag_meaning(tag: &str) -> &'static str {
    if tag == ROLLBACK_TAG {
        "the server rolled the transaction back, nothing was written"
    } else {
        "not COMMIT: whether the transaction committed is unknown"
    }
}

/// Longest statement text quoted in an error message.
const STATEMENT_QUOTE_CHARS: usize = 160;

/// A statement as an error message quotes it: whitespace runs folded to one space, at most
/// [`STATEMENT_QUOTE_CHARS`] characters (then `...`).
pub fn shorten_statement(sql: &str) -> String {
    let folded = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() <= STATEMENT_QUOTE_CHARS {
        return folded;
    }
    let cut: String = folded.chars().take(STATEMENT_QUOTE_CHARS).collect();
    format!("{cut}...")
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps a database error with what was being done.
    pub fn db(context: impl Into<String>, source: tokio_postgres::Error) -> Self {
        Error::Db {
            context: context.into(),
            source,
        }
    }

    /// Wraps the error of a statement with what it was for and the statement as sent
    /// (shortened): `create index x on s.t: statement `CREATE INDEX ...` : server answered
    /// SQLSTATE 0A000: ...`.
    pub fn statement(
        what: impl std::fmt::Display,
        sql: &str,
        source: tokio_postgres::Error,
    ) -> Self {
        Error::Db {
            context: format!("{what}: statement `{}`", shorten_statement(sql)),
            source,
        }
    }

    /// The SQLSTATE of a database error, if the server sent one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Db { source, .. } => source.code().map(|c| c.code()),
            _ => None,
        }
    }
}

/// What a failure means for the caller: retry the transaction, back off, or stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Optimistic concurrency conflict at commit (40001, OC000, OC001): retry the transaction.
    Conflict,
    /// The connection broke or the server is restarting (08xxx, 57xxx, closed socket):
    /// reconnect and retry.
    Connection,
    /// Connection limits (53300, 53400): back off, then retry.
    Throttled,
    /// A DSQL per-transaction limit (54000): the batch is too big. Retrying as is cannot work.
    TooBig,
    /// The transaction outlived DSQL's age limit (54000 `transaction age limit of 300s
    /// exceeded`): it was slow (a long wait, a slow server), not too big; DSQL discarded it whole,
    /// and the same transaction sent again may finish in time.
    Expired,
    /// Bad data (22xxx, 23xxx): retrying cannot work; the message names the rows.
    Data,
    /// Anything else: a bug, a permission, a missing table.
    Fatal,
}

impl ErrorClass {
    /// True for classes where the same transaction may succeed when sent again.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::Conflict
                | ErrorClass::Connection
                | ErrorClass::Throttled
                | ErrorClass::Expired
        )
    }
}

/// Classifies a SQLSTATE (or DSQL's `OC000`/`OC001` surfaced as one).
pub fn classify_sqlstate(code: &str) -> ErrorClass {
    match code {
        "40001" | "OC000" | "OC001" => ErrorClass::Conflict,
        "53300" | "53400" => ErrorClass::Throttled,
        "54000" => ErrorClass::TooBig,
        c if c.starts_with("08") || c.starts_with("57") => ErrorClass::Connection,
        c if c.starts_with("22") || c.starts_with("23") => ErrorClass::Data,
        _ => ErrorClass::Fatal,
    }
}

/// How DSQL's age-limit message starts (`transaction age limit of 300s exceeded` [DOCS quotas]).
pub const AGE_LIMIT_MESSAGE: &str = "transaction age limit";

/// Classifies a server's answer: by SQLSTATE, except that DSQL answers three different limits
/// with 54000 (rows, size, age), and only its message tells the age limit apart, which is the
/// one a retry can pass.
pub fn classify_answer(code: &str, message: &str) -> ErrorClass {
    if code == "54000" && message.starts_with(AGE_LIMIT_MESSAGE) {
        return ErrorClass::Expired;
    }
    classify_sqlstate(code)
}

impl Error {
    /// How the caller should treat this error; decided by SQLSTATE (and, for DSQL's 54000, which
    /// limit it names: [`classify_answer`]).
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Db { source, .. } => match source.as_db_error() {
                Some(db) => classify_answer(db.code().code(), db.message()),
                // No SQLSTATE: the socket closed, an I/O error, a TLS failure mid-stream.
                None if source.is_closed()
                    || std::error::Error::source(source)
                        .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some()) =>
                {
                    ErrorClass::Connection
                }
                None => ErrorClass::Fatal,
            },
            Error::Convert { .. } | Error::Orphan { .. } | Error::TooManyOrphans { .. } => {
                ErrorClass::Data
            }
            Error::Batch { class, .. } => *class,
            // The answer never came: the connection is replaced and the work retried; a COMMIT
            // among them is settled by reading the ledger.
            Error::Timeout { .. } | Error::Connect { .. } => ErrorClass::Connection,
            // ROLLBACK: nothing was written and the session is fine: send the same transaction
            // again, as after an optimistic-concurrency conflict (whose transaction DSQL also
            // discards whole). A cause that persists exhausts the attempts and stops the chunk
            // naming the batch. Another tag: the outcome is unknown, like a COMMIT whose
            // answer was lost: the connection is replaced and the ledger says.
            Error::CommitTag { tag, .. } if tag == ROLLBACK_TAG => ErrorClass::Conflict,
            Error::CommitTag { .. } => ErrorClass::Connection,
            _ => ErrorClass::Fatal,
        }
    }

    /// True when sending the same work again may succeed.
    pub fn is_retryable(&self) -> bool {
        self.class().is_retryable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_classified_as_dsql_documents_them() {
        let cases = [
            ("40001", ErrorClass::Conflict),
            ("OC000", ErrorClass::Conflict),
            ("OC001", ErrorClass::Conflict),
            ("53300", ErrorClass::Throttled),
            ("53400", ErrorClass::Throttled),
            ("54000", ErrorClass::TooBig),
            ("08006", ErrorClass::Connection),
            ("08001", ErrorClass::Connection),
            ("57P01", ErrorClass::Connection),
            ("22P02", ErrorClass::Data),
            ("23505", ErrorClass::Data),
            ("23514", ErrorClass::Data),
            ("42P01", ErrorClass::Fatal),
            ("42501", ErrorClass::Fatal),
            ("XX000", ErrorClass::Fatal),
        ];
        for (code, class) in cases {
            assert_eq!(classify_sqlstate(code), class, "{code}");
        }
    }

    #[test]
    fn of_dsqls_54000_answers_only_the_age_limit_is_worth_a_retry() {
        let answers = [
            (
                "transaction age limit of 300s exceeded",
                ErrorClass::Expired,
            ),
            ("transaction row limit exceeded", ErrorClass::TooBig),
            ("transaction size limit 10mb exceeded", ErrorClass::TooBig),
        ];
        for (message, class) in answers {
            assert_eq!(classify_answer("54000", message), class, "{message}");
        }
        // The words alone do not make an age limit: the SQLSTATE decides first.
        assert_eq!(
            classify_answer("XX000", "transaction age limit of 300s exceeded"),
            ErrorClass::Fatal
        );
        assert!(ErrorClass::Expired.is_retryable());
    }

    #[test]
    fn only_conflicts_connections_throttles_and_expired_are_retryable() {
        assert!(ErrorClass::Conflict.is_retryable());
        assert!(ErrorClass::Connection.is_retryable());
        assert!(ErrorClass::Throttled.is_retryable());
        assert!(ErrorClass::Expired.is_retryable());
        assert!(!ErrorClass::TooBig.is_retryable());
        assert!(!ErrorClass::Data.is_retryable());
        assert!(!ErrorClass::Fatal.is_retryable());
    }

    #[test]
    fn a_batch_error_keeps_its_class_and_names_chunk_and_rows() {
        let e = Error::Batch {
            chunk: "sales.orders/f#0-2".into(),
            range: "rows 0..100".into(),
            table: "sales.orders".into(),
            why: "retries exhausted".into(),
            class: ErrorClass::Conflict,
            source: Box::new(Error::Usage("conflict".into())),
        };
        assert_eq!(e.class(), ErrorClass::Conflict);
        assert!(e.is_retryable());
        assert_eq!(
            e.to_string(),
            "chunk sales.orders/f#0-2, rows 0..100 into sales.orders: retries exhausted: conflict"
        );
        assert_eq!(Error::Usage("x".into()).class(), ErrorClass::Fatal);
    }
}
