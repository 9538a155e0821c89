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

/// The order key of a canonical text of a stat column (an integer's value; a date's or time's
/// position), `None` when the text is not one of the type.
pub fn order_key(ty: &PgType, text: &str) -> Option<i128> {
    use super::expect::datetime::{self, OrderKind};
    match ty {
        PgType::SmallInt | PgType::Integer | PgType::BigInt => text.parse().ok(),
        PgType::Date => datetime::order_key(OrderKind::Date, text),
        PgType::Time => datetime::order_key(OrderKind::Time, text),
        PgType::Timestamp => datetime::order_key(OrderKind::Timestamp, text),
        PgType::TimestampTz => datetime::order_key(OrderKind::TimestampTz, text),
        _ => None,
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

/// Per-table aggregates, on either side. Serialised as a verify part of the pipeline
/// ([`super::parts`]): every field adds up over any split of a table's rows.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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

    /// Adds `o`'s counts and folds its sums, minimums and maximums into this one's: the
    /// aggregates of the union of both row sets. Minimums and maximums are compared by the
    /// order of their canonical texts ([`order_key`]).
    pub fn absorb(&mut self, o: &Agg, plan: &TablePlan) -> Result<()> {
        if o.nulls.len() != plan.cols.len() || o.buckets.len() != self.buckets.len() {
            return Err(Error::Usage(format!(
                "verify {}: a part has {} columns and {} buckets, the table {} and {}",
                plan.source,
                o.nulls.len(),
                o.buckets.len(),
                plan.cols.len(),
                self.buckets.len()
            )));
        }
        self.merge(o);
        for (i, c) in plan.cols.iter().enumerate() {
            let Some(kind) = stat_kind(&c.ty) else {
                continue;
            };
            let [sum, min, max] = &o.stat_texts[i];
            let (Some(min), Some(max)) = (min, max) else {
                continue;
            };
            let mine = &mut self.stat_texts[i];
            let key = |t: &str| {
                order_key(&c.ty, t).ok_or_else(|| {
                    Error::Usage(format!(
                        "verify {}: {t:?} of column {} has no order as {}",
                        plan.source, c.name, c.ty
                    ))
                })
            };
            if mine[1].is_none() {
                *mine = o.stat_texts[i].clone();
                continue;
            }
            if kind == StatKind::Int {
                let add = |t: &Option<String>| t.as_deref().map_or(Ok(0), key);
                mine[0] = Some((add(&mine[0])? + add(sum)?).to_string());
            }
            if key(min)? < key(mine[1].as_deref().unwrap_or(min))? {
                mine[1] = Some(min.clone());
            }
            if key(max)? > key(mine[2].as_deref().unwrap_or(max))? {
                mine[2] = Some(max.clone());
            }
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> TablePlan {
        let col = |name: &str, ty: PgType| Col {
            name: name.into(),
            ty,
        };
        TablePlan {
            source: "public.t".into(),
            target: "public.t".into(),
            qualified: "\"public\".\"t\"".into(),
            cols: vec![
                col("n", PgType::BigInt),
                col("d", PgType::Date),
                col("s", PgType::Text),
            ],
            key: vec![0],
            has_primary_key: true,
            keep_old: None,
        }
    }

    fn part(rows: u64, n: [&str; 3], d: [&str; 2]) -> Agg {
        let mut a = Agg::new(3);
        a.rows = rows;
        a.nulls = vec![0, 1, rows];
        a.sum = rows.wrapping_mul(u64::MAX / 3);
        a.buckets[7] = (rows, a.sum);
        a.stat_texts[0] = n.map(|t| Some(t.to_string()));
        a.stat_texts[1] = [None, Some(d[0].into()), Some(d[1].into())];
        a
    }

    #[test]
    fn parts_absorb_into_the_aggregates_of_their_union() {
        let plan = plan();
        let mut whole = Agg::new(3);
        let a = part(2, ["19", "9", "10"], ["2020-01-10", "2021-03-01"]);
        let b = part(3, ["-4", "-7", "3"], ["1999-12-31", "2020-01-09"]);
        for p in [&Agg::new(3), &a, &Agg::new(3), &b] {
            whole.absorb(p, &plan).unwrap();
        }
        assert_eq!((whole.rows, whole.nulls.clone()), (5, vec![0, 2, 5]));
        assert_eq!(whole.sum, a.sum.wrapping_add(b.sum));
        assert_eq!(whole.buckets[7], (5, a.sum.wrapping_add(b.sum)));
        // By value, not by text: "-7" < "9" and "10" > "3", though "10" < "3" as text.
        let texts = |i: usize| whole.stat_texts[i].clone().map(|t| t.unwrap_or_default());
        assert_eq!(texts(0), ["15", "-7", "10"]);
        assert_eq!(texts(1), ["", "1999-12-31", "2021-03-01"]);
        assert_eq!(whole.stat_texts[2], [None, None, None]);
        // A part of another shape is refused, naming the table.
        let e = whole.absorb(&Agg::new(2), &plan).unwrap_err();
        assert!(e.to_string().contains("public.t"), "{e}");
    }
}
