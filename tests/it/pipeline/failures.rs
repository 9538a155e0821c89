//! Emulated executions that fail where AWS would: a permission taken out of the template, a
//! target refusing writes (then recovered by a new execution).

use super::*;

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
    // the mapping and its own part file and lists nothing. The template's LoadChunkRole has no
    // s3:ListBucket, so any ListObjectsV2 would be AccessDenied (a fatal chunk): every chunk
    // loads.
    let role = template()["Resources"]["LoadChunkRole"].to_string();
    assert!(role.contains("s3:GetObject"), "{role}");
    assert!(!role.contains("s3:ListBucket"), "{role}");
    let r = Rehearsal::new("pl_nolist", 0.0, &[]).await;
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
        "export_uri": format!("s3://{BUCKET}/exports/manual-export"), "wait_seconds": 0, "index_wait_seconds": 0
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
    assert_verify_failed_by_mismatch(&calls);
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

#[tokio::test(flavor = "multi_thread")]
async fn index_builds_past_their_deadline_fail_naming_the_jobs_still_running() {
    let _one = ONE_AT_A_TIME.lock().await;
    // Every index job takes at least a minute; the loop may wait 2 s.
    let r = Rehearsal::build("pl_jobs", 0.0, &[], &StackOptions::default(), 250, |c| {
        c.unknowns.min_job_duration = Duration::from_secs(60)
    })
    .await;
    r.place_export("jobs-export").await;
    let ended = r
        .run(
            "jobs-late",
            serde_json::json!({
                "export_uri": format!("s3://{BUCKET}/exports/jobs-export"),
                "wait_seconds": 0, "index_wait_seconds": 1, "max_index_wait_seconds": 2
            }),
        )
        .await;
    assert_eq!(ended.status, "FAILED", "{ended:?}");
    assert_eq!(
        ended.error.as_deref(),
        Some(failure::DEADLINE_EXCEEDED),
        "{ended:?}"
    );
    let cause = ended.cause.unwrap_or_default();
    assert!(
        cause.contains("still running after the deadline")
            && cause.contains("max_index_wait_seconds = 2")
            && cause.contains("index "),
        "{cause}"
    );
    // Everything was loaded first: only the index loop ran out of time.
    assert_eq!(r.count("sales.orders").await, 10_000);
}
