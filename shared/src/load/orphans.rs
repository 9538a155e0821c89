//! Orphan references: values of a rewritten reference whose parent row is not in the export.
//!
//! Found before anything is written, by reading only the key column of each parent table and the
//! reference column of each child (projections: a few bytes per row). What happens to each
//! orphan is the column's `on_orphan`: `fail` stops here naming the first row, `null` and `keep`
//! load it and the report counts and lists it. Nothing is dropped silently, unlike an inner join.
//!
//! Memory: the parent's keys as a hash set of i64 (about 16-32 bytes a key).

use super::encode::Orphans;
use super::read;
use crate::error::{Error, Location, Result};
use crate::export::Export;
use crate::mapping::{Mapping, OnOrphan, Rewrite};
use arrow::array::{Array, ArrayRef, Int16Array, Int32Array, Int64Array};
use futures::StreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// How many orphan rows a report lists per column.
pub const EXAMPLES: usize = 20;

/// Orphans of one reference column.
#[derive(Debug, Clone, Serialize)]
pub struct OrphanReport {
    pub table: String,
    pub column: String,
    pub parent: String,
    pub on_orphan: String,
    pub count: u64,
    /// The first few: where, and which value.
    pub examples: Vec<String>,
}

fn ints(array: &ArrayRef) -> Option<Vec<Option<i64>>> {
    let any = array.as_any();
    if let Some(a) = any.downcast_ref::<Int32Array>() {
        return Some(a.iter().map(|v| v.map(i64::from)).collect());
    }
    if let Some(a) = any.downcast_ref::<Int64Array>() {
        return Some(a.iter().collect());
    }
    if let Some(a) = any.downcast_ref::<Int16Array>() {
        return Some(a.iter().map(|v| v.map(i64::from)).collect());
    }
    None
}

/// Calls `f(file, row group, row, value)` for every value of `column` in `table`'s files.
async fn for_each_value(
    export: &Export,
    table: &str,
    column: &str,
    mut f: impl FnMut(&str, usize, usize, Option<i64>) -> Result<()>,
) -> Result<()> {
    let t = export.table(table).ok_or_else(|| Error::Mapping {
        file: "mapping".into(),
        reason: format!("table {table} is not in the export"),
    })?;
    for obj in &t.files {
        let name = export.store.display(&obj.key);
        let footer = export.footer(obj).await?;
        for rg in 0..footer.row_groups.len() {
            let mut stream =
                read::open_object(export, obj, Some(vec![rg]), &[column.to_string()], 65_536)
                    .await?;
            let mut row = 0usize;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| Error::Parquet {
                    file: name.clone(),
                    reason: format!("unreadable data in row group {rg}: {e}"),
                })?;
                let values = ints(batch.column(0)).ok_or_else(|| Error::Parquet {
                    file: name.clone(),
                    reason: format!(
                        "column {column:?} is {}, not an integer: it cannot be a rewritten key or reference",
                        batch.column(0).data_type()
                    ),
                })?;
                for v in values {
                    f(&name, rg, row, v)?;
                    row += 1;
                }
            }
        }
    }
    Ok(())
}

/// Finds every orphan reference of the mapping. With `on_orphan = "fail"` the first one found is
/// an error; otherwise it is returned for the encoder (to load per policy) and the report.
pub async fn scan(export: &Export, mapping: &Mapping) -> Result<(Orphans, Vec<OrphanReport>)> {
    let mut parents: BTreeMap<String, Arc<HashSet<i64>>> = BTreeMap::new();
    let mut orphans = Orphans::new();
    let mut reports = Vec::new();
    for t in &mapping.tables {
        for c in t
            .columns
            .iter()
            .filter(|c| c.rewrite == Rewrite::Reference && !c.drop)
        {
            let Some(parent) = c.references.clone() else {
                continue;
            };
            let keys = match parents.get(&parent) {
                Some(k) => k.clone(),
                None => {
                    let pm = mapping
                        .table(&parent)
                        .and_then(|p| p.key_column())
                        .ok_or_else(|| Error::Mapping {
                            file: "mapping".into(),
                            reason: format!(
                                "{}.{} references {parent}, which has no rewritten key",
                                t.source, c.name
                            ),
                        })?;
                    let mut set = HashSet::new();
                    for_each_value(export, &parent, &pm.name, |_, _, _, v| {
                        if let Some(v) = v {
                            set.insert(v);
                        }
                        Ok(())
                    })
                    .await?;
                    let set = Arc::new(set);
                    parents.insert(parent.clone(), set.clone());
                    set
                }
            };
            let policy = c.on_orphan.unwrap_or_default();
            let mut found = HashSet::new();
            let mut count = 0u64;
            let mut examples = Vec::new();
            for_each_value(export, &t.source, &c.name, |file, rg, row, v| {
                let Some(v) = v else { return Ok(()) };
                if keys.contains(&v) {
                    return Ok(());
                }
                let location = Location {
                    file: file.to_string(),
                    row_group: rg,
                    row,
                    column: c.name.clone(),
                };
                if policy == OnOrphan::Fail {
                    return Err(Error::Orphan {
                        location: Box::new(location),
                        value: v.to_string(),
                        parent: parent.clone(),
                    });
                }
                count += 1;
                found.insert(v);
                if examples.len() < EXAMPLES {
                    examples.push(format!("{location}: value {v}"));
                }
                Ok(())
            })
            .await?;
            if count > 0 {
                orphans.insert((t.source.clone(), c.name.clone()), Arc::new(found));
                reports.push(OrphanReport {
                    table: t.source.clone(),
                    column: c.name.clone(),
                    parent: parent.clone(),
                    on_orphan: format!("{policy:?}").to_lowercase(),
                    count,
                    examples,
                });
            }
        }
    }
    Ok((orphans, reports))
}
