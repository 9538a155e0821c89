//! Localising a mismatch: buckets whose count or hash sum differ, then the rows of those
//! buckets on both sides, matched by key: `missing` (only in the export), `extra` (only in the
//! target; a duplicated row is an extra row with an existing old key), `differs` (same key,
//! another hash: the differing columns with both values).
//!
//! Rows are held in memory, so when the differing buckets hold more than the listing budget, only
//! the first buckets that fit are compared (the report says how many of how many).

use super::expect::read::Unit;
use super::report::{ColumnDiff, DiffKind, Difference, TableReport};
use super::scan::{self, ExportSide};
use super::sql;
use super::table::{Agg, Entry};
use super::{BUCKETS, VerifyOptions};
use crate::error::Result;
use crate::pages::Reader;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Narrows a mismatch to rows: differing buckets, then the rows of those buckets on both sides.
pub async fn localise(
    reader: &mut Reader<'_>,
    side: &Arc<ExportSide>,
    units: &[Unit],
    exp: &Agg,
    options: &VerifyOptions,
    report: &mut TableReport,
) -> Result<()> {
    let plan = &side.plan;
    let tgt_buckets = sql::buckets(reader, plan, options.pages).await?;
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
        // Same rows in every bucket, yet different totals: only null counts, sums, minimums or
        // maximums can differ that way, which the column reports show.
        return Ok(());
    }
    let mut filter = vec![false; BUCKETS];
    for &b in &differing {
        filter[b] = true;
    }
    let (_, export_rows) =
        scan::scan(side, units, Some(Arc::new(filter)), options.parallel).await?;
    let target = sql::rows(reader, plan, options.pages, &differing).await?;
    report_differences(
        plan,
        export_rows,
        target.into_iter().collect(),
        options.max_listed,
        report,
    );
    Ok(())
}

/// Matches the listed rows of both sides by key text and fills the report's differences.
pub fn report_differences(
    plan: &super::table::TablePlan,
    export_rows: Vec<(String, Entry)>,
    target_rows: Vec<(String, Vec<Entry>)>,
    max_listed: usize,
    report: &mut TableReport,
) {
    let mut by_key: BTreeMap<String, (Vec<Entry>, Vec<Entry>)> = BTreeMap::new();
    for (k, e) in export_rows {
        by_key.entry(k).or_default().0.push(e);
    }
    for (k, es) in target_rows {
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
    diffs.truncate(max_listed);
    report.differences = diffs;
}
