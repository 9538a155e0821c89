//! The data half of the pipeline: plan the chunks of a completed export (fan-out, step 1 of
//! [`crate::migrate`]) and load one chunk (load-chunk, step 2); the steps after the load are in
//! [`super::finish`].
//!
//! A run's objects live beside the export, under `s3://<bucket>/runs/<execution>/`:
//! `chunks.json` (the Distributed Map's items), `orphans.json` (when there are orphans) and
//! `mapping.toml` (when the mapping was planned here).

use super::config::Config;
use super::contract::{ChunkItem, ChunkResult, FanOutResult, OrphanSet, StepInput};
use super::failure::StepError;
use crate::error::Error;
use crate::export::Export;
use crate::load::encode::Orphans;
use crate::load::{LoadContext, LoadOptions};
use crate::mapping::Mapping;
use crate::migrate;
use crate::store::{Store, split_s3_uri};
use crate::target::Target;
use bytes::Bytes;
use std::collections::HashSet;
use std::sync::Arc;

/// The prefix of an execution's objects in the export bucket.
pub fn run_prefix(execution: &str) -> String {
    format!("runs/{execution}")
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> Result<Bytes, StepError> {
    serde_json::to_vec_pretty(value)
        .map(Bytes::from)
        .map_err(|e| StepError::fatal(format!("cannot serialise a run object: {e}")))
}

/// Reads a small object by its `s3://` URI.
pub(super) async fn get_uri(s3: &aws_sdk_s3::Client, uri: &str) -> Result<Bytes, StepError> {
    let (bucket, key) = split_s3_uri(uri)?;
    let store = Store::s3(s3, &format!("s3://{bucket}"))?;
    Ok(store.get(key).await?)
}

pub(super) async fn mapping_at(s3: &aws_sdk_s3::Client, uri: &str) -> Result<Mapping, StepError> {
    parse_mapping(&get_uri(s3, uri).await?, uri)
}

/// mapping.toml's bytes (from `uri`), parsed and validated.
fn parse_mapping(text: &[u8], uri: &str) -> Result<Mapping, StepError> {
    let text = std::str::from_utf8(text).map_err(|e| Error::Mapping {
        file: uri.to_string(),
        reason: format!("not UTF-8: {e}"),
    })?;
    let mapping = Mapping::from_toml(text, uri)?;
    mapping.validate(uri)?;
    Ok(mapping)
}

pub(super) async fn open_export(
    s3: &aws_sdk_s3::Client,
    uri: &str,
    database: Option<&str>,
) -> Result<Export, StepError> {
    Ok(Export::open_store(Store::s3(s3, uri)?, database).await?)
}

/// Writes value sets per (table, column) as `name` in `run` (a list of [`OrphanSet`]), unless
/// there are none; returns the object's URI.
pub(super) async fn put_orphan_sets(
    run: &Store,
    name: &str,
    sets: &Orphans,
) -> Result<Option<String>, StepError> {
    if sets.is_empty() {
        return Ok(None);
    }
    let list: Vec<OrphanSet> = sets
        .iter()
        .map(|((table, column), values)| {
            let mut values: Vec<i64> = values.iter().copied().collect();
            values.sort_unstable();
            OrphanSet {
                table: table.clone(),
                column: column.clone(),
                values,
            }
        })
        .collect();
    run.put(name, json(&list)?).await?;
    Ok(Some(run.display(name)))
}

/// The value sets [`put_orphan_sets`] wrote at `uri` (none without one).
pub(super) async fn get_orphan_sets(
    s3: &aws_sdk_s3::Client,
    uri: Option<&str>,
) -> Result<Orphans, StepError> {
    let mut out = Orphans::new();
    if let Some(uri) = uri {
        let sets: Vec<OrphanSet> = serde_json::from_slice(&get_uri(s3, uri).await?)
            .map_err(|e| StepError::fatal(format!("{uri}: not an orphan list: {e}")))?;
        for s in sets {
            let values: HashSet<i64> = s.values.into_iter().collect();
            out.insert((s.table, s.column), Arc::new(values));
        }
    }
    Ok(out)
}

/// The fan-out: plans the chunks of the export, writes them as the Distributed Map's item list,
/// and (when asked) creates the target tables and the ledger.
///
/// Orphan references are found here, before anything is loaded: `on_orphan = "fail"` stops the
/// execution naming the row; other policies' orphan values go to `orphans.json` for the loaders.
///
/// Running twice: the plan is a function of the export and the mapping, so the same objects are
/// written again with the same content; every DDL statement is `IF NOT EXISTS`. An execution
/// started by the export-completed event claims its export first (see [`event_skip`]); its own
/// retry or redrive finds its own claim and goes on.
pub async fn fan_out(
    s3: &aws_sdk_s3::Client,
    target: &Target,
    config: &Config,
    input: &StepInput,
) -> Result<FanOutResult, StepError> {
    let state = &input.state;
    state.validate()?;
    let export_uri = state
        .export
        .as_ref()
        .map(|e| e.export_uri.clone())
        .or_else(|| state.export_uri.clone())
        .ok_or_else(|| {
            StepError::fatal("no export to plan: neither an export poll nor export_uri gave one")
        })?;
    let bucket = config.bucket()?.to_string();
    if let Some(why) = event_skip(s3, &bucket, &export_uri, input).await? {
        tracing::info!(export = %export_uri, why = %why, "nothing to load");
        return Ok(FanOutResult::skipped(&export_uri, &bucket, why));
    }
    let export = open_export(s3, &export_uri, state.database.as_deref()).await?;
    let prefix = run_prefix(&input.execution);
    let run = Store::s3(s3, &format!("s3://{bucket}/{prefix}"))?;
    let root = Store::s3(s3, &format!("s3://{bucket}"))?;
    let mapping_key = state.mapping_key.as_deref().unwrap_or(&config.mapping_key);
    let (mapping, mapping_uri, planned) = match root.get_if_exists(mapping_key).await? {
        Some(text) => {
            let uri = format!("s3://{bucket}/{mapping_key}");
            (parse_mapping(&text, &uri)?, uri, false)
        }
        None => {
            let plan = crate::plan::plan(&export, None).await?;
            for g in &plan.report.guesses {
                tracing::warn!(guess = %g, "planned without a mapping object");
            }
            plan.mapping.validate("planned mapping")?;
            run.put("mapping.toml", Bytes::from(plan.mapping.to_toml()?))
                .await?;
            (
                plan.mapping,
                format!("s3://{bucket}/{prefix}/mapping.toml"),
                true,
            )
        }
    };
    let migrate::Planned {
        chunks,
        orphans,
        orphan_reports: reports,
    } = migrate::plan(
        &export,
        &mapping,
        target,
        state.create_tables,
        state.chunk_rows,
    )
    .await?;
    for r in &reports {
        tracing::warn!(
            table = %r.table, column = %r.column, parent = %r.parent, count = r.count,
            on_orphan = %r.on_orphan, "orphan references"
        );
    }
    let orphans_uri = put_orphan_sets(&run, "orphans.json", &orphans).await?;
    let items: Vec<ChunkItem> = chunks
        .iter()
        .map(|c| ChunkItem {
            export_uri: export_uri.clone(),
            mapping_uri: mapping_uri.clone(),
            orphans_uri: orphans_uri.clone(),
            database: state.database.clone(),
            timeout_seconds: state.chunk_timeout_seconds,
            max_concurrency: Some(state.max_concurrency),
            chunk: c.clone(),
        })
        .collect();
    run.put("chunks.json", json(&items)?).await?;
    Ok(FanOutResult {
        export_uri,
        mapping_uri,
        mapping_planned: planned,
        chunks_key: format!("{prefix}/chunks.json"),
        chunks: chunks.len() as u64,
        rows: chunks.iter().map(|c| c.rows).sum(),
        tables: mapping.tables.len() as u64,
        orphans: reports.iter().map(|r| r.count).sum(),
        tables_created: state.create_tables,
        run_uri: format!("s3://{bucket}/{prefix}/"),
        bucket,
        skipped: None,
    })
}

/// The prefix of the export claims of event-started executions: `runs/claims/<export task>.json`.
pub const CLAIMS_PREFIX: &str = "runs/claims";

/// Why an execution started by the export-completed event (`export_source_arn`) loads nothing, or
/// `None` when it loads. RDS's event names the snapshot only, so it is decided here:
/// - the export is outside this stack's bucket;
/// - the export task is the pipeline's own (`snap2dsql-*`): the execution that started it loads it;
/// - another execution claimed the export: a second event for the same export. The claim is an
///   object written only if absent (`If-None-Match: *`), naming the execution; this execution's
///   own claim (a retry, a redrive) lets it go on.
///
/// Executions started by hand (any other entry point) are never skipped.
pub async fn event_skip(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    export_uri: &str,
    input: &StepInput,
) -> Result<Option<String>, StepError> {
    if input.state.export_source_arn.is_none() {
        return Ok(None);
    }
    let (export_bucket, _) = split_s3_uri(export_uri)?;
    if export_bucket != bucket {
        return Ok(Some(format!(
            "the export {export_uri} is outside this stack's bucket {bucket}"
        )));
    }
    let task = input
        .state
        .export
        .as_ref()
        .map(|e| e.export_task_id.clone())
        .ok_or_else(|| {
            StepError::fatal("an event-started execution reached FanOut without an export poll")
        })?;
    if task.starts_with("snap2dsql-") {
        return Ok(Some(format!(
            "export task {task} was started by the pipeline: the execution that started it loads it"
        )));
    }
    let key = format!("{CLAIMS_PREFIX}/{task}.json");
    let body = serde_json::json!({ "execution": input.execution, "export_uri": export_uri });
    let put = s3
        .put_object()
        .bucket(bucket)
        .key(&key)
        .if_none_match("*")
        .body(Bytes::from(body.to_string()).into())
        .send()
        .await;
    let failure = |e: String| {
        StepError::from(Error::S3 {
            operation: "PutObject",
            bucket: bucket.to_string(),
            key: key.clone(),
            reason: e,
        })
    };
    match put {
        Ok(_) => Ok(None),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
            let store = Store::s3(s3, &format!("s3://{bucket}"))?;
            let claim: serde_json::Value = serde_json::from_slice(&store.get(&key).await?)
                .map_err(|e| StepError::fatal(format!("s3://{bucket}/{key}: not a claim: {e}")))?;
            let by = claim["execution"]
                .as_str()
                .unwrap_or("an unknown execution");
            if by == input.execution {
                Ok(None)
            } else {
                Ok(Some(format!(
                    "export task {task} is already claimed by execution {by} (s3://{bucket}/{key})"
                )))
            }
        }
        // 409: another writer's claim is in flight; the retry reads it.
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 409) => {
            Err(StepError::new(
                super::failure::RETRYABLE,
                format!("claiming s3://{bucket}/{key}: a concurrent claim is in flight"),
            ))
        }
        Err(e) => Err(failure(
            aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
        )),
    }
}

/// Loads one chunk of the Distributed Map exactly once. It reads the mapping, the orphan list
/// (when there is one) and its own part file's footer and row groups: nothing is listed.
///
/// Running twice (a Retry, a redrive, the same execution input again): the target's ledger
/// records every committed batch in the batch's own transaction, so a second run writes only
/// what the first did not commit, and 0 rows after a complete first run.
pub async fn load_chunk(
    s3: &aws_sdk_s3::Client,
    target: &Target,
    options: &LoadOptions,
    item: &ChunkItem,
) -> Result<ChunkResult, StepError> {
    if let Some(parallel) = item.max_concurrency {
        crate::estimate::check_connections(parallel, options.connections as u64)?;
    }
    // The item names its part file, size and row groups: the export is not listed (the
    // function's role needs s3:GetObject on the export, not s3:ListBucket).
    let export =
        Export::of_planned_chunks(Store::s3(s3, &item.export_uri)?, item.database.as_deref());
    let mapping = mapping_at(s3, &item.mapping_uri).await?;
    let orphans = get_orphan_sets(s3, item.orphans_uri.as_deref()).await?;
    // A new context per invocation: the load format is decided afresh by its first batches.
    let ctx = LoadContext::new(
        Arc::new(export),
        Arc::new(mapping),
        target.clone(),
        orphans,
        options.clone(),
    );
    let outcome = crate::load::load_chunk(&ctx, &item.chunk, &|_| {}).await?;
    tracing::info!(
        chunk = %outcome.chunk, rows_written = outcome.rows_written,
        rows_already_committed = outcome.rows_already_committed, retries = outcome.retries,
        "chunk loaded"
    );
    Ok(outcome)
}
