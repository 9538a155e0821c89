//! The verification report: what `verify` and the end of `run` return, and `--report` writes
//! as JSON. Field names are stable (the README documents them).

use serde::Serialize;

/// The verification of a whole migration: the JSON report (`--report`). Field names are stable.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub export_id: String,
    pub migration: String,
    /// Target URL, password hidden.
    pub target: String,
    /// Wall time of the whole verification.
    pub seconds: f64,
    /// Export rows read in the first pass, all tables.
    pub rows_in_export: u64,
    /// `rows_in_export / seconds`.
    pub rows_per_second: f64,
    pub tables: Vec<TableReport>,
    /// True when every table matches.
    pub ok: bool,
}

impl VerifyReport {
    /// The report of source table `source`.
    pub fn table(&self, source: &str) -> Option<&TableReport> {
        self.tables.iter().find(|t| t.source == source)
    }
}

/// Whether a table's two sides agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Match,
    Mismatch,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Match => "match",
            Status::Mismatch => "mismatch",
        })
    }
}

/// One table's verification.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    /// Source table `schema.table`.
    pub source: String,
    /// Target table `schema.table`.
    pub target: String,
    /// `match` when count, every null count, sum, min, max and the fingerprint are equal; else
    /// `mismatch`.
    pub status: Status,
    pub rows_in_export: u64,
    pub rows_in_target: u64,
    /// Per target column, in load order.
    pub columns: Vec<ColumnReport>,
    /// Sum mod 2^64 of the row hashes, 16 hex digits.
    pub fingerprint_export: String,
    pub fingerprint_target: String,
    pub seconds: f64,
    /// Key-hash buckets (of 256) whose count or sum differ.
    pub differing_buckets: usize,
    /// Buckets whose rows were compared (all differing ones, unless over the memory budget).
    /// `missing`, `extra` and `differing` count the rows of these buckets.
    pub buckets_listed: usize,
    /// Rows in the export, not in the target (in the listed buckets, listed or not).
    pub missing: u64,
    /// Rows in the target, not in the export.
    pub extra: u64,
    /// Rows with the same key and different values.
    pub differing: u64,
    /// The first `max_listed` differences, missing first, then extra, then differing, by key.
    pub differences: Vec<Difference>,
    /// `verify --source` only: differences from the live source that are changes made there
    /// after the snapshot (the target holds what the export holds), not migration errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_snapshot: Option<AfterSnapshot>,
}

/// Rows of the live source that changed after the snapshot the migration loaded.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AfterSnapshot {
    /// Rows updated in the source since the snapshot.
    pub changed: u64,
    /// Rows inserted in the source since the snapshot.
    pub inserted: u64,
    /// Rows deleted from the source since the snapshot.
    pub deleted: u64,
    /// The first `max_listed` of them (`differs`: changed, `missing`: inserted, `extra`:
    /// deleted), with the source's values as `export` and the target's as `target`.
    pub rows: Vec<Difference>,
}

/// One target column's null counts.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnReport {
    pub name: String,
    pub target_type: String,
    pub nulls_in_export: u64,
    pub nulls_in_target: u64,
    /// Integer columns: `sum(c)`; null otherwise or without values.
    pub sum_export: Option<String>,
    pub sum_target: Option<String>,
    /// Integer, date, time, timestamp and timestamptz columns: `min(c)` and `max(c)` as
    /// canonical texts; null otherwise or without values.
    pub min_export: Option<String>,
    pub min_target: Option<String>,
    pub max_export: Option<String>,
    pub max_target: Option<String>,
}

/// What kind of difference a listed row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffKind {
    /// In the export, not in the target.
    Missing,
    /// In the target, not in the export.
    Extra,
    /// Same key, different values.
    Differs,
}

/// One row that differs.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub kind: DiffKind,
    /// The target primary key's canonical texts, `, `-separated (the whole row without one).
    pub key: String,
    /// The old integer key of a rewritten key (from the export, or the target's `keep_old`).
    pub old_key: Option<String>,
    /// For `differs`: the differing columns with both canonical texts (None: NULL).
    pub columns: Vec<ColumnDiff>,
}

/// One differing value.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnDiff {
    pub column: String,
    pub export: Option<String>,
    pub target: Option<String>,
}
