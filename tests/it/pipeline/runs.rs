//! Emulated executions that succeed: every entry point, conflicts, timeouts, and the shape
//! of a big database (hundreds of chunks, tens of verify parts).

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn storefront_migrates_from_a_source_cluster_and_a_rerun_changes_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    let r = Rehearsal::new("pl_main", 0.0, &[]).await;
    let input =
        serde_json::json!({"source_cluster": CLUSTER, "wait_seconds": 0, "index_wait_seconds": 0});
    // The snapshot function names the export task after the execution.
    for name in ["storefront-1", "storefront-1-again"] {
        r.place_export(&rds_id(name)).await;
    }

    let ended = r.run("storefront-1", input.clone()).await;
    let result = r.expect_success(&ended);
    assert!(result.ok);
    assert_eq!(result.rows_verified, 11_000);
    assert_eq!((result.tables, result.tables_differing), (2, 0));
    assert_eq!(r.count("sales.orders").await, 10_000);
    // The report object is in S3 and says the same, per table.
    let report = r.object_json(&result.report_uri).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["rows_in_export"], 11_000);
    let by_table = |name: &str| {
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["source"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by_table("sales.customers")["rows_in_target"], 1_000);
    assert_eq!(by_table("sales.orders")["rows_in_target"], 10_000);
    assert!(
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "match")
    );
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
            serde_json::json!({"snapshot_arn": arn, "wait_seconds": 0, "index_wait_seconds": 0, "max_concurrency": 3}),
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
            serde_json::json!({"export_source_arn": arn, "wait_seconds": 0, "index_wait_seconds": 0}),
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
            serde_json::json!({"export_source_arn": arn, "wait_seconds": 0, "index_wait_seconds": 0}),
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
                serde_json::json!({"export_source_arn": snap_arn, "wait_seconds": 0, "index_wait_seconds": 0}),
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
                "wait_seconds": 0, "index_wait_seconds": 0
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
    create_source_cluster(&rds_client, &cluster).await;
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
                "source_cluster": CLUSTER, "wait_seconds": 0, "index_wait_seconds": 0, "chunk_timeout_seconds": 2
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

#[tokio::test(flavor = "multi_thread")]
async fn a_run_of_over_500_chunks_and_20_verify_parts_passes_with_small_state_outputs() {
    let _one = ONE_AT_A_TIME.lock().await;
    // Row groups of 20 rows, 25 a part file: 550 row groups, 550 chunks of 20 rows. Verify
    // parts of 500 rows: one export part per part file (22), 2 + 20 key ranges of the target.
    let r = Rehearsal::build("pl_shape", 0.0, &[], &StackOptions::default(), 20, |_| {}).await;
    r.place_export("shape-export").await;
    let input = serde_json::json!({
        "export_uri": format!("s3://{BUCKET}/exports/shape-export"),
        "wait_seconds": 0, "index_wait_seconds": 1, "max_index_wait_seconds": 600,
        "chunk_rows": 20, "verify_item_rows": 500
    });
    let started = Instant::now();
    let ended = r.run_for("shape-1", input, Duration::from_secs(900)).await;
    let result = r.expect_success(&ended);
    eprintln!("{result:?} in {:?}", started.elapsed());
    assert!(result.ok);
    assert_eq!((result.rows_verified, result.tables_differing), (11_000, 0));
    assert_eq!(r.count("sales.orders").await, 10_000);
    assert_eq!(r.count("sales.customers").await, 1_000);
    let chunks = r
        .object_json(&format!("s3://{BUCKET}/runs/shape-1/chunks.json"))
        .await;
    let chunks = chunks.as_array().unwrap().len();
    assert_eq!(chunks, 550, "chunks");
    let loads = r
        .stack
        .invocations()
        .iter()
        .filter(|(n, e)| n == "load-chunk" && e.is_none())
        .count();
    assert!(loads >= chunks, "{loads} chunk loads for {chunks} chunks");
    let items = r
        .object_json(&format!("s3://{BUCKET}/runs/shape-1/verify-items.json"))
        .await;
    let items = items.as_array().unwrap();
    assert_eq!(items.len() as u64, result.parts);
    let sides = |side: &str| items.iter().filter(|i| i["item"]["side"] == side).count();
    assert_eq!((sides("export"), sides("target")), (22, 22), "{items:?}");
    // Every part's aggregates were combined from S3: one object per item.
    for i in 0..items.len() {
        r.object_json(&format!(
            "s3://{BUCKET}/runs/shape-1/verify-parts/{i:06}.json"
        ))
        .await;
    }
    // The state never carries a list: the largest state output is a few KiB whatever the
    // number of chunks and parts, far under the 256 KiB limit.
    let history = r.history(&ended.arn).await;
    let largest = history.iter().map(|(_, _, n)| *n).max().unwrap();
    eprintln!(
        "{} history events; largest state output {largest} bytes",
        history.len()
    );
    assert!(largest < 8 * 1024, "a state output of {largest} bytes");
    let entered = |state: &str| {
        history
            .iter()
            .filter(|(t, n, _)| t.ends_with("StateEntered") && n.as_deref() == Some(state))
            .count()
    };
    for state in ["BuildIndexes", "PlanVerify", "VerifyParts", "Verify"] {
        assert_eq!(entered(state), 1, "{state}");
    }
    // The storefront's indexes are jobs: at least one poll of sys.jobs, each after a Wait.
    let polls = entered("PollIndexes");
    eprintln!("PollIndexes ran {polls} times");
    assert!(
        polls >= 1 && entered("WaitForIndexes") == polls,
        "{polls} polls"
    );
}
