//! The CloudWatch EMF lines of an emulated run: what `load-chunk` and `verify` print is valid
//! EMF in the namespace the stack sets, and its per-table figures agree with the rows that
//! reached the target (counted upstream of the stand-in) and the conflicts the stand-in injected;
//! a second run after two rows were taken out prints the rows as already committed and verify's
//! mismatch. A chunk that runs out of attempts prints its line too, with the conflicts that
//! stopped it.

use super::{CLUSTER, ONE_AT_A_TIME, Rehearsal};
use snap2dsql::pipeline::failure;
use snap2dsql::pipeline::metrics::{self, emf_violation};
use snap2dsql::pipeline::rds::rds_id;
use std::collections::BTreeMap;

const NAMESPACE: &str = "snap2dsql-it";

/// Every line of the functions' output that is an EMF document.
fn emf_lines(logs: &str) -> Vec<serde_json::Value> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect()
}

/// Sums `metric` per `Table` over `lines`.
fn per_table(lines: &[&serde_json::Value], metric: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for l in lines {
        let table = l["Table"].as_str().expect("a Table dimension").to_string();
        let value = l[metric]
            .as_f64()
            .unwrap_or_else(|| panic!("{metric}: {l}"));
        *out.entry(table).or_insert(0.0) += value;
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn load_chunk_and_verify_print_emf_whose_figures_agree_with_the_target() {
    let _one = ONE_AT_A_TIME.lock().await;
    // Conflicts on a fifth of the commits, retried inside load-chunk: they must show as
    // Conflicts.
    let r = Rehearsal::new("pl_emf", 0.2, &[("METRICS_NAMESPACE", NAMESPACE)]).await;
    r.place_export(&rds_id("emf-1")).await;
    let ended = r
        .run(
            "emf-1",
            serde_json::json!({"source_cluster": CLUSTER, "wait_seconds": 0, "index_wait_seconds": 0}),
        )
        .await;
    assert!(r.expect_success(&ended).ok);
    let logs = r.stack.function_logs();
    let lines = emf_lines(&logs);
    for l in &lines {
        assert_eq!(emf_violation(l), None, "not EMF: {l}");
        let directive = &l["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE, "{l}");
        assert_eq!(l["Migration"], r.mapping.migration.id.as_str(), "{l}");
        for m in directive["Metrics"].as_array().unwrap() {
            assert!(metrics::ALL.contains(&m["Name"].as_str().unwrap()), "{m}");
        }
    }
    // A chunk that stopped (none is expected at this conflict rate) is told apart by `stopped`.
    let step = |name: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|l| l["step"] == name && l.get("stopped").is_none())
            .collect()
    };
    let (loads, verifies) = (step("load-chunk"), step("verify"));

    // One line per chunk: as many as load-chunk invocations that succeeded, 22 distinct chunks.
    let succeeded = r
        .stack
        .invocations()
        .iter()
        .filter(|(n, e)| n == "load-chunk" && e.is_none())
        .count();
    assert_eq!(loads.len(), succeeded, "{logs}");
    let chunks: std::collections::BTreeSet<&str> =
        loads.iter().map(|l| l["chunk"].as_str().unwrap()).collect();
    assert_eq!(chunks.len(), 22);

    // Rows written per table are the rows in the target, counted upstream of the stand-in.
    let written = per_table(&loads, metrics::ROWS_WRITTEN);
    let already = per_table(&loads, metrics::ROWS_ALREADY_COMMITTED);
    let bytes = per_table(&loads, metrics::BYTES_WRITTEN);
    let batches = per_table(&loads, metrics::BATCHES);
    let mut in_target = BTreeMap::new();
    for t in &r.mapping.tables {
        let rows = r
            .count(&snap2dsql::ddl::qualified(&t.target_schema, &t.target_name))
            .await;
        in_target.insert(t.source.clone(), rows as f64);
    }
    let loaded: BTreeMap<String, f64> = in_target
        .iter()
        .filter(|(_, n)| **n > 0.0)
        .map(|(t, n)| (t.clone(), *n))
        .collect();
    let sum = |a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>| -> BTreeMap<String, f64> {
        a.iter()
            .map(|(t, n)| (t.clone(), n + b.get(t).copied().unwrap_or(0.0)))
            .filter(|(_, n)| *n > 0.0)
            .collect()
    };
    assert_eq!(sum(&written, &already), loaded, "{loads:?}");
    assert_eq!(in_target.values().sum::<f64>(), 11_000.0);
    for (table, rows) in &written {
        assert!(
            bytes[table] > *rows,
            "{table}: {} bytes for {rows} rows",
            bytes[table]
        );
        assert!(batches[table] >= 1.0, "{table}");
    }
    assert!(
        loads
            .iter()
            .all(|l| l[metrics::CHUNK_SECONDS].as_f64().unwrap() > 0.0)
    );

    // Conflicts retried inside the function: some, and no more than the stand-in failed.
    let conflicts: f64 = per_table(&loads, metrics::CONFLICTS).values().sum();
    let failed = r.standin.counters();
    let failed = (failed.injected_conflicts + failed.conflicts) as f64;
    eprintln!(
        "EMF: {conflicts} conflicts retried in load-chunk; the stand-in failed {failed} commits"
    );
    assert!(
        conflicts > 0.0 && conflicts <= failed,
        "{conflicts} of {failed}"
    );
    let retries: f64 = per_table(&loads, metrics::RETRIES).values().sum();
    assert!(retries >= conflicts);

    // verify: a line per table with the rows verified and no mismatch, then the run's line.
    let (tables, run): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) =
        verifies.iter().partition(|l| l.get("Table").is_some());
    assert_eq!(per_table(&tables, metrics::ROWS_VERIFIED), in_target);
    assert!(
        per_table(&tables, metrics::MISMATCHES)
            .values()
            .all(|n| *n == 0.0)
    );
    assert_eq!(run.len(), 1, "{verifies:?}");
    assert_eq!(run[0][metrics::VERIFY_OK], 1.0);
    assert_eq!(run[0][metrics::TABLES_MISMATCHED], 0.0);

    // Take two orders out upstream, then run the same export again: every chunk finds its rows
    // committed (RowsAlreadyCommitted, no RowsWritten), and verify fails yet prints its figures.
    let client = snap2dsql_tests::connect(&r.direct_url).await;
    client
        .batch_execute("DELETE FROM sales.orders WHERE old_id IN (42, 43)")
        .await
        .unwrap();
    let export = format!("s3://{}/exports/{}", super::BUCKET, rds_id("emf-1"));
    let input =
        serde_json::json!({"export_uri": export, "wait_seconds": 0, "index_wait_seconds": 0});
    let ended = r.run("emf-damaged", input).await;
    let error = ended.error.as_deref();
    assert_eq!(error, Some(failure::VERIFY_MISMATCH), "{ended:?}");
    let again = emf_lines(&r.stack.function_logs());
    let again: Vec<&serde_json::Value> = again[lines.len()..].iter().collect();
    let reloads: Vec<&serde_json::Value> = again
        .iter()
        .copied()
        .filter(|l| l["step"] == "load-chunk")
        .collect();
    assert!(
        per_table(&reloads, metrics::ROWS_WRITTEN)
            .values()
            .all(|n| *n == 0.0)
    );
    let none = BTreeMap::new();
    assert_eq!(
        sum(&per_table(&reloads, metrics::ROWS_ALREADY_COMMITTED), &none),
        loaded
    );
    let (tables, run): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) = again
        .iter()
        .copied()
        .filter(|l| l["step"] == "verify")
        .partition(|l| l.get("Table").is_some());
    let mismatches = per_table(&tables, metrics::MISMATCHES);
    let missing = per_table(&tables, metrics::MISSING_ROWS);
    // A line for every table; the two rows taken out, on the table they came from.
    assert!(mismatches.keys().eq(in_target.keys()), "{tables:?}");
    assert_eq!(mismatches.get("sales.orders"), Some(&2.0), "{tables:?}");
    assert_eq!(missing.get("sales.orders"), Some(&2.0), "{tables:?}");
    for (table, n) in mismatches.iter().filter(|(t, _)| *t != "sales.orders") {
        assert_eq!(*n, 0.0, "{table}: {tables:?}");
        assert_eq!(missing[table], 0.0, "{table}");
    }
    assert_eq!(run.len(), 1, "{again:?}");
    assert_eq!(run[0][metrics::VERIFY_OK], 0.0);
    assert_eq!(run[0][metrics::TABLES_MISMATCHED], 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunk_that_runs_out_of_attempts_prints_the_conflicts_that_stopped_it() {
    let _one = ONE_AT_A_TIME.lock().await;
    // Half the commits conflict and a batch gets two attempts: about a quarter of the
    // invocations stop with Snap2dsql.Retryable, and the state machine's Retry reruns them.
    let env = [("METRICS_NAMESPACE", NAMESPACE), ("LOAD_MAX_ATTEMPTS", "2")];
    let r = Rehearsal::new("pl_emf_stop", 0.5, &env).await;
    r.place_export(&rds_id("emf-stop")).await;
    let input =
        serde_json::json!({"source_cluster": CLUSTER, "wait_seconds": 0, "index_wait_seconds": 0});
    let ended = r.run("emf-stop", input).await;
    assert!(r.expect_success(&ended).ok);
    let logs = r.stack.function_logs();
    let lines = emf_lines(&logs);
    let loads: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["step"] == "load-chunk").collect();
    let (stopped, finished): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) =
        loads.iter().partition(|l| l.get("stopped").is_some());

    // One line per invocation, failed ones included: the failures are the stopped lines.
    let invocations = r.stack.invocations();
    let failed = invocations
        .iter()
        .filter(|(n, e)| n == "load-chunk" && e.is_some())
        .count();
    assert!(failed > 0, "no invocation ran out of attempts: {logs}");
    assert_eq!(stopped.len(), failed, "{logs}");
    let succeeded = invocations
        .iter()
        .filter(|(n, e)| n == "load-chunk" && e.is_none())
        .count();
    assert_eq!(finished.len(), succeeded, "{logs}");
    for l in &stopped {
        assert_eq!(emf_violation(l), None, "not EMF: {l}");
        assert_eq!(l["stopped"], failure::RETRYABLE, "{l}");
        // It stopped on a conflict it had already retried once, and is no loaded chunk.
        assert!(l[metrics::CONFLICTS].as_f64().unwrap() >= 1.0, "{l}");
        assert!(l.get(metrics::CHUNK_SECONDS).is_none(), "{l}");
        assert_eq!(l["Migration"], r.mapping.migration.id.as_str(), "{l}");
    }

    // Every conflict counted, stopped chunks' too, and no more than the stand-in failed.
    let conflicts: f64 = per_table(&loads, metrics::CONFLICTS).values().sum();
    let in_stopped: f64 = per_table(&stopped, metrics::CONFLICTS).values().sum();
    let injected = r.standin.counters();
    let injected = (injected.injected_conflicts + injected.conflicts) as f64;
    eprintln!(
        "EMF: {conflicts} conflicts ({in_stopped} in stopped chunks); the stand-in failed {injected} commits"
    );
    assert!(in_stopped >= stopped.len() as f64);
    assert!(conflicts <= injected, "{conflicts} of {injected}");
    // Rows written, stopped chunks' included, are the rows in the target.
    let rows: f64 = per_table(&loads, metrics::ROWS_WRITTEN).values().sum();
    assert_eq!(rows, 11_000.0);
}
