//! The RDS half of the pipeline: snapshot the source cluster, start its export to S3, and poll
//! the export task until it is complete.
//!
//! Both calls are made once per poll by the state machine's loops (`Snapshot` -> `WaitForSnapshot`
//! -> `Snapshot`, `PollExport` -> `WaitForExport` -> `PollExport`), and both are safe to repeat:
//! the snapshot and the export task get ids derived from the execution's name, so a rerun (a
//! retry, a redrive, the same execution input started again under the same name) finds them
//! instead of making new ones.

use super::config::Config;
use super::contract::{ExportStatus, MAX_POLLS, SnapshotStatus, StepInput, deadline_of, rfc3339};
use super::failure::{DEADLINE_EXCEEDED, EXPORT_FAILED, FATAL, RETRYABLE, StepError};
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use chrono::{DateTime, Utc};

/// The RDS id (snapshot or export task) of an execution: `snap2dsql-<name>-<hash>`.
///
/// Letters, digits and single hyphens, starting with a letter, at most 60 characters (the
/// stricter of the two RDS rules). The hash of the full execution name keeps two long names
/// that share a prefix apart.
pub fn rds_id(execution: &str) -> String {
    let mut name = String::new();
    for c in execution.chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        };
        if !(c == '-' && (name.is_empty() || name.ends_with('-'))) {
            name.push(c);
        }
        if name.len() >= 38 {
            break;
        }
    }
    let name = name.trim_end_matches('-');
    let hash = xxhash_rust::xxh3::xxh3_64(execution.as_bytes()) as u32;
    if name.is_empty() {
        format!("snap2dsql-{hash:08x}")
    } else {
        format!("snap2dsql-{name}-{hash:08x}")
    }
}

/// An AWS call's failure: a timeout or a dropped connection may be retried, a service error
/// (not found, access denied, invalid state) may not.
fn aws_failure<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    what: &str,
    e: &SdkError<E, R>,
) -> StepError {
    let error_type = match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => RETRYABLE,
        SdkError::ServiceError(s) if s.err().code() == Some("Throttling") => RETRYABLE,
        _ => FATAL,
    };
    StepError::new(
        error_type,
        format!("{what}: {}", aws_sdk_rds::error::DisplayErrorContext(e)),
    )
}

/// The snapshot step: find or create the snapshot, and once it is `available` start (or adopt)
/// its export task.
///
/// Running twice: the snapshot id and the export task id come from the execution's name, so a
/// second run finds both (`ExportTaskAlreadyExists` is adopted when the task exports the same
/// snapshot, and refused when it exports another).
pub async fn snapshot_step(
    rds: &aws_sdk_rds::Client,
    config: &Config,
    input: &StepInput,
) -> Result<SnapshotStatus, StepError> {
    let state = &input.state;
    state.validate()?;
    let now = Utc::now();
    let previous = state.snapshot.as_ref();
    let deadline = deadline_of(
        previous.map(|p| p.deadline.as_str()),
        state.max_wait_seconds,
        now,
    )?;
    let polls = previous.map_or(0, |p| p.polls) + 1;

    let snapshot = match &state.snapshot_arn {
        Some(arn) => {
            let id = arn.rsplit(':').next().unwrap_or(arn);
            describe_snapshot(rds, id)
                .await?
                .ok_or_else(|| StepError::fatal(format!("cluster snapshot {arn} does not exist")))?
        }
        None => {
            let cluster = state
                .source_cluster
                .as_deref()
                .or(config.source_cluster_id.as_deref())
                .ok_or_else(|| {
                    StepError::fatal(
                        "the input names no source: give source_cluster, snapshot_arn, export_task_id, export_source_arn or export_uri",
                    )
                })?;
            let id = rds_id(&input.execution);
            match describe_snapshot(rds, &id).await? {
                Some(s) => s,
                None => create_snapshot(rds, cluster, &id, &input.execution).await?,
            }
        }
    };
    let snapshot_id = snapshot
        .db_cluster_snapshot_identifier()
        .unwrap_or_default()
        .to_string();
    let snapshot_arn = snapshot
        .db_cluster_snapshot_arn()
        .unwrap_or_default()
        .to_string();
    let status = snapshot.status().unwrap_or("unknown").to_ascii_lowercase();
    let mut out = SnapshotStatus {
        snapshot_id,
        snapshot_arn,
        snapshot_status: status.clone(),
        export_task_id: None,
        export_started: false,
        deadline: rfc3339(deadline),
        polls,
    };
    match status.as_str() {
        "available" => {}
        "failed" | "deleted" | "deleting" | "incompatible-restore" => {
            return Err(StepError::fatal(format!(
                "cluster snapshot {} is {status}: it cannot be exported",
                out.snapshot_arn
            )));
        }
        _ if now > deadline || polls >= MAX_POLLS => {
            return Err(StepError::new(
                DEADLINE_EXCEEDED,
                format!(
                    "cluster snapshot {} is still {status} after the deadline {} (max_wait_seconds = {}, {polls} polls of at most {MAX_POLLS})",
                    out.snapshot_arn, out.deadline, state.max_wait_seconds
                ),
            ));
        }
        _ => return Ok(out),
    }
    let task_id = rds_id(&input.execution);
    start_export(
        rds,
        config,
        &task_id,
        &out.snapshot_arn,
        state.database.as_deref(),
    )
    .await?;
    out.export_task_id = Some(task_id);
    out.export_started = true;
    Ok(out)
}

async fn describe_snapshot(
    rds: &aws_sdk_rds::Client,
    id: &str,
) -> Result<Option<aws_sdk_rds::types::DbClusterSnapshot>, StepError> {
    match rds
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier(id)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_cluster_snapshots().first().cloned()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_cluster_snapshot_not_found_fault()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_failure(&format!("describe cluster snapshot {id}"), &e)),
    }
}

async fn create_snapshot(
    rds: &aws_sdk_rds::Client,
    cluster: &str,
    id: &str,
    execution: &str,
) -> Result<aws_sdk_rds::types::DbClusterSnapshot, StepError> {
    let tag = |k: &str, v: &str| aws_sdk_rds::types::Tag::builder().key(k).value(v).build();
    let out = rds
        .create_db_cluster_snapshot()
        .db_cluster_identifier(cluster)
        .db_cluster_snapshot_identifier(id)
        .tags(tag("snap2dsql:execution", execution))
        .send()
        .await;
    match out {
        Ok(out) => out.db_cluster_snapshot().cloned().ok_or_else(|| {
            StepError::fatal(format!(
                "create cluster snapshot {id}: RDS returned no snapshot"
            ))
        }),
        // Another invocation of the same execution created it first: use that one.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_cluster_snapshot_already_exists_fault()) =>
        {
            describe_snapshot(rds, id).await?.ok_or_else(|| {
                StepError::new(
                    RETRYABLE,
                    format!("cluster snapshot {id} exists but cannot be described yet"),
                )
            })
        }
        Err(e) => Err(aws_failure(
            &format!("create cluster snapshot {id} of cluster {cluster}"),
            &e,
        )),
    }
}

async fn start_export(
    rds: &aws_sdk_rds::Client,
    config: &Config,
    task_id: &str,
    snapshot_arn: &str,
    database: Option<&str>,
) -> Result<(), StepError> {
    let mut req = rds
        .start_export_task()
        .export_task_identifier(task_id)
        .source_arn(snapshot_arn)
        .s3_bucket_name(config.bucket()?)
        .iam_role_arn(Config::require(&config.export_role_arn, "EXPORT_ROLE_ARN")?)
        .kms_key_id(Config::require(
            &config.export_kms_key_arn,
            "EXPORT_KMS_KEY_ARN",
        )?);
    if !config.export_prefix.is_empty() {
        req = req.s3_prefix(&config.export_prefix);
    }
    if let Some(db) = database {
        req = req.export_only(db);
    }
    match req.send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_export_task_already_exists_fault()) =>
        {
            let task = describe_task(rds, task_id).await?;
            match task.source_arn() {
                Some(arn) if arn == snapshot_arn => Ok(()),
                other => Err(StepError::fatal(format!(
                    "export task {task_id} already exists and exports {}, not {snapshot_arn}: start the execution under another name",
                    other.unwrap_or("an unknown source")
                ))),
            }
        }
        Err(e) => Err(aws_failure(
            &format!("start export task {task_id} of {snapshot_arn}"),
            &e,
        )),
    }
}

async fn describe_task(
    rds: &aws_sdk_rds::Client,
    task_id: &str,
) -> Result<aws_sdk_rds::types::ExportTask, StepError> {
    let out = rds
        .describe_export_tasks()
        .export_task_identifier(task_id)
        .send()
        .await
        .map_err(|e| aws_failure(&format!("describe export task {task_id}"), &e))?;
    out.export_tasks()
        .first()
        .cloned()
        .ok_or_else(|| StepError::fatal(format!("export task {task_id} does not exist")))
}

/// The newest export task of a snapshot (the EventBridge path knows only the snapshot's ARN).
async fn task_of_source(
    rds: &aws_sdk_rds::Client,
    source_arn: &str,
) -> Result<aws_sdk_rds::types::ExportTask, StepError> {
    let out = rds
        .describe_export_tasks()
        .source_arn(source_arn)
        .send()
        .await
        .map_err(|e| aws_failure(&format!("describe the export tasks of {source_arn}"), &e))?;
    out.export_tasks()
        .iter()
        .filter(|t| t.source_arn() == Some(source_arn))
        .max_by_key(|t| t.task_start_time().map(|t| (t.secs(), t.subsec_nanos())))
        .cloned()
        .ok_or_else(|| StepError::fatal(format!("no export task exports {source_arn}")))
}

/// The export poll: where the export task is.
///
/// `FAILED` and `CANCELED` fail with [`EXPORT_FAILED`] and RDS's failure cause; a task still
/// running past the deadline fails with [`DEADLINE_EXCEEDED`]. Running twice: read only.
pub async fn poll_export(
    rds: &aws_sdk_rds::Client,
    input: &StepInput,
) -> Result<ExportStatus, StepError> {
    let state = &input.state;
    state.validate()?;
    let task = if let Some(id) = state.export_task_id.as_deref().or(state
        .snapshot
        .as_ref()
        .and_then(|s| s.export_task_id.as_deref()))
    {
        describe_task(rds, id).await?
    } else if let Some(arn) = &state.export_source_arn {
        task_of_source(rds, arn).await?
    } else {
        return Err(StepError::fatal(
            "no export task to poll: the input gives neither export_task_id nor export_source_arn, and no snapshot step started one",
        ));
    };
    let now = Utc::now();
    let carried = state
        .export
        .as_ref()
        .map(|e| e.deadline.as_str())
        .or(state.snapshot.as_ref().map(|s| s.deadline.as_str()));
    let deadline = deadline_of(carried, state.max_wait_seconds, now)?;
    let id = task
        .export_task_identifier()
        .unwrap_or_default()
        .to_string();
    let bucket = task.s3_bucket().unwrap_or_default();
    let prefix = task.s3_prefix().unwrap_or_default().trim_matches('/');
    let export_uri = if prefix.is_empty() {
        format!("s3://{bucket}/{id}")
    } else {
        format!("s3://{bucket}/{prefix}/{id}")
    };
    let status = ExportStatus {
        export_task_id: id,
        status: task.status().unwrap_or("UNKNOWN").to_ascii_uppercase(),
        percent: i64::from(task.percent_progress().unwrap_or(0)),
        export_uri,
        deadline: rfc3339(deadline),
        polls: state.export.as_ref().map_or(0, |e| e.polls) + 1,
    };
    let polls = status.polls + state.snapshot.as_ref().map_or(0, |s| s.polls);
    let judged = judge_export(
        status,
        task.failure_cause(),
        now,
        deadline,
        state.max_wait_seconds,
    )?;
    if judged.status != "COMPLETE" && polls >= MAX_POLLS {
        return Err(StepError::new(
            DEADLINE_EXCEEDED,
            format!(
                "export task {} is still {} at {}% after {polls} polls, the most one execution's history holds ({MAX_POLLS})",
                judged.export_task_id, judged.status, judged.percent
            ),
        ));
    }
    Ok(judged)
}

/// The decision on one export poll, apart from the RDS call.
pub fn judge_export(
    status: ExportStatus,
    failure_cause: Option<&str>,
    now: DateTime<Utc>,
    deadline: DateTime<Utc>,
    max_wait_seconds: u64,
) -> Result<ExportStatus, StepError> {
    match status.status.as_str() {
        "COMPLETE" => Ok(status),
        "FAILED" | "CANCELED" | "CANCELING" => Err(StepError::new(
            EXPORT_FAILED,
            format!(
                "export task {} is {} at {}%: {}",
                status.export_task_id,
                status.status,
                status.percent,
                failure_cause.unwrap_or("RDS gave no failure cause")
            ),
        )),
        _ if now > deadline => Err(StepError::new(
            DEADLINE_EXCEEDED,
            format!(
                "export task {} is still {} at {}% after the deadline {} (max_wait_seconds = {max_wait_seconds}, {} polls)",
                status.export_task_id, status.status, status.percent, status.deadline, status.polls
            ),
        )),
        _ => Ok(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn rds_ids_are_valid_stable_and_distinct() {
        let a = rds_id("Storefront_2026-11-25.run#1");
        assert_eq!(a, rds_id("Storefront_2026-11-25.run#1"));
        assert!(
            a.starts_with("snap2dsql-storefront-2026-11-25-run-1-"),
            "{a}"
        );
        let long_a = rds_id(&format!("{}a", "x".repeat(79)));
        let long_b = rds_id(&format!("{}b", "x".repeat(79)));
        assert_ne!(long_a, long_b);
        for id in [a, long_a, rds_id("--"), rds_id("9lives")] {
            assert!(id.len() <= 60, "{id}");
            assert!(id.starts_with(|c: char| c.is_ascii_lowercase()), "{id}");
            assert!(!id.contains("--") && !id.ends_with('-'), "{id}");
            assert!(
                id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{id}"
            );
        }
    }

    fn status(s: &str) -> ExportStatus {
        ExportStatus {
            export_task_id: "snap2dsql-x".into(),
            status: s.into(),
            percent: 40,
            export_uri: "s3://b/exports/snap2dsql-x".into(),
            deadline: "2026-11-25T10:00:00Z".into(),
            polls: 7,
        }
    }

    #[test]
    fn an_export_is_judged_by_status_and_deadline() {
        let deadline = DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let before = deadline - Duration::seconds(1);
        let after = deadline + Duration::seconds(1);
        assert!(judge_export(status("COMPLETE"), None, after, deadline, 60).is_ok());
        assert!(judge_export(status("STARTING"), None, before, deadline, 60).is_ok());
        let e = judge_export(status("IN_PROGRESS"), None, after, deadline, 3600).unwrap_err();
        assert_eq!(e.error_type, DEADLINE_EXCEEDED);
        assert!(
            e.message
                .contains("still IN_PROGRESS at 40% after the deadline 2026-11-25T10:00:00Z"),
            "{}",
            e.message
        );
        let e = judge_export(
            status("FAILED"),
            Some("The IAM role doesn't have permissions"),
            before,
            deadline,
            60,
        )
        .unwrap_err();
        assert_eq!(e.error_type, EXPORT_FAILED);
        assert!(
            e.message
                .ends_with("FAILED at 40%: The IAM role doesn't have permissions")
        );
    }

    #[test]
    fn the_deadline_is_carried_or_made() {
        let now = Utc::now();
        let made = deadline_of(None, 120, now).unwrap();
        assert_eq!((made - now).num_seconds(), 120);
        let carried = deadline_of(Some("2026-11-25T10:00:00Z"), 120, now).unwrap();
        assert_eq!(rfc3339(carried), "2026-11-25T10:00:00Z");
        assert!(deadline_of(Some("tomorrow"), 120, now).is_err());
    }
}
