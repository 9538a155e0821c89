//! Streaming reads of a chunk: selected row groups, a projection, bounded record batches.
//!
//! Local files are read with Parquet's synchronous reader on a blocking thread: it pulls one page
//! at a time from the file, so memory is a page per column plus one record batch whatever the
//! row-group or file size. S3 objects use the async reader, which fetches the projected column
//! chunks of one row group with ranged GETs (memory: that row group's projected, compressed
//! columns).

use crate::chunk::Chunk;
use crate::error::{Error, Result};
use crate::export::Export;
use crate::store::{ObjectMeta, Store};
use arrow::record_batch::RecordBatch;
use futures::{Stream, StreamExt};
use parquet::arrow::arrow_reader::{ArrowReaderBuilder, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use std::pin::Pin;

/// Record batches of one part file, in file order.
pub type BatchStream = Pin<Box<dyn Stream<Item = parquet::errors::Result<RecordBatch>> + Send>>;

/// Batches decoded ahead of the consumer on the blocking reader thread.
const READ_AHEAD: usize = 2;

/// Opens `chunk`'s part file and streams `row_groups` (absolute indexes) with only `columns`,
/// `batch_rows` rows at a time. Memory is a few row-group column pages and one record batch,
/// whatever the file's size.
pub async fn open(
    export: &Export,
    chunk: &Chunk,
    row_groups: Vec<usize>,
    columns: &[String],
    batch_rows: usize,
) -> Result<BatchStream> {
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
) -> Result<BatchStream> {
    let name = export.store.display(&obj.key);
    let unreadable = |e: parquet::errors::ParquetError| Error::Parquet {
        file: name.clone(),
        reason: format!("unreadable footer (truncated, or not a Parquet file?): {e}"),
    };
    match &export.store {
        Store::Local(root) => {
            let path = root.join(&obj.key);
            let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(unreadable)?;
            let reader = configure(builder, &name, row_groups, columns, batch_rows)?
                .build()
                .map_err(|e| Error::Parquet {
                    file: name.clone(),
                    reason: format!("cannot read: {e}"),
                })?;
            let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
            tokio::task::spawn_blocking(move || {
                for batch in reader {
                    if tx.blocking_send(batch.map_err(Into::into)).is_err() {
                        break;
                    }
                }
            });
            Ok(futures::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|b| (b, rx)) },
            )
            .boxed())
        }
        Store::S3 { .. } => {
            let reader = export.store.reader(obj).await?;
            let builder = ParquetRecordBatchStreamBuilder::new(reader)
                .await
                .map_err(unreadable)?;
            let stream = configure(builder, &name, row_groups, columns, batch_rows)?
                .build()
                .map_err(|e| Error::Parquet {
                    file: name.clone(),
                    reason: format!("cannot read: {e}"),
                })?;
            Ok(stream.boxed())
        }
    }
}

/// Projection, batch size and row-group selection, the same for both readers.
fn configure<T>(
    builder: ArrowReaderBuilder<T>,
    name: &str,
    row_groups: Option<Vec<usize>>,
    columns: &[String],
    batch_rows: usize,
) -> Result<ArrowReaderBuilder<T>> {
    let schema = builder.parquet_schema();
    let mut indices = Vec::with_capacity(columns.len());
    for c in columns {
        let idx = (0..schema.num_columns())
            .find(|i| schema.column(*i).path().parts() == [c.clone()])
            .ok_or_else(|| Error::Parquet {
                file: name.to_string(),
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
                file: name.to_string(),
                reason: format!(
                    "row group {bad} does not exist (the file has {available}): the chunk plan does not match this file"
                ),
            });
        }
        builder = builder.with_row_groups(rgs);
    }
    Ok(builder)
}
