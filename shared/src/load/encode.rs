//! Arrow record batches -> PostgreSQL binary COPY rows, per the mapping.
//!
//! One [`RowEncoder`] per chunk: for each kept column it knows the Arrow column to read, how to
//! convert (typed value, exported text, key or reference rewrite) and the target type. Rows are
//! encoded one at a time into a reusable buffer, so the caller can cut batches at a row boundary
//! by rows and by bytes. A value that does not convert is an error that names the file, row
//! group, row, column and value.

use crate::chunk::Chunk;
use crate::convert::{self, ConvertError};
use crate::error::{Error, Location, Result};
use crate::keys::KeyMaker;
use crate::mapping::{Mapping, OnOrphan, Rewrite, TableMapping};
use crate::types::PgType;
use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Int16Array, Int32Array, Int64Array,
    LargeBinaryArray, LargeStringArray, StringArray, StringViewArray,
};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// DSQL refuses a row over 2 MiB (`dsql.md`): refused here, before sending, naming the row.
pub const DSQL_MAX_ROW_BYTES: usize = 2 * 1024 * 1024;
/// DSQL refuses a non-key value over 1 MiB.
pub const DSQL_MAX_VALUE_BYTES: usize = 1024 * 1024;

/// The COPY binary header: signature, flags, header extension length.
pub const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The COPY binary trailer: a field count of -1.
pub const COPY_TRAILER: &[u8] = &[0xff, 0xff];

/// Orphan references found before the load: `(source table, column) -> old values` whose
/// parent row is not in the export.
pub type Orphans = BTreeMap<(String, String), Arc<HashSet<i64>>>;

enum Convert {
    /// Typed or text value converted to the target type.
    Plain { source: PgType, target: PgType },
    /// Integer key -> deterministic uuid, and maybe the old value too.
    Key {
        maker: KeyMaker,
        keep_old: Option<PgType>,
    },
    /// Integer reference -> the parent's deterministic uuid.
    Reference {
        maker: KeyMaker,
        orphans: Option<Arc<HashSet<i64>>>,
        on_orphan: OnOrphan,
        parent: String,
    },
}

struct Column {
    name: String,
    convert: Convert,
}

/// Encodes rows of one chunk's table.
pub struct RowEncoder {
    columns: Vec<Column>,
    /// Target columns written per row (kept columns plus `keep_old` columns).
    fields: i16,
    file: String,
    /// References loaded as NULL or as a dangling key because their parent is missing.
    pub orphans_loaded: u64,
}

impl RowEncoder {
    /// Builds the encoder of `table` for `chunk`; `file` names the part file in errors.
    pub fn new(
        mapping: &Mapping,
        table: &TableMapping,
        orphans: &Orphans,
        file: String,
    ) -> Result<RowEncoder> {
        let ns = mapping.migration.namespace;
        let mut columns = Vec::new();
        let mut fields = 0i16;
        for c in table.columns.iter().filter(|c| !c.drop) {
            fields += 1;
            let convert = match c.rewrite {
                Rewrite::None => Convert::Plain {
                    source: c.source_type.clone(),
                    target: c.target_type.clone(),
                },
                Rewrite::Key => {
                    if c.keep_old.is_some() {
                        fields += 1;
                    }
                    Convert::Key {
                        maker: KeyMaker::new(ns, &table.source),
                        keep_old: c.keep_old.as_ref().map(|_| c.source_type.clone()),
                    }
                }
                Rewrite::Reference => {
                    let parent = c.references.clone().unwrap_or_default();
                    Convert::Reference {
                        maker: KeyMaker::new(ns, &parent),
                        orphans: orphans
                            .get(&(table.source.clone(), c.name.clone()))
                            .cloned(),
                        on_orphan: c.on_orphan.unwrap_or_default(),
                        parent,
                    }
                }
            };
            columns.push(Column {
                name: c.name.clone(),
                convert,
            });
        }
        Ok(RowEncoder {
            columns,
            fields,
            file,
            orphans_loaded: 0,
        })
    }

    /// Source column names to read from the Parquet file (the projection).
    pub fn source_columns(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// Resolves this encoder's columns in a record batch (by name), once per batch.
    pub fn arrays<'a>(&self, batch: &'a RecordBatch) -> Result<Vec<&'a ArrayRef>> {
        self.columns
            .iter()
            .map(|c| {
                batch.column_by_name(&c.name).ok_or_else(|| Error::Parquet {
                    file: self.file.clone(),
                    reason: format!("column {:?} missing from a record batch", c.name),
                })
            })
            .collect()
    }

    /// Appends row `row` of `arrays` to `out` as one COPY binary tuple. `chunk_row` is the
    /// row's position in the chunk, used to name it in errors.
    pub fn encode_row(
        &mut self,
        arrays: &[&ArrayRef],
        row: usize,
        chunk: &Chunk,
        chunk_row: u64,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let row_start = out.len();
        out.extend_from_slice(&self.fields.to_be_bytes());
        for (col, array) in self.columns.iter_mut().zip(arrays) {
            let res = encode_field(&mut col.convert, array, row, out, &mut self.orphans_loaded);
            let fail = |value: String, expected: String, reason: String| {
                let (rg, r) = chunk.locate(chunk_row);
                Error::Convert {
                    location: Box::new(Location {
                        file: self.file.clone(),
                        row_group: rg,
                        row: r as usize,
                        column: col.name.clone(),
                    }),
                    value,
                    expected,
                    reason,
                }
            };
            match res {
                Ok(()) => {}
                Err(FieldError::Convert(e)) => {
                    return Err(fail(value_text(array, row), e.expected, e.reason));
                }
                Err(FieldError::Orphan { value, parent }) => {
                    let (rg, r) = chunk.locate(chunk_row);
                    return Err(Error::Orphan {
                        location: Box::new(Location {
                            file: self.file.clone(),
                            row_group: rg,
                            row: r as usize,
                            column: col.name.clone(),
                        }),
                        value: value.to_string(),
                        parent,
                    });
                }
                Err(FieldError::TooBig(len)) => {
                    return Err(fail(
                        format!("<{len} bytes>"),
                        "value DSQL can store".into(),
                        format!(
                            "{len} bytes is over DSQL's limit of {DSQL_MAX_VALUE_BYTES} bytes for one value"
                        ),
                    ));
                }
            }
        }
        let len = out.len() - row_start;
        if len > DSQL_MAX_ROW_BYTES {
            let (rg, r) = chunk.locate(chunk_row);
            return Err(Error::Convert {
                location: Box::new(Location {
                    file: self.file.clone(),
                    row_group: rg,
                    row: r as usize,
                    column: "(whole row)".into(),
                }),
                value: format!("<{len} bytes>"),
                expected: "row DSQL can store".into(),
                reason: format!(
                    "{len} bytes is over DSQL's row limit of {DSQL_MAX_ROW_BYTES} bytes"
                ),
            });
        }
        Ok(())
    }
}

enum FieldError {
    Convert(ConvertError),
    Orphan { value: i64, parent: String },
    TooBig(usize),
}

impl From<ConvertError> for FieldError {
    fn from(e: ConvertError) -> Self {
        FieldError::Convert(e)
    }
}

fn int_value(array: &ArrayRef, row: usize) -> Option<i64> {
    match array.data_type() {
        DataType::Int16 => Some(array.as_any().downcast_ref::<Int16Array>()?.value(row) as i64),
        DataType::Int32 => Some(array.as_any().downcast_ref::<Int32Array>()?.value(row) as i64),
        DataType::Int64 => Some(array.as_any().downcast_ref::<Int64Array>()?.value(row)),
        _ => None,
    }
}

fn str_value(array: &ArrayRef, row: usize) -> Option<&str> {
    match array.data_type() {
        DataType::Utf8 => Some(array.as_any().downcast_ref::<StringArray>()?.value(row)),
        DataType::LargeUtf8 => Some(
            array
                .as_any()
                .downcast_ref::<LargeStringArray>()?
                .value(row),
        ),
        DataType::Utf8View => Some(array.as_any().downcast_ref::<StringViewArray>()?.value(row)),
        _ => None,
    }
}

/// The value as text, for error messages (truncated: a message is not a data dump).
fn value_text(array: &ArrayRef, row: usize) -> String {
    if array.is_null(row) {
        return "NULL".into();
    }
    let s = if let Some(s) = str_value(array, row) {
        s.to_string()
    } else if let Some(i) = int_value(array, row) {
        i.to_string()
    } else {
        arrow::util::display::array_value_to_string(array, row).unwrap_or_else(|_| "?".into())
    };
    if s.chars().count() > 200 {
        format!(
            "{}... ({} characters)",
            s.chars().take(200).collect::<String>(),
            s.chars().count()
        )
    } else {
        s
    }
}

fn write_len(out: &mut [u8], at: usize) -> std::result::Result<(), FieldError> {
    let len = out.len() - at - 4;
    if len > DSQL_MAX_VALUE_BYTES {
        return Err(FieldError::TooBig(len));
    }
    out[at..at + 4].copy_from_slice(&(len as i32).to_be_bytes());
    Ok(())
}

fn encode_field(
    convert: &mut Convert,
    array: &ArrayRef,
    row: usize,
    out: &mut Vec<u8>,
    orphans_loaded: &mut u64,
) -> std::result::Result<(), FieldError> {
    const NULL: [u8; 4] = (-1i32).to_be_bytes();
    let null = array.is_null(row);
    match convert {
        Convert::Key { maker, keep_old } => {
            if null {
                return Err(FieldError::Convert(ConvertError {
                    expected: "key".into(),
                    reason: "a primary key is NULL".into(),
                }));
            }
            let old = int_value(array, row).ok_or_else(|| ConvertError {
                expected: "integer key".into(),
                reason: format!(
                    "the column is {} in Parquet, not an integer",
                    array.data_type()
                ),
            })?;
            out.extend_from_slice(&16i32.to_be_bytes());
            out.extend_from_slice(maker.key(old).as_bytes());
            if let Some(t) = keep_old {
                let at = out.len();
                out.extend_from_slice(&[0; 4]);
                convert::encode_i64(old, t, out)?;
                write_len(out, at)?;
            }
        }
        Convert::Reference {
            maker,
            orphans,
            on_orphan,
            parent,
        } => {
            if null {
                out.extend_from_slice(&NULL);
                return Ok(());
            }
            let old = int_value(array, row).ok_or_else(|| ConvertError {
                expected: "integer reference".into(),
                reason: format!(
                    "the column is {} in Parquet, not an integer",
                    array.data_type()
                ),
            })?;
            if orphans.as_ref().is_some_and(|o| o.contains(&old)) {
                match on_orphan {
                    OnOrphan::Fail => {
                        return Err(FieldError::Orphan {
                            value: old,
                            parent: parent.clone(),
                        });
                    }
                    OnOrphan::Null => {
                        *orphans_loaded += 1;
                        out.extend_from_slice(&NULL);
                        return Ok(());
                    }
                    OnOrphan::Keep => *orphans_loaded += 1,
                }
            }
            out.extend_from_slice(&16i32.to_be_bytes());
            out.extend_from_slice(maker.key(old).as_bytes());
        }
        Convert::Plain { source, target } => {
            if null {
                out.extend_from_slice(&NULL);
                return Ok(());
            }
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            match array.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                    let s = str_value(array, row).unwrap_or_default();
                    convert::encode_text(source, target, s, out)?;
                }
                DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                    let v = int_value(array, row).unwrap_or_default();
                    convert::encode_i64(v, target, out)?;
                }
                DataType::Float32 => {
                    let v = array
                        .as_primitive::<arrow::datatypes::Float32Type>()
                        .value(row);
                    convert::encode_f32(v, target, out)?;
                }
                DataType::Float64 => {
                    let v = array
                        .as_primitive::<arrow::datatypes::Float64Type>()
                        .value(row);
                    convert::encode_f64(v, target, out)?;
                }
                DataType::Boolean => {
                    let v = array
                        .as_any()
                        .downcast_ref::<BooleanArray>()
                        .map(|a| a.value(row));
                    convert::encode_bool(v.unwrap_or_default(), target, out)?;
                }
                DataType::Binary => {
                    let v = array
                        .as_any()
                        .downcast_ref::<BinaryArray>()
                        .map(|a| a.value(row));
                    convert::encode_bytes(v.unwrap_or_default(), target, out)?;
                }
                DataType::LargeBinary => {
                    let v = array
                        .as_any()
                        .downcast_ref::<LargeBinaryArray>()
                        .map(|a| a.value(row));
                    convert::encode_bytes(v.unwrap_or_default(), target, out)?;
                }
                other => {
                    return Err(FieldError::Convert(ConvertError {
                        expected: target.to_string(),
                        reason: format!("Parquet column type {other} is not one the export writes"),
                    }));
                }
            }
            write_len(out, at)?;
        }
    }
    Ok(())
}
