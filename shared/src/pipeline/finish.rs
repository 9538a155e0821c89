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
use crate::error::Error;
use crate::mapping::Mapping;
use crate::post_load::jobs::JobState;
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
/// and returns the loop's state. A wave without jobs (constraints only) is done at once, and
/// the next submitted; after the last wave the identities are restarted and `done` is set.
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
    let deadline = deadline_of(None, input.state.max_index_wait_seconds, chrono::Utc::now())?;
    let status = PostLoadStatus {
        wave: 0,
        waves: post_load::waves(&mapping).len() as u64,
        statements: 0,
        jobs: 0,
        pending: 0,
        jobs_uri: format!("{run_uri}/post-load-jobs.json"),
        done: false,
        deadline: rfc3339(deadline),
        polls: 0,
    };
    advance(target, &mapping, &run, status).await
}

/// Submits wave `status.wave` and the ones after it until one has jobs to wait for; after the
/// last, restarts the identities.
async fn advance(
    target: &Target,
    mapping: &Mapping,
    run: &Store,
    mut status: PostLoadStatus,
) -> Result<PostLoadStatus, StepError> {
    let options = PostLoadOptions::default();
    let waves = post_load::waves(mapping);
    while let Some(wave) = waves.get(status.wave as usize) {
        let submitted = post_load::submit(target, wave, &options).await?;
        status.statements += submitted.statements as u64;
        run.put("post-load-jobs.json", json(&submitted.jobs)?)
            .await?;
        status.jobs = submitted.jobs.len() as u64;
        status.pending = status.jobs;
        if status.pending > 0 {
            return Ok(status);
        }
        status.wave += 1;
    }
    status.statements += post_load::restart_identities(target, mapping, &options).await? as u64;
    status.done = true;
    Ok(status)
}

/// `PollIndexes`: reads the current wave's jobs from `sys.jobs` once. A failed job fails the
/// step naming it; a built wave moves on to the next ([`advance`]); past the deadline, or
/// [`MAX_INDEX_POLLS`], the step fails with [`DEADLINE_EXCEEDED`] naming the jobs still running.
///
/// Running twice: reads only, unless the wave is built, when the next wave's submission adopts
/// what a first run submitted.
pub async fn poll_indexes(
    s3: &aws_sdk_s3::Client,
    target: &Target,
    input: &StepInput,
) -> Result<PostLoadStatus, StepError> {
    let mut status = input
        .state
        .post_load
        .clone()
        .ok_or_else(|| StepError::fatal("the state has no post_load status to poll"))?;
    let mapping = mapping_at(s3, &fan_out_of(input)?.mapping_uri).await?;
    let (run, _) = run_store(s3, input)?;
    let jobs: Vec<SubmittedJob> = serde_json::from_slice(&get_uri(s3, &status.jobs_uri).await?)
        .map_err(|e| StepError::fatal(format!("{}: not a job list: {e}", status.jobs_uri)))?;
    let states = post_load::poll(target, &jobs).await?;
    status.polls += 1;
    let mut running = Vec::new();
    for (job, state) in jobs.iter().zip(states) {
        match state {
            JobState::Failed { status: s, details } => {
                return Err(Error::JobFailed {
                    what: job.what.clone(),
                    job: job.job.to_string(),
                    status: s,
                    details,
                }
                .into());
            }
            JobState::Pending { status: s } => running.push(format!("{} ({s})", job.what)),
            // Missing: the job log no longer lists a finished job.
            JobState::Succeeded | JobState::Missing => {}
        }
    }
    status.pending = running.len() as u64;
    if running.is_empty() {
        status.wave += 1;
        return advance(target, &mapping, &run, status).await;
    }
    let deadline = deadline_of(Some(&status.deadline), 0, chrono::Utc::now())?;
    if chrono::Utc::now() > deadline || status.polls >= MAX_INDEX_POLLS {
        return Err(StepError::new(
            DEADLINE_EXCEEDED,
            format!(
                "post-load wave {} of {} still running after the deadline {} (max_index_wait_seconds = {}, {} polls of at most {MAX_INDEX_POLLS}): {}",
                status.wave + 1,
                status.waves,
                status.deadline,
                input.state.max_index_wait_seconds,
                status.polls,
                running.join(", ")
            ),
        ));
    }
    Ok(status)
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
    let export = open_export(s3, &input.export_uri, input.database.as_deref()).await?;
    let mapping = mapping_at(s3, &input.mapping_uri).await?;
    let nulled = get_orphan_sets(s3, input.nulled_uri.as_deref()).await?;
    let part = parts::run_item(
        Arc::new(export),
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
