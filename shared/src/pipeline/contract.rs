//! The payloads between the state machine's states: one serde type per JSON shape.
//!
//! Every task state of the main flow gets `{"execution": $$.Execution.Name, "state": $}` (the
//! `verify` function's states add a `step`: [`VerifyRequest`]) and writes its result under its
//! own key of the state (`ResultPath`), so the state grows as the execution goes: `snapshot`,
//! `export`, `fan_out`, `load`, `post_load`, `verify_plan`, `verify_parts`, `verify`. Every
//! result is counts and S3 URIs, never a list, so the state stays a few KiB (a state's payload
//! is capped at 256 KiB). The Distributed Maps' items are [`ChunkItem`]s and
//! [`VerifyRequest::VerifyPart`]s, read from S3. Field names are a contract with the ASL file, the README and the fixtures under
//! `shared/tests/fixtures/pipeline/`: rename nothing without changing all of them.

use crate::chunk::Chunk;
use crate::load::ChunkOutcome;
use crate::verify::parts::VerifyItem;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Default seconds between polls of a snapshot or an export (the `Defaults` state).
pub const DEFAULT_WAIT_SECONDS: u64 = 60;
/// Default bound on one `load-chunk` task (the state's TimeoutSecondsPath): below the function's
/// 900 s timeout (`infra/template.yaml`), so the state machine times the task out first and
/// `States.Timeout` is the reliable signal. A chunk is sized to take minutes.
pub const DEFAULT_CHUNK_TIMEOUT_SECONDS: u64 = 840;
/// The largest `chunk_timeout_seconds` an execution may ask for: under the load-chunk function's
/// 900 s timeout, with room for the function's own start and end.
pub const MAX_CHUNK_TIMEOUT_SECONDS: u64 = 870;
/// Polls of the snapshot and the export together, at most. One poll-loop iteration writes 9
/// history events (Task entered, Lambda scheduled, started, succeeded, Task exited, Choice
/// entered and exited, Wait entered and exited): 2,000 polls are 18,000 of the 25,000 events a
/// Standard execution may have, leaving the rest to the load and verify states.
pub const MAX_POLLS: u64 = 2_000;
/// Polls of the post-load jobs at most: 600 polls of 9 events are 5,400 events, which with the
/// snapshot and export polls' 18,000 stay under the 25,000 history events of an execution.
pub const MAX_INDEX_POLLS: u64 = 600;
// Both poll loops at their bounds, 9 events a poll, leave 1,000 events to the other states.
const _: () = assert!((MAX_POLLS + MAX_INDEX_POLLS) * 9 <= 24_000);
/// Default seconds between polls of the post-load jobs: a build takes at least ~20 s, and big
/// tables hours; 120 s lets the default 12 hours fit [`MAX_INDEX_POLLS`] (360 polls).
pub const DEFAULT_INDEX_WAIT_SECONDS: u64 = 120;
/// Default bound on the post-load builds, all waves: 12 hours (index builds of billion-row
/// tables take hours). Past it the execution fails naming the jobs still running; a redrive
/// adopts them.
pub const DEFAULT_MAX_INDEX_WAIT_SECONDS: u64 = 43_200;
/// Default bound on the whole wait for a snapshot and its export: a day. An export can sit in
/// STARTING for hours while RDS restores the snapshot; past this the execution fails.
pub const DEFAULT_MAX_WAIT_SECONDS: u64 = 86_400;

/// The deadline carried by earlier polls, or a new one `max_wait_seconds` from now.
pub(crate) fn deadline_of(
    carried: Option<&str>,
    max_wait_seconds: u64,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, super::failure::StepError> {
    match carried {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| {
                super::failure::StepError::fatal(format!(
                    "deadline {text:?} is not an RFC 3339 time: {e}"
                ))
            }),
        None => Ok(now + chrono::Duration::seconds(max_wait_seconds.min(i64::MAX as u64) as i64)),
    }
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The execution's state: its input after the `Defaults` state merged the defaults in, plus the
/// results of the states run so far.
///
/// Exactly one entry point is given: `source_cluster` (snapshot it, export, load),
/// `snapshot_arn` (export an existing snapshot, load), `export_task_id` or `export_source_arn`
/// (an export task that was started elsewhere; the EventBridge rule on RDS-EVENT-0164 sends
/// `export_source_arn`), or `export_uri` (a completed export already in S3).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_source_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_uri: Option<String>,
    /// Seconds between polls (the Wait states read it).
    #[serde(default = "default_wait")]
    pub wait_seconds: u64,
    /// Bound on waiting for the snapshot and the export together.
    #[serde(default = "default_max_wait")]
    pub max_wait_seconds: u64,
    /// Chunks loaded, and verify parts run, at once (both Distributed Maps' MaxConcurrencyPath).
    #[serde(default = "default_concurrency")]
    pub max_concurrency: u64,
    /// Create the target schemas and tables before loading.
    #[serde(default = "default_true")]
    pub create_tables: bool,
    /// Bound on one `load-chunk` invocation; past it the state machine retries the chunk.
    #[serde(default = "default_chunk_timeout")]
    pub chunk_timeout_seconds: u64,
    /// The database to migrate, when the export holds several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Key of mapping.toml in the export bucket; the function's `MAPPING_KEY` otherwise. When
    /// neither names an existing object the export is planned without a source schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_out: Option<FanOutResult>,
    /// The Distributed Map's output (its ResultWriter details); opaque to the functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<serde_json::Value>,
    /// Rows per chunk the fan-out plans; the library's default otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_rows: Option<u64>,
    /// Seconds between polls of the post-load jobs (`WaitForIndexes` reads it).
    #[serde(default = "default_index_wait")]
    pub index_wait_seconds: u64,
    /// Bound on building the post-load indexes and constraints, all waves together.
    #[serde(default = "default_max_index_wait")]
    pub max_index_wait_seconds: u64,
    /// Rows per verify part, on either side ([`crate::verify::parts::ITEM_ROWS`]).
    #[serde(default = "default_verify_item_rows")]
    pub verify_item_rows: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_load: Option<PostLoadStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_plan: Option<VerifyPlanResult>,
    /// The verify Distributed Map's output (its ResultWriter details); opaque to the functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_parts: Option<serde_json::Value>,
}

fn default_wait() -> u64 {
    DEFAULT_WAIT_SECONDS
}
fn default_max_wait() -> u64 {
    DEFAULT_MAX_WAIT_SECONDS
}
fn default_concurrency() -> u64 {
    8
}
fn default_true() -> bool {
    true
}
fn default_chunk_timeout() -> u64 {
    DEFAULT_CHUNK_TIMEOUT_SECONDS
}
fn default_index_wait() -> u64 {
    DEFAULT_INDEX_WAIT_SECONDS
}
fn default_max_index_wait() -> u64 {
    DEFAULT_MAX_INDEX_WAIT_SECONDS
}
fn default_verify_item_rows() -> u64 {
    crate::verify::parts::ITEM_ROWS
}

/// What a main-flow task state receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepInput {
    /// The execution's name (`$$.Execution.Name`): names the snapshot, the export task and the
    /// run's objects, so a rerun of the same execution finds them.
    pub execution: String,
    pub state: RunState,
}

/// The snapshot step's result (`$.snapshot`), once per poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotStatus {
    pub snapshot_id: String,
    pub snapshot_arn: String,
    /// RDS's snapshot status: `creating`, `available`, ...
    pub snapshot_status: String,
    /// The export task, once started (or adopted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_task_id: Option<String>,
    /// True once the export task exists: the state machine moves on to `PollExport`.
    pub export_started: bool,
    /// RFC 3339: past this the wait fails the execution.
    pub deadline: String,
    /// Polls so far, this one included.
    pub polls: u64,
}

/// The export poll's result (`$.export`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportStatus {
    pub export_task_id: String,
    /// Upper case: `STARTING`, `IN_PROGRESS`, `COMPLETE` (`FAILED` and `CANCELED` are errors).
    pub status: String,
    pub percent: i64,
    /// `s3://bucket/prefix/export-task-id`, where the export writes.
    pub export_uri: String,
    pub deadline: String,
    pub polls: u64,
}

/// The fan-out's result (`$.fan_out`): counts and where the chunk list is, never the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FanOutResult {
    pub export_uri: String,
    /// The mapping used (`s3://...`): the given one, or the plan written for this run.
    pub mapping_uri: String,
    /// Whether the mapping was planned here (no mapping object found), with guesses.
    pub mapping_planned: bool,
    /// Bucket and key of the chunk list (a JSON array of [`ChunkItem`]): the ItemReader's input.
    pub bucket: String,
    pub chunks_key: String,
    pub chunks: u64,
    pub rows: u64,
    pub tables: u64,
    /// Orphan references found (loaded per `on_orphan`; `fail` stops the fan-out).
    pub orphans: u64,
    pub tables_created: bool,
    /// Where this run's objects live: `s3://bucket/runs/<execution>/`.
    pub run_uri: String,
    /// Set when this execution loads nothing, and why: an export outside this stack's bucket, an
    /// export task the pipeline started itself, or an export another execution claimed (the
    /// EventBridge path). The state machine then ends at `NothingToLoad`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl FanOutResult {
    /// The result of a fan-out that loads nothing, saying why.
    pub fn skipped(export_uri: &str, bucket: &str, why: String) -> FanOutResult {
        FanOutResult {
            export_uri: export_uri.to_string(),
            mapping_uri: String::new(),
            mapping_planned: false,
            bucket: bucket.to_string(),
            chunks_key: String::new(),
            chunks: 0,
            rows: 0,
            tables: 0,
            orphans: 0,
            tables_created: false,
            run_uri: String::new(),
            skipped: Some(why),
        }
    }
}

impl RunState {
    /// Refuses waits that could poll more than [`MAX_POLLS`] times (the execution's history
    /// limit), a `max_concurrency` past DSQL's connection limits, and chunk timeouts that are
    /// not below the load-chunk function's timeout.
    pub fn validate(&self) -> Result<(), super::failure::StepError> {
        if self.wait_seconds > 0 {
            let polls = self.max_wait_seconds.div_ceil(self.wait_seconds);
            if polls > MAX_POLLS {
                return Err(super::failure::StepError::fatal(format!(
                    "wait_seconds = {} and max_wait_seconds = {} allow {polls} polls of about 9 history events each, past the 25,000 events a Standard execution may have: at most {MAX_POLLS} polls (wait_seconds >= {})",
                    self.wait_seconds,
                    self.max_wait_seconds,
                    self.max_wait_seconds.div_ceil(MAX_POLLS)
                )));
            }
        }
        if self.index_wait_seconds > 0 {
            let polls = self
                .max_index_wait_seconds
                .div_ceil(self.index_wait_seconds);
            if polls > MAX_INDEX_POLLS {
                return Err(super::failure::StepError::fatal(format!(
                    "index_wait_seconds = {} and max_index_wait_seconds = {} allow {polls} polls of the post-load jobs, past the {MAX_INDEX_POLLS} the execution's history leaves them (index_wait_seconds >= {})",
                    self.index_wait_seconds,
                    self.max_index_wait_seconds,
                    self.max_index_wait_seconds.div_ceil(MAX_INDEX_POLLS)
                )));
            }
        }
        if self.chunk_rows == Some(0) || self.verify_item_rows == 0 {
            return Err(super::failure::StepError::fatal(
                "chunk_rows and verify_item_rows must be at least 1",
            ));
        }
        // Every chunk opens at least one writer: a max_concurrency DSQL refuses even then is
        // refused here, before anything loads (load-chunk checks it with its own connections).
        crate::estimate::check_connections(self.max_concurrency, 1).map_err(|e| {
            super::failure::StepError::fatal(format!(
                "max_concurrency = {} is refused even at one connection a chunk: {e}",
                self.max_concurrency
            ))
        })?;
        if self.chunk_timeout_seconds == 0 || self.chunk_timeout_seconds > MAX_CHUNK_TIMEOUT_SECONDS
        {
            return Err(super::failure::StepError::fatal(format!(
                "chunk_timeout_seconds = {} is not between 1 and {MAX_CHUNK_TIMEOUT_SECONDS}: the task must time out before the load-chunk function's 900 s timeout",
                self.chunk_timeout_seconds
            )));
        }
        Ok(())
    }
}

/// Everything one `load-chunk` invocation needs: one item of the Distributed Map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkItem {
    pub export_uri: String,
    pub mapping_uri: String,
    /// JSON of the orphan values per reference column ([`OrphanSet`]), when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphans_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The task's timeout (`TimeoutSecondsPath` of `LoadChunk`).
    pub timeout_seconds: u64,
    /// Chunks loaded at once (the execution's `max_concurrency`): `load-chunk` refuses it times
    /// its own connections past DSQL's limits ([`crate::estimate::check_connections`]).
    /// Absent in items written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u64>,
    /// The part file (`chunk.file`, relative to `export_uri`, and its size) and row groups
    /// this item loads: `load-chunk` reads them and lists nothing.
    pub chunk: Chunk,
}

/// The orphan values of one reference column, as the fan-out found them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanSet {
    pub table: String,
    pub column: String,
    pub values: Vec<i64>,
}

/// What `load-chunk` returns: the library's chunk outcome.
pub type ChunkResult = ChunkOutcome;

/// The post-load loop's state (`$.post_load`): `BuildIndexes` submits the first wave,
/// `PollIndexes` reads its jobs from `sys.jobs` and submits the next wave once one is built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostLoadStatus {
    /// The wave being built (0-based); `waves` once all are built.
    pub wave: u64,
    pub waves: u64,
    /// Statements run so far: submissions, constraints and identity restarts.
    pub statements: u64,
    /// Jobs of the current wave, and how many were still running at the last poll.
    pub jobs: u64,
    pub pending: u64,
    /// The current wave's jobs (a JSON list), `s3://bucket/runs/<execution>/post-load-jobs.json`.
    pub jobs_uri: String,
    /// True once every wave is built and the identities restarted: the loop ends.
    pub done: bool,
    /// RFC 3339: past this the loop fails with `Snap2dsql.DeadlineExceeded`.
    pub deadline: String,
    pub polls: u64,
}

/// The verify plan's result (`$.verify_plan`): counts and where the item list is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyPlanResult {
    /// Bucket and key of the item list (a JSON array of [`VerifyRequest::VerifyPart`]): the
    /// `VerifyParts` ItemReader's input.
    pub bucket: String,
    pub items_key: String,
    pub items: u64,
    pub export_items: u64,
    pub target_items: u64,
    pub tables: u64,
    /// Export rows the export parts read together.
    pub rows: u64,
    /// Where part `i` writes its aggregates: `<parts_prefix>/<i>.json` ([`part_key`]).
    pub parts_prefix: String,
    /// The verifier's own orphan list ([`OrphanSet`]s), when a column loads orphans as NULL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nulled_uri: Option<String>,
}

/// The key of part `i`'s aggregates under `parts_prefix`.
pub fn part_key(parts_prefix: &str, i: u64) -> String {
    format!("{parts_prefix}/{i:06}.json")
}

/// One item of the `VerifyParts` Distributed Map: one side of one table, some of its rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyPartInput {
    pub export_uri: String,
    pub mapping_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nulled_uri: Option<String>,
    /// Where the part's aggregates go.
    pub bucket: String,
    pub part_key: String,
    pub item: VerifyItem,
}

/// What a part returns (the aggregates themselves are in S3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyPartResult {
    pub table: String,
    pub side: String,
    pub rows: u64,
    pub part_uri: String,
}

/// The verify step's result (`$.verify`, and the execution's output): counts and the report's
/// URI, never a list, so it stays small whatever the number of tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyResult {
    pub ok: bool,
    /// The full JSON report: `s3://bucket/runs/<execution>/verify-report.json`.
    pub report_uri: String,
    pub rows_verified: u64,
    pub post_load_statements: u64,
    pub seconds: f64,
    pub tables: u64,
    pub tables_differing: u64,
    /// Verify parts combined.
    pub parts: u64,
}

/// What the `verify` function is asked to do: its states pass `step`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum VerifyRequest {
    /// `BuildIndexes`: submit the first wave of post-load jobs.
    BuildIndexes(StepInput),
    /// `PollIndexes`: read the wave's jobs; submit the next wave once it is built.
    PollIndexes(StepInput),
    /// `PlanVerify`: write the verify item list.
    PlanVerify(StepInput),
    /// `VerifyPart`, inside the Distributed Map `VerifyParts`: one item.
    VerifyPart(VerifyPartInput),
    /// `Verify`: combine the parts into the report and decide.
    Verify(StepInput),
}

/// What the `verify` function answers, by step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VerifyResponse {
    PostLoad(PostLoadStatus),
    Plan(VerifyPlanResult),
    Part(VerifyPartResult),
    Verified(VerifyResult),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/pipeline")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Parses a fixture as `T`, writes it back, and checks nothing was lost or invented.
    fn round_trip<T: serde::de::DeserializeOwned + Serialize>(name: &str) -> T {
        let text = fixture(name);
        let value: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let original: serde_json::Value = serde_json::from_str(&text).unwrap();
        let written = serde_json::to_value(&value).unwrap();
        assert_eq!(written, original, "{name} does not round-trip");
        value
    }

    #[test]
    fn the_fixtures_states_are_valid_runs() {
        // A fixture the validation would refuse documents a payload no execution can carry.
        for name in [
            "snapshot-input.json",
            "poll-export-input.json",
            "fan-out-input.json",
        ] {
            let s: StepInput = serde_json::from_str(&fixture(name)).unwrap();
            s.state
                .validate()
                .unwrap_or_else(|e| panic!("{name}: {}", e.message));
        }
        let item: ChunkItem = serde_json::from_str(&fixture("load-chunk-input.json")).unwrap();
        assert!(item.timeout_seconds <= MAX_CHUNK_TIMEOUT_SECONDS);
    }

    #[test]
    fn fixtures_round_trip() {
        let s: StepInput = round_trip("snapshot-input.json");
        assert_eq!(s.state.source_cluster.as_deref(), Some("storefront-prod"));
        let s: StepInput = round_trip("poll-export-input.json");
        assert!(s.state.snapshot.as_ref().unwrap().export_started);
        let s: StepInput = round_trip("fan-out-input.json");
        assert_eq!(s.state.export.as_ref().unwrap().status, "COMPLETE");
        let r: VerifyRequest = round_trip("build-indexes-input.json");
        assert!(matches!(r, VerifyRequest::BuildIndexes(s) if s.state.post_load.is_none()));
        let r: VerifyRequest = round_trip("poll-indexes-input.json");
        let VerifyRequest::PollIndexes(s) = r else {
            panic!("not a poll: {r:?}")
        };
        assert_eq!(s.state.post_load.as_ref().unwrap().pending, 2);
        let p: PostLoadStatus = round_trip("post-load-output.json");
        assert!(p.done && p.wave == p.waves);
        let p: VerifyPlanResult = round_trip("verify-plan-output.json");
        assert_eq!(p.export_items + p.target_items, p.items);
        let r: VerifyRequest = round_trip("verify-part-input.json");
        let VerifyRequest::VerifyPart(part) = r else {
            panic!("not a part: {r:?}")
        };
        assert_eq!(
            part.item.side,
            crate::verify::parts::Side::Target {
                range: crate::verify::parts::KeyRange {
                    column: Some("id".into()),
                    from: Some(crate::verify::parts::KeyBound::Int(50_001)),
                    to: Some(crate::verify::parts::KeyBound::Int(100_001)),
                }
            }
        );
        let r: VerifyRequest = round_trip("verify-part-export-input.json");
        assert!(matches!(r, VerifyRequest::VerifyPart(p) if p.item.side.name() == "export"));
        let p: VerifyPartResult = round_trip("verify-part-output.json");
        assert_eq!(p.rows, 50_000);
        let r: VerifyRequest = round_trip("verify-input.json");
        let VerifyRequest::Verify(s) = r else {
            panic!("not a verify: {r:?}")
        };
        assert_eq!(s.state.fan_out.as_ref().unwrap().chunks, 3);
        assert_eq!(s.state.verify_plan.as_ref().unwrap().items, 5);
        let item: ChunkItem = round_trip("load-chunk-input.json");
        assert_eq!(item.chunk.rows, 25_000);
        assert_eq!(item.max_concurrency, Some(8));
        let r: ChunkResult = round_trip("load-chunk-output.json");
        assert_eq!(r.rows_written + r.rows_already_committed, 25_000);
        assert_eq!(r.format, Some(crate::load::format::LoadFormat::Binary));
        let v: VerifyResult = round_trip("verify-output.json");
        assert!(v.ok && v.tables_differing == 0);
        // The verify function answers each step with its own shape.
        for name in [
            "post-load-output.json",
            "verify-plan-output.json",
            "verify-part-output.json",
            "verify-output.json",
        ] {
            let _: VerifyResponse = round_trip(name);
        }
    }

    #[test]
    fn the_largest_chunk_item_stays_far_under_the_map_item_limit() {
        // The most row groups a chunk holds, each with the widest row count, and long names.
        let n = crate::chunk::CHUNK_MAX_ROW_GROUPS;
        let long = "x".repeat(1_024);
        let item = ChunkItem {
            export_uri: format!("s3://{long}"),
            mapping_uri: format!("s3://{long}"),
            orphans_uri: Some(format!("s3://{long}")),
            database: Some(long.clone()),
            timeout_seconds: MAX_CHUNK_TIMEOUT_SECONDS,
            max_concurrency: Some(u64::MAX),
            chunk: Chunk {
                id: format!("{long}/{long}#0-{n}"),
                table: long.clone(),
                file: long.clone(),
                file_size: u64::MAX,
                row_group_start: 0,
                row_group_end: n,
                rows: u64::MAX,
                row_group_rows: vec![crate::chunk::CHUNK_MAX_ROWS; n],
            },
        };
        let bytes = serde_json::to_vec(&item).unwrap().len();
        // A Distributed Map item may be 256 KiB; the list of row counts dominates.
        assert!(bytes < 32 * 1024, "{bytes} bytes");
    }

    #[test]
    fn a_concurrency_dsql_would_refuse_is_refused() {
        let state = |json: &str| serde_json::from_str::<RunState>(json).unwrap();
        assert!(state(r#"{"max_concurrency":500}"#).validate().is_ok());
        // 501 chunks open at least 501 writers and 501 ledger reads at the start.
        let e = state(r#"{"max_concurrency":501}"#).validate().unwrap_err();
        assert_eq!(e.error_type, super::super::failure::FATAL);
        assert!(
            e.message.contains("1002 new DSQL connections"),
            "{}",
            e.message
        );
        assert!(
            e.message
                .starts_with("max_concurrency = 501 is refused even at one connection"),
            "{}",
            e.message
        );
    }

    #[tokio::test]
    async fn load_chunk_refuses_an_item_past_dsqls_limits_before_any_call() {
        // S3 and the target on a port nothing listens on: the refusal comes first.
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let s3 = aws_sdk_s3::Client::from_conf(conf);
        let target = crate::target::Target::parse("postgres://admin@127.0.0.1:9/postgres")
            .await
            .unwrap();
        let mut item: ChunkItem = serde_json::from_str(&fixture("load-chunk-input.json")).unwrap();
        // 200 chunks x (4 writers + 1) = 1,000: allowed; 201 is not.
        item.max_concurrency = Some(201);
        let options = crate::load::LoadOptions::default();
        let e = super::super::steps::load_chunk(&s3, &target, &options, &item)
            .await
            .unwrap_err();
        assert_eq!(e.error_type, super::super::failure::FATAL);
        assert!(
            e.message.contains("1005 new DSQL connections"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_bare_input_gets_the_defaults() {
        let s: RunState = serde_json::from_str(r#"{"source_cluster":"db1"}"#).unwrap();
        assert_eq!(s.wait_seconds, DEFAULT_WAIT_SECONDS);
        assert_eq!(s.max_wait_seconds, DEFAULT_MAX_WAIT_SECONDS);
        assert!(s.create_tables);
        assert_eq!(s.max_concurrency, 8);
        assert_eq!(s.chunk_timeout_seconds, DEFAULT_CHUNK_TIMEOUT_SECONDS);
    }

    #[test]
    fn waits_that_could_pass_the_history_limit_are_refused() {
        let state = |json: &str| serde_json::from_str::<RunState>(json).unwrap();
        assert!(state(r#"{"source_cluster":"db1"}"#).validate().is_ok());
        // Exactly MAX_POLLS polls is allowed, one more is not.
        let at = format!(
            r#"{{"wait_seconds":30,"max_wait_seconds":{}}}"#,
            30 * MAX_POLLS
        );
        assert!(state(&at).validate().is_ok());
        let past = format!(
            r#"{{"wait_seconds":30,"max_wait_seconds":{}}}"#,
            30 * MAX_POLLS + 1
        );
        let e = state(&past).validate().unwrap_err();
        assert!(e.message.contains("2001 polls"), "{}", e.message);
        assert!(
            e.message
                .contains("wait_seconds = 30 and max_wait_seconds = 60001"),
            "{}",
            e.message
        );
        let e = state(r#"{"chunk_timeout_seconds":910}"#)
            .validate()
            .unwrap_err();
        assert!(
            e.message.contains("chunk_timeout_seconds = 910"),
            "{}",
            e.message
        );
        assert!(state(r#"{"chunk_timeout_seconds":0}"#).validate().is_err());
        // The post-load loop has its own bound.
        let at = format!(
            r#"{{"index_wait_seconds":10,"max_index_wait_seconds":{}}}"#,
            10 * MAX_INDEX_POLLS
        );
        assert!(state(&at).validate().is_ok());
        let past = format!(
            r#"{{"index_wait_seconds":10,"max_index_wait_seconds":{}}}"#,
            10 * MAX_INDEX_POLLS + 1
        );
        let e = state(&past).validate().unwrap_err();
        assert!(e.message.contains("601 polls"), "{}", e.message);
        assert!(state(r#"{"verify_item_rows":0}"#).validate().is_err());
        assert!(state(r#"{"chunk_rows":0}"#).validate().is_err());
        assert!(
            DEFAULT_CHUNK_TIMEOUT_SECONDS <= MAX_CHUNK_TIMEOUT_SECONDS
                && DEFAULT_MAX_WAIT_SECONDS.div_ceil(DEFAULT_WAIT_SECONDS) <= MAX_POLLS
                && DEFAULT_MAX_INDEX_WAIT_SECONDS.div_ceil(DEFAULT_INDEX_WAIT_SECONDS)
                    <= MAX_INDEX_POLLS
        );
    }

    #[test]
    fn the_state_machine_defaults_equal_the_library_defaults() {
        // The ASL's `Defaults` state fills the same values for the Wait and Map states, which
        // read them before any function does.
        let asl: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../statemachine/migrate.asl.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let d = &asl["States"]["Defaults"]["Parameters"];
        assert_eq!(d["wait_seconds"], DEFAULT_WAIT_SECONDS);
        assert_eq!(d["max_wait_seconds"], DEFAULT_MAX_WAIT_SECONDS);
        assert_eq!(d["create_tables"], true);
        assert_eq!(d["chunk_timeout_seconds"], DEFAULT_CHUNK_TIMEOUT_SECONDS);
        assert_eq!(d["index_wait_seconds"], DEFAULT_INDEX_WAIT_SECONDS);
        assert_eq!(d["max_index_wait_seconds"], DEFAULT_MAX_INDEX_WAIT_SECONDS);
        assert_eq!(d["verify_item_rows"], crate::verify::parts::ITEM_ROWS);
        // From the SAM parameter LoadConcurrency, as a number.
        assert_eq!(
            d["max_concurrency.$"],
            "States.StringToJson('${LoadConcurrency}')"
        );
    }
}
