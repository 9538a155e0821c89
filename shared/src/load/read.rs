//! Streaming reads of a chunk: selected row groups, a projection, bounded record batches.

use crate::chunk::Chunk;
use crate::error::{Error, Result};
use crate::export::Export;
use crate::store::{ObjectMeta, ObjectReader};
use parquet::arrow::async_reader::ParquetRecordBatchStream;
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};

/// Opens `chunk`'s part file and streams `row_groups` (absolute indexes) with only `columns`,
/// `batch_rows` rows at a time. Memory is a few row-group column pages and one record batch,
/// whatever the file's size.
pub async fn open(
    export: &Export,
    chunk: &Chunk,
    row_groups: Vec<usize>,
    columns: &[String],
    batch_rows: usize,
) -> Result<ParquetRecordBatchStream<ObjectReader>> {
    let obj = ObjectMeta {
        key: chunk.file.clone(),
        size: chunk.file_size,
    };
    open_object(export, &obj, Some(row_groups), columns, batch_rows).await
}

/// [`open`] for any part file; `None` reads every row group.
pub async fn open_object(
    export: &Export,
    obj: &ObjectMeta,
    row_groups: Option<Vec<usize>>,
    columns: &[String],
    batch_rows: usize,
) -> Result<ParquetRecordBatchStream<ObjectReader>> {
    let name = export.store.display(&obj.key);
    let reader = export.store.reader(obj).await?;
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|e| Error::Parquet {
            file: name.clone(),
            reason: format!("unreadable footer (truncated, or not a Parquet file?): {e}"),
        })?;
    let schema = builder.parquet_schema();
    let mut indices = Vec::with_capacity(columns.len());
    for c in columns {
        let idx = (0..schema.num_columns())
            .find(|i| schema.column(*i).path().parts() == [c.clone()])
            .ok_or_else(|| Error::Parquet {
                file: name.clone(),
                reason: format!("column {c:?} is not in this file"),
            })?;
        indices.push(idx);
    }
    let mask = ProjectionMask::leaves(schema, indices);
    let mut builder = builder.with_projection(mask).with_batch_size(batch_rows);
    if let Some(rgs) = row_groups {
        let available = builder.metadata().num_row_groups();
        if let Some(bad) = rgs.iter().find(|r| **r >= available) {
            return Err(Error::Parquet {
                file: name,
                reason: format!(
                    "row group {bad} does not exist (the file has {available}): the chunk plan does not match this file"
                ),
            });
        }
        builder = builder.with_row_groups(rgs);
    }
    builder.build().map_err(|e| Error::Parquet {
        file: name,
        reason: format!("cannot read: {e}"),
    })
}
