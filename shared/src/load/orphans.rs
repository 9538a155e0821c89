//! Orphan references: values of a rewritten reference whose parent row is not in the export.
//!
//! Found before anything is written, by reading only the key column of each parent table and the
//! reference column of each child (projections: a few bytes per row). What happens to each
//! orphan is the column's `on_orphan`: `fail` stops here naming the first row, `null` and `keep`
//! load it and the report counts and lists it. Nothing is dropped silently, unlike an inner join.
//!
//! Memory is bounded by a [`Budget`], for the whole scan (one parent's keys are held at a time): a
//! parent whose keys fit (at [`BYTES_PER_KEY`] each) is held as a hash set; a larger one (a billion-row parent) is compared by hash partitions. Its keys,
//! and each child column's values, are written to partition files on local disk (the budget's
//! spill directory: a Lambda's `/tmp`), one partition of keys is loaded at a time and its
//! children checked against it. The results are exact and the same either way: the orphan values
//! (the loaders' `orphans.json`), their row count, and the first [`EXAMPLES`] orphan rows (or,
//! for `fail`, the first one) in file order, found by a last pass over the child column that
//! looks only for the orphan values. Disk: 8 bytes per parent key plus 8 per child reference.
//! The orphan values handed to the loaders are bounded too ([`MAX_ORPHAN_VALUES`]).

use super::encode::Orphans;
use super::read;
use crate::error::{Error, Location, Result};
use crate::export::Export;
use crate::mapping::{Mapping, OnOrphan, Rewrite};
use arrow::array::{Array, ArrayRef, Int16Array, Int32Array, Int64Array};
use futures::StreamExt;
use serde::Serialize;
use std::collections::HashSet;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How many orphan rows a report lists per column.
pub const EXAMPLES: usize = 20;
/// Default memory for parent keys at once: well inside the fan-out's 1,024 MB.
pub const DEFAULT_MEMORY_BUDGET: usize = 256 * 1024 * 1024;
/// What one key costs in a `HashSet<i64>`: 8 bytes, a control byte and the table's free slots,
/// rounded up generously (a set of n keys takes 16-32 bytes a key as it grows).
pub const BYTES_PER_KEY: usize = 32;
/// At most this many partitions (open files while spilling, at 8 KiB of buffer each).
pub const MAX_PARTITIONS: usize = 4_096;
/// Distinct orphan values of one column that may be loaded per `on_orphan` (they travel to every
/// loader in `orphans.json`, ~10-20 bytes of JSON and ~32 bytes of memory each): past it the
/// scan stops, naming the count, because that many dangling references means a wrong mapping
/// (or a missing parent table), not a few deleted rows.
pub const MAX_ORPHAN_VALUES: usize = 1_000_000;
/// Bytes of buffer per open partition file.
const SPILL_BUFFER: usize = 8 * 1024;

/// The memory the scan may hold for parent keys, and where it may spill.
#[derive(Debug, Clone)]
pub struct Budget {
    pub memory_bytes: usize,
    pub spill_dir: PathBuf,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            memory_bytes: DEFAULT_MEMORY_BUDGET,
            spill_dir: std::env::temp_dir(),
        }
    }
}

impl Budget {
    /// Partitions for `keys` parent keys: 1 when they fit, otherwise enough that one
    /// partition (with twice the average, for the hash's unevenness) fits.
    pub fn partitions(&self, keys: u64) -> usize {
        let need = (keys as u128) * (BYTES_PER_KEY as u128) * 2;
        let fits = (self.memory_bytes.max(1)) as u128;
        if (keys as u128) * (BYTES_PER_KEY as u128) <= fits {
            return 1;
        }
        need.div_ceil(fits).clamp(2, MAX_PARTITIONS as u128) as usize
    }
}

/// What a scan held, to show it stayed within its budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// The most partitions one parent was split into (1: held whole).
    pub partitions: usize,
    /// The most parent keys held in memory at once.
    pub max_keys_in_memory: usize,
}

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

fn export_table<'a>(export: &'a Export, table: &str) -> Result<&'a crate::export::ExportTable> {
    export.table(table).ok_or_else(|| Error::Mapping {
        file: "mapping".into(),
        reason: format!("table {table} is not in the export"),
    })
}

/// Rows of `table`, from its footers.
async fn table_rows(export: &Export, table: &str) -> Result<u64> {
    let mut rows = 0;
    for obj in &export_table(export, table)?.files {
        rows += export.footer(obj).await?.rows;
    }
    Ok(rows)
}

/// Calls `f(file, row group, row, value)` for every value of `column` in `table`'s files.
async fn for_each_value(
    export: &Export,
    table: &str,
    column: &str,
    mut f: impl FnMut(&str, usize, usize, Option<i64>) -> Result<()>,
) -> Result<()> {
    let t = export_table(export, table)?;
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

/// A parent table's keys: in memory, or in hash-partition files.
enum ParentKeys {
    Memory(HashSet<i64>),
    Spilled(Partitions),
}

/// Values spread over `files.len()` partition files by [`partition_of`], 8 bytes each.
struct Partitions {
    files: Vec<PathBuf>,
    /// Removed when dropped.
    _dir: tempfile::TempDir,
}

/// The partition of a value: a fixed mix of its bits (SplitMix64's finaliser), so partitions are
/// even whatever the keys' pattern, and the same for keys and references.
fn partition_of(v: i64, partitions: usize) -> usize {
    let mut z = v as u64;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % partitions as u64) as usize
}

/// Writes every non-null value of `table.column` into `partitions` files under `budget`'s
/// spill directory.
async fn spill(
    export: &Export,
    table: &str,
    column: &str,
    partitions: usize,
    budget: &Budget,
) -> Result<Partitions> {
    let dir = tempfile::Builder::new()
        .prefix("snap2dsql-orphans-")
        .tempdir_in(&budget.spill_dir)
        .map_err(|e| Error::io(&budget.spill_dir, e))?;
    let files: Vec<PathBuf> = (0..partitions)
        .map(|i| dir.path().join(format!("{i}.bin")))
        .collect();
    let mut writers = Vec::with_capacity(partitions);
    for path in &files {
        let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        writers.push(BufWriter::with_capacity(SPILL_BUFFER, file));
    }
    for_each_value(export, table, column, |_, _, _, v| {
        if let Some(v) = v {
            let p = partition_of(v, partitions);
            writers[p]
                .write_all(&v.to_le_bytes())
                .map_err(|e| Error::io(&files[p], e))?;
        }
        Ok(())
    })
    .await?;
    for (w, path) in writers.iter_mut().zip(&files) {
        w.flush().map_err(|e| Error::io(path, e))?;
    }
    Ok(Partitions { files, _dir: dir })
}

/// Calls `f` with every value of a partition file, in the order written.
fn read_partition(path: &Path, mut f: impl FnMut(i64) -> Result<()>) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut buf = [0u8; 8];
    loop {
        match reader.read_exact(&mut buf) {
            Ok(()) => f(i64::from_le_bytes(buf))?,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(Error::io(path, e)),
        }
    }
}

/// The orphan values of one reference column, bounded by [`MAX_ORPHAN_VALUES`].
struct Found {
    table: String,
    column: String,
    values: HashSet<i64>,
}

impl Found {
    fn insert(&mut self, v: i64) -> Result<()> {
        if self.values.insert(v) && self.values.len() > MAX_ORPHAN_VALUES {
            return Err(Error::TooManyOrphans {
                table: self.table.clone(),
                column: self.column.clone(),
                distinct: self.values.len() as u64,
                limit: MAX_ORPHAN_VALUES as u64,
            });
        }
        Ok(())
    }
}

/// Finds every orphan reference of the mapping. With `on_orphan = "fail"` the first one found is
/// an error; otherwise it is returned for the encoder (to load per policy) and the report.
pub async fn scan(export: &Export, mapping: &Mapping) -> Result<(Orphans, Vec<OrphanReport>)> {
    let (orphans, reports, _) = scan_with(export, mapping, &Budget::default()).await?;
    Ok((orphans, reports))
}

/// [`scan`] within `budget`; also says how much it held.
pub async fn scan_with(
    export: &Export,
    mapping: &Mapping,
    budget: &Budget,
) -> Result<(Orphans, Vec<OrphanReport>, ScanStats)> {
    // One parent's keys at a time, so the budget bounds the whole scan: kept while the next
    // reference column has the same parent (mapping order), read again if a parent returns.
    let mut cached: Option<(String, ParentKeys)> = None;
    let mut orphans = Orphans::new();
    let mut reports = Vec::new();
    let mut stats = ScanStats::default();
    for t in &mapping.tables {
        for c in t
            .columns
            .iter()
            .filter(|c| c.rewrite == Rewrite::Reference && !c.drop)
        {
            let Some(parent) = c.references.clone() else {
                continue;
            };
            let keys = match cached.take() {
                Some((p, keys)) if p == parent => keys,
                // Another parent's keys, freed before this one's are read; or none.
                other => {
                    drop(other);
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
                    let n = budget.partitions(table_rows(export, &parent).await?);
                    stats.partitions = stats.partitions.max(n);
                    if n == 1 {
                        let mut set = HashSet::new();
                        for_each_value(export, &parent, &pm.name, |_, _, _, v| {
                            if let Some(v) = v {
                                set.insert(v);
                            }
                            Ok(())
                        })
                        .await?;
                        stats.max_keys_in_memory = stats.max_keys_in_memory.max(set.len());
                        ParentKeys::Memory(set)
                    } else {
                        ParentKeys::Spilled(spill(export, &parent, &pm.name, n, budget).await?)
                    }
                }
            };
            let policy = c.on_orphan.unwrap_or_default();
            let mut found = Found {
                table: t.source.clone(),
                column: c.name.clone(),
                values: HashSet::new(),
            };
            let mut count = 0u64;
            let mut examples = Vec::new();
            // One orphan row, met in file order: `fail` stops at it; otherwise it is counted
            // and the first few are listed.
            let mut met = |file: &str, rg: usize, row: usize, v: i64| {
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
                if examples.len() < EXAMPLES {
                    examples.push(format!("{location}: value {v}"));
                }
                Ok(())
            };
            match &keys {
                // One pass: every value against the whole set.
                ParentKeys::Memory(keys) => {
                    for_each_value(export, &t.source, &c.name, |file, rg, row, v| match v {
                        Some(v) if !keys.contains(&v) => {
                            met(file, rg, row, v)?;
                            found.insert(v)
                        }
                        _ => Ok(()),
                    })
                    .await?;
                }
                // Which values are orphans, partition by partition; then where they are, in
                // file order, by a pass that looks only for them.
                ParentKeys::Spilled(keys) => {
                    let refs = spill(export, &t.source, &c.name, keys.files.len(), budget).await?;
                    for (key_file, ref_file) in keys.files.iter().zip(&refs.files) {
                        let mut set = HashSet::new();
                        read_partition(key_file, |v| {
                            set.insert(v);
                            Ok(())
                        })?;
                        stats.max_keys_in_memory = stats.max_keys_in_memory.max(set.len());
                        read_partition(ref_file, |v| {
                            if set.contains(&v) {
                                Ok(())
                            } else {
                                found.insert(v)
                            }
                        })?;
                    }
                    if !found.values.is_empty() {
                        for_each_value(export, &t.source, &c.name, |file, rg, row, v| match v {
                            Some(v) if found.values.contains(&v) => met(file, rg, row, v),
                            _ => Ok(()),
                        })
                        .await?;
                    }
                }
            }
            cached = Some((parent.clone(), keys));
            if found.values.is_empty() {
                continue;
            }
            orphans.insert((t.source.clone(), c.name.clone()), Arc::new(found.values));
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
    Ok((orphans, reports, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_fit_the_budget() {
        let budget = |memory_bytes| Budget {
            memory_bytes,
            spill_dir: std::env::temp_dir(),
        };
        // 1,000 keys at 32 bytes fit in 32,000 bytes: held whole.
        assert_eq!(budget(32_000).partitions(1_000), 1);
        // One more key does not: twice the need over the budget, rounded up.
        assert_eq!(budget(32_000).partitions(1_001), 3);
        // A billion keys in 256 MiB: 64 GB / 256 MiB = 239 partitions of ~4.2 M keys.
        assert_eq!(budget(DEFAULT_MEMORY_BUDGET).partitions(1_000_000_000), 239);
        assert_eq!(budget(1).partitions(u64::MAX), MAX_PARTITIONS);
    }

    #[test]
    fn partitions_are_even_for_sequential_keys() {
        let mut counts = [0usize; 16];
        for v in 0..160_000i64 {
            counts[partition_of(v, 16)] += 1;
        }
        // 10,000 each on average; the hash keeps every partition within 5 %.
        assert!(
            counts.iter().all(|&c| (9_500..=10_500).contains(&c)),
            "{counts:?}"
        );
    }
}
