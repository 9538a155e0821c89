//! The export side's reading: every row of every part file of a table, through the independent
//! expectation ([`super::expect`]), folded into the same aggregates the target side computes;
//! with a bucket filter, the rows of those buckets are kept for listing.

use super::expect::read::{self, Unit};
use super::expect::{self, TableExpect};
use super::rowtext;
use super::table::{Agg, Entry, StatKind, TablePlan, order_key, stat_kind};
use crate::error::{Error, Result};
use crate::export::Export;
use futures::StreamExt;
use std::sync::Arc;

/// What the export side of one table shares across its units.
pub struct ExportSide {
    pub export: Arc<Export>,
    pub plan: Arc<TablePlan>,
    pub expect: Arc<TableExpect>,
}

/// Running sum, min and max of a column, by value (min and max keep their texts).
#[derive(Debug, Clone, Default)]
struct Stats {
    sum: i128,
    min: Option<(i128, String)>,
    max: Option<(i128, String)>,
}

impl Stats {
    fn add(&mut self, key: i128, text: &str, int: bool) {
        if int {
            self.sum += key;
        }
        if self.min.as_ref().is_none_or(|(m, _)| key < *m) {
            self.min = Some((key, text.to_string()));
        }
        if self.max.as_ref().is_none_or(|(m, _)| key > *m) {
            self.max = Some((key, text.to_string()));
        }
    }

    fn merge(&mut self, o: &Stats, int: bool) {
        for (key, text) in o.min.iter().chain(o.max.iter()) {
            self.add(*key, text, false);
        }
        if int {
            self.sum += o.sum;
        }
    }
}

struct UnitScan {
    agg: Agg,
    stats: Vec<Stats>,
    rows: Vec<(String, Entry)>,
}

async fn scan_unit(
    side: Arc<ExportSide>,
    unit: Unit,
    filter: Option<Arc<Vec<bool>>>,
) -> Result<UnitScan> {
    let plan = &side.plan;
    let file = side.export.store.display(&unit.file.key);
    let ncols = plan.cols.len();
    let names: Vec<String> = plan.cols.iter().map(|c| c.name.clone()).collect();
    let kinds: Vec<Option<StatKind>> = plan.cols.iter().map(|c| stat_kind(&c.ty)).collect();
    let mut scan = UnitScan {
        agg: Agg::new(ncols),
        stats: vec![Stats::default(); ncols],
        rows: Vec::new(),
    };
    let mut texts: Vec<Option<String>> = vec![None; ncols];
    let (mut row_text, mut key_text) = (String::new(), String::new());
    let mut stream = read::open(&side.export, &unit, side.expect.projection()).await?;
    let mut n = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let arrays = side.expect.arrays(&batch, &file)?;
        if let Some(a) = arrays.iter().find(|a| !expect::readable(a.data_type())) {
            return Err(Error::Parquet {
                file: file.clone(),
                reason: format!(
                    "a column of Parquet type {} is not one the export writes",
                    a.data_type()
                ),
            });
        }
        for r in 0..batch.num_rows() {
            let (rg, row) = unit.locate(n);
            n += 1;
            side.expect
                .row(&arrays, r, &names, &mut texts)
                .map_err(|e| e.at(file.clone(), rg, row))?;
            plan.texts(&texts, &mut row_text, &mut key_text);
            let h = rowtext::row_hash(&row_text);
            let b = usize::from(rowtext::bucket(&key_text));
            let agg = &mut scan.agg;
            agg.rows += 1;
            agg.sum = agg.sum.wrapping_add(h);
            agg.buckets[b].0 += 1;
            agg.buckets[b].1 = agg.buckets[b].1.wrapping_add(h);
            for (i, t) in texts.iter().enumerate() {
                match t {
                    None => agg.nulls[i] += 1,
                    Some(t) => {
                        if let Some(kind) = kinds[i] {
                            let key =
                                order_key(&plan.cols[i].ty, t).ok_or_else(|| Error::Convert {
                                    location: Box::new(crate::error::Location {
                                        file: file.clone(),
                                        row_group: rg,
                                        row: row as usize,
                                        column: names[i].clone(),
                                    }),
                                    value: t.clone(),
                                    expected: plan.cols[i].ty.to_string(),
                                    reason: "its canonical text has no order".into(),
                                })?;
                            scan.stats[i].add(key, t, kind == StatKind::Int);
                        }
                    }
                }
            }
            if filter.as_ref().is_some_and(|f| f[b]) {
                scan.rows.push((
                    key_text.clone(),
                    Entry {
                        key_display: plan.key_display(&texts),
                        old_key: side.expect.old_key(&arrays, r),
                        hash: h,
                        texts: texts.clone(),
                    },
                ));
            }
        }
    }
    if n != unit.total() {
        return Err(Error::Parquet {
            file,
            reason: format!(
                "the footer announces {} rows in row groups {}..{}, the data holds {n}",
                unit.total(),
                unit.first,
                unit.first + unit.rows.len()
            ),
        });
    }
    Ok(scan)
}

/// Reads every unit (`parallel` at a time): the table's aggregates and, with a bucket filter,
/// the rows of those buckets.
pub async fn scan(
    side: &Arc<ExportSide>,
    units: &[Unit],
    filter: Option<Arc<Vec<bool>>>,
    parallel: usize,
) -> Result<(Agg, Vec<(String, Entry)>)> {
    let plan = &side.plan;
    let mut agg = Agg::new(plan.cols.len());
    let mut stats = vec![Stats::default(); plan.cols.len()];
    let mut rows = Vec::new();
    let mut results = futures::stream::iter(units.iter().cloned())
        .map(|u| tokio::spawn(scan_unit(side.clone(), u, filter.clone())))
        .buffer_unordered(parallel.max(1));
    while let Some(joined) = results.next().await {
        let s = joined.map_err(|e| Error::Usage(format!("verify task failed: {e}")))??;
        agg.merge(&s.agg);
        for (i, st) in s.stats.iter().enumerate() {
            stats[i].merge(st, stat_kind(&plan.cols[i].ty) == Some(StatKind::Int));
        }
        rows.extend(s.rows);
    }
    for (i, c) in plan.cols.iter().enumerate() {
        let st = &stats[i];
        let (Some((_, min)), Some((_, max))) = (&st.min, &st.max) else {
            continue;
        };
        agg.stat_texts[i] = match stat_kind(&c.ty) {
            Some(StatKind::Int) => [
                Some(st.sum.to_string()),
                Some(min.clone()),
                Some(max.clone()),
            ],
            Some(StatKind::Ordered) => [None, Some(min.clone()), Some(max.clone())],
            None => [None, None, None],
        };
    }
    Ok((agg, rows))
}
