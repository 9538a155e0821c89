//! The independent export side: what the target should hold, computed from the export's values
//! as the files hold them (Parquet integers, floats, booleans and bytes; PostgreSQL text output
//! for everything else) straight to the canonical text of each target column, by the mapping's
//! declared transformation: renames and drops, `keep_old`, key and reference rewrites
//! (`UUIDv5(namespace, "<schema>.<table>:<old key>")`), orphan policies, type mappings
//! (arrays -> jsonb, money -> numeric, ...).
//!
//! This tree imports none of the loader's code (`convert`, `keys`, `load`, `chunk`): its value
//! texts ([`value`], [`numeric`], [`float`], [`datetime`], [`json`]), its UUIDv5 ([`uuid5`], on
//! the `sha1` crate), its orphan detection ([`orphans`]) and its reading of part files ([`read`])
//! are its own, so a wrong conversion, key, orphan rule or skipped row group in the loader shows
//! as a difference instead of appearing on both sides. What it shares, and why that cannot hide
//! a wrong value, is listed in [`super`]'s module doc.

pub mod datetime;
pub mod float;
#[cfg(test)]
mod frozen;
pub mod json;
pub mod numeric;
pub mod orphans;
pub mod read;
pub mod uuid5;
pub mod value;

use crate::error::{Error, Location, Result};
use crate::mapping::{Mapping, OnOrphan, Rewrite, TableMapping};
use crate::types::PgType;
use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Int16Array, Int32Array, Int64Array,
    LargeBinaryArray, LargeStringArray, StringArray, StringViewArray,
};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use std::collections::HashSet;
use std::sync::Arc;
use value::Raw;

/// How one target column's value is made.
#[derive(Debug, Clone)]
enum Rule {
    /// The source value converted to the target type.
    Plain { source: PgType, target: PgType },
    /// The new key of the table's own integer key.
    Key { table: String },
    /// The old integer key itself (`keep_old`), as its source type prints it.
    KeepOld,
    /// The new key of the parent row; NULL when the parent is missing and the policy says so.
    Reference {
        parent: String,
        nulled: Option<Arc<HashSet<i64>>>,
    },
}

#[derive(Debug, Clone)]
struct Column {
    /// Index into the projection.
    source: usize,
    rule: Rule,
}

/// Canonical texts of one table's rows, in the target's column order.
#[derive(Debug, Clone)]
pub struct TableExpect {
    namespace: [u8; 16],
    columns: Vec<Column>,
    /// Export column names read (each once).
    projection: Vec<String>,
    /// Index into the projection of the rewritten key, for naming rows by their old key.
    key_source: Option<usize>,
}

/// Why a value has no expected text; the caller adds the location.
#[derive(Debug, Clone)]
pub struct ValueError {
    pub column: String,
    pub value: String,
    pub expected: String,
    pub reason: String,
}

impl TableExpect {
    /// The expectation of `table`; `nulled` holds, per (table, column) with `on_orphan =
    /// "null"`, the references whose parent is missing ([`orphans::find`]).
    pub fn new(
        mapping: &Mapping,
        table: &TableMapping,
        nulled: &orphans::Nulled,
    ) -> Result<TableExpect> {
        let mut projection: Vec<String> = Vec::new();
        let mut columns = Vec::new();
        let mut key_source = None;
        for c in table.columns.iter().filter(|c| !c.drop) {
            let source = match projection.iter().position(|p| *p == c.name) {
                Some(i) => i,
                None => {
                    projection.push(c.name.clone());
                    projection.len() - 1
                }
            };
            let rule = match c.rewrite {
                Rewrite::None => Rule::Plain {
                    source: c.source_type.clone(),
                    target: c.target_type.clone(),
                },
                Rewrite::Key => {
                    key_source = Some(source);
                    Rule::Key {
                        table: table.source.clone(),
                    }
                }
                Rewrite::Reference => Rule::Reference {
                    parent: c.references.clone().ok_or_else(|| Error::Mapping {
                        file: "mapping".into(),
                        reason: format!(
                            "table {}, column {}: a rewritten reference needs references",
                            table.source, c.name
                        ),
                    })?,
                    nulled: match c.on_orphan.unwrap_or_default() {
                        OnOrphan::Null => {
                            nulled.get(&(table.source.clone(), c.name.clone())).cloned()
                        }
                        OnOrphan::Keep | OnOrphan::Fail => None,
                    },
                },
            };
            columns.push(Column { source, rule });
            if c.keep_old.is_some() && c.rewrite == Rewrite::Key {
                columns.push(Column {
                    source,
                    rule: Rule::KeepOld,
                });
            }
        }
        Ok(TableExpect {
            namespace: *mapping.migration.namespace.as_bytes(),
            columns,
            projection,
            key_source,
        })
    }

    /// Export columns to read.
    pub fn projection(&self) -> &[String] {
        &self.projection
    }

    /// The projection's arrays in a record batch.
    pub fn arrays<'a>(&self, batch: &'a RecordBatch, file: &str) -> Result<Vec<&'a ArrayRef>> {
        self.projection
            .iter()
            .map(|n| {
                batch.column_by_name(n).ok_or_else(|| Error::Parquet {
                    file: file.to_string(),
                    reason: format!("column {n:?} missing from a record batch"),
                })
            })
            .collect()
    }

    /// The old key of row `r` (the rewritten key's integer), for naming the row.
    pub fn old_key(&self, arrays: &[&ArrayRef], r: usize) -> Option<String> {
        let a = arrays.get(self.key_source?)?;
        match raw(a, r) {
            Some(Raw::Int(v)) => Some(v.to_string()),
            _ => None,
        }
    }

    /// Canonical texts of row `r` into `out` (one per target column; None: NULL).
    pub fn row(
        &self,
        arrays: &[&ArrayRef],
        r: usize,
        names: &[String],
        out: &mut [Option<String>],
    ) -> std::result::Result<(), ValueError> {
        for (i, col) in self.columns.iter().enumerate() {
            let array = arrays[col.source];
            let v = raw(array, r);
            let fail = |expected: String, reason: String| ValueError {
                column: names[i].clone(),
                value: v.map_or_else(|| "NULL".into(), |v| v.show()),
                expected,
                reason,
            };
            let slot = &mut out[i];
            let Some(v) = v else {
                if matches!(col.rule, Rule::Key { .. } | Rule::KeepOld) {
                    return Err(fail("key".into(), "a primary key is NULL".into()));
                }
                *slot = None;
                continue;
            };
            let mut text = slot.take().unwrap_or_default();
            text.clear();
            let int = |v: Raw| match v {
                Raw::Int(i) => Ok(i),
                other => Err(fail(
                    "integer key".into(),
                    format!("{other:?} is not an integer"),
                )),
            };
            match &col.rule {
                Rule::Plain { source, target } => {
                    value::canonical(source, target, v, &mut text)
                        .map_err(|reason| fail(target.to_string(), reason))?;
                }
                Rule::Key { table } => {
                    uuid5::new_key_text(&self.namespace, table, int(v)?, &mut text)
                }
                Rule::KeepOld => text.push_str(&int(v)?.to_string()),
                Rule::Reference { parent, nulled } => {
                    let old = int(v)?;
                    if nulled.as_ref().is_some_and(|n| n.contains(&old)) {
                        *slot = None;
                        continue;
                    }
                    uuid5::new_key_text(&self.namespace, parent, old, &mut text);
                }
            }
            *slot = Some(text);
        }
        Ok(())
    }
}

impl ValueError {
    /// The error at a location of the export.
    pub fn at(self, file: String, row_group: usize, row: u64) -> Error {
        Error::Convert {
            location: Box::new(Location {
                file,
                row_group,
                row: row as usize,
                column: self.column,
            }),
            value: self.value,
            expected: format!("{} (verification's expected value)", self.expected),
            reason: self.reason,
        }
    }
}

/// A value of an Arrow array as the export holds it; None for NULL or an unknown array type.
pub fn raw(a: &ArrayRef, r: usize) -> Option<Raw<'_>> {
    if a.is_null(r) {
        return None;
    }
    let any = a.as_any();
    Some(match a.data_type() {
        DataType::Int16 => Raw::Int(i64::from(any.downcast_ref::<Int16Array>()?.value(r))),
        DataType::Int32 => Raw::Int(i64::from(any.downcast_ref::<Int32Array>()?.value(r))),
        DataType::Int64 => Raw::Int(any.downcast_ref::<Int64Array>()?.value(r)),
        DataType::Float32 => Raw::F32(a.as_primitive::<arrow::datatypes::Float32Type>().value(r)),
        DataType::Float64 => Raw::F64(a.as_primitive::<arrow::datatypes::Float64Type>().value(r)),
        DataType::Boolean => Raw::Bool(any.downcast_ref::<BooleanArray>()?.value(r)),
        DataType::Binary => Raw::Bytes(any.downcast_ref::<BinaryArray>()?.value(r)),
        DataType::LargeBinary => Raw::Bytes(any.downcast_ref::<LargeBinaryArray>()?.value(r)),
        DataType::Utf8 => Raw::Str(any.downcast_ref::<StringArray>()?.value(r)),
        DataType::LargeUtf8 => Raw::Str(any.downcast_ref::<LargeStringArray>()?.value(r)),
        DataType::Utf8View => Raw::Str(any.downcast_ref::<StringViewArray>()?.value(r)),
        _ => return None,
    })
}

/// True when an Arrow array type is one [`raw`] reads.
pub fn readable(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Boolean
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
    )
}
