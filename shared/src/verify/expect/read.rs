//! The verifier's own reading of part files: every row group each file's footer lists, cut into
//! units of work of whole row groups, and the rows read counted against that footer.
//!
//! Shared with the loader: only the parquet crate (decoding) and the export's list of part files.
//! Not shared: the loader's chunk planner and row-group selection; so a row group the loader
//! skips is still expected here, and a footer whose counts the data contradicts is an error.

use crate::error::{Error, Result};
use crate::export::Export;
use crate::store::ObjectMeta;
use arrow::record_batch::RecordBatch;
use futures::{Stream, StreamExt, TryStreamExt};
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use std::pin::Pin;

/// Rows per record batch read.
pub const BATCH_ROWS: usize = 8_192;
/// Rows per unit of work (whole row groups: a unit may be larger), small enough to keep every
/// core busy to the end.
pub const UNIT_ROWS: u64 = 200_000;
/// Footers read at once while planning.
const FOOTERS_IN_FLIGHT: usize = 16;

/// Consecutive row groups of one part file.
#[derive(Debug, Clone)]
pub struct Unit {
    pub file: ObjectMeta,
    /// First row group.
    pub first: usize,
    /// Rows of each row group, from the file's footer.
    pub rows: Vec<u64>,
}

impl Unit {
    /// Row group and row within it of the unit's `n`-th row.
    pub fn locate(&self, mut n: u64) -> (usize, u64) {
        for (i, r) in self.rows.iter().enumerate() {
            if n < *r {
                return (self.first + i, n);
            }
            n -= r;
        }
        (self.first + self.rows.len(), n)
    }

    /// Rows the footer announces for the unit.
    pub fn total(&self) -> u64 {
        self.rows.iter().sum()
    }
}

/// The units of every part file of `table` (`schema.table`), from each file's own footer.
pub async fn units(export: &Export, table: &str) -> Result<Vec<Unit>> {
    let t = export.table(table).ok_or_else(|| Error::Mapping {
        file: "mapping".into(),
        reason: format!("table {table} is in the mapping but not in the export"),
    })?;
    let per_file: Vec<Vec<Unit>> = futures::stream::iter(t.files.iter().cloned())
        .map(|file| async move {
            let builder = builder(export, &file).await?;
            let meta = builder.metadata().clone();
            let rows: Vec<u64> = meta
                .row_groups()
                .iter()
                .map(|rg| rg.num_rows().max(0) as u64)
                .collect();
            let announced = meta.file_metadata().num_rows().max(0) as u64;
            if rows.iter().sum::<u64>() != announced {
                return Err(Error::Parquet {
                    file: export.store.display(&file.key),
                    reason: format!(
                        "the footer announces {announced} rows, its row groups hold {}",
                        rows.iter().sum::<u64>()
                    ),
                });
            }
            let mut out = Vec::new();
            let mut start = 0;
            while start < rows.len() {
                let mut end = start;
                let mut n = 0;
                while end < rows.len() && (end == start || n + rows[end] <= UNIT_ROWS) {
                    n += rows[end];
                    end += 1;
                }
                out.push(Unit {
                    file: file.clone(),
                    first: start,
                    rows: rows[start..end].to_vec(),
                });
                start = end;
            }
            Ok::<_, Error>(out)
        })
        .buffered(FOOTERS_IN_FLIGHT)
        .try_collect()
        .await?;
    Ok(per_file.into_iter().flatten().collect())
}

type Builder = ParquetRecordBatchStreamBuilder<crate::store::ObjectReader>;

async fn builder(export: &Export, file: &ObjectMeta) -> Result<Builder> {
    let reader = export.store.reader(file).await?;
    ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|e| Error::Parquet {
            file: export.store.display(&file.key),
            reason: format!("unreadable footer: {e}"),
        })
}

/// Record batches of `unit`, only `columns`.
pub async fn open(
    export: &Export,
    unit: &Unit,
    columns: &[String],
) -> Result<Pin<Box<dyn Stream<Item = Result<RecordBatch>> + Send>>> {
    let name = export.store.display(&unit.file.key);
    let builder = builder(export, &unit.file).await?;
    let schema = builder.parquet_schema();
    let mut leaves = Vec::with_capacity(columns.len());
    for c in columns {
        let i = (0..schema.num_columns())
            .find(|i| schema.column(*i).path().parts() == [c.clone()])
            .ok_or_else(|| Error::Parquet {
                file: name.clone(),
                reason: format!("column {c:?} is not in this file"),
            })?;
        leaves.push(i);
    }
    let mask = ProjectionMask::leaves(schema, leaves);
    let stream = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .with_row_groups((unit.first..unit.first + unit.rows.len()).collect())
        .build()
        .map_err(|e| Error::Parquet {
            file: name.clone(),
            reason: format!("cannot read: {e}"),
        })?;
    let first = unit.first;
    let last = unit.first + unit.rows.len();
    Ok(stream
        .map(move |b| {
            b.map_err(|e| Error::Parquet {
                file: name.clone(),
                reason: format!("unreadable data in row groups {first}..{last}: {e}"),
            })
        })
        .boxed())
}
