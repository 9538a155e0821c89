//! The fault suite: loads of the storefront through the `snap2dsql run` command while something
//! goes wrong, each ending with the target equal to the export (row-level verification, which
//! `run` does last) and no duplicate.
//!
//! `make test` runs each case `SNAP2DSQL_FAULT_RUNS` times (default 2); `make reliability` runs
//! 20 and prints the table: case, runs, rows expected, rows found, duplicates, result.

use super::load::{Fixture, cli, ledger_rows, scalar, storefront_db};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use snap2dsql_tests::{PgServer, connect};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

const CUSTOMERS: u32 = 300;
const ORDERS: u32 = 20_000;
const TOTAL: i64 = (CUSTOMERS + ORDERS) as i64;

fn runs() -> usize {
    std::env::var("SNAP2DSQL_FAULT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

/// One line of the table.
struct CaseResult {
    case: &'static str,
    runs: usize,
    expected: i64,
    found: i64,
    duplicates: i64,
    failures: Vec<String>,
}

/// Drops the target tables and the ledger: the next run starts from nothing.
async fn reset(db: &Client) {
    db.batch_execute(
        "DROP SCHEMA IF EXISTS sales_dsql CASCADE; DROP SCHEMA IF EXISTS snap2dsql CASCADE;",
    )
    .await
    .unwrap();
}

/// Rows in the target and duplicates (rows beyond one per old key), both tables.
async fn measure(db: &Client) -> (i64, i64) {
    let mut found = 0;
    let mut duplicates = 0;
    for t in ["customers", "orders"] {
        let n = scalar(db, &format!("SELECT count(*) FROM sales_dsql.{t}")).await;
        let distinct = scalar(
            db,
            &format!("SELECT count(DISTINCT old_id) FROM sales_dsql.{t}"),
        )
        .await;
        found += n;
        duplicates += n - distinct;
    }
    (found, duplicates)
}

fn spawn_run(f: &Fixture, extra: &[&str], log: &std::path::Path) -> Child {
    let mut args = f.args("run");
    args.extend(
        [
            "--create-tables",
            "--guard-dsql-limits",
            "--batch-rows",
            "200",
            "--chunk-rows",
            "4000",
            "--concurrency",
            "2",
            "--parallel-chunks",
            "2",
        ]
        .map(String::from),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    Command::new(cli())
        .args(&args)
        .env("SNAP2DSQL_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Waits for `child`; true when it exited 0 (`run` exits 0 only when every table verifies).
async fn finished_ok(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the ledger holds `rows` more rows than now (or the child exits).
async fn wait_for_progress(db: &Client, child: &mut Child, rows: i64) {
    let before = ledger_rows(db, None).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none()
        && ledger_rows(db, None).await < before + rows
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs `one` `n` times (each on a fresh target), then checks and sums the outcomes.
async fn case<F, Fut>(name: &'static str, url: &str, n: usize, mut one: F) -> CaseResult
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut r = CaseResult {
        case: name,
        runs: n,
        expected: 0,
        found: 0,
        duplicates: 0,
        failures: Vec::new(),
    };
    for i in 0..n {
        reset(&connect(url).await).await;
        if let Err(e) = one(i).await {
            r.failures.push(format!("run {i}: {e}"));
        }
        // A new session: the fault may have ended every earlier one.
        let db = &connect(url).await;
        let (found, duplicates) = measure(db).await;
        r.expected += TOTAL;
        r.found += found;
        r.duplicates += duplicates;
        if found != TOTAL || duplicates != 0 || ledger_rows(db, None).await != TOTAL {
            r.failures.push(format!(
                "run {i}: {found} rows, {duplicates} duplicates, ledger {}",
                ledger_rows(db, None).await
            ));
        }
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_during_a_load_end_exact_without_duplicates() {
    let n = runs();
    let logs = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(0xfa17_2026);
    let mut results = Vec::new();

    let url = storefront_db("fault", CUSTOMERS, ORDERS);
    let f = Fixture::new(&url, None, 5_000, 1_000).await;
    let db = connect(&url).await;

    // SIGKILL of the loader at a random point, then a resumed run.
    let kill = case("SIGKILL of the loader, then resumed", &url, n, |i| {
        let (f, db, logs) = (&f, &db, logs.path());
        let rows = rng.random_range(0..=(TOTAL - 1_000) / 200) * 200;
        let delay = rng.random_range(0..40);
        async move {
            let mut child = spawn_run(f, &[], &logs.join(format!("kill-{i}.log")));
            wait_for_progress(db, &mut child, rows).await;
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let mid_run = child.try_wait().unwrap().is_none();
            child.kill().ok();
            child.wait().ok();
            if !mid_run {
                return Err("the load ended before the kill".into());
            }
            let mut resumed = spawn_run(f, &[], &logs.join(format!("kill-{i}-resume.log")));
            if !finished_ok(&mut resumed, Duration::from_secs(120)).await {
                return Err("the resumed run failed".into());
            }
            Ok(())
        }
    })
    .await;
    results.push(kill);

    // Every loader connection dropped by the server (pg_terminate_backend) every 40-120 ms.
    let terminate = case("connections dropped mid-batch", &url, n, |i| {
        let (f, url, logs) = (&f, url.clone(), logs.path());
        let seed = rng.random();
        async move {
            let mut child = spawn_run(f, &[], &logs.join(format!("terminate-{i}.log")));
            let done = Arc::new(AtomicBool::new(false));
            let terminator = {
                let done = done.clone();
                tokio::spawn(async move {
                    let db = connect(&url).await;
                    let mut rng = StdRng::seed_from_u64(seed);
                    let mut dropped = 0;
                    // Mid-batch: until every row is committed (a scan that outlives the
                    // 40-120 ms between drops could never finish, so verification is spared).
                    while !done.load(Ordering::SeqCst) && ledger_rows(&db, None).await < TOTAL {
                        tokio::time::sleep(Duration::from_millis(rng.random_range(40..120))).await;
                        dropped += scalar(
                            &db,
                            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                             WHERE application_name = 'snap2dsql' AND datname = current_database()
                               AND pid <> pg_backend_pid()",
                        )
                        .await;
                    }
                    dropped
                })
            };
            let ok = finished_ok(&mut child, Duration::from_secs(180)).await;
            done.store(true, Ordering::SeqCst);
            let dropped = terminator.await.unwrap();
            if dropped == 0 {
                return Err("no connection was dropped".into());
            }
            if !ok {
                return Err(format!("the run failed after {dropped} dropped connections"));
            }
            Ok(())
        }
    })
    .await;
    results.push(terminate);

    // 30% of commits fail with 40001 (OC000), as DSQL's optimistic concurrency does.
    let occ = case("30% injected OCC conflicts", &url, n, |i| {
        let (f, logs) = (&f, logs.path());
        async move {
            let mut child = spawn_run(
                f,
                &["--inject-conflicts", "0.3"],
                &logs.join(format!("occ-{i}.log")),
            );
            if !finished_ok(&mut child, Duration::from_secs(180)).await {
                return Err("the run failed".into());
            }
            Ok(())
        }
    })
    .await;
    results.push(occ);

    // The PostgreSQL server restarted (fast shutdown, then start) in the middle of the load.
    let server = tokio::task::block_in_place(PgServer::start).expect("a private server");
    let private_url = server.storefront_db("fault_restart", CUSTOMERS, ORDERS);
    let pf = Fixture::new(&private_url, None, 5_000, 1_000).await;
    let pdb_url = private_url.clone();
    let restart = {
        let restarts = std::sync::atomic::AtomicUsize::new(0);
        let r = case("PostgreSQL restarted mid-load", &pdb_url, n, |i| {
            let (pf, logs, server, url) = (&pf, logs.path(), &server, pdb_url.clone());
            let rows = rng.random_range(1..=(TOTAL - 4_000) / 200) * 200;
            let restarts = &restarts;
            async move {
                let db = connect(&url).await;
                let mut child = spawn_run(pf, &[], &logs.join(format!("restart-{i}.log")));
                wait_for_progress(&db, &mut child, rows).await;
                if child.try_wait().unwrap().is_some() {
                    return Err("the load ended before the restart".into());
                }
                drop(db);
                tokio::task::block_in_place(|| server.restart())?;
                restarts.fetch_add(1, Ordering::SeqCst);
                if !finished_ok(&mut child, Duration::from_secs(180)).await {
                    return Err("the run did not survive the restart".into());
                }
                Ok(())
            }
        })
        .await;
        assert_eq!(
            restarts.into_inner(),
            n,
            "every run restarted the server once"
        );
        r
    };
    results.push(restart);

    println!(
        "\n{:<40} {:>5} {:>14} {:>11} {:>11}  result",
        "case", "runs", "rows expected", "rows found", "duplicates"
    );
    for r in &results {
        println!(
            "{:<40} {:>5} {:>14} {:>11} {:>11}  {}",
            r.case,
            r.runs,
            r.expected,
            r.found,
            r.duplicates,
            if r.failures.is_empty() {
                "pass"
            } else {
                "FAIL"
            }
        );
    }
    let failures: Vec<String> = results
        .iter()
        .flat_map(|r| r.failures.iter().map(move |f| format!("{}: {f}", r.case)))
        .collect();
    assert!(
        failures.is_empty(),
        "{failures:#?}\nlogs kept in {}",
        logs.keep().display()
    );
}
