//! The end of the pipeline, after the load, in steps that each end within minutes: the
//! post-load jobs as a poll loop on `sys.jobs` (`BuildIndexes`, `PollIndexes`), and
//! verification as a Distributed Map of parts (`PlanVerify`, `VerifyPart` in `VerifyParts`)
//! whose aggregates one step combines into the report (`Verify`). All run in the `verify`
//! function, which the request's `step` dispatches ([`super::contract::VerifyRequest`]).
//!
//! A run's objects, beside `chunks.json` under `s3://<bucket>/runs/<execution>/`:
//! `post-load-jobs.json` (the current wave's jobs), `verify-items.json` (the map's items),
//! `verify-nulled.json` (the verifier's own orphan list, when a column loads orphans as NULL),
//! `verify-parts/<i>.json` (part `i`'s aggregates) and `verify-report.json`.

use super::contract::{
    FanOutResult, MAX_INDEX_POLLS, PostLoadStatus, StepInput, VerifyPartInput, VerifyPartResult,
    VerifyPlanResult, VerifyRequest, VerifyResult, deadline_of, part_key, rfc3339,
};
use super::failure::{DEADLINE_EXCEEDED, StepError, VERIFY_MISMATCH};
use super::steps::{
    get_orphan_sets, get_uri, json, mapping_at, open_export, put_orphan_sets, run_prefix,
};
use crate::post_load::{self, PostLoadOptions, SubmittedJob};
use crate::store::{Store, split_s3_uri};
use crate::target::Target;
use crate::verify::parts::{self, Combiner, Side};
use crate::verify::{VerifyOptions, VerifyReport};
use futures::{StreamExt, TryStreamExt};
use std::sync::Arc;

/// Part objects read at once by the combine step.
const PARTS_IN_FLIGHT: usize = 16;

fn fan_out_of(input: &StepInput) -> Result<&FanOutResult, StepError> {
    input
        .state
        .fan_out
        .as_ref()
        .ok_or_else(|| StepError::fatal("the state has no fan_out result: nothing was loaded"))
}

/// The store of this execution's objects, and its `s3://` prefix.
fn run_store(s3: &aws_sdk_s3::Client, input: &StepInput) -> Result<(Store, String), StepError> {
    let (bucket, _) = split_s3_uri(&fan_out_of(input)?.run_uri)?;
    let uri = format!("s3://{bucket}/{}", run_prefix(&input.execution));
    Ok((Store::s3(s3, &uri)?, uri))
}

/// `BuildIndexes`: submits the first wave of post-load jobs (indexes, constraint validations)
/// and returns the loop's state ([`post_load::Progress::start`]). A wave without jobs
/// (constraints only) is done at once, and the next submitted; after the last wave the
/// identities are restarted and `done` is set.
///
/// Running twice: a job already submitted for the same object and still running is adopted,
/// an object already built counts as done ([`crate::post_load`]); the jobs list is rewritten.
pub async fn build_indexes(
    s3: &aws_sdk_s3::Client,
    target: &Target,
    input: &StepInput,
) -> Result<PostLoadStatus, StepError> {
    input.state.validate()?;
    let mapping = mapping_at(s3, &fan_out_of(input)?.mapping_uri).await?;
    let (run, run_uri) = run_store(s3, input)?;
    let progress =
        post_load::Progress::start(target, &mapping, &PostLoadOptions::default()).await?;
    let deadline = deadline_of(None, input.state.max_index_wait_seconds, chrono::Utc::now())?;
    run.put("post-load-jobs.json", json(&progress.jobs)?)
        .await?;
    Ok(status_of(
        &progress,
        format!("{run_uri}/post-load-jobs.json"),
        rfc3339(deadline),
        0,
    ))
}

/// The loop's state in the execution's state: counts, the jobs' URI.
fn status_of(
    p: &post_load::Progress,
    jobs_uri: String,
    deadline: String,
    polls: u64,
) -> PostLoadStatus {
    PostLoadStatus {
        wave: p.wave as u64,
        waves: p.waves as u64,
        statements: p.statements as u64,
        jobs: p.jobs.len() as u64,
        pending: if p.done { 0 } else { p.running.len() as u64 },
        jobs_uri,
        done: p.done,
        deadline,
        polls,
    }
}

/// `PollIndexes`: reads the current wave's jobs from `sys.jobs` once
/// ([`post_load::Progress::poll`]). A failed job fails the step naming it; a built wave moves
/// on to the next; past the deadline, or [`MAX_INDEX_POLLS`], the step fails with
/// [`DEADLINE_EXCEEDED`] naming the jobs still running.
///
/// Running twice: reads only, unless the wave is built, when the next wave's submission adopts
/// what a first run submitted.
pub async fn poll_indexes(
    s3: &aws_sdk_s3::Client,
    target: &Target,
    input: &StepInput,
) -> Result<PostLoadStatus, StepError> {
    let status = input
        .state
        .post_load
        .as_ref()
        .ok_or_else(|| StepError::fatal("the state has no post_load status to poll"))?;
    let mapping = mapping_at(s3, &fan_out_of(input)?.mapping_uri).await?;
    let (run, _) = run_store(s3, input)?;
    let jobs: Vec<SubmittedJob> = serde_json::from_slice(&get_uri(s3, &status.jobs_uri).await?)
        .map_err(|e| StepError::fatal(format!("{}: not a job list: {e}", status.jobs_uri)))?;
    let before = post_load::Progress {
        wave: status.wave as usize,
        waves: status.waves as usize,
        statements: status.statements as usize,
        jobs,
        running: Vec::new(),
        done: status.done,
    };
    let wave = before.wave;
    let progress = before
        .poll(target, &mapping, &PostLoadOptions::default())
        .await?;
    if progress.wave != wave {
        run.put("post-load-jobs.json", json(&progress.jobs)?)
            .await?;
    }
    let out = status_of(
        &progress,
        status.jobs_uri.clone(),
        status.deadline.clone(),
        status.polls + 1,
    );
    let deadline = deadline_of(Some(&status.deadline), 0, chrono::Utc::now())?;
    let late = chrono::Utc::now() > deadline || out.polls >= MAX_INDEX_POLLS;
    if out.wave == status.wave && !out.done && late {
        return Err(StepError::new(
            DEADLINE_EXCEEDED,
            format!(
                "post-load wave {} of {} still running after the deadline {} (max_index_wait_seconds = {}, {} polls of at most {MAX_INDEX_POLLS}): {}",
                out.wave + 1,
                out.waves,
                out.deadline,
                input.state.max_index_wait_seconds,
                out.polls,
                progress.running.join(", ")
            ),
        ));
    }
    Ok(out)
}

/// `PlanVerify`: cuts each table into verify parts ([`parts::plan_items`]) and writes them as
/// `verify-items.json`, the `VerifyParts` map's items; the verifier's own orphan list goes to
/// `verify-nulled.json`. Returns counts.
///
/// Running twice: the cuts depend on the export and the target's key bounds, which the load no
/// longer changes, so the same objects are written again.
pub async fn plan_verify(
    s3: &aws_sdk_s3::Client,
    target: &Target,
    input: &StepInput,
) -> Result<VerifyPlanResult, StepError> {
    let fan = fan_out_of(input)?;
    let export = open_export(s3, &fan.export_uri, input.state.database.as_deref()).await?;
    let mapping = mapping_at(s3, &fan.mapping_uri).await?;
    let (run, _) = run_store(s3, input)?;
    let nulled = crate::verify::expect::orphans::find(&export, &mapping).await?;
    let nulled_uri = put_orphan_sets(&run, "verify-nulled.json", &nulled).await?;
    let items = parts::plan_items(
        &export,
        &mapping,
        target,
        input.state.verify_item_rows,
        &VerifyOptions::default(),
    )
    .await?;
    let (bucket, _) = split_s3_uri(&fan.run_uri)?;
    let prefix = run_prefix(&input.execution);
    let parts_prefix = format!("{prefix}/verify-parts");
    let mut rows = 0;
    let mut export_items = 0;
    let requests: Vec<VerifyRequest> = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            if let Side::Export { units } = &item.side {
                export_items += 1;
                rows += units.iter().flat_map(|u| &u.rows).sum::<u64>();
            }
            VerifyRequest::VerifyPart(VerifyPartInput {
                export_uri: fan.export_uri.clone(),
                mapping_uri: fan.mapping_uri.clone(),
                database: input.state.database.clone(),
                nulled_uri: nulled_uri.clone(),
                bucket: bucket.to_string(),
                part_key: part_key(&parts_prefix, i as u64),
                item,
            })
        })
        .collect();
    run.put("verify-items.json", json(&requests)?).await?;
    Ok(VerifyPlanResult {
        bucket: bucket.to_string(),
        items_key: format!("{prefix}/verify-items.json"),
        items: requests.len() as u64,
        export_items,
        target_items: requests.len() as u64 - export_items,
        tables: mapping.tables.len() as u64,
        rows,
        parts_prefix,
        nulled_uri,
    })
}

/// `VerifyPart`: one item's aggregates ([`parts::run_item`]), written to its part object.
///
/// Running twice: read-only against the export and the target; the part object is rewritten.
pub async fn verify_part(
    s3: &aws_sdk_s3::Client,
    target: &Target,
    input: &VerifyPartInput,
) -> Result<VerifyPartResult, StepError> {
    // A target part reads the target alone: the export is opened (and listed) for export
    // parts only.
    let export = match &input.item.side {
        Side::Export { .. } => Some(Arc::new(
            open_export(s3, &input.export_uri, input.database.as_deref()).await?,
        )),
        Side::Target { .. } => None,
    };
    let mapping = mapping_at(s3, &input.mapping_uri).await?;
    let nulled = get_orphan_sets(s3, input.nulled_uri.as_deref()).await?;
    let part = parts::run_item(
        export,
        &mapping,
        target,
        &nulled,
        &input.item,
        &VerifyOptions::default(),
    )
    .await?;
    let store = Store::s3(s3, &format!("s3://{}", input.bucket))?;
    store.put(&input.part_key, json(&part)?).await?;
    tracing::info!(table = %part.table, side = %part.side, rows = part.agg.rows, "verify part done");
    Ok(VerifyPartResult {
        table: part.table,
        side: part.side,
        rows: part.agg.rows,
        part_uri: store.display(&input.part_key),
    })
}

/// `Verify`: reads every part's aggregates from S3 (never from the state), combines them per
/// table, localises any difference to rows, writes `verify-report.json`, and fails with
/// [`VERIFY_MISMATCH`] naming the differing tables and their first rows.
///
/// Running twice: reads only, and writes the same report again.
pub async fn verify(
    s3: &aws_sdk_s3::Client,
    target: &Target,
    input: &StepInput,
) -> Result<VerifyResult, StepError> {
    let fan = fan_out_of(input)?;
    let plan = input
        .state
        .verify_plan
        .as_ref()
        .ok_or_else(|| StepError::fatal("the state has no verify_plan: nothing to combine"))?;
    let export = open_export(s3, &fan.export_uri, input.state.database.as_deref()).await?;
    let mapping = Arc::new(mapping_at(s3, &fan.mapping_uri).await?);
    let nulled = get_orphan_sets(s3, plan.nulled_uri.as_deref()).await?;
    let options = VerifyOptions::default();
    let mut combiner = Combiner::new(&mapping, &options)?;
    let bucket = Store::s3(s3, &format!("s3://{}", plan.bucket))?;
    let mut parts = futures::stream::iter(0..plan.items)
        .map(|i| {
            let (bucket, key) = (&bucket, part_key(&plan.parts_prefix, i));
            async move {
                let bytes = bucket.get(&key).await?;
                serde_json::from_slice::<parts::PartAgg>(&bytes).map_err(|e| {
                    StepError::fatal(format!("{}: not a verify part: {e}", bucket.display(&key)))
                })
            }
        })
        .buffered(PARTS_IN_FLIGHT);
    while let Some(part) = parts.try_next().await? {
        combiner.add(&part)?;
    }
    let report = combiner
        .finish(Arc::new(export), mapping, target, &nulled, &options)
        .await?;
    // Printed before the outcome is decided, so a mismatch still shows its figures.
    super::metrics::emit_verify(&report);
    let (run, run_uri) = run_store(s3, input)?;
    run.put("verify-report.json", json(&report)?).await?;
    let report_uri = format!("{run_uri}/verify-report.json");
    let differing = report
        .tables
        .iter()
        .filter(|t| t.status != crate::verify::Status::Match)
        .count() as u64;
    if !report.ok {
        return Err(StepError::new(
            VERIFY_MISMATCH,
            mismatch_summary(&report, &report_uri),
        ));
    }
    Ok(VerifyResult {
        ok: report.ok,
        report_uri,
        rows_verified: report.rows_in_export,
        post_load_statements: input.state.post_load.as_ref().map_or(0, |p| p.statements),
        seconds: report.seconds,
        tables: report.tables.len() as u64,
        tables_differing: differing,
        parts: plan.items,
    })
}

/// The failure cause of a mismatch: each differing table with its counts and first rows. Kept
/// well under the 32 KiB a state machine cause may hold.
pub fn mismatch_summary(report: &VerifyReport, report_uri: &str) -> String {
    const LISTED: usize = 5;
    let mut out = Vec::new();
    for t in report
        .tables
        .iter()
        .filter(|t| t.status != crate::verify::Status::Match)
    {
        let mut line = format!(
            "{} -> {}: {} rows in the export, {} in the target; {} missing, {} extra, {} differing",
            t.source, t.target, t.rows_in_export, t.rows_in_target, t.missing, t.extra, t.differing
        );
        for d in t.differences.iter().take(LISTED) {
            let kind = format!("{:?}", d.kind).to_lowercase();
            line.push_str(&format!("; {kind} key {}", d.key));
            if let Some(old) = &d.old_key {
                line.push_str(&format!(" (old key {old})"));
            }
            for c in &d.columns {
                line.push_str(&format!(
                    " {}: export {} target {}",
                    c.column,
                    c.export.as_deref().unwrap_or("NULL"),
                    c.target.as_deref().unwrap_or("NULL")
                ));
            }
        }
        out.push(line);
    }
    let mut text = format!(
        "verification found differences in {} of {} tables: {} (report: {report_uri})",
        out.len(),
        report.tables.len(),
        out.join(" | ")
    );
    if text.len() > 8_000 {
        let mut cut = 8_000;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(&format!("... (report: {report_uri})"));
    }
    text
}
