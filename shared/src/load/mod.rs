//! Loading: one chunk into the target, exactly once, inside DSQL's per-transaction limits.
//!
//! [`load_chunk`] reads the chunk's row groups as a stream of record batches (a projection of the
//! mapped columns, bounded batch size: memory does not grow with the file), encodes rows into
//! binary COPY batches bounded by rows and by bytes, and hands them to a few writer connections
//! ([`writer`]). Each batch is one transaction: its rows (binary COPY, or a fallback format the
//! run switched to: [`format`]), its ledger row, then COMMIT with its tag checked. Conflicts,
//! lost or silent connections and throttling retry the transaction with backoff; a DSQL limit
//! (54000) or bad data stops the chunk with the batch or row named.
//!
//! Running twice: the ledger lists the committed row ranges of the chunk; a rerun skips them
//! (whole row groups are not even read) and writes only the rest. A finished chunk writes nothing.

pub mod encode;
pub mod format;
pub mod ledger;
pub mod orphans;
pub mod read;
mod writer;

use crate::chunk::Chunk;
use crate::error::{Error, Result};
use crate::export::Export;
use crate::mapping::{Mapping, TableMapping};
use crate::target::{CONNECTION_MAX_AGE, Target};
use bytes::Bytes;
use encode::{COPY_HEADER, COPY_TRAILER, Orphans, RowEncoder};
use format::{FormatDecision, LoadFormat};
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use writer::{Batch, Counters, TableSql, Writer};

/// Default rows per transaction: under DSQL's 3,000 with room for the ledger row and for
/// secondary-index entries should DSQL count them (`dsql.md` says that is unknown).
pub const DEFAULT_BATCH_ROWS: usize = 2_500;
/// Hard ceiling on rows per transaction, ledger row included.
pub const DSQL_MAX_ROWS: usize = 3_000;
/// Default encoded bytes per transaction: well under DSQL's 10 MiB, whatever DSQL's own
/// accounting adds per row.
pub const DEFAULT_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Default writer connections per chunk.
pub const DEFAULT_CONNECTIONS: usize = 4;
/// Default attempts per batch before giving up on a retryable error.
///
/// 16: at a sustained 30% conflict rate a batch fails 16 times in a row with probability
/// 0.3^16 ≈ 4e-9, against 6e-6 with 10 (`make reliability` hit that once in 2,000 batches); the
/// backoff's 5 s cap bounds the wait of a stuck batch to about a minute.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 16;
/// Rows per Arrow record batch read from Parquet: bounds memory independently of file size.
pub const READ_BATCH_ROWS: usize = 8_192;
/// Bound on each statement of a batch's transaction (BEGIN, the COPY's start, data and end,
/// each INSERT, the ledger row) and on ledger reads. A healthy statement takes well under a
/// second (at most 8 MiB of rows; DSQL ends any transaction at 300 s anyway): 60 s is an order
/// of magnitude above a slow one, finds a silent connection within a minute, and leaves a
/// 15-minute Lambda invocation room for several retries.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on a COMMIT. DSQL's commit latency is ~50 ms at the median and seconds at p99, tens of
/// seconds at worst on a hot partition (dsql.md): 60 s stays above the worst seen. Cutting a
/// slow but live COMMIT is safe: the ledger says whether it went through.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Tunables of a load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub batch_rows: usize,
    pub batch_bytes: usize,
    pub connections: usize,
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt (capped at 5 s), with full jitter.
    pub backoff_base: Duration,
    /// The format tried first; a refused one falls back to the next ([`format`]).
    pub first_format: LoadFormat,
    /// Bound on each statement of a batch (see [`STATEMENT_TIMEOUT`]).
    pub statement_timeout: Duration,
    /// Bound on each COMMIT (see [`COMMIT_TIMEOUT`]).
    pub commit_timeout: Duration,
    /// A writer replaces its connection once it is older than this (DSQL closes connections
    /// at 60 minutes; [`CONNECTION_MAX_AGE`]).
    pub connection_max_age: Duration,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            batch_rows: DEFAULT_BATCH_ROWS,
            batch_bytes: DEFAULT_BATCH_BYTES,
            connections: DEFAULT_CONNECTIONS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff_base: Duration::from_millis(50),
            first_format: LoadFormat::Binary,
            statement_timeout: STATEMENT_TIMEOUT,
            commit_timeout: COMMIT_TIMEOUT,
            connection_max_age: CONNECTION_MAX_AGE,
        }
    }
}

impl LoadOptions {
    /// The one retry decision of every retry loop: after a failed attempt, counts it and returns
    /// `true` (having slept the backoff) when `err` is retryable and attempts remain; `false`
    /// when the caller must give up.
    pub async fn retry_after(&self, err: &Error, attempt: &mut u32) -> bool {
        *attempt += 1;
        if !err.is_retryable() || *attempt >= self.max_attempts {
            return false;
        }
        tokio::time::sleep(backoff(self.backoff_base, *attempt)).await;
        true
    }

    /// Refuses settings that would break DSQL's limits.
    pub fn validate(&self) -> Result<()> {
        if self.batch_rows == 0 || self.batch_rows + 1 > DSQL_MAX_ROWS {
            return Err(Error::Usage(format!(
                "batch rows {} must be 1 to {} (DSQL's {DSQL_MAX_ROWS} rows per transaction include the ledger row)",
                self.batch_rows,
                DSQL_MAX_ROWS - 1
            )));
        }
        if self.batch_bytes < 64 * 1024 || self.batch_bytes > 8 * 1024 * 1024 {
            return Err(Error::Usage(format!(
                "batch bytes {} must be 64 KiB to 8 MiB (DSQL refuses transactions over 10 MiB)",
                self.batch_bytes
            )));
        }
        if self.connections == 0 {
            return Err(Error::Usage("connections must be at least 1".into()));
        }
        for (name, d) in [
            ("statement timeout", self.statement_timeout),
            ("commit timeout", self.commit_timeout),
            ("connection max age", self.connection_max_age),
        ] {
            if d.is_zero() {
                return Err(Error::Usage(format!("{name} must be above zero")));
            }
        }
        Ok(())
    }
}

/// Everything a chunk load needs, shared by all chunks of a run.
#[derive(Clone)]
pub struct LoadContext {
    pub export: Arc<Export>,
    pub mapping: Arc<Mapping>,
    pub target: Target,
    pub orphans: Orphans,
    pub options: LoadOptions,
    /// The run's load format, decided by the first batches and shared by every writer.
    pub format: Arc<FormatDecision>,
}

impl LoadContext {
    /// A context whose format decision starts at `options.first_format`.
    pub fn new(
        export: Arc<Export>,
        mapping: Arc<Mapping>,
        target: Target,
        orphans: Orphans,
        options: LoadOptions,
    ) -> LoadContext {
        let format = Arc::new(FormatDecision::starting_at(options.first_format));
        LoadContext {
            export,
            mapping,
            target,
            orphans,
            options,
            format,
        }
    }
}

/// What loading one chunk did (the figures of `load-chunk`'s metrics:
/// [`crate::pipeline::metrics`]).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ChunkOutcome {
    pub chunk: String,
    pub table: String,
    /// The mapping's migration id (the ledger's key).
    #[serde(default)]
    pub migration: String,
    pub rows_written: u64,
    pub rows_already_committed: u64,
    pub batches_written: u64,
    /// Encoded binary COPY bytes of the batches written (a batch sent as text or INSERTs after a
    /// format change counts its binary size).
    #[serde(default)]
    pub bytes_written: u64,
    /// Transactions retried inside this invocation, all classes.
    pub retries: u64,
    /// The same retries by what failed them.
    #[serde(default)]
    pub retries_by_class: RetryCounts,
    /// Wall time of the load, ledger read included.
    #[serde(default)]
    pub seconds: f64,
    /// Orphan references loaded as NULL or as a dangling key, per the mapping.
    pub orphans_loaded: u64,
    /// How the rows went (`binary`, `text`, `insert`: the format of the last committed batch);
    /// absent when the chunk wrote nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<LoadFormat>,
}

/// Retries of a chunk's transactions by the error class that failed them
/// ([`crate::error::ErrorClass`]; the other classes are never retried).
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct RetryCounts {
    /// Optimistic concurrency conflicts at commit (40001, OC000, OC001).
    pub conflict: u64,
    /// Lost or broken connections.
    pub connection: u64,
    /// Connection limits (53300, 53400).
    pub throttled: u64,
    /// Transactions past DSQL's 300 s age limit.
    pub expired: u64,
}

/// Loads one chunk exactly once (see the module doc). `progress` gets committed row counts.
pub async fn load_chunk(
    ctx: &LoadContext,
    chunk: &Chunk,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ChunkOutcome> {
    ctx.options.validate()?;
    let started = std::time::Instant::now();
    let table = ctx
        .mapping
        .table(&chunk.table)
        .ok_or_else(|| Error::Mapping {
            file: "mapping".into(),
            reason: format!(
                "chunk {} is of table {}, which the mapping does not name",
                chunk.id, chunk.table
            ),
        })?;
    let committed = read_ledger(ctx, chunk).await?;
    let already: u64 = committed.iter().map(|(a, b)| b - a).sum();
    let mut outcome = ChunkOutcome {
        chunk: chunk.id.clone(),
        table: chunk.table.clone(),
        migration: ctx.mapping.migration.id.clone(),
        rows_already_committed: already,
        ..Default::default()
    };
    if already >= chunk.rows {
        outcome.seconds = started.elapsed().as_secs_f64();
        progress(0);
        return Ok(outcome);
    }

    let (tx, rx) = tokio::sync::mpsc::channel::<Batch>(ctx.options.connections * 2);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let sql = Arc::new(TableSql::new(table));
    let counters = Arc::new(Counters::default());
    let written = &counters.written;
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..ctx.options.connections {
        let w = Writer {
            target: ctx.target.clone(),
            options: ctx.options.clone(),
            migration: ctx.mapping.migration.id.clone(),
            table: chunk.table.clone(),
            chunk: chunk.id.clone(),
            sql: sql.clone(),
            format: ctx.format.clone(),
            session: None,
            counters: counters.clone(),
            losses: 0,
        };
        let rx = rx.clone();
        writers.spawn(w.run(rx));
    }

    let file = ctx.export.store.display(&chunk.file);
    let produce = produce_batches(ctx, table, chunk, &committed, file, tx);
    tokio::pin!(produce);
    let mut produced: Option<u64> = None;
    let mut first_error: Option<Error> = None;
    let mut reported = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            r = &mut produce, if produced.is_none() => {
                match r {
                    Ok(n) => produced = Some(n),
                    Err(e) => {
                        // Stop the writers: nothing more will come, and the reader's error wins.
                        writers.abort_all();
                        first_error.get_or_insert(e);
                        produced = Some(0);
                    }
                }
            }
            joined = writers.join_next() => {
                match joined {
                    None => break,
                    Some(Ok(Ok(()))) => {}
                    Some(Ok(Err(e))) => {
                        if first_error.is_none() {
                            first_error = Some(e);
                        }
                        writers.abort_all();
                    }
                    Some(Err(join)) if join.is_cancelled() => {}
                    Some(Err(join)) => {
                        first_error.get_or_insert(Error::Usage(format!("writer task failed: {join}")));
                    }
                }
            }
            _ = tick.tick() => {
                let now = written.load(Ordering::Relaxed);
                if now > reported {
                    progress(now - reported);
                    reported = now;
                }
            }
        }
    }
    let now = written.load(Ordering::Relaxed);
    if now > reported {
        progress(now - reported);
    }
    outcome.rows_written = written.load(Ordering::Relaxed);
    outcome.batches_written = counters.batches.load(Ordering::Relaxed);
    outcome.bytes_written = counters.bytes.load(Ordering::Relaxed);
    outcome.retries = counters.retries.load(Ordering::Relaxed);
    outcome.retries_by_class = counters.retries_by_class();
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome.format = counters.format.get();
    if let Some(e) = first_error {
        // What the chunk did before it stopped (the batches it committed, the retries that
        // exhausted it), for a caller that asked (`with_stopped_figures`).
        let _ = STOPPED.try_with(|stopped| *stopped.borrow_mut() = Some(outcome));
        return Err(e);
    }
    outcome.orphans_loaded = produced.unwrap_or(0);
    Ok(outcome)
}

tokio::task_local! {
    /// Where [`load_chunk`] leaves the figures of a chunk that stopped with an error.
    static STOPPED: std::cell::RefCell<Option<ChunkOutcome>>;
}

/// Runs `load` (a future that loads one chunk with [`load_chunk`], however deep inside) and
/// returns its output with, when that chunk stopped with an error after it began writing, what
/// it had done by then: rows and batches committed, bytes, retries by class, seconds. The
/// error alone says why the chunk stopped; these figures say how hard it tried (`load-chunk`
/// prints them as the chunk's metrics, so conflicts and throttles count when they exhaust a
/// chunk). `None` after success, or when the chunk stopped before writing (its ledger unread,
/// its table unmapped).
pub async fn with_stopped_figures<F: std::future::Future>(
    load: F,
) -> (F::Output, Option<ChunkOutcome>) {
    STOPPED
        .scope(std::cell::RefCell::new(None), async {
            let output = load.await;
            (output, STOPPED.with(|stopped| stopped.borrow_mut().take()))
        })
        .await
}

/// The chunk's committed ranges, on a fresh connection; a lost connection or a throttle is
/// retried with backoff like a batch is.
async fn read_ledger(ctx: &LoadContext, chunk: &Chunk) -> Result<Vec<(u64, u64)>> {
    let mut attempt = 0;
    loop {
        let result = crate::target::within(
            ctx.options.statement_timeout,
            || format!("read the ledger of chunk {}", chunk.id),
            async {
                // A session: dropped at the bound, its connection is closed too.
                let control = ctx.target.session().await?;
                ledger::committed_ranges(&control, &ctx.mapping.migration.id, &chunk.id).await
            },
        )
        .await;
        match result {
            Ok(ranges) => return Ok(ranges),
            Err(e) => {
                tracing::info!(chunk = %chunk.id, attempt, error = %e, "ledger read failed");
                if !ctx.options.retry_after(&e, &mut attempt).await {
                    return Err(e);
                }
            }
        }
    }
}

/// Sorts row ranges and merges the ones that touch, so a row group covered by several
/// committed batches is recognised as fully committed.
pub fn coalesce(ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(sorted.len());
    for (a, b) in sorted {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Reads, encodes and cuts batches; returns the number of orphan references loaded.
async fn produce_batches(
    ctx: &LoadContext,
    table: &TableMapping,
    chunk: &Chunk,
    committed: &[(u64, u64)],
    file: String,
    tx: tokio::sync::mpsc::Sender<Batch>,
) -> Result<u64> {
    let mut encoder = RowEncoder::new(&ctx.mapping, table, &ctx.orphans, file.clone())?;
    let committed = coalesce(committed);
    // Rows arrive in increasing order: one cursor over the sorted ranges answers "committed?".
    let mut cursor = 0usize;
    let mut covered = |r: u64| {
        while cursor < committed.len() && committed[cursor].1 <= r {
            cursor += 1;
        }
        cursor < committed.len() && committed[cursor].0 <= r
    };
    // Row groups entirely committed are not read at all.
    let mut offsets = Vec::new();
    let mut selected = Vec::new();
    let mut offset = 0u64;
    for (i, n) in chunk.row_group_rows.iter().enumerate() {
        let fully = *n > 0
            && committed
                .iter()
                .any(|(a, b)| *a <= offset && offset + n <= *b);
        if !fully && *n > 0 {
            selected.push(chunk.row_group_start + i);
            offsets.push((offset, *n));
        }
        offset += n;
    }
    if selected.is_empty() {
        return Ok(0);
    }
    let columns = encoder
        .source_columns()
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>();
    let mut stream = read::open(&ctx.export, chunk, selected, &columns, READ_BATCH_ROWS).await?;
    let max_rows = ctx.options.batch_rows;
    let max_bytes = ctx.options.batch_bytes;
    let mut buf: Vec<u8> = Vec::with_capacity(max_bytes + 64 * 1024);
    buf.extend_from_slice(COPY_HEADER);
    let mut rows = 0usize;
    let mut first_row = 0u64;
    let mut rg = 0usize;
    let mut in_rg = 0u64;
    let send = |buf: &mut Vec<u8>, first_row: u64, rows: usize| {
        let mut data = std::mem::replace(buf, Vec::with_capacity(max_bytes + 64 * 1024));
        data.extend_from_slice(COPY_TRAILER);
        buf.extend_from_slice(COPY_HEADER);
        Batch {
            first_row,
            rows,
            data: Bytes::from(data),
        }
    };
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| Error::Parquet {
            file: file.clone(),
            reason: format!(
                "unreadable data in row groups {}..{}: {e}",
                chunk.row_group_start, chunk.row_group_end
            ),
        })?;
        let arrays = encoder.arrays(&batch)?;
        for r in 0..batch.num_rows() {
            while rg < offsets.len() && in_rg >= offsets[rg].1 {
                rg += 1;
                in_rg = 0;
            }
            let Some((rg_offset, _)) = offsets.get(rg).copied() else {
                return Err(Error::Parquet {
                    file: file.clone(),
                    reason: "more rows than the footer announces".into(),
                });
            };
            let chunk_row = rg_offset + in_rg;
            in_rg += 1;
            if covered(chunk_row) {
                if rows > 0 {
                    let b = send(&mut buf, first_row, rows);
                    rows = 0;
                    if tx.send(b).await.is_err() {
                        return Ok(encoder.orphans_loaded);
                    }
                }
                continue;
            }
            if rows > 0 && first_row + rows as u64 != chunk_row {
                // A gap (skipped rows) ends the batch: a batch is one contiguous range.
                let b = send(&mut buf, first_row, rows);
                rows = 0;
                if tx.send(b).await.is_err() {
                    return Ok(encoder.orphans_loaded);
                }
            }
            let start = buf.len();
            encoder.encode_row(&arrays, r, chunk, chunk_row, &mut buf)?;
            if rows > 0 && (rows + 1 > max_rows || buf.len() + COPY_TRAILER.len() > max_bytes) {
                // This row does not fit: close the batch before it and start the next with it.
                let row_bytes = buf[start..].to_vec();
                buf.truncate(start);
                let b = send(&mut buf, first_row, rows);
                buf.extend_from_slice(&row_bytes);
                rows = 0;
                if tx.send(b).await.is_err() {
                    return Ok(encoder.orphans_loaded);
                }
            }
            if rows == 0 {
                first_row = chunk_row;
            }
            rows += 1;
        }
    }
    let expected: u64 = offsets.iter().map(|(_, n)| n).sum();
    let seen: u64 = offsets[..rg.min(offsets.len())]
        .iter()
        .map(|(_, n)| n)
        .sum::<u64>()
        + in_rg;
    if seen != expected {
        return Err(Error::Parquet {
            file,
            reason: format!(
                "the footer announces {expected} rows in the selected row groups, the data holds {seen}"
            ),
        });
    }
    if rows > 0 {
        let b = send(&mut buf, first_row, rows);
        let _ = tx.send(b).await;
    }
    Ok(encoder.orphans_loaded)
}

/// Exponential backoff with full jitter: a random delay up to `base * 2^attempt`, capped at 5 s.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let cap = Duration::from_secs(5);
    let ceiling = base.saturating_mul(1u32 << attempt.min(16)).min(cap);
    let ms = ceiling.as_millis().max(1) as u64;
    Duration::from_millis(rand::random_range(ms / 2..=ms))
}

#[cfg(test)]
mod range_tests {
    use super::coalesce;

    #[test]
    fn committed_ranges_merge_when_they_touch() {
        assert_eq!(
            coalesce(&[(5, 10), (0, 5), (12, 20), (15, 18)]),
            vec![(0, 10), (12, 20)]
        );
        assert_eq!(coalesce(&[]), Vec::<(u64, u64)>::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_between_half_and_all_of_the_doubling_ceiling() {
        let base = Duration::from_millis(50);
        for attempt in 0..8u32 {
            let ceiling = (base * 2u32.pow(attempt)).min(Duration::from_secs(5));
            for _ in 0..200 {
                let d = backoff(base, attempt);
                assert!(
                    d >= ceiling / 2 && d <= ceiling,
                    "attempt {attempt}: {d:?} outside {:?}..={ceiling:?}",
                    ceiling / 2
                );
            }
        }
    }

    #[test]
    fn backoff_is_capped_at_five_seconds_even_for_huge_attempts() {
        for attempt in [13, 16, 17, 31, 32, 1_000, u32::MAX] {
            for base in [Duration::from_millis(50), Duration::from_secs(10)] {
                let d = backoff(base, attempt);
                assert!(
                    d >= Duration::from_millis(2_500) && d <= Duration::from_secs(5),
                    "attempt {attempt}, base {base:?}: {d:?}"
                );
            }
        }
        // A zero base still waits a little, and never panics.
        assert!(backoff(Duration::ZERO, 3) <= Duration::from_millis(1));
    }

    #[test]
    fn validate_keeps_batches_inside_dsql_limits() {
        let ok = |o: LoadOptions| o.validate().is_ok();
        assert!(ok(LoadOptions::default()));
        let rows = |batch_rows| LoadOptions {
            batch_rows,
            ..LoadOptions::default()
        };
        assert!(ok(rows(1)));
        // 2,999 rows + the ledger row = DSQL's 3,000.
        assert!(ok(rows(DSQL_MAX_ROWS - 1)));
        assert!(!ok(rows(DSQL_MAX_ROWS)));
        assert!(!ok(rows(0)));
        let bytes = |batch_bytes| LoadOptions {
            batch_bytes,
            ..LoadOptions::default()
        };
        assert!(ok(bytes(8 * 1024 * 1024)));
        assert!(!ok(bytes(8 * 1024 * 1024 + 1)));
        assert!(!ok(bytes(10 * 1024 * 1024)));
        assert!(ok(bytes(64 * 1024)));
        assert!(!ok(bytes(64 * 1024 - 1)));
        assert!(!ok(LoadOptions {
            connections: 0,
            ..LoadOptions::default()
        }));
        match rows(3_000).validate() {
            Err(Error::Usage(m)) => assert!(m.contains("3000"), "{m}"),
            other => panic!("expected a usage error, got {other:?}"),
        }
    }
}
