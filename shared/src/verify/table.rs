//! One table as both sides see it: its target columns in load order, its key, and the
//! aggregates each side computes and the comparison needs.

use super::BUCKETS;
use super::rowtext;
use crate::ddl::qualified;
use crate::error::{Error, Result};
use crate::mapping::{Rewrite, TableMapping};
use crate::pages::{KeyColumn, PageSizing, Pager};
use crate::types::PgType;

/// A target column.
#[derive(Debug, Clone)]
pub struct Col {
    pub name: String,
    pub ty: PgType,
}

/// The per-table plan shared by both sides: which columns, in which order, keyed by what.
#[derive(Debug, Clone)]
pub struct TablePlan {
    pub source: String,
    pub target: String,
    /// `"schema"."table"`.
    pub qualified: String,
    pub cols: Vec<Col>,
    /// Indexes into `cols` of the key (the primary key, or every column without one).
    pub key: Vec<usize>,
    /// True when the table has a primary key (pages by it; else one page).
    pub has_primary_key: bool,
    /// Index into `cols` of the `keep_old` column of the rewritten key, if any.
    pub keep_old: Option<usize>,
}

impl TablePlan {
    pub fn new(t: &TableMapping) -> Result<TablePlan> {
        let mut cols = Vec::new();
        let mut keep_old = None;
        for c in t.columns.iter().filter(|c| !c.drop) {
            cols.push(Col {
                name: c.target.clone(),
                ty: c.target_type.clone(),
            });
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
            has_primary_key: !t.primary_key.is_empty(),
            keep_old,
        })
    }

    /// The pager over the target table: by primary key, or one page without one.
    pub fn pager(&self, sizing: PageSizing) -> Pager {
        let key = if self.has_primary_key {
            self.key
                .iter()
                .map(|&k| KeyColumn {
                    name: self.cols[k].name.clone(),
                    sql_type: self.cols[k].ty.to_string(),
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut p = Pager::new(self.qualified.clone(), key);
        p.sizing = sizing;
        p
    }

    /// Row text and key text of canonical texts.
    pub fn texts(&self, texts: &[Option<String>], row: &mut String, key: &mut String) {
        row.clear();
        key.clear();
        for t in texts {
            rowtext::push_piece(t.as_deref(), row);
        }
        for &k in &self.key {
            rowtext::push_piece(texts[k].as_deref(), key);
        }
    }

    /// The key as shown in a report: its texts, `, `-separated.
    pub fn key_display(&self, texts: &[Option<String>]) -> String {
        self.key
            .iter()
            .map(|&k| texts[k].clone().unwrap_or_else(|| "NULL".into()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Which columns get sum / min / max: integers (all three), dates and times (min, max).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatKind {
    Int,
    Ordered,
}

pub fn stat_kind(t: &PgType) -> Option<StatKind> {
    match t {
        PgType::SmallInt | PgType::Integer | PgType::BigInt => Some(StatKind::Int),
        PgType::Date | PgType::Time | PgType::Timestamp | PgType::TimestampTz => {
            Some(StatKind::Ordered)
        }
        _ => None,
    }
}

/// Per-table aggregates, on either side.
#[derive(Debug, Clone)]
pub struct Agg {
    pub rows: u64,
    pub nulls: Vec<u64>,
    /// Sum mod 2^64 of the row hashes.
    pub sum: u64,
    /// Per bucket: rows and sum of their hashes.
    pub buckets: Vec<(u64, u64)>,
    /// Sum, min and max per column as canonical texts (None: not applicable, or no values).
    pub stat_texts: Vec<[Option<String>; 3]>,
}

impl Agg {
    pub fn new(cols: usize) -> Agg {
        Agg {
            rows: 0,
            nulls: vec![0; cols],
            sum: 0,
            buckets: vec![(0, 0); BUCKETS],
            stat_texts: vec![[None, None, None]; cols],
        }
    }

    /// Adds `o`'s counts (not the texts of sums, minimums and maximums).
    pub fn merge(&mut self, o: &Agg) {
        self.rows += o.rows;
        for (a, b) in self.nulls.iter_mut().zip(&o.nulls) {
            *a += b;
        }
        self.sum = self.sum.wrapping_add(o.sum);
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            a.0 += b.0;
            a.1 = a.1.wrapping_add(b.1);
        }
    }

    /// True when count, null counts, fingerprint, sums, minimums and maximums are equal.
    pub fn matches(&self, o: &Agg) -> bool {
        self.rows == o.rows
            && self.nulls == o.nulls
            && self.sum == o.sum
            && self.stat_texts == o.stat_texts
    }
}

/// A listed row of a differing bucket, on either side.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key_display: String,
    pub old_key: Option<String>,
    pub hash: u64,
    pub texts: Vec<Option<String>>,
}
