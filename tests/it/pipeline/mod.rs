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

mod definition;
mod failures;
mod metrics;
mod runs;

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
    arn: String,
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
        Rehearsal::build(prefix, occ, env, options, 250, |_| {}).await
    }

    /// Part files of 500 rows in row groups of `row_group_rows` (a chunk is whole row groups);
    /// `configure` adjusts the stand-in's configuration.
    async fn build(
        prefix: &str,
        occ: f64,
        env: &[(&str, &str)],
        options: &StackOptions,
        row_group_rows: usize,
        configure: impl FnOnce(&mut snap2dsql_tests::standin::Config),
    ) -> Rehearsal {
        let source = pg().storefront_db(&format!("{prefix}_src"), 1_000, 10_000);
        let standin = snap2dsql_tests::standin::start_with(configure).await;
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
        opts.rows_per_row_group = row_group_rows;
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
        create_source_cluster(&rds, CLUSTER).await;
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
            serde_json::json!({"export_uri": uri, "wait_seconds": 0, "index_wait_seconds": 0}),
        )
        .await
    }

    async fn run(&self, name: &str, input: serde_json::Value) -> Ended {
        self.run_for(name, input, Duration::from_secs(300)).await
    }

    /// [`Rehearsal::run`], waiting at most `limit`.
    async fn run_for(&self, name: &str, input: serde_json::Value, limit: Duration) -> Ended {
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
        let deadline = Instant::now() + limit;
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
                    arn: arn.clone(),
                    status,
                    output: d.output().map(str::to_string),
                    error: d.error().map(str::to_string),
                    cause: d.cause().map(str::to_string),
                };
            }
            assert!(
                Instant::now() < deadline,
                "execution {name} still RUNNING after {limit:?}; functions said:\n{}",
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

    /// The execution's history events: (type, state name when one was entered or exited, size of
    /// the state's output when one was exited).
    async fn history(&self, arn: &str) -> Vec<(String, Option<String>, usize)> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .sfn
                .get_execution_history()
                .execution_arn(arn)
                .max_results(1000)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            for e in page.events() {
                let entered = e
                    .state_entered_event_details()
                    .map(|d| d.name().to_string());
                let exited = e.state_exited_event_details();
                out.push((
                    e.r#type().as_str().to_string(),
                    entered.or(exited.map(|d| d.name().to_string())),
                    exited.and_then(|d| d.output()).map_or(0, str::len),
                ));
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return out;
            }
        }
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

/// An Aurora PostgreSQL cluster `id` in moto, as the pipeline's source.
async fn create_source_cluster(rds: &aws_sdk_rds::Client, id: &str) {
    rds.create_db_cluster()
        .db_cluster_identifier(id)
        .engine("aurora-postgresql")
        .master_username("postgres")
        .master_user_password("not-a-real-password")
        .send()
        .await
        .unwrap();
}

/// The verify function's steps all succeeded but the last, which found rows missing.
fn assert_verify_failed_by_mismatch(calls: &[(String, Option<String>)]) {
    let verify: Vec<Option<&str>> = calls
        .iter()
        .filter(|(n, _)| n == "verify")
        .map(|(_, e)| e.as_deref())
        .collect();
    assert!(
        verify.contains(&Some(failure::VERIFY_MISMATCH))
            && verify
                .iter()
                .all(|e| e.is_none() || *e == Some(failure::VERIFY_MISMATCH)),
        "{calls:?}"
    );
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

/// The stack's resolved template (`tests/cfn_stack.py json`).
fn template() -> serde_json::Value {
    snap2dsql_tests::stack::resolved_template(BUCKET).unwrap_or_else(|e| panic!("{e}"))
}
