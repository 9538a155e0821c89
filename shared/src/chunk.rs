//! Chunks: the unit of work of one loader invocation (one Lambda, or one task of `run`).
//!
//! A chunk is a run of consecutive row groups of one part file, planned from footers alone. It is
//! bounded by rows and compressed bytes so one invocation finishes well inside Lambda's 15
//! minutes and reads a bounded amount; memory is bounded separately by streaming record batches.
//! The chunk list is ordered (table, file, row group) and its ids are stable across replans of
//! the same export, which is what the ledger keys on.

use crate::error::Result;
use crate::export::{Export, RowGroupInfo};
use crate::mapping::Mapping;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// At most this many rows in one chunk: at DSQL's single-connection pace of a few thousand rows
/// per second per connection and the default eight connections, about five minutes of work.
pub const CHUNK_MAX_ROWS: u64 = 2_000_000;
/// At most this many compressed Parquet bytes in one chunk, so reading stays a minor cost.
pub const CHUNK_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// At most this many row groups in one chunk: the chunk item lists each one's row count
/// (`row_group_rows`, about 10 bytes of JSON each), and a Distributed Map item must stay well
/// under 256 KiB. 1,000 keeps the list under 20 KiB even for a file of one-row row groups.
pub const CHUNK_MAX_ROW_GROUPS: usize = 1_000;

/// One unit of loading work. This is also the state machine's Map item: keep it small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Stable id: `<schema.table>/<file key>#<first row group>-<end row group>`.
    pub id: String,
    /// Source table, `schema.table`.
    pub table: String,
    /// Part file key, relative to the export root.
    pub file: String,
    /// Part file size in bytes.
    pub file_size: u64,
    /// First row group (inclusive).
    pub row_group_start: usize,
    /// Last row group (exclusive).
    pub row_group_end: usize,
    /// Rows in these row groups, from the footer.
    pub rows: u64,
    /// Rows of each row group in the chunk, so positions can be named without the footer.
    pub row_group_rows: Vec<u64>,
}

impl Chunk {
    /// Row group and row within it of the chunk's `row`-th row (counted from 0).
    pub fn locate(&self, row: u64) -> (usize, u64) {
        let mut left = row;
        for (i, n) in self.row_group_rows.iter().enumerate() {
            if left < *n {
                return (self.row_group_start + i, left);
            }
            left -= n;
        }
        (self.row_group_end, left)
    }
}

/// How many footers are read at once while planning chunks.
const FOOTERS_IN_FLIGHT: usize = 16;

/// Plans the chunks of every mapped table of `export`, in (table, file, row group) order.
pub async fn plan_chunks(export: &Export, mapping: &Mapping) -> Result<Vec<Chunk>> {
    plan_chunks_with(export, mapping, CHUNK_MAX_ROWS, CHUNK_MAX_BYTES).await
}

/// [`plan_chunks`] with explicit bounds (tests use small ones).
pub async fn plan_chunks_with(
    export: &Export,
    mapping: &Mapping,
    max_rows: u64,
    max_bytes: u64,
) -> Result<Vec<Chunk>> {
    let mut jobs = Vec::new();
    for tm in &mapping.tables {
        let table = export
            .table(&tm.source)
            .ok_or_else(|| crate::Error::Mapping {
                file: "mapping".into(),
                reason: format!(
                    "table {} is in the mapping but not in the export",
                    tm.source
                ),
            })?;
        for f in &table.files {
            jobs.push((table, f));
        }
    }
    let per_file: Vec<Vec<Chunk>> = futures::stream::iter(jobs)
        .map(|(table, f)| async move {
            let footer = export.footer(f).await?;
            crate::export::check_columns(table, &export.store.display(&f.key), &footer)?;
            let chunks = split(
                &footer.row_groups,
                max_rows,
                max_bytes,
                CHUNK_MAX_ROW_GROUPS,
            )
            .into_iter()
            .map(|range| Chunk {
                id: format!(
                    "{}/{}#{}-{}",
                    table.qualified(),
                    f.key,
                    range.start,
                    range.end
                ),
                table: table.qualified(),
                file: f.key.clone(),
                file_size: f.size,
                rows: footer.row_groups[range.clone()]
                    .iter()
                    .map(|r| r.rows)
                    .sum(),
                row_group_rows: footer.row_groups[range.clone()]
                    .iter()
                    .map(|r| r.rows)
                    .collect(),
                row_group_start: range.start,
                row_group_end: range.end,
            })
            .collect::<Vec<_>>();
            Ok::<_, crate::Error>(chunks)
        })
        .buffered(FOOTERS_IN_FLIGHT)
        .try_collect()
        .await?;
    Ok(per_file.into_iter().flatten().collect())
}

/// Cuts a file's row groups into runs of consecutive ones, each within `max_rows` rows,
/// `max_bytes` compressed bytes and `max_groups` row groups; a single row group over a bound is
/// a run of its own (a row group is never split).
pub fn split(
    row_groups: &[RowGroupInfo],
    max_rows: u64,
    max_bytes: u64,
    max_groups: usize,
) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    while start < row_groups.len() {
        let mut end = start;
        let (mut rows, mut bytes) = (0u64, 0u64);
        while end < row_groups.len() {
            let rg = row_groups[end];
            if end > start
                && (rows + rg.rows > max_rows
                    || bytes + rg.compressed_bytes > max_bytes
                    || end - start >= max_groups)
            {
                break;
            }
            rows += rg.rows;
            bytes += rg.compressed_bytes;
            end += 1;
        }
        runs.push(start..end);
        start = end;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_names_row_group_and_row() {
        let c = Chunk {
            id: "s.t/f#2-5".into(),
            table: "s.t".into(),
            file: "f".into(),
            file_size: 1,
            row_group_start: 2,
            row_group_end: 5,
            rows: 30,
            row_group_rows: vec![10, 15, 5],
        };
        assert_eq!(c.locate(0), (2, 0));
        assert_eq!(c.locate(9), (2, 9));
        assert_eq!(c.locate(10), (3, 0));
        assert_eq!(c.locate(29), (4, 4));
    }

    fn groups(rows: &[u64]) -> Vec<RowGroupInfo> {
        rows.iter()
            .map(|&r| RowGroupInfo {
                rows: r,
                compressed_bytes: r * 10,
                uncompressed_bytes: r * 20,
            })
            .collect()
    }

    #[test]
    fn split_bounds_rows_bytes_and_row_groups() {
        // Rows: 10 + 10 fit in 25, the third would make 30.
        assert_eq!(
            split(&groups(&[10, 10, 10, 10]), 25, u64::MAX, 100),
            vec![0..2, 2..4]
        );
        // Bytes: 10 rows are 100 bytes; 250 bytes hold two groups.
        assert_eq!(
            split(&groups(&[10, 10, 10]), u64::MAX, 250, 100),
            vec![0..2, 2..3]
        );
        // A row group over the bounds is a chunk of its own.
        assert_eq!(
            split(&groups(&[5, 100, 5]), 20, u64::MAX, 100),
            vec![0..1, 1..2, 2..3]
        );
        // Row groups: 2,500 one-row groups in runs of at most 1,000.
        let many = split(
            &groups(&vec![1; 2_500]),
            CHUNK_MAX_ROWS,
            CHUNK_MAX_BYTES,
            CHUNK_MAX_ROW_GROUPS,
        );
        assert_eq!(many, vec![0..1_000, 1_000..2_000, 2_000..2_500]);
        assert!(split(&[], 1, 1, 1).is_empty());
    }
}
