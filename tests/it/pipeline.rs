//! The serverless pipeline end to end on emulated AWS: moto's Step Functions engine runs
//! `statemachine/migrate.asl.json`, its Lambda calls reach the five function binaries under
//! `cargo lambda watch`, and they load through the DSQL stand-in in the DSQL dialect. Each
//! function, and the state machine, runs as its role from `infra/template.yaml` with moto's IAM
//! access control on (`snap2dsql_tests::stack`).

use snap2dsql::local_export::{LocalExportOptions, local_export};
use snap2dsql::mapping::Mapping;
use snap2dsql::pipeline::contract::VerifyResult;
use snap2dsql::pipeline::failure;
use snap2dsql::pipeline::rds::rds_id;
use snap2dsql::schema::SourceSchema;
use snap2dsql::target::Target;
use snap2dsql_tests::stack::{PipelineStack, SOURCE_CLUSTER, StackOptions};
use snap2dsql_tests::standin::Standin;
use snap2dsql_tests::{connect, pg, upload_dir};
use std::time::{Duration, Instant};

/// One emulated stack at a time: each runs moto, a proxy and five function processes.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const BUCKET: &str = "snap2dsql-exports";
const CLUSTER: &str = SOURCE_CLUSTER;
const CANARY: &str = "canary-pw-7f3a9c";

/// A storefront source, its export as Aurora would write it, a DSQL stand-in target, and the
/// stack.
struct Rehearsal {
    stack: PipelineStack,
    /// Through the stand-in, as the functions reach it.
    target_url: String,
    /// The stand-in's upstream database, for counting independently of the stand-in.
    direct_url: String,
    standin: Standin,
    export_dir: tempfile::TempDir,
    mapping: Mapping,
    s3: aws_sdk_s3::Client,
    rds: aws_sdk_rds::Client,
    sfn: aws_sdk_sfn::Client,
    state_machine: String,
}

/// How an execution ended.
#[derive(Debug)]
struct Ended {
    status: String,
    output: Option<String>,
    error: Option<String>,
    cause: Option<String>,
}

impl Rehearsal {
    /// `occ`: the fraction of target commits that fail with 40001 (OC000); `env`: extra
    /// function settings.
    async fn new(prefix: &str, occ: f64, env: &[(&str, &str)]) -> Rehearsal {
        Rehearsal::new_with(prefix, occ, env, &StackOptions::default()).await
    }

    async fn new_with(
        prefix: &str,
        occ: f64,
        env: &[(&str, &str)],
        options: &StackOptions,
    ) -> Rehearsal {
        let source = pg().storefront_db(&format!("{prefix}_src"), 1_000, 10_000);
        let standin = snap2dsql_tests::standin::start().await;
        standin.knobs().set_conflict_fraction(occ);
        let through = standin.db(&format!("{prefix}_dst"));
        let direct_url = standin.direct_url(&through);
        // A password the stand-in does not need (it accepts any) but every connection carries:
        // it must never show up in a log line, an error, a state output or a report.
        let target_url = through.replacen("admin@", &format!("admin:{CANARY}@"), 1);
        // Part files of 500 rows: 22 chunks, so the Distributed Map has real fan-out.
        let export_dir = tempfile::tempdir().unwrap();
        let mut opts = LocalExportOptions::new("placeholder");
        opts.rows_per_file = 500;
        opts.rows_per_row_group = 250;
        let client = connect(&source).await;
        local_export(&client, export_dir.path(), &opts, &|_, _| {})
            .await
            .unwrap();
        // The reviewed mapping, planned with the live source schema, as a team would upload it.
        let export = snap2dsql::export::Export::open(export_dir.path().to_str().unwrap(), None)
            .await
            .unwrap();
        let schema = SourceSchema::from_postgres(&client, "source")
            .await
            .unwrap();
        let mapping = snap2dsql::plan::plan(&export, Some(&schema))
            .await
            .unwrap()
            .mapping;

        let mut all_env = vec![
            ("TARGET_URL", target_url.as_str()),
            ("EXPORT_BUCKET", BUCKET),
            ("EXPORT_PREFIX", "exports"),
            (
                "EXPORT_ROLE_ARN",
                "arn:aws:iam::123456789012:role/ExportRole",
            ),
            (
                "EXPORT_KMS_KEY_ARN",
                "arn:aws:kms:us-east-1:123456789012:key/test",
            ),
            ("LOAD_CONNECTIONS", "2"),
        ];
        all_env.extend_from_slice(env);
        let stack = tokio::task::block_in_place(|| PipelineStack::start_with(&all_env, options))
            .unwrap_or_else(|e| panic!("start the emulated stack: {e}"));
        let (s3, rds, sfn) = (stack.s3(), stack.rds(), stack.sfn());
        s3.create_bucket().bucket(BUCKET).send().await.unwrap();
        s3.put_object()
            .bucket(BUCKET)
            .key("mapping.toml")
            .body(mapping.to_toml().unwrap().into_bytes().into())
            .send()
            .await
            .unwrap();
        rds.create_db_cluster()
            .db_cluster_identifier(CLUSTER)
            .engine("aurora-postgresql")
            .master_username("postgres")
            .master_user_password("not-a-real-password")
            .send()
            .await
            .unwrap();
        let created = sfn
            .create_state_machine()
            .name(stack.state_machine_name())
            .definition(stack.definition(BUCKET, 4))
            .role_arn(stack.state_machine_role_arn())
            .send()
            .await
            .unwrap();
        Rehearsal {
            stack,
            target_url,
            direct_url,
            standin,
            export_dir,
            mapping,
            s3,
            rds,
            sfn,
            state_machine: created.state_machine_arn().to_string(),
        }
    }

    /// The target tables, created through the stand-in before the run (the fan-out's create is
    /// then a no-op), for tests that act on them upstream first.
    async fn prepare_tables(&self) {
        let target = Target::parse(&self.target_url).await.unwrap();
        snap2dsql::migrate::prepare_target(&target, &self.mapping, true)
            .await
            .unwrap();
    }

    /// A manual snapshot of the source cluster made outside the pipeline; returns its ARN. It
    /// carries the tag that lets the snapshot function's role export it.
    async fn manual_snapshot(&self, id: &str) -> String {
        let snap = self
            .rds
            .create_db_cluster_snapshot()
            .db_cluster_identifier(CLUSTER)
            .db_cluster_snapshot_identifier(id)
            .tags(
                aws_sdk_rds::types::Tag::builder()
                    .key("snap2dsql-source")
                    .value("true")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        snap.db_cluster_snapshot()
            .and_then(|s| s.db_cluster_snapshot_arn())
            .unwrap()
            .to_string()
    }

    /// Puts the export where export task `task_id` would have written it (moto's export
    /// writes no files), with `task_id` in its metadata.
    async fn place_export(&self, task_id: &str) {
        let dir = tempfile::tempdir().unwrap();
        copy_export(self.export_dir.path(), dir.path(), task_id);
        let n = upload_dir(&self.s3, dir.path(), BUCKET, &format!("exports/{task_id}")).await;
        assert!(n > 20, "uploaded {n} objects");
    }

    /// Puts an export where a task run by hand would have written it, and runs execution
    /// `name` on it (`export_uri`).
    async fn run_on_placed_export(&self, name: &str) -> Ended {
        self.place_export("manual-export").await;
        let uri = format!("s3://{BUCKET}/exports/manual-export");
        self.run(
            name,
            serde_json::json!({"export_uri": uri, "wait_seconds": 0}),
        )
        .await
    }

    async fn run(&self, name: &str, input: serde_json::Value) -> Ended {
        let started = self
            .sfn
            .start_execution()
            .state_machine_arn(&self.state_machine)
            .name(name)
            .input(input.to_string())
            .send()
            .await
            .unwrap();
        let arn = started.execution_arn().to_string();
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let d = self
                .sfn
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
                .unwrap();
            let status = d.status().as_str().to_string();
            if status != "RUNNING" {
                return Ended {
                    status,
                    output: d.output().map(str::to_string),
                    error: d.error().map(str::to_string),
                    cause: d.cause().map(str::to_string),
                };
            }
            assert!(
                Instant::now() < deadline,
                "execution {name} still RUNNING after 300 s; functions said:\n{}",
                self.stack.function_logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn expect_success(&self, ended: &Ended) -> VerifyResult {
        assert_eq!(
            ended.status,
            "SUCCEEDED",
            "{ended:?}\nfunctions said:\n{}",
            self.stack.function_logs()
        );
        serde_json::from_str(ended.output.as_deref().unwrap()).expect("verify result")
    }

    /// md5 of every target table and the ledger, in a fixed order (read upstream).
    async fn target_digest(&self) -> Vec<(String, String)> {
        let client = connect(&self.direct_url).await;
        let mut tables: Vec<String> = self
            .mapping
            .tables
            .iter()
            .map(|t| snap2dsql::ddl::qualified(&t.target_schema, &t.target_name))
            .collect();
        tables.push("snap2dsql.ledger".into());
        let mut out = Vec::new();
        for t in tables {
            let row = client
                .query_one(
                    &format!(
                        "SELECT count(*)::text || ' ' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {t} t"
                    ),
                    &[],
                )
                .await
                .unwrap();
            out.push((t, row.get(0)));
        }
        out
    }

    /// Rows of `table`, counted upstream.
    async fn count(&self, table: &str) -> i64 {
        let client = connect(&self.direct_url).await;
        client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0)
    }

    async fn object_json(&self, uri: &str) -> serde_json::Value {
        let key = uri
            .strip_prefix(&format!("s3://{BUCKET}/"))
            .unwrap_or_else(|| panic!("{uri} is not in {BUCKET}"));
        let obj = self
            .s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{uri}: {e}"));
        let bytes = obj.body.collect().await.unwrap().into_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }
}

/// Copies a local export, renaming its metadata files and id to `task_id`.
fn copy_export(from: &std::path::Path, to: &std::path::Path, task_id: &str) {
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            let dest = to.join(&name);
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&p, &dest);
        } else if name.ends_with(".json") {
            let text = std::fs::read_to_string(&p)
                .unwrap()
                .replace("placeholder", task_id);
            std::fs::write(to.join(name.replace("placeholder", task_id)), text).unwrap();
        } else {
            std::fs::copy(&p, to.join(name)).unwrap();
        }
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn storefront_migrates_from_a_source_cluster_and_a_rerun_changes_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    let r = Rehearsal::new("pl_main", 0.0, &[]).await;
    let input = serde_json::json!({"source_cluster": CLUSTER, "wait_seconds": 0});
    // The snapshot function names the export task after the execution.
    for name in ["storefront-1", "storefront-1-again"] {
        r.place_export(&rds_id(name)).await;
    }

    let ended = r.run("storefront-1", input.clone()).await;
    let result = r.expect_success(&ended);
    assert!(result.ok);
    assert_eq!(result.rows_verified, 11_000);
    let by_table = |name: &str| {
        result
            .tables
            .iter()
            .find(|t| t.source == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by_table("sales.customers").rows_in_target, 1_000);
    assert_eq!(by_table("sales.orders").rows_in_target, 10_000);
    assert!(result.tables.iter().all(|t| t.status == "match"));
    assert_eq!(r.count("sales.orders").await, 10_000);
    // The report object is in S3 and says the same.
    let report = r.object_json(&result.report_uri).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["rows_in_export"], 11_000);
    // Every function ran; the chunk list went through S3 (22 part files -> 22 chunks).
    let calls = r.stack.invocations();
    for f in ["snapshot", "poll-export", "fan-out", "verify"] {
        assert!(
            calls.iter().any(|(n, _)| n == f),
            "{f} never ran: {calls:?}"
        );
    }
    let loads = calls.iter().filter(|(n, _)| n == "load-chunk").count();
    assert_eq!(loads, 22, "{calls:?}");
    assert!(calls.iter().all(|(_, e)| e.is_none()), "{calls:?}");
    let snapshot = r
        .rds
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier(rds_id("storefront-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(snapshot.db_cluster_snapshots().len(), 1);

    assert!(!ended.output.unwrap().contains(CANARY));
    assert!(!report.to_string().contains(CANARY));

    // The same input again: a second snapshot and export of the same data, loaded exactly once.
    let before = r.target_digest().await;
    let again = r.run("storefront-1-again", input).await;
    assert!(r.expect_success(&again).ok);
    assert_eq!(
        r.target_digest().await,
        before,
        "a rerun changed the target"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicts_are_retried_by_the_state_machine_from_an_existing_snapshot() {
    let _one = ONE_AT_A_TIME.lock().await;
    // One attempt per batch inside a function: every injected conflict reaches the state
    // machine as Snap2dsql.Retryable, and its Retry (not the library's loop) recovers.
    let r = Rehearsal::new("pl_occ", 0.3, &[("LOAD_MAX_ATTEMPTS", "1")]).await;
    let arn = r.manual_snapshot("storefront-manual").await;
    r.place_export(&rds_id("occ-1")).await;
    let ended = r
        .run(
            "occ-1",
            serde_json::json!({"snapshot_arn": arn, "wait_seconds": 0, "max_concurrency": 3}),
        )
        .await;
    let result = r.expect_success(&ended);
    assert!(result.ok, "{result:?}");
    assert_eq!(r.count("sales.orders").await, 10_000);
    let calls = r.stack.invocations();
    let retried = calls
        .iter()
        .filter(|(n, e)| n == "load-chunk" && e.as_deref() == Some(failure::RETRYABLE))
        .count();
    let loads = calls.iter().filter(|(n, _)| n == "load-chunk").count();
    eprintln!(
        "load-chunk: {loads} invocations for 22 chunks, {retried} of them failed with a conflict and were retried by the state machine"
    );
    assert!(
        retried > 0,
        "no conflict reached the state machine: {calls:?}"
    );
    assert_eq!(loads, 22 + retried, "{calls:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_export_event_path_loads_and_a_damaged_row_fails_verify_with_its_cause() {
    let _one = ONE_AT_A_TIME.lock().await;
    let r = Rehearsal::new("pl_bad", 0.0, &[]).await;
    // An export started outside the pipeline; the EventBridge rule passes its snapshot's ARN.
    let arn = r.manual_snapshot("storefront-nightly").await;
    r.rds
        .start_export_task()
        .export_task_identifier("nightly-export")
        .source_arn(&arn)
        .s3_bucket_name(BUCKET)
        .s3_prefix("exports")
        .iam_role_arn("arn:aws:iam::123456789012:role/snap2dsql-export")
        .kms_key_id("arn:aws:kms:us-east-1:123456789012:key/test")
        .send()
        .await
        .unwrap();
    r.place_export("nightly-export").await;
    let ended = r
        .run(
            "from-event",
            serde_json::json!({"export_source_arn": arn, "wait_seconds": 0}),
        )
        .await;
    assert!(r.expect_success(&ended).ok);
    let loads = |r: &Rehearsal| {
        r.stack
            .invocations()
            .iter()
            .filter(|(n, _)| n == "load-chunk")
            .count()
    };
    let loaded = loads(&r);

    // The same event again (RDS delivers at least once): no second load, nothing fails.
    let skipped = |ended: &Ended| -> String {
        assert_eq!(ended.status, "SUCCEEDED", "{ended:?}");
        let out: serde_json::Value =
            serde_json::from_str(ended.output.as_deref().unwrap()).unwrap();
        out["skipped"]
            .as_str()
            .unwrap_or_else(|| panic!("not skipped: {out}"))
            .to_string()
    };
    let again = r
        .run(
            "from-event-again",
            serde_json::json!({"export_source_arn": arn, "wait_seconds": 0}),
        )
        .await;
    let why = skipped(&again);
    assert!(
        why.contains("already claimed by execution from-event"),
        "{why}"
    );
    // An export into another bucket, and an export task the pipeline started itself.
    for (snap, task, bucket, want) in [
        (
            "storefront-elsewhere",
            "elsewhere-export",
            "someone-elses-bucket",
            "outside this stack's bucket",
        ),
        (
            "storefront-own",
            "snap2dsql-own-1234abcd",
            BUCKET,
            "was started by the pipeline",
        ),
    ] {
        let snap_arn = r.manual_snapshot(snap).await;
        r.rds
            .start_export_task()
            .export_task_identifier(task)
            .source_arn(&snap_arn)
            .s3_bucket_name(bucket)
            .s3_prefix("exports")
            .iam_role_arn("arn:aws:iam::123456789012:role/ExportRole")
            .kms_key_id("arn:aws:kms:us-east-1:123456789012:key/test")
            .send()
            .await
            .unwrap();
        let ended = r
            .run(
                &format!("event-{snap}"),
                serde_json::json!({"export_source_arn": snap_arn, "wait_seconds": 0}),
            )
            .await;
        let why = skipped(&ended);
        assert!(why.contains(want), "{why}");
    }
    assert_eq!(loads(&r), loaded, "a skipped execution loaded chunks");
    assert!(
        r.stack.invocations().iter().all(|(_, e)| e.is_none()),
        "{:?}",
        r.stack.invocations()
    );

    // Damage one order, then verify again from the export in S3 (the export_uri entry).
    let client = connect(&r.direct_url).await;
    let changed = client
        .execute(
            "UPDATE sales.orders SET order_date = order_date + interval '1 day' WHERE old_id = 42",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let ended = r
        .run(
            "after-damage",
            serde_json::json!({
                "export_uri": format!("s3://{BUCKET}/exports/nightly-export"),
                "wait_seconds": 0
            }),
        )
        .await;
    assert_eq!(ended.status, "FAILED", "{ended:?}");
    assert_eq!(ended.error.as_deref(), Some(failure::VERIFY_MISMATCH));
    let cause = ended.cause.unwrap_or_default();
    assert!(!cause.contains(CANARY));
    assert!(!r.stack.function_logs().contains(CANARY));
    assert!(cause.contains("sales.orders"), "{cause}");
    assert!(cause.contains("old key 42"), "{cause}");
    assert!(cause.contains("order_date"), "{cause}");
    assert!(
        cause.contains(&format!(
            "s3://{BUCKET}/runs/after-damage/verify-report.json"
        )),
        "{cause}"
    );
    let report = r
        .object_json(&format!(
            "s3://{BUCKET}/runs/after-damage/verify-report.json"
        ))
        .await;
    assert_eq!(report["ok"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_snapshot_step_run_twice_finds_its_snapshot_and_adopts_its_export_task() {
    use snap2dsql::pipeline::contract::{RunState, StepInput};
    use snap2dsql::pipeline::{Config, rds};
    let rds_client = snap2dsql_tests::moto().rds();
    let cluster = format!("twice-{}", std::process::id());
    rds_client
        .create_db_cluster()
        .db_cluster_identifier(&cluster)
        .engine("aurora-postgresql")
        .master_username("postgres")
        .master_user_password("not-a-real-password")
        .send()
        .await
        .unwrap();
    let config = Config::from_lookup(|k| {
        match k {
            "EXPORT_BUCKET" => Some("twice-bucket"),
            "EXPORT_ROLE_ARN" => Some("arn:aws:iam::123456789012:role/export"),
            "EXPORT_KMS_KEY_ARN" => Some("arn:aws:kms:us-east-1:123456789012:key/k"),
            _ => None,
        }
        .map(str::to_string)
    })
    .unwrap();
    let execution = format!("twice-{}", std::process::id());
    let mut input = StepInput {
        execution: execution.clone(),
        state: serde_json::from_value::<RunState>(serde_json::json!({ "source_cluster": cluster }))
            .unwrap(),
    };
    let first = rds::snapshot_step(&rds_client, &config, &input)
        .await
        .unwrap();
    assert!(first.export_started, "{first:?}");
    assert_eq!(first.snapshot_id, rds_id(&execution));
    // The state machine's next poll carries the first result; a retry or redrive may not.
    input.state.snapshot = Some(first.clone());
    let second = rds::snapshot_step(&rds_client, &config, &input)
        .await
        .unwrap();
    input.state.snapshot = None;
    let third = rds::snapshot_step(&rds_client, &config, &input)
        .await
        .unwrap();
    for again in [&second, &third] {
        assert_eq!(
            (&again.snapshot_arn, &again.export_task_id),
            (&first.snapshot_arn, &first.export_task_id)
        );
    }
    assert_eq!(
        second.deadline, first.deadline,
        "the deadline is carried, not renewed"
    );
    assert_eq!(second.polls, 2);
    let snapshots = rds_client
        .describe_db_cluster_snapshots()
        .db_cluster_identifier(&cluster)
        .send()
        .await
        .unwrap();
    // Manual snapshots only: the emulator, like RDS, also keeps an automated one.
    let manual: Vec<&str> = snapshots
        .db_cluster_snapshots()
        .iter()
        .filter(|s| s.snapshot_type() == Some("manual"))
        .filter_map(|s| s.db_cluster_snapshot_identifier())
        .collect();
    assert_eq!(
        manual,
        [first.snapshot_id.as_str()],
        "a rerun made a second snapshot"
    );
    let tasks = rds_client
        .describe_export_tasks()
        .export_task_identifier(first.export_task_id.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(tasks.export_tasks().len(), 1);

    // The same export task id exporting another snapshot is refused, naming both.
    let other = format!("{execution}-other");
    rds_client
        .create_db_cluster_snapshot()
        .db_cluster_identifier(&cluster)
        .db_cluster_snapshot_identifier(&other)
        .send()
        .await
        .unwrap();
    rds_client
        .start_export_task()
        .export_task_identifier(rds_id(&other))
        .source_arn(&first.snapshot_arn)
        .s3_bucket_name("twice-bucket")
        .iam_role_arn("arn:aws:iam::123456789012:role/export")
        .kms_key_id("arn:aws:kms:us-east-1:123456789012:key/k")
        .send()
        .await
        .unwrap();
    let clash = StepInput {
        execution: other.clone(),
        state: serde_json::from_value(serde_json::json!({
            "snapshot_arn": first.snapshot_arn.replace(&first.snapshot_id, &other)
        }))
        .unwrap(),
    };
    let e = rds::snapshot_step(&rds_client, &config, &clash)
        .await
        .unwrap_err();
    assert_eq!(e.error_type, failure::FATAL, "{e:?}");
    assert!(
        e.message.contains("already exists and exports"),
        "{}",
        e.message
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunk_that_times_out_is_retried_by_the_state_machine() {
    let _one = ONE_AT_A_TIME.lock().await;
    let r = Rehearsal::new("pl_timeout", 0.0, &[]).await;
    r.place_export(&rds_id("timeout-1")).await;
    r.prepare_tables().await;
    // For the first 6 s of LoadChunks every commit through the stand-in takes 6 s, past a
    // chunk's 2 s task timeout: the state machine times the tasks out and retries them; the
    // first attempts, still running (under cargo lambda watch nothing kills them), commit later,
    // and the ledger tells the retries.
    r.standin.set_commit_latency(Duration::from_secs(6));
    let fanned_out = || r.stack.invocations().iter().any(|(n, _)| n == "fan-out");
    let (ended, ()) = tokio::join!(
        r.run(
            "timeout-1",
            serde_json::json!({
                "source_cluster": CLUSTER, "wait_seconds": 0, "chunk_timeout_seconds": 2
            }),
        ),
        async {
            let start = std::time::Instant::now();
            while !fanned_out() && start.elapsed() < Duration::from_secs(120) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_secs(6)).await;
            r.standin.set_commit_latency(Duration::ZERO);
        }
    );
    let result = r.expect_success(&ended);
    assert!(result.ok, "{result:?}");
    assert_eq!(r.count("sales.orders").await, 10_000);
    let loads = r
        .stack
        .invocations()
        .iter()
        .filter(|(n, _)| n == "load-chunk")
        .count();
    eprintln!("load-chunk: {loads} invocations for 22 chunks");
    assert!(
        loads > 22,
        "no chunk was retried after its timeout ({loads} invocations)"
    );
}

/// The stack's resolved template (`tests/cfn_stack.py json`).
fn template() -> serde_json::Value {
    snap2dsql_tests::stack::resolved_template(BUCKET).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permission_taken_out_of_the_template_fails_the_run_naming_it() {
    let _one = ONE_AT_A_TIME.lock().await;
    // The fan-out opens the export, which lists it: without s3:ListBucket on the bucket it
    // fails on AWS, and here too, naming the permission.
    let options = StackOptions {
        removals: vec![("FanOutRole".into(), "s3:ListBucket".into())],
    };
    let r = Rehearsal::new_with("pl_perm", 0.0, &[], &options).await;
    let ended = r.run_on_placed_export("no-list").await;
    assert_eq!(ended.status, "FAILED", "{ended:?}");
    let calls = r.stack.invocations();
    let fan_outs: Vec<_> = calls.iter().filter(|(n, _)| n == "fan-out").collect();
    assert!(!fan_outs.is_empty(), "{calls:?}");
    assert!(
        fan_outs
            .iter()
            .all(|(_, e)| e.as_deref() == Some(failure::FATAL)),
        "{calls:?}"
    );
    assert!(
        !calls
            .iter()
            .any(|(n, _)| n == "load-chunk" || n == "verify"),
        "{calls:?}"
    );
    let logs = r.stack.function_logs();
    assert!(
        logs.contains(&format!(
            "the function's role needs s3:ListBucket on arn:aws:s3:::{BUCKET}"
        )),
        "no failure named the permission:\n{logs}"
    );
    assert!(logs.contains("ListObjectsV2"), "{logs}");
    assert!(logs.contains("AccessDenied"), "{logs}");
    // The fan-out stopped before it touched the target: not even the tables exist.
    let created: bool = connect(&r.direct_url)
        .await
        .query_one("SELECT to_regclass('sales.orders') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!created);
}

#[tokio::test(flavor = "multi_thread")]
async fn load_chunk_lists_nothing_so_its_role_needs_no_list_bucket() {
    let _one = ONE_AT_A_TIME.lock().await;
    // Each chunk item names its part file, size and row groups: a load-chunk invocation reads
    // the mapping and its own part file and lists nothing. With s3:ListBucket taken out of
    // LoadChunkRole any ListObjectsV2 would be AccessDenied (a fatal chunk): every chunk loads.
    let options = StackOptions {
        removals: vec![("LoadChunkRole".into(), "s3:ListBucket".into())],
    };
    let r = Rehearsal::new_with("pl_nolist", 0.0, &[], &options).await;
    let ended = r.run_on_placed_export("load-without-list").await;
    let result = r.expect_success(&ended);
    assert!(result.ok);
    assert_eq!(result.rows_verified, 11_000);
    let calls = r.stack.invocations();
    let loads: Vec<_> = calls.iter().filter(|(n, _)| n == "load-chunk").collect();
    assert_eq!(loads.len(), 22, "{calls:?}");
    assert!(loads.iter().all(|(_, e)| e.is_none()), "{calls:?}");
    let logs = r.stack.function_logs();
    assert!(!logs.contains("AccessDenied"), "{logs}");
    assert_eq!(r.count("sales.orders").await, 10_000);
}

#[test]
fn the_state_machine_can_be_redriven_and_times_tasks_out_before_their_functions() {
    use snap2dsql::pipeline::contract::{DEFAULT_CHUNK_TIMEOUT_SECONDS, MAX_CHUNK_TIMEOUT_SECONDS};
    let asl: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            snap2dsql_tests::stack::repo_root().join("statemachine/migrate.asl.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let resources = template()["Resources"].clone();
    // ${XFunctionArn} -> the function's Timeout in the template.
    let function_timeout = |resource: &str| -> u64 {
        let logical = resource
            .trim_start_matches("${")
            .trim_end_matches("Arn}")
            .to_string();
        resources[&logical]["Properties"]["Timeout"]
            .as_u64()
            .unwrap_or_else(|| panic!("{logical} has no Timeout"))
    };
    // Every state, the Distributed Map's inner states included.
    let mut states: Vec<(String, serde_json::Value)> = Vec::new();
    let mut queue = vec![asl["States"].clone()];
    while let Some(group) = queue.pop() {
        for (name, s) in group.as_object().unwrap() {
            if let Some(inner) = s.get("ItemProcessor").or_else(|| s.get("Iterator")) {
                queue.push(inner["States"].clone());
            }
            states.push((name.clone(), s.clone()));
        }
    }
    let fail_states: Vec<&str> = states
        .iter()
        .filter(|(_, s)| s["Type"] == "Fail")
        .map(|(n, _)| n.as_str())
        .collect();
    let mut tasks = 0;
    for (name, s) in &states {
        // Redrive restarts at the failed state: no Catch may move a failure into a Fail state.
        for c in s["Catch"].as_array().into_iter().flatten() {
            assert!(
                !fail_states.contains(&c["Next"].as_str().unwrap_or_default()),
                "{name} catches {} into a Fail state: a redrive would fail there again",
                c["ErrorEquals"]
            );
        }
        if s["Type"] != "Task" {
            continue;
        }
        tasks += 1;
        let limit = function_timeout(s["Resource"].as_str().unwrap());
        let timeout = match (
            s["TimeoutSeconds"].as_u64(),
            s["TimeoutSecondsPath"].as_str(),
        ) {
            (Some(t), None) => t,
            (None, Some("$.timeout_seconds")) => {
                // The chunk items carry chunk_timeout_seconds: its default and its bound.
                assert_eq!(
                    asl["States"]["Defaults"]["Parameters"]["chunk_timeout_seconds"],
                    DEFAULT_CHUNK_TIMEOUT_SECONDS
                );
                MAX_CHUNK_TIMEOUT_SECONDS
            }
            other => panic!("{name}: no usable task timeout: {other:?}"),
        };
        assert!(
            timeout < limit,
            "{name}: task timeout {timeout} s is not below its function's {limit} s"
        );
        let retried: Vec<&str> = s["Retry"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["ErrorEquals"].as_array().unwrap())
            .filter_map(|e| e.as_str())
            .collect();
        for e in ["States.Timeout", "Sandbox.Timedout"] {
            assert!(
                retried.contains(&e),
                "{name} does not retry {e}: {retried:?}"
            );
        }
    }
    assert_eq!(tasks, 5, "five functions, five tasks");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_load_refused_by_the_target_fails_in_load_chunks_and_a_new_execution_recovers() {
    let _one = ONE_AT_A_TIME.lock().await;
    let r = Rehearsal::new("pl_redrive", 0.0, &[]).await;
    r.place_export("manual-export").await;
    r.prepare_tables().await;
    // The target refuses half the orders until fixed: a trigger upstream (DSQL has none; this
    // is the test's fault, behind the stand-in).
    let upstream = connect(&r.direct_url).await;
    upstream
        .batch_execute(
            "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.old_id > 5000 THEN
                 RAISE EXCEPTION 'writes to sales.orders are refused' USING ERRCODE = '42501';
               END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON sales.orders
               FOR EACH ROW EXECUTE FUNCTION public.refuse();",
        )
        .await
        .unwrap();
    let input = serde_json::json!({
        "export_uri": format!("s3://{BUCKET}/exports/manual-export"), "wait_seconds": 0
    });
    let failed = r.run("refused-1", input.clone()).await;
    assert_eq!(failed.status, "FAILED", "{failed:?}");
    let calls = r.stack.invocations();
    assert!(
        calls.iter().any(|(n, e)| n == "fan-out" && e.is_none()),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|(n, e)| n == "load-chunk" && e.as_deref() == Some(failure::FATAL)),
        "no chunk failed: {calls:?}"
    );
    // moto applies no ToleratedFailurePercentage: its Map succeeds with the failed children's
    // results null and the execution fails at Verify (rows missing); on AWS it fails at
    // LoadChunks. Either way the failed chunks are in LoadChunks, as the invocations show.
    assert!(
        calls
            .iter()
            .filter(|(n, _)| n == "verify")
            .all(|(_, e)| e.as_deref() == Some(failure::VERIFY_MISMATCH)),
        "{calls:?}"
    );
    let partial = r.count("sales.orders").await;
    eprintln!(
        "first execution: {:?} / {:?}; {partial} of 10000 orders committed",
        failed.error, failed.cause
    );
    assert!(partial < 10_000, "{partial}");

    // Fixed; moto has no RedriveExecution, so the same recovery through a new execution.
    upstream
        .batch_execute("DROP TRIGGER refuse ON sales.orders")
        .await
        .unwrap();
    let ended = r.run("refused-1-recovery", input).await;
    assert!(r.expect_success(&ended).ok);
    let row = upstream
        .query_one(
            "SELECT count(*), count(DISTINCT old_id) FROM sales.orders",
            &[],
        )
        .await
        .unwrap();
    let (rows, distinct): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!((rows, distinct), (10_000, 10_000), "every row exactly once");
    assert_eq!(r.count("sales.customers").await, 1_000);
}

/// EventBridge's content filtering, as documented ("Content filtering in Amazon EventBridge
/// event patterns"): every field of the pattern must match; a list matches when any of its
/// values or filters does; a missing field matches nothing but `{"exists": false}`.
fn pattern_matches(pattern: &serde_json::Value, event: &serde_json::Value) -> bool {
    use serde_json::Value;
    fn one(rule: &Value, value: Option<&Value>) -> bool {
        match rule {
            Value::Object(f) => {
                if let Some(exists) = f.get("exists") {
                    return exists.as_bool() == Some(value.is_some());
                }
                let Some(v) = value else { return false };
                if let Some(p) = f.get("prefix") {
                    return matches!((v, p), (Value::String(s), Value::String(p)) if s.starts_with(p.as_str()));
                }
                if let Some(but) = f.get("anything-but") {
                    return match but {
                        Value::Array(values) => !values.contains(v),
                        Value::Object(inner) => match (inner.get("prefix"), v) {
                            (Some(Value::String(p)), Value::String(s)) => {
                                !s.starts_with(p.as_str())
                            }
                            _ => false,
                        },
                        other => other != v,
                    };
                }
                panic!("filter {rule} is not implemented here")
            }
            literal => match value {
                Some(Value::Array(items)) => items.contains(literal),
                Some(v) => v == literal,
                None => false,
            },
        }
    }
    pattern.as_object().unwrap().iter().all(|(k, p)| match p {
        Value::Object(_) => event.get(k).is_some_and(|e| pattern_matches(p, e)),
        Value::Array(rules) => rules.iter().any(|r| one(r, event.get(k))),
        _ => panic!("pattern field {k} is neither a list nor an object"),
    })
}

#[test]
fn the_export_completed_rule_ignores_the_pipelines_own_snapshots() {
    let t = template();
    let rule = &t["Resources"]["ExportCompletedRule"]["Properties"];
    let pattern = &rule["EventPattern"];
    // RDS-EVENT-0164 as RDS sends it to EventBridge.
    let event = |source_arn: &str, event_id: &str, account: &str| {
        serde_json::json!({
            "version": "0", "id": "c2b6a6c1-0000-0000-0000-000000000000",
            "detail-type": "RDS DB Cluster Snapshot Event", "source": "aws.rds",
            "account": account, "time": "2026-11-25T10:00:00Z", "region": "us-east-1",
            "resources": [source_arn],
            "detail": {
                "EventCategories": ["notification"], "SourceType": "CLUSTER_SNAPSHOT",
                "SourceArn": source_arn,
                "Date": "2026-11-25T10:00:00.000Z",
                "Message": "Export task completed.",
                "SourceIdentifier": source_arn.rsplit(':').next().unwrap(),
                "EventID": event_id
            }
        })
    };
    let arn = |id: &str| format!("arn:aws:rds:us-east-1:123456789012:cluster-snapshot:{id}");
    let cases = [
        (
            event(&arn("storefront-nightly"), "RDS-EVENT-0164", "123456789012"),
            true,
        ),
        // The pipeline's own snapshot: the execution that made it loads it.
        (
            event(
                &arn(&rds_id("storefront-1")),
                "RDS-EVENT-0164",
                "123456789012",
            ),
            false,
        ),
        // Another event of a cluster snapshot (export started, snapshot created, ...).
        (
            event(&arn("storefront-nightly"), "RDS-EVENT-0161", "123456789012"),
            false,
        ),
        // Another account's event on a shared bus.
        (
            event(&arn("storefront-nightly"), "RDS-EVENT-0164", "210987654321"),
            false,
        ),
    ];
    for (e, want) in &cases {
        assert_eq!(
            pattern_matches(pattern, e),
            *want,
            "pattern {pattern} on {}",
            e["detail"]
        );
    }
    // The execution gets the snapshot's ARN, the event-path entry point.
    let target = &rule["Targets"][0]["InputTransformer"];
    assert_eq!(target["InputPathsMap"]["source_arn"], "$.detail.SourceArn");
    assert_eq!(
        target["InputTemplate"],
        r#"{"export_source_arn": <source_arn>}"#
    );
}

#[test]
fn the_snapshot_role_snapshots_and_exports_only_what_it_should() {
    // The real documents (not moto's view of them), evaluated with IAM's matching rules for
    // Action and Resource; a statement with a Condition allows only when the condition holds,
    // which here is "the cluster or snapshot carries snap2dsql-source=true" (`tagged`).
    let t = template();
    let docs = t["Resources"]["SnapshotRole"]["Properties"]["Policies"].clone();
    let glob = |pattern: &str, value: &str| {
        let mut rest = value;
        let parts: Vec<&str> = pattern.split('*').collect();
        for (i, part) in parts.iter().enumerate() {
            if i == 0 {
                match rest.strip_prefix(part) {
                    Some(r) => rest = r,
                    None => return false,
                }
            } else if i == parts.len() - 1 {
                return rest.ends_with(part);
            } else {
                match rest.find(part) {
                    Some(at) => rest = &rest[at + part.len()..],
                    None => return false,
                }
            }
        }
        rest.is_empty()
    };
    let list = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::Array(a) => {
                a.iter().map(|x| x.as_str().unwrap().to_string()).collect()
            }
            s => vec![s.as_str().unwrap().to_string()],
        }
    };
    let allowed = |action: &str, resource: &str, tagged: bool| {
        docs.as_array().unwrap().iter().any(|p| {
            p["PolicyDocument"]["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| {
                    s["Effect"] == "Allow"
                        && list(&s["Action"]).iter().any(|a| glob(a, action))
                        && list(&s["Resource"]).iter().any(|r| glob(r, resource))
                        && (s.get("Condition").is_none() || tagged)
                })
        })
    };
    let cluster = |id: &str| format!("arn:aws:rds:us-east-1:123456789012:cluster:{id}");
    let snapshot = |id: &str| format!("arn:aws:rds:us-east-1:123456789012:cluster-snapshot:{id}");
    let own = rds_id("storefront-1");
    let create = "rds:CreateDBClusterSnapshot";
    let export = "rds:StartExportTask";
    assert!(allowed(create, &cluster(CLUSTER), false));
    assert!(allowed(create, &snapshot(&own), false));
    assert!(!allowed(create, &cluster("payroll-prod"), false));
    assert!(allowed(create, &cluster("payroll-prod"), true));
    assert!(!allowed(create, &snapshot("payroll-manual"), true));
    assert!(allowed(export, &snapshot(&own), false));
    assert!(!allowed(export, &snapshot("payroll-manual"), false));
    assert!(allowed(export, &snapshot("payroll-manual"), true));
    assert!(!allowed(export, &cluster(CLUSTER), false));
    assert!(!allowed(
        "rds:DeleteDBClusterSnapshot",
        &snapshot(&own),
        true
    ));
}
