//! The migration's steps above single chunks: prepare the target, load every chunk, build the
//! post-load indexes, count. `snap2dsql run`/`load` call these in order; the Lambdas call one each.

use crate::chunk::Chunk;
use crate::ddl;
use crate::error::{Error, Result};
use crate::load::{self, ChunkOutcome, LoadContext};
use crate::mapping::Mapping;
use crate::target::{Target, within};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use std::collections::BTreeMap;

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
