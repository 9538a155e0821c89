//! The migration sequence, written once. Both drivers run the same steps in this order:
//!
//! | step | the CLI's `run` ([`run`]) | the pipeline's states |
//! |---|---|---|
//! | 1. prepare the target, plan the chunks, find the orphans | [`plan`] | `FanOut` ([`plan`]) |
//! | 2. load every chunk | [`load_chunks`] | `LoadChunk` per chunk ([`load::load_chunk`]) |
//! | 3. post-load indexes, constraints, identities | [`post_load`] (waits) | `BuildIndexes`, `PollIndexes` ([`crate::post_load::Progress`]) |
//! | 4. verify every row | [`crate::verify::verify`] | `PlanVerify`, `VerifyPart`, `Verify` ([`crate::verify::parts`]) |
//!
//! The pipeline calls one step per state (a state cannot wait for hours or hold the export in
//! memory); [`run`] calls them all in one process. Steps 3 and 4 have a waiting and a stepwise
//! form over the same submissions and the same aggregates, and a test checks that verifying in
//! parts reports what verifying whole does.

use crate::chunk::Chunk;
use crate::ddl;
use crate::error::{Error, Result};
use crate::export::Export;
use crate::load::encode::Orphans;
use crate::load::orphans::OrphanReport;
use crate::load::{self, ChunkOutcome, LoadContext, LoadOptions};
use crate::mapping::Mapping;
use crate::target::{Target, within};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Runs `step` on a new connection, and again on another one after a retryable failure (a
/// dropped connection, a restart, a conflict; backoff as for load batches). Only for steps that
/// are safe to repeat: `IF NOT EXISTS` DDL, reads.
pub async fn retrying<T, F, Fut>(target: &Target, what: &str, mut step: F) -> Result<T>
where
    F: FnMut(tokio_postgres::Client) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let retry = load::LoadOptions::default();
    let mut attempt = 0;
    loop {
        let result = match target.connect().await {
            Ok(client) => step(client).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(done) => return Ok(done),
            Err(e) if retry.retry_after(&e, &mut attempt).await => {
                tracing::warn!(step = what, attempt, error = %e, "retrying");
            }
            Err(e) => return Err(e),
        }
    }
}

/// Creates the ledger, records the mapping in the target ([`crate::record`]) and, when asked,
/// creates the schemas and tables (one statement per transaction).
///
/// Running twice: every statement is `IF NOT EXISTS`, so a retry after a dropped connection
/// simply runs them all again.
pub async fn prepare_target(target: &Target, mapping: &Mapping, create_tables: bool) -> Result<()> {
    let statements = if create_tables {
        ddl::create_statements(mapping)
    } else {
        Vec::new()
    };
    // Each DDL statement is bounded like a post-load statement: a silent connection is dropped
    // and the whole preparation run again on a new one (every statement is IF NOT EXISTS).
    let bound = crate::post_load::STATEMENT_TIMEOUT;
    retrying(target, "prepare the target", |client| {
        let statements = &statements;
        async move {
            within(
                bound,
                || "create the ledger".into(),
                load::ledger::ensure(&client),
            )
            .await?;
            within(
                bound,
                || "record the mapping".into(),
                crate::record::remember(&client, mapping),
            )
            .await?;
            for st in statements {
                let what = format!("create {}", st.what);
                within(bound, || what.clone(), async {
                    match client.batch_execute(&st.sql).await {
                        Err(e) if !e.code().is_some_and(|c| ddl::is_already_done(c.code())) => {
                            Err(Error::statement(&what, &st.sql, e))
                        }
                        _ => Ok(()),
                    }
                })
                .await?;
            }
            Ok(())
        }
    })
    .await
}

/// What step 1 planned: the chunks, and the orphan references to load per the mapping.
pub struct Planned {
    pub chunks: Vec<Chunk>,
    pub orphans: Orphans,
    pub orphan_reports: Vec<OrphanReport>,
}

/// Step 1: prepares the target ([`prepare_target`]), plans the chunks (`chunk_rows` rows at
/// most, the library's default without), and finds the orphan references
/// ([`load::orphans::scan`]; `on_orphan = "fail"` stops here, before anything is loaded).
///
/// Running twice: the preparation is `IF NOT EXISTS`; the plan is a function of the export and
/// the mapping.
pub async fn plan(
    export: &Export,
    mapping: &Mapping,
    target: &Target,
    create_tables: bool,
    chunk_rows: Option<u64>,
) -> Result<Planned> {
    prepare_target(target, mapping, create_tables).await?;
    let chunks = crate::chunk::plan_chunks_with(
        export,
        mapping,
        chunk_rows.unwrap_or(crate::chunk::CHUNK_MAX_ROWS),
        crate::chunk::CHUNK_MAX_BYTES,
    )
    .await?;
    let (orphans, orphan_reports) = load::orphans::scan(export, mapping).await?;
    Ok(Planned {
        chunks,
        orphans,
        orphan_reports,
    })
}

/// How [`run`] runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub create_tables: bool,
    pub chunk_rows: Option<u64>,
    /// Chunks loaded at once.
    pub parallel_chunks: usize,
    /// Steps 3 and 4 too (`run`); without, the sequence stops after the load (`load`).
    pub full: bool,
}

/// What a driver shows while [`run`] goes (the CLI's progress bars and messages).
pub trait Observer: Sync {
    /// After step 1, before anything is loaded.
    fn planned(&self, _mapping: &Mapping, _planned: &Planned) {}
    /// Rows of `table` committed.
    fn rows(&self, _table: &str, _rows: u64) {}
    /// The load ended (well or not).
    fn loaded(&self) {}
}

/// What [`run`] did.
pub struct RunOutcome {
    /// The load's context: export, mapping, target, and the load format decided.
    pub ctx: LoadContext,
    pub chunks: Vec<Chunk>,
    pub orphan_reports: Vec<OrphanReport>,
    pub outcomes: Vec<ChunkOutcome>,
    pub load_seconds: f64,
    /// Step 3's statements (0 without `full`).
    pub post_load_statements: usize,
    /// Step 4's report (`full` only).
    pub verified: Option<crate::verify::VerifyReport>,
}

/// The whole sequence in one process: steps 1 and 2, and with `options.full` 3 and 4.
///
/// Running twice: each step's own answer (the ledger makes the load exactly-once; the
/// post-load adopts or skips what exists; verification reads).
pub async fn run(
    export: Export,
    mapping: Mapping,
    target: Target,
    load_options: LoadOptions,
    options: &RunOptions,
    observer: &dyn Observer,
) -> Result<RunOutcome> {
    let planned = plan(
        &export,
        &mapping,
        &target,
        options.create_tables,
        options.chunk_rows,
    )
    .await?;
    observer.planned(&mapping, &planned);
    let Planned {
        chunks,
        orphans,
        orphan_reports,
    } = planned;
    let ctx = LoadContext::new(
        Arc::new(export),
        Arc::new(mapping),
        target,
        orphans,
        load_options,
    );
    let started = Instant::now();
    let outcomes = load_chunks(&ctx, &chunks, options.parallel_chunks, &|table, rows| {
        observer.rows(table, rows)
    })
    .await;
    observer.loaded();
    let outcomes = outcomes?;
    let load_seconds = started.elapsed().as_secs_f64();
    let (post_load_statements, verified) = if options.full {
        let statements = post_load(&ctx.target, &ctx.mapping).await?;
        let report = crate::verify::verify(
            ctx.export.clone(),
            ctx.mapping.clone(),
            &ctx.target,
            &crate::verify::VerifyOptions::default(),
            &|_, _| {},
        )
        .await?;
        (statements, Some(report))
    } else {
        (0, None)
    };
    Ok(RunOutcome {
        ctx,
        chunks,
        orphan_reports,
        outcomes,
        load_seconds,
        post_load_statements,
        verified,
    })
}

/// Loads `chunks`, up to `parallel` at a time; `progress(table, rows)` gets committed rows.
/// Stops at the first failed chunk (committed batches stay recorded: a rerun resumes).
/// Refuses, before connecting, `parallel` × connections past DSQL's connection limits
/// ([`crate::estimate::check_connections`]).
pub async fn load_chunks(
    ctx: &LoadContext,
    chunks: &[Chunk],
    parallel: usize,
    progress: &(dyn Fn(&str, u64) + Sync),
) -> Result<Vec<ChunkOutcome>> {
    crate::estimate::check_connections(parallel.max(1) as u64, ctx.options.connections as u64)?;
    futures::stream::iter(chunks)
        .map(|chunk| async move {
            load::load_chunk(ctx, chunk, &|rows| progress(&chunk.table, rows)).await
        })
        .buffer_unordered(parallel.max(1))
        .try_collect()
        .await
}

/// Runs the post-load work ([`crate::post_load::run`]): secondary indexes and foreign keys
/// (DSQL: async jobs, each waited for), then identity restarts. Returns the statements run.
///
/// Running twice: see [`crate::post_load`]: existing objects count as done, running jobs are
/// adopted, restarts set the same value.
pub async fn post_load(target: &Target, mapping: &Mapping) -> Result<usize> {
    crate::post_load::run(
        target,
        mapping,
        &crate::post_load::PostLoadOptions::default(),
    )
    .await
}

/// Rows per target table, by source table: `count(*)` of each primary-key page
/// ([`crate::pages`]), so no count is one long transaction.
pub async fn count_target(target: &Target, mapping: &Mapping) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    let mut reader = crate::pages::Reader::new(target, crate::verify::SESSION);
    for t in &mapping.tables {
        let pager = crate::verify::table::TablePlan::new(t)?.pager(Default::default());
        let n = reader
            .count(&pager, &format!("count {}", t.target()))
            .await?;
        out.insert(t.source.clone(), n);
    }
    Ok(out)
}

/// One table's line in the run summary.
#[derive(Debug, Clone, Serialize)]
pub struct TableResult {
    pub source: String,
    pub target: String,
    pub rows_in_export: u64,
    pub rows_in_target: u64,
    pub rows_written: u64,
    pub rows_already_loaded: u64,
    pub orphans_loaded: u64,
    pub retries: u64,
    pub status: String,
}

/// Sums chunk outcomes and counts per table into the summary lines.
pub fn summarise(
    mapping: &Mapping,
    chunks: &[Chunk],
    outcomes: &[ChunkOutcome],
    counts: &BTreeMap<String, u64>,
) -> Vec<TableResult> {
    mapping
        .tables
        .iter()
        .map(|t| {
            let expected: u64 = chunks
                .iter()
                .filter(|c| c.table == t.source)
                .map(|c| c.rows)
                .sum();
            let mine = outcomes.iter().filter(|o| o.table == t.source);
            let (mut written, mut already, mut orphans, mut retries) = (0, 0, 0, 0);
            for o in mine {
                written += o.rows_written;
                already += o.rows_already_committed;
                orphans += o.orphans_loaded;
                retries += o.retries;
            }
            let in_target = counts.get(&t.source).copied().unwrap_or(0);
            TableResult {
                source: t.source.clone(),
                target: t.target(),
                rows_in_export: expected,
                rows_in_target: in_target,
                rows_written: written,
                rows_already_loaded: already,
                orphans_loaded: orphans,
                retries,
                status: if in_target == expected {
                    "ok".into()
                } else {
                    "count mismatch".into()
                },
            }
        })
        .collect()
}
