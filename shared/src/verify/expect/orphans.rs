//! The verifier's own orphan detection: a reference column with `on_orphan = "null"` holds NULL
//! in the target where its parent row is not in the export. `keep` loads the key anyway and
//! `fail` loads nothing, so only `null` changes what a row should hold.
//!
//! Parents' keys are read from the export with this tree's own reader; memory is one hash set of
//! i64 per parent table involved.

use super::read;
use super::value::Raw;
use crate::error::{Error, Result};
use crate::export::Export;
use crate::mapping::{Mapping, OnOrphan, Rewrite};
use futures::StreamExt;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Per (source table, column): the old reference values that load as NULL.
pub type Nulled = BTreeMap<(String, String), Arc<HashSet<i64>>>;

/// Every integer of `column` in `table`'s part files.
async fn values(export: &Export, table: &str, column: &str) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    let columns = [column.to_string()];
    for unit in read::units(export, table).await? {
        let name = export.store.display(&unit.file.key);
        let mut stream = read::open(export, &unit, &columns).await?;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let a = batch.column(0);
            for r in 0..batch.num_rows() {
                match super::raw(a, r) {
                    None if a.is_null(r) => {}
                    Some(Raw::Int(v)) => out.push(v),
                    _ => {
                        return Err(Error::Parquet {
                            file: name,
                            reason: format!(
                                "column {column:?} is {}, not an integer: it cannot be a rewritten key or reference",
                                a.data_type()
                            ),
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The references loaded as NULL, for every `on_orphan = "null"` column of the mapping.
pub async fn find(export: &Export, mapping: &Mapping) -> Result<Nulled> {
    let mut parents: BTreeMap<String, Arc<HashSet<i64>>> = BTreeMap::new();
    let mut out = Nulled::new();
    for t in &mapping.tables {
        for c in t.columns.iter().filter(|c| {
            !c.drop && c.rewrite == Rewrite::Reference && c.on_orphan == Some(OnOrphan::Null)
        }) {
            let Some(parent) = &c.references else {
                continue;
            };
            let keys = match parents.get(parent) {
                Some(k) => k.clone(),
                None => {
                    let key = mapping
                        .table(parent)
                        .and_then(|p| {
                            p.columns
                                .iter()
                                .find(|pc| pc.rewrite == Rewrite::Key && !pc.drop)
                        })
                        .ok_or_else(|| Error::Mapping {
                            file: "mapping".into(),
                            reason: format!(
                                "{}.{} references {parent}, which has no rewritten key",
                                t.source, c.name
                            ),
                        })?;
                    let set: HashSet<i64> = values(export, parent, &key.name)
                        .await?
                        .into_iter()
                        .collect();
                    let set = Arc::new(set);
                    parents.insert(parent.clone(), set.clone());
                    set
                }
            };
            let missing: HashSet<i64> = values(export, &t.source, &c.name)
                .await?
                .into_iter()
                .filter(|v| !keys.contains(v))
                .collect();
            if !missing.is_empty() {
                out.insert((t.source.clone(), c.name.clone()), Arc::new(missing));
            }
        }
    }
    Ok(out)
}
