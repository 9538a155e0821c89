//! The library's error type: one enum whose variants exist because a caller branches on them.
//!
//! Messages are lower case, name the thing (file, row group, row, column, value) and put the cause
//! after `: `. Callers ask questions of an error ([`Error::is_retryable`], [`Error::sqlstate`])
//! instead of reading its text.

use std::path::PathBuf;

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
        location: Location,
        value: String,
        expected: String,
        reason: String,
    },

    /// A reference points at a parent row that does not exist and the mapping says fail.
    #[error(
        "{location}: orphan reference {value} to {parent}: no such row in the export (set on_orphan = \"null\" or \"keep\" on this column in mapping.toml to load it anyway)"
    )]
    Orphan {
        location: Location,
        value: String,
        parent: String,
    },

    /// The mapping file is unreadable or inconsistent with the export.
    #[error("mapping {file}: {reason}")]
    Mapping { file: String, reason: String },

    /// The source schema (DDL file or live database) could not be read.
    #[error("source schema {source_name}: {reason}")]
    Schema { source_name: String, reason: String },

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

    /// A database call failed; `context` says what was being done.
    #[error("{context}: {source}")]
    Db {
        context: String,
        #[source]
        source: tokio_postgres::Error,
    },
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

    /// The SQLSTATE of a database error, if the server sent one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Db { source, .. } => source.code().map(|c| c.code()),
            _ => None,
        }
    }
}
