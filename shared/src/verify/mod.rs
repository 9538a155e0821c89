//! Row-level verification: the export, after the mapping's transformation, against the target.
//!
//! The export is the reference (a consistent point in time, unlike the live source). Per table
//! both sides compute the same aggregates, and they must be equal:
//! - the row count;
//! - per target column, the number of NULLs;
//! - per integer column its sum, and per integer, date, time and timestamp column its min and
//!   max (the checks one would do by hand, independent of the hash);
//! - a fingerprint: the sum mod 2^64 of a 64-bit hash of every row's canonical text (order does
//!   not matter, duplicates count twice).
//!
//! **Canonical text of a value**: what PostgreSQL's `value::text` prints in a verify session
//! (`TimeZone UTC`, `DateStyle ISO, MDY`, `IntervalStyle postgres`, `extra_float_digits 1`,
//! `bytea_output hex`). SQL computes it as `col::text` for every target type. Rust computes it
//! from the export: the loader's own [`RowEncoder`] turns the row into the binary values it
//! would COPY (conversions, new keys, `keep_old` integers, orphan policy), and
//! [`canon::canonical_text`] prints each binary value as PostgreSQL would: integers; real and
//! double in shortest-exact form; numeric from its base-10000 digits with its display scale;
//! boolean `true`/`false`; text and varchar as they are; char(n) without trailing spaces (as
//! `bpchar::text`); bytea `\x` + lowercase hex; uuid lowercase with hyphens; date, time, timetz,
//! timestamp, timestamptz (`+00`) in ISO form with `BC` and `infinity`; interval in postgres
//! style; json as stored; jsonb as jsonb prints it (keys deduplicated and sorted by length then
//! bytes, `": "`/`", "` separators, numbers as numeric). The property test
//! `tests/it/verify.rs` checks Rust == PostgreSQL byte for byte on many values of every type.
//!
//! **Row text**: the target columns in load order ([`TableMapping::target_columns`]), each as
//! `N` (NULL) or `V<bytes>:<text>` (byte length, colon, canonical text), concatenated: the length
//! prefix makes it unambiguous, and NULL differs from the empty string (`V0:`).
//!
//! **Hashes**: row hash = the first 8 bytes of `md5(row text)` as a big-endian signed 64-bit
//! integer; SQL: `('x' || substr(md5(t), 1, 16))::bit(64)::bigint`, summed as numeric (no
//! overflow) and reduced mod 2^64 in Rust. md5, substr, `||`, octet_length and casts are all
//! built in: nothing needs an extension, so the same SQL is meant to run on DSQL unchanged (not
//! yet tried on a real cluster: the `bit(64)` cast there is the one thing unconfirmed).
//!
//! **Cost**: the export is read once (streaming, projection of the mapped columns, chunks in
//! parallel) and each target table is scanned once by one aggregate query, in the matching case.
//!
//! Not yet handled: DSQL ends any transaction after 5 minutes, reads included, so a table whose
//! single aggregate scan takes longer on DSQL needs the scan split by key ranges (the per-bucket
//! queries have the same limit).
//!
//! **Localising a mismatch**: rows fall into 256 buckets by byte 11 of `md5(key text)` (key text:
//! the primary key columns' pieces; a table without a primary key uses the whole row, so a changed
//! row shows as one missing and one extra row). Both sides compute per-bucket count and sum;
//! the rows of differing buckets are then listed on both sides (a second read of the export, one
//! query on the target that returns the canonical texts) and matched by key: rows only in the
//! export are `missing`, rows only in the target are `extra`, rows with the same key and a
//! different hash `differ`, with the differing columns and both values. A duplicated row (a copy
//! under another new key) is an `extra` row whose `old_key` is that of an existing row. At most
//! `max_listed` differences are listed per table; the counts cover all of them, within the
//! buckets compared: rows are held in memory, so when the differing buckets hold more than
//! [`LISTING_ROW_BUDGET`] rows, only the first buckets that fit are compared (the report says how
//! many of how many).

pub mod canon;

use crate::chunk::{CHUNK_MAX_BYTES, Chunk, plan_chunks_with};
use crate::ddl::{ident, qualified};
use crate::error::{Error, Result};
use crate::export::Export;
use crate::load::encode::{Orphans, RowEncoder};
use crate::load::{READ_BATCH_ROWS, read};
use crate::mapping::{Mapping, OnOrphan, Rewrite, TableMapping};
use crate::target::Target;
use crate::types::PgType;
use arrow::array::{Array, ArrayRef, Int16Array, Int32Array, Int64Array};
use futures::StreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

/// Number of key-hash buckets used to localise a mismatch.
pub const BUCKETS: usize = 256;
/// Rows per unit of export reading (whole row groups: a chunk may be larger).
pub const VERIFY_CHUNK_ROWS: u64 = 200_000;
/// At most this many rows (both sides together) of differing buckets are held in memory to
/// localise a mismatch; buckets past it are counted in `differing_buckets` but not listed.
pub const LISTING_ROW_BUDGET: u64 = 1_000_000;
/// Default bound on the differences listed per table.
pub const DEFAULT_MAX_LISTED: usize = 20;

/// What to verify and how.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Source tables (`schema.table`) to verify; `None`: every table of the mapping.
    pub tables: Option<Vec<String>>,
    /// Differences listed per table at most.
    pub max_listed: usize,
    /// Export chunks read at once.
    pub parallel: usize,
    /// Rows of differing buckets held in memory at most ([`LISTING_ROW_BUDGET`]).
    pub listing_budget: u64,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            tables: None,
            max_listed: DEFAULT_MAX_LISTED,
            parallel: std::thread::available_parallelism().map_or(2, |n| n.get()),
            listing_budget: LISTING_ROW_BUDGET,
        }
    }
}

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

/// A target column as verification sees it.
#[derive(Debug, Clone)]
struct Col {
    name: String,
    ty: PgType,
}

/// The per-table plan shared by both sides.
#[derive(Debug)]
struct TablePlan {
    source: String,
    target: String,
    qualified: String,
    cols: Vec<Col>,
    /// Indexes into `cols` of the key (primary key, or every column without one).
    key: Vec<usize>,
    /// Index into `cols` of the `keep_old` column, if any.
    keep_old: Option<usize>,
    /// Index among the encoder's source columns of the rewritten key, if any.
    key_source: Option<usize>,
}

impl TablePlan {
    fn new(t: &TableMapping) -> Result<TablePlan> {
        let mut cols = Vec::new();
        let mut keep_old = None;
        let mut key_source = None;
        for (i, c) in t.columns.iter().filter(|c| !c.drop).enumerate() {
            cols.push(Col {
                name: c.target.clone(),
                ty: c.target_type.clone(),
            });
            if c.rewrite == Rewrite::Key {
                key_source = Some(i);
            }
            if let Some(old) = &c.keep_old {
                if c.rewrite == Rewrite::Key {
                    keep_old = Some(cols.len());
                }
                cols.push(Col {
                    name: old.clone(),
                    ty: c.source_type.clone(),
                });
            }
        }
        let key = if t.primary_key.is_empty() {
            (0..cols.len()).collect()
        } else {
            t.primary_key
                .iter()
                .map(|k| {
                    cols.iter()
                        .position(|c| &c.name == k)
                        .ok_or_else(|| Error::Mapping {
                            file: "mapping".into(),
                            reason: format!(
                                "table {}: primary key column {k:?} is not a target column",
                                t.source
                            ),
                        })
                })
                .collect::<Result<Vec<_>>>()?
        };
        Ok(TablePlan {
            source: t.source.clone(),
            target: t.target(),
            qualified: qualified(&t.target_schema, &t.target_name),
            cols,
            key,
            keep_old,
            key_source,
        })
    }

    /// Row text and key text from canonical texts.
    fn texts(&self, texts: &[Option<String>], row: &mut String, key: &mut String) {
        row.clear();
        key.clear();
        for t in texts {
            canon::push_piece(t.as_deref(), row);
        }
        for &k in &self.key {
            canon::push_piece(texts[k].as_deref(), key);
        }
    }

    fn key_display(&self, texts: &[Option<String>]) -> String {
        self.key
            .iter()
            .map(|&k| texts[k].clone().unwrap_or_else(|| "NULL".into()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

// ---------------------------------------------------------------------------------------------
// SQL side.

/// Session settings under which `::text` prints canonical texts.
pub const SESSION: &[(&str, &str)] = &[
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, MDY"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
];

/// Applies [`SESSION`]. A setting the server refuses to change is accepted when `SHOW` already
/// gives the wanted value.
pub async fn prepare_session(client: &tokio_postgres::Client) -> Result<()> {
    for (name, value) in SESSION {
        if client
            .batch_execute(&format!("SET {name} = '{value}'"))
            .await
            .is_ok()
        {
            continue;
        }
        let row = client
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .map_err(|e| Error::db(format!("verify session: show {name}"), e))?;
        let have: String = row.get(0);
        if have != *value {
            return Err(Error::Usage(format!(
                "verify needs {name} = {value:?}; the target refuses to set it and has {have:?}"
            )));
        }
    }
    Ok(())
}

/// SQL of a column's canonical text.
pub fn text_sql(column: &str) -> String {
    format!("{}::text", ident(column))
}

/// SQL of a column's row-text piece (`N` or `V<bytes>:<text>`).
pub fn piece_sql(column: &str) -> String {
    let t = text_sql(column);
    format!("coalesce('V' || octet_length({t})::text || ':' || {t}, 'N')")
}

fn concat_sql(cols: &[&str]) -> String {
    cols.iter()
        .map(|c| piece_sql(c))
        .collect::<Vec<_>>()
        .join(" || ")
}

/// SQL of the 64-bit row hash of a text expression.
pub fn hash_sql(text: &str) -> String {
    format!("('x' || substr(md5({text}), 1, 16))::bit(64)::bigint")
}

/// SQL of the bucket (0..255) of a key text expression.
pub fn bucket_sql(text: &str) -> String {
    format!("('x' || substr(md5({text}), 23, 2))::bit(8)::int")
}

impl TablePlan {
    fn row_sql(&self) -> String {
        let names: Vec<&str> = self.cols.iter().map(|c| c.name.as_str()).collect();
        concat_sql(&names)
    }

    fn key_sql(&self) -> String {
        let names: Vec<&str> = self
            .key
            .iter()
            .map(|&k| self.cols[k].name.as_str())
            .collect();
        concat_sql(&names)
    }

    /// One scan: count, count of each column, sum of row hashes.
    fn aggregate_sql(&self) -> String {
        let counts: Vec<String> = self
            .cols
            .iter()
            .map(|c| format!("count({})", ident(&c.name)))
            .collect();
        let mut stats = String::new();
        for c in &self.cols {
            let col = ident(&c.name);
            match stat_kind(&c.ty) {
                Some(StatKind::Int) => stats.push_str(&format!(
                    ", sum({col})::text, min({col})::text, max({col})::text"
                )),
                Some(StatKind::Ordered) => {
                    stats.push_str(&format!(", min({col})::text, max({col})::text"))
                }
                None => {}
            }
        }
        format!(
            "SELECT count(*), {}, coalesce(sum({}::numeric), 0)::text{stats} FROM {}",
            counts.join(", "),
            hash_sql(&self.row_sql()),
            self.qualified
        )
    }

    fn bucket_agg_sql(&self) -> String {
        format!(
            "SELECT {} AS b, count(*), sum({}::numeric)::text FROM {} GROUP BY 1",
            bucket_sql(&self.key_sql()),
            hash_sql(&self.row_sql()),
            self.qualified
        )
    }

    fn list_sql(&self, buckets: &[usize]) -> String {
        let texts: Vec<String> = self.cols.iter().map(|c| text_sql(&c.name)).collect();
        let list: Vec<String> = buckets.iter().map(|b| b.to_string()).collect();
        format!(
            "SELECT {} FROM {} WHERE {} IN ({})",
            texts.join(", "),
            self.qualified,
            bucket_sql(&self.key_sql()),
            list.join(", ")
        )
    }
}

/// Sum of signed 64-bit hashes printed by SQL as numeric -> the sum mod 2^64.
fn wrap_sum(text: &str, what: &str) -> Result<u64> {
    let v: i128 = text.trim().parse().map_err(|_| {
        Error::Usage(format!(
            "{what}: the target returned {text:?} as a sum of row hashes, not an integer"
        ))
    })?;
    Ok(v as u64)
}

/// Per-table aggregates, on either side.
#[derive(Debug, Clone)]
struct Agg {
    rows: u64,
    nulls: Vec<u64>,
    sum: u64,
    buckets: Vec<(u64, u64)>,
    /// Export side: running sum/min/max per column (where [`stat_kind`] applies).
    stats: Vec<Stats>,
    /// Sum, min and max per column as canonical texts (None: not applicable, or no values).
    stat_texts: Vec<[Option<String>; 3]>,
}

/// Which columns get sum / min / max: integers (all three) and dates and times (min, max).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatKind {
    Int,
    Ordered,
}

fn stat_kind(t: &PgType) -> Option<StatKind> {
    match t {
        PgType::SmallInt | PgType::Integer | PgType::BigInt => Some(StatKind::Int),
        PgType::Date | PgType::Time | PgType::Timestamp | PgType::TimestampTz => {
            Some(StatKind::Ordered)
        }
        _ => None,
    }
}

/// Running sum/min/max of a column's binary values read as integers (integers; days or
/// microseconds for dates and times, whose order is the integers' order, infinities included).
#[derive(Debug, Clone, Default, PartialEq)]
struct Stats {
    sum: i128,
    min: Option<i64>,
    max: Option<i64>,
}

impl Stats {
    fn add(&mut self, v: i64) {
        self.sum += i128::from(v);
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
    }

    fn merge(&mut self, o: &Stats) {
        self.sum += o.sum;
        if let Some(v) = o.min {
            self.min = Some(self.min.map_or(v, |m| m.min(v)));
        }
        if let Some(v) = o.max {
            self.max = Some(self.max.map_or(v, |m| m.max(v)));
        }
    }

    /// `[sum, min, max]` as PostgreSQL prints `sum(c)`, `min(c)`, `max(c)`.
    fn texts(&self, ty: &PgType) -> [Option<String>; 3] {
        let (Some(min), Some(max)) = (self.min, self.max) else {
            return [None, None, None];
        };
        match stat_kind(ty) {
            Some(StatKind::Int) => [
                Some(self.sum.to_string()),
                Some(min.to_string()),
                Some(max.to_string()),
            ],
            Some(StatKind::Ordered) => {
                let text = |v: i64| {
                    let mut out = String::new();
                    let bin = if *ty == PgType::Date {
                        (v as i32).to_be_bytes().to_vec()
                    } else {
                        v.to_be_bytes().to_vec()
                    };
                    canon::canonical_text(ty, &bin, &mut out).ok().map(|_| out)
                };
                [None, text(min), text(max)]
            }
            None => [None, None, None],
        }
    }
}

/// A binary value read as an integer, for [`Stats`].
fn stat_value(bin: &[u8]) -> Option<i64> {
    Some(match bin.len() {
        2 => i64::from(i16::from_be_bytes(bin.try_into().ok()?)),
        4 => i64::from(i32::from_be_bytes(bin.try_into().ok()?)),
        8 => i64::from_be_bytes(bin.try_into().ok()?),
        _ => return None,
    })
}

impl Agg {
    fn new(cols: usize) -> Agg {
        Agg {
            rows: 0,
            nulls: vec![0; cols],
            sum: 0,
            buckets: vec![(0, 0); BUCKETS],
            stats: vec![Stats::default(); cols],
            stat_texts: vec![[None, None, None]; cols],
        }
    }

    fn merge(&mut self, o: &Agg) {
        self.rows += o.rows;
        for (a, b) in self.nulls.iter_mut().zip(&o.nulls) {
            *a += b;
        }
        for (a, b) in self.stats.iter_mut().zip(&o.stats) {
            a.merge(b);
        }
        self.sum = self.sum.wrapping_add(o.sum);
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            a.0 += b.0;
            a.1 = a.1.wrapping_add(b.1);
        }
    }
}

/// One table's target aggregates, on a connection of its own (DSQL closes connections after an
/// hour: one per table). The scan only reads, so a dropped connection, a restart or a conflict
/// is retried like a load batch; the connection is kept for localising a mismatch.
async fn target_side(target: &Target, plan: &TablePlan) -> Result<(tokio_postgres::Client, Agg)> {
    let what = format!("verify {}", plan.target);
    crate::migrate::retrying(target, &what, |client| async move {
        prepare_session(&client).await?;
        let agg = target_aggregate(&client, plan).await?;
        Ok((client, agg))
    })
    .await
}

async fn target_aggregate(client: &tokio_postgres::Client, plan: &TablePlan) -> Result<Agg> {
    let sql = plan.aggregate_sql();
    let row = client
        .query_one(sql.as_str(), &[])
        .await
        .map_err(|e| Error::db(format!("verify {}: aggregate scan", plan.target), e))?;
    let rows: i64 = row.get(0);
    let mut agg = Agg::new(plan.cols.len());
    agg.rows = rows as u64;
    for i in 0..plan.cols.len() {
        let n: i64 = row.get(1 + i);
        agg.nulls[i] = (rows - n) as u64;
    }
    let sum: String = row.get(1 + plan.cols.len());
    agg.sum = wrap_sum(&sum, &format!("verify {}", plan.target))?;
    let mut at = 2 + plan.cols.len();
    for (i, c) in plan.cols.iter().enumerate() {
        match stat_kind(&c.ty) {
            Some(StatKind::Int) => {
                agg.stat_texts[i] = [row.get(at), row.get(at + 1), row.get(at + 2)];
                at += 3;
            }
            Some(StatKind::Ordered) => {
                agg.stat_texts[i] = [None, row.get(at), row.get(at + 1)];
                at += 2;
            }
            None => {}
        }
    }
    Ok(agg)
}

async fn target_buckets(
    client: &tokio_postgres::Client,
    plan: &TablePlan,
) -> Result<Vec<(u64, u64)>> {
    let rows = client
        .query(plan.bucket_agg_sql().as_str(), &[])
        .await
        .map_err(|e| Error::db(format!("verify {}: per-bucket scan", plan.target), e))?;
    let mut out = vec![(0u64, 0u64); BUCKETS];
    for r in rows {
        let b: i32 = r.get(0);
        let n: i64 = r.get(1);
        let s: String = r.get(2);
        if let Some(slot) = out.get_mut(b as usize) {
            *slot = (n as u64, wrap_sum(&s, &format!("verify {}", plan.target))?);
        }
    }
    Ok(out)
}

/// A row of a differing bucket, on either side.
#[derive(Debug, Clone)]
struct Entry {
    key_display: String,
    old_key: Option<String>,
    hash: i64,
    texts: Vec<Option<String>>,
}

async fn target_rows(
    client: &tokio_postgres::Client,
    plan: &TablePlan,
    buckets: &[usize],
) -> Result<HashMap<String, Vec<Entry>>> {
    let rows = client
        .query(plan.list_sql(buckets).as_str(), &[])
        .await
        .map_err(|e| {
            Error::db(
                format!("verify {}: rows of differing buckets", plan.target),
                e,
            )
        })?;
    let mut out: HashMap<String, Vec<Entry>> = HashMap::new();
    let (mut row_text, mut key_text) = (String::new(), String::new());
    for r in rows {
        let texts: Vec<Option<String>> = (0..plan.cols.len()).map(|i| r.get(i)).collect();
        plan.texts(&texts, &mut row_text, &mut key_text);
        let e = Entry {
            key_display: plan.key_display(&texts),
            old_key: plan.keep_old.and_then(|i| texts[i].clone()),
            hash: canon::row_hash(&row_text),
            texts,
        };
        out.entry(key_text.clone()).or_default().push(e);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Export side.

/// What the export side of one table shares across its chunk tasks.
struct ExportSide {
    export: Arc<Export>,
    mapping: Arc<Mapping>,
    orphans: Orphans,
    plan: Arc<TablePlan>,
}

/// What one chunk's scan found.
struct ChunkScan {
    agg: Agg,
    /// With a bucket filter: the rows in those buckets, by key text.
    rows: Vec<(String, Entry)>,
}

fn int_at(array: &ArrayRef, row: usize) -> Option<i64> {
    if array.is_null(row) {
        return None;
    }
    let any = array.as_any();
    if let Some(a) = any.downcast_ref::<Int64Array>() {
        return Some(a.value(row));
    }
    if let Some(a) = any.downcast_ref::<Int32Array>() {
        return Some(i64::from(a.value(row)));
    }
    any.downcast_ref::<Int16Array>()
        .map(|a| i64::from(a.value(row)))
}

async fn scan_chunk(
    side: Arc<ExportSide>,
    chunk: Chunk,
    filter: Option<Arc<Vec<bool>>>,
) -> Result<ChunkScan> {
    let plan = &side.plan;
    let table = side
        .mapping
        .table(&plan.source)
        .ok_or_else(|| Error::Mapping {
            file: "mapping".into(),
            reason: format!("table {} is not in the mapping", plan.source),
        })?;
    let file = side.export.store.display(&chunk.file);
    let mut encoder = RowEncoder::new(&side.mapping, table, &side.orphans, file.clone())?;
    let columns: Vec<String> = encoder
        .source_columns()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let row_groups: Vec<usize> = (chunk.row_group_start..chunk.row_group_end).collect();
    let mut stream =
        read::open(&side.export, &chunk, row_groups, &columns, READ_BATCH_ROWS).await?;
    let ncols = plan.cols.len();
    let mut agg = Agg::new(ncols);
    let mut found = Vec::new();
    let mut bin = Vec::with_capacity(4096);
    let mut texts: Vec<Option<String>> = vec![None; ncols];
    let mut bufs: Vec<String> = vec![String::new(); ncols];
    let mut nulls: Vec<bool> = vec![false; ncols];
    let mut spans: Vec<Option<(usize, usize)>> = Vec::with_capacity(ncols);
    let (mut row_text, mut key_text) = (String::new(), String::new());
    let mut chunk_row = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| Error::Parquet {
            file: file.clone(),
            reason: format!(
                "unreadable data in row groups {}..{}: {e}",
                chunk.row_group_start, chunk.row_group_end
            ),
        })?;
        let arrays = encoder.arrays(&batch)?;
        for r in 0..batch.num_rows() {
            bin.clear();
            encoder.encode_row(&arrays, r, &chunk, chunk_row, &mut bin)?;
            chunk_row += 1;
            // Field count, then (length, bytes) per field; -1 is NULL.
            spans.clear();
            let mut at = 2usize;
            for _ in 0..ncols {
                let len = bin
                    .get(at..at + 4)
                    .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(-1);
                at += 4;
                if len < 0 {
                    spans.push(None);
                } else {
                    spans.push(Some((at, at + len as usize)));
                    at += len as usize;
                }
            }
            let fail = |i: usize, reason: String| {
                let (rg, row) = chunk.locate(chunk_row - 1);
                Error::Convert {
                    location: Box::new(crate::error::Location {
                        file: file.clone(),
                        row_group: rg,
                        row: row as usize,
                        column: plan.cols[i].name.clone(),
                    }),
                    value: "<binary value>".into(),
                    expected: format!("{} canonical text", plan.cols[i].ty),
                    reason,
                }
            };
            // Listing pass: rows outside the wanted buckets are skipped after the key alone.
            if let Some(f) = &filter {
                key_text.clear();
                for &k in &plan.key {
                    bufs[k].clear();
                    if let Some((a, e)) = spans[k] {
                        let value = bin.get(a..e).unwrap_or_default();
                        canon::canonical_text(&plan.cols[k].ty, value, &mut bufs[k])
                            .map_err(|reason| fail(k, reason))?;
                    }
                    canon::push_piece(spans[k].map(|_| bufs[k].as_str()), &mut key_text);
                }
                if !f[usize::from(canon::bucket(&key_text))] {
                    continue;
                }
            }
            row_text.clear();
            key_text.clear();
            for (i, col) in plan.cols.iter().enumerate() {
                bufs[i].clear();
                nulls[i] = spans[i].is_none();
                match spans[i] {
                    None => agg.nulls[i] += 1,
                    Some((a, e)) => {
                        let value = bin.get(a..e).unwrap_or_default();
                        if stat_kind(&col.ty).is_some()
                            && let Some(v) = stat_value(value)
                        {
                            agg.stats[i].add(v);
                        }
                        canon::canonical_text(&col.ty, value, &mut bufs[i])
                            .map_err(|reason| fail(i, reason))?;
                    }
                }
                canon::push_piece((!nulls[i]).then_some(bufs[i].as_str()), &mut row_text);
            }
            for &k in &plan.key {
                canon::push_piece((!nulls[k]).then_some(bufs[k].as_str()), &mut key_text);
            }
            let h = canon::row_hash(&row_text);
            let b = usize::from(canon::bucket(&key_text));
            agg.rows += 1;
            agg.sum = agg.sum.wrapping_add(h as u64);
            agg.buckets[b].0 += 1;
            agg.buckets[b].1 = agg.buckets[b].1.wrapping_add(h as u64);
            if let Some(f) = &filter
                && f[b]
            {
                for i in 0..ncols {
                    texts[i] = (!nulls[i]).then(|| bufs[i].clone());
                }
                let old_key = match (plan.keep_old, plan.key_source) {
                    (Some(i), _) => texts[i].clone(),
                    (None, Some(s)) => arrays
                        .get(s)
                        .and_then(|a| int_at(a, r))
                        .map(|v| v.to_string()),
                    _ => None,
                };
                found.push((
                    key_text.clone(),
                    Entry {
                        key_display: plan.key_display(&texts),
                        old_key,
                        hash: h,
                        texts: texts.clone(),
                    },
                ));
            }
        }
    }
    Ok(ChunkScan { agg, rows: found })
}

async fn scan_export(
    side: &Arc<ExportSide>,
    chunks: &[Chunk],
    filter: Option<Arc<Vec<bool>>>,
    parallel: usize,
) -> Result<(Agg, Vec<(String, Entry)>)> {
    let mut agg = Agg::new(side.plan.cols.len());
    let mut rows = Vec::new();
    let mut results = futures::stream::iter(chunks.iter().cloned())
        .map(|c| {
            let side = side.clone();
            let filter = filter.clone();
            tokio::spawn(scan_chunk(side, c, filter))
        })
        .buffer_unordered(parallel.max(1));
    while let Some(joined) = results.next().await {
        let scan = joined.map_err(|e| Error::Usage(format!("verify task failed: {e}")))??;
        agg.merge(&scan.agg);
        rows.extend(scan.rows);
    }
    Ok((agg, rows))
}

// ---------------------------------------------------------------------------------------------
// Both sides.

/// Orphans as the loader saw them: only an `on_orphan = "null"` column changes what was loaded
/// (`fail` loaded nothing, `keep` loaded the key), so the export is scanned only then.
async fn orphans_for(export: &Export, mapping: &Mapping) -> Result<Orphans> {
    let any_null = mapping.tables.iter().any(|t| {
        t.columns
            .iter()
            .any(|c| c.rewrite == Rewrite::Reference && c.on_orphan == Some(OnOrphan::Null))
    });
    if any_null {
        Ok(crate::load::orphans::scan(export, mapping).await?.0)
    } else {
        Ok(Orphans::new())
    }
}

/// Verifies every table of `mapping` (or `options.tables`) of `export` against `target`.
/// `progress(table, rows)` gets export rows read as chunks finish.
pub async fn verify(
    export: Arc<Export>,
    mapping: Arc<Mapping>,
    target: &Target,
    options: &VerifyOptions,
    progress: &(dyn Fn(&str, u64) + Sync),
) -> Result<VerifyReport> {
    let started = Instant::now();
    if let Some(names) = &options.tables {
        for n in names {
            if mapping.table(n).is_none() {
                return Err(Error::Usage(format!(
                    "table {n:?} is not in the mapping (tables are named schema.table, as in the export)"
                )));
            }
        }
    }
    let orphans = orphans_for(&export, &mapping).await?;
    // Smaller chunks than the loader's: verification is CPU-bound, and more pieces keep every
    // core busy to the end.
    let all_chunks =
        plan_chunks_with(&export, &mapping, VERIFY_CHUNK_ROWS, CHUNK_MAX_BYTES).await?;
    let mut tables = Vec::new();
    let mut total_rows = 0u64;
    for t in &mapping.tables {
        if let Some(names) = &options.tables
            && !names.contains(&t.source)
        {
            continue;
        }
        let table_started = Instant::now();
        let plan = Arc::new(TablePlan::new(t)?);
        let side = Arc::new(ExportSide {
            export: export.clone(),
            mapping: mapping.clone(),
            orphans: orphans.clone(),
            plan: plan.clone(),
        });
        let chunks: Vec<Chunk> = all_chunks
            .iter()
            .filter(|c| c.table == t.source)
            .cloned()
            .collect();
        let (exp, tgt) = tokio::join!(
            scan_export(&side, &chunks, None, options.parallel),
            target_side(target, &plan)
        );
        let (mut exp, _) = exp?;
        let (client, tgt) = tgt?;
        for (i, c) in plan.cols.iter().enumerate() {
            exp.stat_texts[i] = exp.stats[i].texts(&c.ty);
        }
        progress(&t.source, exp.rows);
        total_rows += exp.rows;
        let matches = exp.rows == tgt.rows
            && exp.nulls == tgt.nulls
            && exp.sum == tgt.sum
            && exp.stat_texts == tgt.stat_texts;
        let mut report = TableReport {
            source: t.source.clone(),
            target: t.target(),
            status: if matches {
                Status::Match
            } else {
                Status::Mismatch
            },
            rows_in_export: exp.rows,
            rows_in_target: tgt.rows,
            columns: plan
                .cols
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let [sum_export, min_export, max_export] = exp.stat_texts[i].clone();
                    let [sum_target, min_target, max_target] = tgt.stat_texts[i].clone();
                    ColumnReport {
                        name: c.name.clone(),
                        target_type: c.ty.to_string(),
                        nulls_in_export: exp.nulls[i],
                        nulls_in_target: tgt.nulls[i],
                        sum_export,
                        sum_target,
                        min_export,
                        min_target,
                        max_export,
                        max_target,
                    }
                })
                .collect(),
            fingerprint_export: format!("{:016x}", exp.sum),
            fingerprint_target: format!("{:016x}", tgt.sum),
            seconds: 0.0,
            differing_buckets: 0,
            buckets_listed: 0,
            missing: 0,
            extra: 0,
            differing: 0,
            differences: Vec::new(),
        };
        if !matches {
            localise(&client, &side, &chunks, &exp, options, &mut report).await?;
        }
        report.seconds = table_started.elapsed().as_secs_f64();
        tables.push(report);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(VerifyReport {
        export_id: export.info.export_task_identifier.clone(),
        migration: mapping.migration.id.clone(),
        target: target.display().to_string(),
        seconds,
        rows_in_export: total_rows,
        rows_per_second: if seconds > 0.0 {
            total_rows as f64 / seconds
        } else {
            0.0
        },
        ok: tables.iter().all(|t| t.status == Status::Match),
        tables,
    })
}

/// Narrows a mismatch to rows: differing buckets, then the rows of those buckets on both sides.
async fn localise(
    client: &tokio_postgres::Client,
    side: &Arc<ExportSide>,
    chunks: &[Chunk],
    exp: &Agg,
    options: &VerifyOptions,
    report: &mut TableReport,
) -> Result<()> {
    let plan = &side.plan;
    let tgt_buckets = target_buckets(client, plan).await?;
    let all_differing: Vec<usize> = (0..BUCKETS)
        .filter(|&b| exp.buckets[b] != tgt_buckets[b])
        .collect();
    // Memory bound: the rows of the differing buckets are held in memory on both sides, so only
    // as many buckets as fit the budget are listed (at least one).
    let mut differing = Vec::new();
    let mut held = 0u64;
    for &b in &all_differing {
        let rows = exp.buckets[b].0 + tgt_buckets[b].0;
        if !differing.is_empty() && held + rows > options.listing_budget {
            break;
        }
        held += rows;
        differing.push(b);
    }
    report.differing_buckets = all_differing.len();
    report.buckets_listed = differing.len();
    if differing.is_empty() {
        // Same rows in every bucket, yet different totals: only null counts can differ that way,
        // which the column reports show.
        return Ok(());
    }
    let mut filter = vec![false; BUCKETS];
    for &b in &differing {
        filter[b] = true;
    }
    let (_, export_rows) =
        scan_export(side, chunks, Some(Arc::new(filter)), options.parallel).await?;
    let mut target = target_rows(client, plan, &differing).await?;
    let mut by_key: BTreeMap<String, (Vec<Entry>, Vec<Entry>)> = BTreeMap::new();
    for (k, e) in export_rows {
        by_key.entry(k).or_default().0.push(e);
    }
    for (k, es) in target.drain() {
        by_key.entry(k).or_default().1.extend(es);
    }
    let mut diffs = Vec::new();
    for (_, (mut ex, mut tg)) in by_key {
        // Drop the pairs that are equal (multiset intersection by hash).
        ex.retain(|e| match tg.iter().position(|t| t.hash == e.hash) {
            Some(p) => {
                tg.swap_remove(p);
                false
            }
            None => true,
        });
        let n = ex.len().min(tg.len());
        for (e, t) in ex.iter().zip(&tg).take(n) {
            let columns = plan
                .cols
                .iter()
                .enumerate()
                .filter(|(i, _)| e.texts[*i] != t.texts[*i])
                .map(|(i, c)| ColumnDiff {
                    column: c.name.clone(),
                    export: e.texts[i].clone(),
                    target: t.texts[i].clone(),
                })
                .collect();
            diffs.push(Difference {
                kind: DiffKind::Differs,
                key: e.key_display.clone(),
                old_key: e.old_key.clone().or_else(|| t.old_key.clone()),
                columns,
            });
        }
        for e in &ex[n..] {
            diffs.push(Difference {
                kind: DiffKind::Missing,
                key: e.key_display.clone(),
                old_key: e.old_key.clone(),
                columns: Vec::new(),
            });
        }
        for t in &tg[n..] {
            diffs.push(Difference {
                kind: DiffKind::Extra,
                key: t.key_display.clone(),
                old_key: t.old_key.clone(),
                columns: Vec::new(),
            });
        }
    }
    report.missing = diffs.iter().filter(|d| d.kind == DiffKind::Missing).count() as u64;
    report.extra = diffs.iter().filter(|d| d.kind == DiffKind::Extra).count() as u64;
    report.differing = diffs.iter().filter(|d| d.kind == DiffKind::Differs).count() as u64;
    diffs.sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| a.key.cmp(&b.key)));
    diffs.truncate(options.max_listed);
    report.differences = diffs;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_wrap_mod_2_64() {
        assert_eq!(wrap_sum("0", "t").unwrap(), 0);
        assert_eq!(wrap_sum("-1", "t").unwrap(), u64::MAX);
        // Two hashes of i64::MAX: 2^64 - 2.
        assert_eq!(wrap_sum("18446744073709551614", "t").unwrap(), u64::MAX - 1);
        assert_eq!(
            (i64::MAX as u64).wrapping_add(i64::MAX as u64),
            u64::MAX - 1
        );
        assert!(wrap_sum("1.5", "t").is_err());
    }

    #[test]
    fn pieces_are_unambiguous_and_match_the_sql() {
        let mut a = String::new();
        canon::push_piece(Some("ab"), &mut a);
        canon::push_piece(None, &mut a);
        canon::push_piece(Some(""), &mut a);
        assert_eq!(a, "V2:abNV0:");
        let mut b = String::new();
        canon::push_piece(Some("abN"), &mut b);
        canon::push_piece(Some(""), &mut b);
        assert_ne!(a, b);
        assert_eq!(
            piece_sql("c"),
            "coalesce('V' || octet_length(\"c\"::text)::text || ':' || \"c\"::text, 'N')"
        );
        assert_eq!(
            hash_sql("t"),
            "('x' || substr(md5(t), 1, 16))::bit(64)::bigint"
        );
    }

    #[test]
    fn row_hash_is_the_md5_prefix() {
        // md5('') = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(canon::row_hash(""), 0xd41d8cd98f00b204_u64 as i64);
        assert_eq!(canon::bucket(""), 0x98);
    }
}
