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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;

    /// A part file with columns `a` (0..9) and `b` ("b0".."b8"), three row groups of three rows.
    fn part_file() -> tempfile::NamedTempFile {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..9)),
                Arc::new(StringArray::from_iter_values(
                    (0..9).map(|i| format!("b{i}")),
                )),
            ],
        )
        .unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(3))
            .build();
        let mut w = ArrowWriter::try_new(file.reopen().unwrap(), schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        file
    }

    /// The `b` values [`configure`] reads from `file` with `row_groups` and the projection `[b]`.
    fn read_b(file: &tempfile::NamedTempFile, row_groups: Vec<usize>) -> Result<Vec<String>> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(file.reopen().unwrap()).unwrap();
        let reader = configure(builder, "part", Some(row_groups), &["b".to_string()], 2)?
            .build()
            .unwrap();
        let mut values = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            assert_eq!(batch.num_columns(), 1, "only the projected column is read");
            assert!(batch.num_rows() <= 2, "batches are bounded");
            let b = batch
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            values.extend((0..b.len()).map(|i| b.value(i).to_string()));
        }
        Ok(values)
    }

    #[test]
    fn configure_reads_the_named_column_of_the_selected_row_groups() {
        let file = part_file();
        assert_eq!(read_b(&file, vec![1]).unwrap(), ["b3", "b4", "b5"]);
        // The last row group exists; one past it does not.
        assert_eq!(
            read_b(&file, vec![0, 2]).unwrap(),
            ["b0", "b1", "b2", "b6", "b7", "b8"]
        );
        let e = read_b(&file, vec![3]).unwrap_err().to_string();
        assert!(
            e.contains("row group 3 does not exist (the file has 3)"),
            "{e}"
        );
        let builder = ParquetRecordBatchReaderBuilder::try_new(file.reopen().unwrap()).unwrap();
        let e = configure(builder, "part", None, &["c".to_string()], 2)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("column \"c\" is not in this file"), "{e}");
    }
}
