//! Verification in parts, for a pipeline whose every step must end within minutes.
//!
//! Every aggregate of [`super::table::Agg`] adds up over any split of a table's rows: row and
//! null counts and per-bucket counts add, the fingerprint is a sum mod 2^64, and sums, minimums
//! and maximums fold ([`Agg::absorb`]). So the two sides need not be split alike:
//! - an **export part** is some of a table's part-file units ([`super::expect::read::Unit`],
//!   whole row groups), about [`ITEM_ROWS`] rows. The parts of a table are its units cut in
//!   order, so together they read every row group of every part file exactly once;
//! - a **target part** is a range of the table's first primary-key column,
//!   `[from, to)`: the first range has no lower bound and the last no upper bound, so the ranges
//!   cover the whole key space and every target row (a row the load should not have written
//!   included) is in exactly one of them. Each range is walked page by page ([`crate::pages`]),
//!   every page its own short read, as DSQL's 300 s transactions require.
//!
//! Ranges are cut where they cost no scan: integer keys evenly between the target's smallest
//! and largest key (two index lookups), uuid keys evenly over the uuid space (generated keys are
//! uniform). A table with another key type, or none, is one target part.
//!
//! [`Combiner`] folds the parts of each table into both sides' whole aggregates and compares
//! them exactly as [`super::verify`] does; a table that differs is then localised the same way
//! ([`super::localise`]), which reads that table again on both sides.
//!
//! Why not "the export rows of these chunks against the target rows in [lo, hi)": an export
//! chunk is a run of rows in file order, and nothing ties a file's order to the key order, so no
//! key range selects exactly a chunk's rows. Comparing per part would need both sides to select
//! the same rows; comparing per table after adding the parts needs only that each side's parts
//! partition that side's rows, which the cuts above guarantee.

use super::expect::orphans::Nulled;
use super::expect::read::{self, Unit};
use super::expect::{self, TableExpect};
use super::scan::{self, ExportSide};
use super::table::{Agg, TablePlan};
use super::{Status, TableReport, VerifyOptions, VerifyReport, localise, sql};
use crate::ddl::ident;
use crate::error::{Error, Result};
use crate::export::Export;
use crate::mapping::Mapping;
use crate::pages::Reader;
use crate::store::ObjectMeta;
use crate::target::{Target, within};
use crate::types::PgType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows of one part, on either side, by default. At the verifier's local rate (several hundred
/// thousand export rows a second; a target page of ~10 s holds tens of thousands of rows) a part
/// takes well under a minute, so even ten times slower it ends far inside Lambda's 15 minutes.
pub const ITEM_ROWS: u64 = 1_000_000;
/// Bound on reading a table's smallest and largest key: two index lookups.
const BOUNDS_TIMEOUT: Duration = Duration::from_secs(60);

/// Consecutive row groups of one part file, as an item carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitRef {
    /// The part file's key, relative to the export's root.
    pub key: String,
    pub size: u64,
    /// First row group.
    pub first: usize,
    /// Rows of each row group, from the footer.
    pub rows: Vec<u64>,
}

impl From<&Unit> for UnitRef {
    fn from(u: &Unit) -> Self {
        UnitRef {
            key: u.file.key.clone(),
            size: u.file.size,
            first: u.first,
            rows: u.rows.clone(),
        }
    }
}

impl From<&UnitRef> for Unit {
    fn from(u: &UnitRef) -> Self {
        Unit {
            file: ObjectMeta {
                key: u.key.clone(),
                size: u.size,
            },
            first: u.first,
            rows: u.rows.clone(),
        }
    }
}

/// A bound of a key range: a value of the key column's type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyBound {
    Int(i64),
    Uuid(uuid::Uuid),
}

impl KeyBound {
    /// The bound as an SQL literal (typed values only: nothing to escape).
    fn sql(&self) -> String {
        match self {
            KeyBound::Int(v) => v.to_string(),
            KeyBound::Uuid(u) => format!("'{}'::uuid", u.hyphenated()),
        }
    }
}

/// `[from, to)` of a table's first key column; no column: the whole table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Inclusive; none: from the first row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<KeyBound>,
    /// Exclusive; none: to the last row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<KeyBound>,
}

impl KeyRange {
    /// The whole table.
    pub fn all() -> KeyRange {
        KeyRange {
            column: None,
            from: None,
            to: None,
        }
    }

    /// The condition on the table's rows, if any.
    pub fn filter(&self) -> Option<String> {
        let column = ident(self.column.as_deref()?);
        let mut parts = Vec::new();
        if let Some(f) = &self.from {
            parts.push(format!("{column} >= {}", f.sql()));
        }
        if let Some(t) = &self.to {
            parts.push(format!("{column} < {}", t.sql()));
        }
        (!parts.is_empty()).then(|| parts.join(" AND "))
    }
}

/// Which side a part reads, and which of its rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "side", rename_all = "snake_case")]
pub enum Side {
    Export { units: Vec<UnitRef> },
    Target { range: KeyRange },
}

impl Side {
    pub fn name(&self) -> &'static str {
        match self {
            Side::Export { .. } => "export",
            Side::Target { .. } => "target",
        }
    }
}

/// One part of the verification: one side of one table, some of its rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyItem {
    /// Source table, `schema.table`.
    pub table: String,
    #[serde(flatten)]
    pub side: Side,
}

/// What a part computed: the aggregates of its rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartAgg {
    pub table: String,
    /// `export` or `target`.
    pub side: String,
    pub agg: Agg,
}

/// The tables to verify: every table of the mapping, or `options.tables`.
fn tables<'m>(
    mapping: &'m Mapping,
    options: &VerifyOptions,
) -> Result<Vec<&'m crate::mapping::TableMapping>> {
    if let Some(names) = &options.tables {
        for n in names {
            if mapping.table(n).is_none() {
                return Err(Error::Usage(format!(
                    "table {n:?} is not in the mapping (tables are named schema.table, as in the export)"
                )));
            }
        }
    }
    Ok(mapping
        .tables
        .iter()
        .filter(|t| {
            options
                .tables
                .as_ref()
                .is_none_or(|n| n.contains(&t.source))
        })
        .collect())
}

/// The parts of every table, about `item_rows` rows each: export parts from the part files'
/// footers, target parts from the target's key bounds (see the module doc). Read-only.
pub async fn plan_items(
    export: &Export,
    mapping: &Mapping,
    target: &Target,
    item_rows: u64,
    options: &VerifyOptions,
) -> Result<Vec<VerifyItem>> {
    let item_rows = item_rows.max(1);
    let mut items = Vec::new();
    for t in tables(mapping, options)? {
        let plan = TablePlan::new(t)?;
        let units = read::units(export, &t.source).await?;
        let mut group: Vec<UnitRef> = Vec::new();
        let mut rows = 0;
        let mut total = 0;
        for u in &units {
            group.push(u.into());
            rows += u.total();
            total += u.total();
            if rows >= item_rows {
                items.push(VerifyItem {
                    table: t.source.clone(),
                    side: Side::Export {
                        units: std::mem::take(&mut group),
                    },
                });
                rows = 0;
            }
        }
        if !group.is_empty() {
            items.push(VerifyItem {
                table: t.source.clone(),
                side: Side::Export { units: group },
            });
        }
        for range in key_ranges(target, &plan, total.div_ceil(item_rows)).await? {
            items.push(VerifyItem {
                table: t.source.clone(),
                side: Side::Target { range },
            });
        }
    }
    Ok(items)
}

/// About `n` ranges covering the whole key space of the table's first key column.
async fn key_ranges(target: &Target, plan: &TablePlan, n: u64) -> Result<Vec<KeyRange>> {
    if n <= 1 || !plan.has_primary_key {
        return Ok(vec![KeyRange::all()]);
    }
    let col = &plan.cols[plan.key[0]];
    let bounds: Vec<KeyBound> = match col.ty {
        PgType::SmallInt | PgType::Integer | PgType::BigInt => {
            let Some((lo, hi)) = int_bounds(target, plan, &col.name).await? else {
                return Ok(vec![KeyRange::all()]);
            };
            let span = i128::from(hi) - i128::from(lo) + 1;
            let mut cuts: Vec<i64> = (1..n)
                .map(|i| (i128::from(lo) + span * i128::from(i) / i128::from(n)) as i64)
                .collect();
            cuts.dedup();
            cuts.into_iter().map(KeyBound::Int).collect()
        }
        PgType::Uuid => (1..n)
            .map(|i| {
                KeyBound::Uuid(uuid::Uuid::from_u128(
                    u128::MAX / u128::from(n) * u128::from(i),
                ))
            })
            .collect(),
        _ => return Ok(vec![KeyRange::all()]),
    };
    let mut out = Vec::with_capacity(bounds.len() + 1);
    let mut from = None;
    for b in bounds {
        out.push(KeyRange {
            column: Some(col.name.clone()),
            from: from.take(),
            to: Some(b.clone()),
        });
        from = Some(b);
    }
    out.push(KeyRange {
        column: Some(col.name.clone()),
        from,
        to: None,
    });
    Ok(out)
}

/// The smallest and largest value of integer key column `column` in the target (`None`: no
/// rows): each an `ORDER BY .. LIMIT 1` that the primary key's index answers.
async fn int_bounds(target: &Target, plan: &TablePlan, column: &str) -> Result<Option<(i64, i64)>> {
    let c = ident(column);
    let sql = format!(
        "SELECT (SELECT {c} FROM {t} ORDER BY {c} LIMIT 1)::text, (SELECT {c} FROM {t} ORDER BY {c} DESC LIMIT 1)::text",
        t = plan.qualified
    );
    let what = format!("verify {}: key bounds", plan.target);
    let (lo, hi): (Option<String>, Option<String>) =
        crate::migrate::retrying(target, &what, |client| {
            let (sql, what) = (&sql, &what);
            async move {
                within(BOUNDS_TIMEOUT, || what.clone(), async {
                    let row = client
                        .query_one(sql.as_str(), &[])
                        .await
                        .map_err(|e| Error::statement(what.clone(), sql, e))?;
                    Ok((row.get(0), row.get(1)))
                })
                .await
            }
        })
        .await?;
    let parse = |v: String| {
        v.parse::<i64>().map_err(|_| Error::UnexpectedAnswer {
            what: what.clone(),
            reason: format!("{v:?} is not an integer key"),
        })
    };
    Ok(match (lo, hi) {
        (Some(lo), Some(hi)) => Some((parse(lo)?, parse(hi)?)),
        _ => None,
    })
}

/// The aggregates of one part. `export` is needed by export parts only (a target part reads
/// the target alone). Read-only: running it twice computes the same.
pub async fn run_item(
    export: Option<Arc<Export>>,
    mapping: &Mapping,
    target: &Target,
    nulled: &Nulled,
    item: &VerifyItem,
    options: &VerifyOptions,
) -> Result<PartAgg> {
    let t = mapping.table(&item.table).ok_or_else(|| {
        Error::Usage(format!(
            "verify item: table {:?} is not in the mapping",
            item.table
        ))
    })?;
    let plan = Arc::new(TablePlan::new(t)?);
    let agg = match &item.side {
        Side::Export { units } => {
            let export = export.ok_or_else(|| {
                Error::Usage(format!(
                    "verify item of {}: an export part without the export",
                    item.table
                ))
            })?;
            let side = Arc::new(ExportSide {
                export,
                plan: plan.clone(),
                expect: Arc::new(TableExpect::new(mapping, t, nulled)?),
            });
            let units: Vec<Unit> = units.iter().map(Unit::from).collect();
            scan::scan(&side, &units, None, options.parallel).await?.0
        }
        Side::Target { range } => {
            let mut reader = Reader::new(target, super::SESSION);
            sql::check_bytea_hex(reader.client().await?).await?;
            let mut pager = plan.pager(options.pages);
            pager.filter = range.filter();
            sql::aggregate(&mut reader, &plan, &pager).await?
        }
    };
    Ok(PartAgg {
        table: item.table.clone(),
        side: item.side.name().to_string(),
        agg,
    })
}

/// Folds parts into each table's two sides, then compares them.
pub struct Combiner {
    tables: BTreeMap<String, (TablePlan, Agg, Agg)>,
    started: Instant,
}

impl Combiner {
    /// Empty sides for every table verified (a table whose export has no rows still has its
    /// target counted).
    pub fn new(mapping: &Mapping, options: &VerifyOptions) -> Result<Combiner> {
        let mut out = BTreeMap::new();
        for t in tables(mapping, options)? {
            let plan = TablePlan::new(t)?;
            let n = plan.cols.len();
            out.insert(t.source.clone(), (plan, Agg::new(n), Agg::new(n)));
        }
        Ok(Combiner {
            tables: out,
            started: Instant::now(),
        })
    }

    /// Adds one part to its table's side.
    pub fn add(&mut self, part: &PartAgg) -> Result<()> {
        let (plan, exp, tgt) = self.tables.get_mut(&part.table).ok_or_else(|| {
            Error::Usage(format!(
                "a verify part names table {:?}, which is not verified",
                part.table
            ))
        })?;
        match part.side.as_str() {
            "export" => exp.absorb(&part.agg, plan),
            "target" => tgt.absorb(&part.agg, plan),
            other => Err(Error::Usage(format!(
                "a verify part of {} names side {other:?}, not export or target",
                part.table
            ))),
        }
    }

    /// The report: per table both sides compared, and a table that differs localised to rows.
    pub async fn finish(
        self,
        export: Arc<Export>,
        mapping: Arc<Mapping>,
        target: &Target,
        nulled: &Nulled,
        options: &VerifyOptions,
    ) -> Result<VerifyReport> {
        let mut reports: Vec<TableReport> = Vec::new();
        let mut rows = 0;
        for t in &mapping.tables {
            let Some((plan, exp, tgt)) = self.tables.get(&t.source) else {
                continue;
            };
            let started = Instant::now();
            rows += exp.rows;
            let mut report = super::table_report(plan, exp, tgt);
            if report.status == Status::Mismatch {
                let side = Arc::new(ExportSide {
                    export: export.clone(),
                    plan: Arc::new(plan.clone()),
                    expect: Arc::new(expect::TableExpect::new(&mapping, t, nulled)?),
                });
                let units = read::units(&export, &t.source).await?;
                let mut reader = Reader::new(target, super::SESSION);
                localise::localise(&mut reader, &side, &units, exp, options, &mut report).await?;
            }
            report.seconds = started.elapsed().as_secs_f64();
            reports.push(report);
        }
        Ok(super::whole_report(
            &export,
            &mapping,
            target,
            self.started,
            rows,
            reports,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_typed_literals_and_items_round_trip() {
        let r = KeyRange {
            column: Some("order id".into()),
            from: Some(KeyBound::Int(-5)),
            to: Some(KeyBound::Int(100)),
        };
        assert_eq!(
            r.filter().as_deref(),
            Some("\"order id\" >= -5 AND \"order id\" < 100")
        );
        assert_eq!(KeyRange::all().filter(), None);
        let u = KeyRange {
            column: Some("id".into()),
            from: None,
            to: Some(KeyBound::Uuid(uuid::Uuid::from_u128(u128::MAX / 2))),
        };
        assert_eq!(
            u.filter().as_deref(),
            Some("\"id\" < '7fffffff-ffff-ffff-ffff-ffffffffffff'::uuid")
        );
        let item = VerifyItem {
            table: "public.orders".into(),
            side: Side::Target { range: r },
        };
        let json = serde_json::to_value(&item).unwrap();
        assert_eq!(json["side"], "target");
        assert_eq!(json["range"]["from"]["int"], -5);
        assert_eq!(serde_json::from_value::<VerifyItem>(json).unwrap(), item);
    }
}
