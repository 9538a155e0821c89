//! `verify --source URL`: the target against the live source database, for users who can reach
//! it, paged by key: the source is read a primary-key page at a time (one short statement), and
//! the target rows of that page's keys are fetched in one short statement too.
//!
//! Source values are read as their text output (in the export's session settings) and put in the
//! form the export holds them (integers, floats, booleans and bytea typed), then go through the
//! same independent expectation as the export ([`super::expect`]): what the target should hold.
//!
//! The live source has moved on since the snapshot, so a difference is classified against the
//! export (the snapshot): when the target holds what the export holds, the source changed after
//! the snapshot (`after_snapshot`: changed, inserted, deleted); otherwise it is a migration
//! error, listed as `verify` lists them (export against target).
//!
//! Rows only in the target are counted (target rows minus rows matched by key); they are listed
//! when the source key of a target row is known (a key kept as it is, or a rewritten key with its
//! `keep_old` column). A table without a primary key has no key to page by or match on: it is
//! verified against the export alone.

use super::expect::{self, TableExpect, read};
use super::localise::report_differences;
use super::report::{AfterSnapshot, ColumnDiff, DiffKind, Difference, Status, TableReport};
use super::rowtext;
use super::scan::{self, ExportSide};
use super::table::{Agg, Entry, TablePlan};
use super::{BUCKETS, SESSION, VerifyOptions, VerifyReport};
use crate::ddl::{ident, qualified};
use crate::error::{Error, Result};
use crate::export::Export;
use crate::mapping::{Mapping, Rewrite, TableMapping};
use crate::pages::{Cursor, KeyColumn, Pager, Reader};
use crate::target::Target;
use crate::types::PgType;
use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Float32Array, Float64Array, Int64Array, StringArray,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

/// The export's session settings, under which the source's `::text` is what the export holds.
pub const SOURCE_SESSION: &[(&str, &str)] = &[
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, MDY"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
    ("lc_monetary", "C"),
];

/// A source column's values as the export would hold them.
fn column_array(ty: &PgType, texts: &[Option<String>]) -> std::result::Result<ArrayRef, String> {
    let bad = |t: &str| format!("{t:?} is not a {ty} text");
    Ok(match ty {
        PgType::SmallInt | PgType::Integer | PgType::BigInt => Arc::new(
            texts
                .iter()
                .map(|t| {
                    t.as_deref()
                        .map(|t| t.parse::<i64>().map_err(|_| bad(t)))
                        .transpose()
                })
                .collect::<std::result::Result<Int64Array, String>>()?,
        ),
        PgType::Real => Arc::new(
            texts
                .iter()
                .map(|t| {
                    t.as_deref()
                        .map(|t| float(t).map(|v| v as f32).ok_or_else(|| bad(t)))
                        .transpose()
                })
                .collect::<std::result::Result<Float32Array, String>>()?,
        ),
        PgType::Double => Arc::new(
            texts
                .iter()
                .map(|t| {
                    t.as_deref()
                        .map(|t| float(t).ok_or_else(|| bad(t)))
                        .transpose()
                })
                .collect::<std::result::Result<Float64Array, String>>()?,
        ),
        PgType::Boolean => Arc::new(
            texts
                .iter()
                .map(|t| t.as_deref().map(|t| t == "true"))
                .collect::<BooleanArray>(),
        ),
        PgType::Bytea => {
            let bytes = texts
                .iter()
                .map(|t| {
                    t.as_deref()
                        .map(|t| unhex(t).ok_or_else(|| bad(t)))
                        .transpose()
                })
                .collect::<std::result::Result<Vec<Option<Vec<u8>>>, String>>()?;
            Arc::new(BinaryArray::from_iter(bytes))
        }
        _ => Arc::new(texts.iter().map(|t| t.as_deref()).collect::<StringArray>()),
    })
}

fn float(t: &str) -> Option<f64> {
    match t {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        t => t.parse().ok(),
    }
}

fn unhex(t: &str) -> Option<Vec<u8>> {
    let h = t.strip_prefix("\\x")?;
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// One table's source side.
struct SourceTable<'a> {
    mapping: &'a TableMapping,
    plan: Arc<TablePlan>,
    expect: Arc<TableExpect>,
    /// Source type of each projected column.
    types: Vec<PgType>,
    /// The source primary key, in the target key's order.
    key: Vec<KeyColumn>,
    /// Per target key column: how its source value is found in a target row (the target
    /// column's own text, or the `keep_old` column's), None when it cannot be.
    key_back: Vec<Option<usize>>,
}

impl<'a> SourceTable<'a> {
    fn new(
        mapping: &Mapping,
        t: &'a TableMapping,
        nulled: &expect::orphans::Nulled,
    ) -> Result<Self> {
        let plan = Arc::new(TablePlan::new(t)?);
        let expect = Arc::new(TableExpect::new(mapping, t, nulled)?);
        let types = expect
            .projection()
            .iter()
            .map(|n| {
                t.columns
                    .iter()
                    .find(|c| &c.name == n)
                    .map(|c| c.source_type.clone())
                    .unwrap_or(PgType::Text)
            })
            .collect();
        let mut key = Vec::new();
        let mut key_back = Vec::new();
        for &k in &plan.key {
            let name = &plan.cols[k].name;
            let c = t
                .columns
                .iter()
                .find(|c| !c.drop && &c.target == name)
                .ok_or_else(|| Error::Mapping {
                    file: "mapping".into(),
                    reason: format!(
                        "table {}: key column {name:?} is not a mapped column",
                        t.source
                    ),
                })?;
            key.push(KeyColumn {
                name: c.name.clone(),
                sql_type: c.source_type.to_string(),
            });
            key_back.push(match c.rewrite {
                Rewrite::Key => plan.keep_old,
                _ => Some(k),
            });
        }
        Ok(SourceTable {
            mapping: t,
            plan,
            expect,
            types,
            key,
            key_back,
        })
    }
}

/// The rows of `table` whose key columns (`key`, SQL types `types`) are among `keys`, as
/// `SELECT <select> FROM <table> AS p WHERE (keys) IN (unnest of text arrays)`.
fn by_keys_sql(select: &str, table: &str, key: &[(String, String)]) -> String {
    let cols: Vec<String> = key.iter().map(|(n, _)| format!("p.{}", ident(n))).collect();
    let casts: Vec<String> = key
        .iter()
        .enumerate()
        .map(|(i, (_, t))| format!("CAST(u.a{i} AS {t})"))
        .collect();
    let arrays: Vec<String> = (1..=key.len()).map(|i| format!("${i}::text[]")).collect();
    let names: Vec<String> = (0..key.len()).map(|i| format!("a{i}")).collect();
    format!(
        "SELECT {select} FROM {table} AS p WHERE ({}) IN (SELECT {} FROM unnest({}) AS u({}))",
        cols.join(", "),
        casts.join(", "),
        arrays.join(", "),
        names.join(", ")
    )
}

async fn by_keys(
    reader: &mut Reader<'_>,
    what: &str,
    sql: &str,
    keys: &[Vec<String>],
) -> Result<Vec<tokio_postgres::Row>> {
    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = keys
        .iter()
        .map(|k| k as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    reader.query(what, sql, &refs).await
}

/// A row's difference candidate, by key text.
enum Candidate {
    Differs { source: Entry, target: Entry },
    Missing { source: Entry },
    Extra { target: Entry },
}

fn texts_sql(plan: &TablePlan) -> String {
    plan.cols
        .iter()
        .map(|c| super::sql::text_sql(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn entry_of(
    plan: &TablePlan,
    texts: Vec<Option<String>>,
    old_key: Option<String>,
) -> (String, Entry) {
    let (mut row, mut key) = (String::new(), String::new());
    plan.texts(&texts, &mut row, &mut key);
    (
        key,
        Entry {
            key_display: plan.key_display(&texts),
            old_key: old_key.or_else(|| plan.keep_old.and_then(|i| texts[i].clone())),
            hash: rowtext::row_hash(&row),
            texts,
        },
    )
}

fn column_diffs(plan: &TablePlan, a: &Entry, b: &Entry) -> Vec<ColumnDiff> {
    plan.cols
        .iter()
        .enumerate()
        .filter(|(i, _)| a.texts[*i] != b.texts[*i])
        .map(|(i, c)| ColumnDiff {
            column: c.name.clone(),
            export: a.texts[i].clone(),
            target: b.texts[i].clone(),
        })
        .collect()
}

/// Compares one table of the target with the live source; returns (report, rows in source).
async fn table(
    st: &SourceTable<'_>,
    export: &Arc<Export>,
    source: &mut Reader<'_>,
    target: &mut Reader<'_>,
    options: &VerifyOptions,
) -> Result<TableReport> {
    let plan = &st.plan;
    let t = export
        .table(&st.mapping.source)
        .ok_or_else(|| Error::Mapping {
            file: "mapping".into(),
            reason: format!("table {} is not in the export", st.mapping.source),
        })?;
    let mut pager = Pager::new(qualified(&t.schema, &t.name), st.key.clone());
    pager.sizing = options.pages;
    let select = format!(
        "SELECT {} FROM p",
        st.expect
            .projection()
            .iter()
            .map(|n| format!("p.{}::text", ident(n)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let target_key: Vec<(String, String)> = plan
        .key
        .iter()
        .map(|&k| (plan.cols[k].name.clone(), plan.cols[k].ty.to_string()))
        .collect();
    let lookup = by_keys_sql(&texts_sql(plan), &plan.qualified, &target_key);
    let names: Vec<String> = plan.cols.iter().map(|c| c.name.clone()).collect();
    let what_s = format!("verify {} against the source", plan.source);
    let what_t = format!("verify {}: target rows of a source page", plan.target);
    // A source page (one short read), then the target rows of its keys (another).
    let mut source_rows: u64 = 0;
    let mut matched: u64 = 0;
    let mut candidates: BTreeMap<String, Candidate> = BTreeMap::new();
    let file = format!("source table {}", st.mapping.source);
    let mut cursor = Cursor::new(&pager);
    while let Some(page) = source
        .next_page(&pager, &mut cursor, &what_s, Some(&select), Vec::new())
        .await?
    {
        let n = st.types.len();
        let cols: Vec<Vec<Option<String>>> = (0..n)
            .map(|j| page.result.iter().map(|r| r.try_get(j, &what_s)).collect())
            .collect::<Result<_>>()?;
        let arrays: Vec<ArrayRef> = cols
            .iter()
            .zip(&st.types)
            .map(|(c, ty)| column_array(ty, c))
            .collect::<std::result::Result<_, String>>()
            .map_err(|reason| Error::Usage(format!("{what_s}: {reason}")))?;
        let refs: Vec<&ArrayRef> = arrays.iter().collect();
        let mut rows = Vec::with_capacity(page.result.len());
        let mut texts = vec![None; plan.cols.len()];
        for r in 0..page.result.len() {
            st.expect
                .row(&refs, r, &names, &mut texts)
                .map_err(|e| e.at(file.clone(), 0, source_rows + r as u64))?;
            rows.push(entry_of(plan, texts.clone(), st.expect.old_key(&refs, r)));
        }
        source_rows += rows.len() as u64;
        let keys: Vec<Vec<String>> = plan
            .key
            .iter()
            .map(|&k| {
                rows.iter()
                    .map(|(_, e)| e.texts[k].clone().unwrap_or_default())
                    .collect()
            })
            .collect();
        let mut found: HashMap<String, Entry> = HashMap::new();
        for r in by_keys(target, &what_t, &lookup, &keys).await? {
            let texts = (0..plan.cols.len())
                .map(|i| r.try_get(i).map_err(|e| Error::db(what_t.clone(), e)))
                .collect::<Result<Vec<Option<String>>>>()?;
            let (k, e) = entry_of(plan, texts, None);
            found.insert(k, e);
        }
        for (k, s) in rows {
            match found.remove(&k) {
                Some(t) if t.hash == s.hash => matched += 1,
                Some(t) => {
                    candidates.insert(
                        k,
                        Candidate::Differs {
                            source: s,
                            target: t,
                        },
                    );
                }
                None => {
                    candidates.insert(k, Candidate::Missing { source: s });
                }
            }
        }
    }
    // Rows only in the target: counted, and listed when their source keys are known.
    let target_rows = target
        .count(
            &plan.pager(options.pages),
            &format!("count {}", plan.target),
        )
        .await?;
    let in_both = matched
        + candidates
            .values()
            .filter(|c| matches!(c, Candidate::Differs { .. }))
            .count() as u64;
    let extra_count = target_rows.saturating_sub(in_both);
    if extra_count > 0 && st.key_back.iter().all(Option::is_some) {
        let source_key: Vec<(String, String)> = st
            .key
            .iter()
            .map(|k| (k.name.clone(), k.sql_type.clone()))
            .collect();
        let exists = by_keys_sql(
            &st.key
                .iter()
                .map(|k| format!("p.{}::text", ident(&k.name)))
                .collect::<Vec<_>>()
                .join(", "),
            &qualified(&t.schema, &t.name),
            &source_key,
        );
        let list = format!("SELECT {} FROM p", texts_sql(plan));
        let tpager = plan.pager(options.pages);
        let mut cursor = Cursor::new(&tpager);
        while let Some(page) = target
            .next_page(&tpager, &mut cursor, &what_t, Some(&list), Vec::new())
            .await?
        {
            let mut rows = Vec::new();
            for r in &page.result {
                let texts = (0..plan.cols.len())
                    .map(|i| r.try_get(i, &what_t))
                    .collect::<Result<Vec<Option<String>>>>()?;
                rows.push(entry_of(plan, texts, None));
            }
            let back: Vec<Vec<String>> = st
                .key_back
                .iter()
                .map(|b| {
                    rows.iter()
                        .map(|(_, e)| b.and_then(|i| e.texts[i].clone()).unwrap_or_default())
                        .collect()
                })
                .collect();
            let present: std::collections::HashSet<Vec<String>> =
                by_keys(source, &what_s, &exists, &back)
                    .await?
                    .iter()
                    .map(|r| (0..st.key.len()).map(|i| r.get::<_, String>(i)).collect())
                    .collect();
            for (i, (k, e)) in rows.into_iter().enumerate() {
                let src_key: Vec<String> = back.iter().map(|col| col[i].clone()).collect();
                if !present.contains(&src_key) {
                    candidates.insert(k, Candidate::Extra { target: e });
                }
            }
        }
    }
    // Each difference against the export: the snapshot says whether the source moved on.
    let mut export_rows: HashMap<String, Entry> = HashMap::new();
    if !candidates.is_empty() {
        let mut filter = vec![false; BUCKETS];
        for k in candidates.keys() {
            filter[usize::from(rowtext::bucket(k))] = true;
        }
        let side = Arc::new(ExportSide {
            export: export.clone(),
            plan: plan.clone(),
            expect: st.expect.clone(),
        });
        let units = read::units(export, &st.mapping.source).await?;
        let (_, rows) = scan::scan(&side, &units, Some(Arc::new(filter)), options.parallel).await?;
        export_rows = rows
            .into_iter()
            .filter(|(k, _)| candidates.contains_key(k))
            .collect();
    }
    let mut after = AfterSnapshot::default();
    let (mut errors_export, mut errors_target) = (Vec::new(), Vec::new());
    for (k, c) in candidates {
        let exp = export_rows.remove(&k);
        match c {
            Candidate::Differs { source, target } => {
                if exp.as_ref().is_some_and(|e| e.hash == target.hash) {
                    after.changed += 1;
                    after.rows.push(Difference {
                        kind: DiffKind::Differs,
                        key: target.key_display.clone(),
                        old_key: source.old_key.clone(),
                        columns: column_diffs(plan, &source, &target),
                    });
                } else {
                    errors_export.extend(exp.map(|e| (k.clone(), e)));
                    errors_target.push((k, vec![target]));
                }
            }
            Candidate::Missing { source } => match exp {
                None => {
                    after.inserted += 1;
                    after.rows.push(Difference {
                        kind: DiffKind::Missing,
                        key: source.key_display.clone(),
                        old_key: source.old_key.clone(),
                        columns: Vec::new(),
                    });
                }
                Some(e) => errors_export.push((k, e)),
            },
            Candidate::Extra { target } => {
                if exp.as_ref().is_some_and(|e| e.hash == target.hash) {
                    after.deleted += 1;
                    after.rows.push(Difference {
                        kind: DiffKind::Extra,
                        key: target.key_display.clone(),
                        old_key: target.old_key.clone(),
                        columns: Vec::new(),
                    });
                } else {
                    errors_export.extend(exp.map(|e| (k.clone(), e)));
                    errors_target.push((k, vec![target]));
                }
            }
        }
    }
    after
        .rows
        .sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| a.key.cmp(&b.key)));
    after.rows.truncate(options.max_listed);
    let mut report =
        super::table_report(plan, &Agg::new(plan.cols.len()), &Agg::new(plan.cols.len()));
    report.rows_in_export = source_rows;
    report.rows_in_target = target_rows;
    report.fingerprint_export = String::new();
    report.fingerprint_target = String::new();
    report_differences(
        plan,
        errors_export,
        errors_target,
        options.max_listed,
        &mut report,
    );
    // Rows only in the target whose source keys are unknown are counted as extra.
    if !st.key_back.iter().all(Option::is_some) {
        report.extra += extra_count;
    }
    report.status = if report.missing + report.extra + report.differing == 0 {
        Status::Match
    } else {
        Status::Mismatch
    };
    report.after_snapshot = Some(after);
    Ok(report)
}

/// Verifies every table of `mapping` (or `options.tables`) of the target against the live
/// source at `source_url`; tables without a primary key against the export.
pub async fn verify_source(
    export: Arc<Export>,
    mapping: Arc<Mapping>,
    target: &Target,
    source_url: &str,
    options: &VerifyOptions,
) -> Result<VerifyReport> {
    let started = Instant::now();
    let nulled = expect::orphans::find(&export, &mapping).await?;
    let mut source = Reader::source(source_url, SOURCE_SESSION);
    let mut reader = Reader::new(target, SESSION);
    let mut tables = Vec::new();
    let mut rows = 0;
    for t in &mapping.tables {
        if options
            .tables
            .as_ref()
            .is_some_and(|n| !n.contains(&t.source))
        {
            continue;
        }
        let table_started = Instant::now();
        let mut report = if t.primary_key.is_empty() {
            let mut one = options.clone();
            one.tables = Some(vec![t.source.clone()]);
            let r =
                super::verify(export.clone(), mapping.clone(), target, &one, &|_, _| {}).await?;
            r.tables
                .into_iter()
                .next()
                .ok_or_else(|| Error::Usage(format!("verify {}: no report", t.source)))?
        } else {
            let st = SourceTable::new(&mapping, t, &nulled)?;
            table(&st, &export, &mut source, &mut reader, options).await?
        };
        rows += report.rows_in_export;
        report.seconds = table_started.elapsed().as_secs_f64();
        tables.push(report);
    }
    Ok(super::whole_report(
        &export, &mapping, target, started, rows, tables,
    ))
}
