//! Row-level verification: the export, after the mapping's transformation, against the target.
//!
//! The export is the reference (a consistent point in time, unlike the live source). Per table
//! both sides compute the same aggregates, and they must be equal: the row count; per target
//! column its NULLs; per integer column its sum, and per integer, date, time and timestamp column
//! its min and max; and a fingerprint, the sum mod 2^64 of a 64-bit hash of every row's text
//! ([`rowtext`]: order does not matter, duplicates count twice).
//!
//! **Canonical text of a value**: what PostgreSQL's `value::text` prints in a verify session
//! (`TimeZone UTC`, `DateStyle ISO, MDY`, `IntervalStyle postgres`, `extra_float_digits 1`; bytea
//! in hex, the default, checked). The two sides compute it in two unrelated ways:
//! - **target** ([`sql`]): `col::text` in SQL, in the target, page by primary-key page
//!   ([`crate::pages`]): every long read is a series of short transactions, as DSQL requires;
//! - **export** ([`expect`], [`scan`]): from the values as the part files hold them (Parquet
//!   natives, PostgreSQL text output) straight to canonical texts by the mapping's declared
//!   transformation, in code that shares nothing with the loader's conversion, key, orphan,
//!   reader or chunk code. A date the loader puts a day off, a lost fraction, a wrong zone, a
//!   wrong new key, a wrong orphan rule or a skipped row group is a difference, not a match.
//!
//! **What the two paths still share, and why none of it can hide a wrong value**:
//! - the parquet crate's decoding and the export's file list ([`crate::export`]): they are the
//!   input, not a transformation. A file left out of the list, or a value the crate misdecodes,
//!   would be wrong on both paths; row counts are reconciled with every file's own footer.
//! - the mapping ([`crate::mapping`]) and the type names ([`crate::types`]): the declaration of
//!   what the target should be. A wrong declaration is a wrong migration that verifies (as
//!   intended), never a wrong conversion of a right one.
//! - the row text and hashes ([`rowtext`]) and the table plan ([`table`]): definitions that both
//!   sides apply to texts they computed apart; a bug there makes both sides differ or agree on
//!   every table alike, and the tests check them against SQL and md5 by hand.
//!
//! **Cost**: the export is read once (streaming, a projection of the mapped columns, units of
//! whole row groups in parallel) and each target table once, a page at a time, in the matching
//! case.
//!
//! **Localising a mismatch** ([`localise`]): 256 buckets by a hash of the key text (the primary
//! key's pieces; without a primary key the whole row, so a changed row shows as one missing and
//! one extra row); the rows of the differing buckets are listed on both sides and matched by key.

pub mod expect;
pub mod localise;
pub mod parts;
pub mod report;
pub mod rowtext;
pub mod scan;
pub mod source;
pub mod sql;
pub mod table;

pub use report::{
    AfterSnapshot, ColumnDiff, ColumnReport, DiffKind, Difference, Status, TableReport,
    VerifyReport,
};
pub use sql::{SESSION, prepare_session};

use crate::error::{Error, Result};
use crate::export::Export;
use crate::mapping::Mapping;
use crate::pages::{PageSizing, Reader};
use crate::target::Target;
use scan::ExportSide;
use std::sync::Arc;
use std::time::Instant;
use table::TablePlan;

/// Number of key-hash buckets used to localise a mismatch.
pub const BUCKETS: usize = 256;
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
    /// Export units read at once.
    pub parallel: usize,
    /// Rows of differing buckets held in memory at most ([`LISTING_ROW_BUDGET`]).
    pub listing_budget: u64,
    /// How the target is paged.
    pub pages: PageSizing,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            tables: None,
            max_listed: DEFAULT_MAX_LISTED,
            parallel: std::thread::available_parallelism().map_or(2, |n| n.get()),
            listing_budget: LISTING_ROW_BUDGET,
            pages: PageSizing::default(),
        }
    }
}

/// Verifies every table of `mapping` (or `options.tables`) of `export` against `target`.
/// `progress(table, rows)` gets export rows read as tables finish.
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
    let nulled = expect::orphans::find(&export, &mapping).await?;
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
            plan: plan.clone(),
            expect: Arc::new(expect::TableExpect::new(&mapping, t, &nulled)?),
        });
        let units = expect::read::units(&export, &t.source).await?;
        let mut reader = Reader::new(target, SESSION);
        let (exp, tgt) = tokio::join!(
            scan::scan(&side, &units, None, options.parallel),
            target_aggregate(&mut reader, &plan, options.pages)
        );
        let (exp, _) = exp?;
        let tgt = tgt?;
        progress(&t.source, exp.rows);
        total_rows += exp.rows;
        let mut report = table_report(&plan, &exp, &tgt);
        if report.status == Status::Mismatch {
            localise::localise(&mut reader, &side, &units, &exp, options, &mut report).await?;
        }
        report.seconds = table_started.elapsed().as_secs_f64();
        tables.push(report);
    }
    Ok(whole_report(
        &export, &mapping, target, started, total_rows, tables,
    ))
}

/// The report of a whole verification from its tables' reports.
pub(crate) fn whole_report(
    export: &Export,
    mapping: &Mapping,
    target: &Target,
    started: Instant,
    rows: u64,
    tables: Vec<TableReport>,
) -> VerifyReport {
    let seconds = started.elapsed().as_secs_f64();
    VerifyReport {
        export_id: export.info.export_task_identifier.clone(),
        migration: mapping.migration.id.clone(),
        target: target.display().to_string(),
        seconds,
        rows_in_export: rows,
        rows_per_second: if seconds > 0.0 {
            rows as f64 / seconds
        } else {
            0.0
        },
        ok: tables.iter().all(|t| t.status == Status::Match),
        tables,
    }
}

async fn target_aggregate(
    reader: &mut Reader<'_>,
    plan: &TablePlan,
    pages: PageSizing,
) -> Result<table::Agg> {
    sql::check_bytea_hex(reader.client().await?).await?;
    sql::aggregate(reader, plan, &plan.pager(pages)).await
}

/// The report of one table from both sides' aggregates (differences not yet listed).
pub fn table_report(plan: &TablePlan, exp: &table::Agg, tgt: &table::Agg) -> TableReport {
    TableReport {
        source: plan.source.clone(),
        target: plan.target.clone(),
        status: if exp.matches(tgt) {
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
        after_snapshot: None,
    }
}
