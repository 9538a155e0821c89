//! The fault suite: loads of the storefront by the `snap2dsql run` command, through the DSQL
//! stand-in in the DSQL dialect (`run`'s defaults), while something goes wrong. Every run must
//! end with `run`'s own row-level verification passing (exit 0) and, measured directly on the
//! upstream PostgreSQL behind the stand-in, every row there once: `count(*)` and
//! `count(DISTINCT old_id)` of each table against the export's row count.
//!
//! The faults come from the stand-in's switches and knobs, each case checking from the
//! stand-in's counters that its fault really happened: a SIGKILL of the loader (then resumed);
//! every connection dropped mid-batch; 30% of commits failing with 40001 (OC000); the upstream
//! PostgreSQL restarted mid-load; the connection limit (53300), the connect rate (53400) and the
//! connection age (57P01) hit mid-load; transactions ended by the age limit (54000); connections
//! that stop answering without closing.
//!
//! `make test` runs each case `SNAP2DSQL_FAULT_RUNS` times (default 2); `make reliability` runs
//! 20 and prints the table: case, runs, rows expected, rows found, duplicates, result.

use super::load::{Fixture, cli, ledger_rows, scalar, storefront_db};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use snap2dsql_standin::config::{CONNECTION_RATE, MAX_CONNECTION_AGE, MAX_CONNECTIONS};
use snap2dsql_tests::standin::{self, CounterSnapshot, Rate, Standin};
use snap2dsql_tests::{PgServer, connect, db_name};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

const CUSTOMERS: u32 = 300;
const ORDERS: u32 = 20_000;
const TOTAL: i64 = (CUSTOMERS + ORDERS) as i64;
/// Rows per batch: about a hundred transactions a run.
const BATCH_ROWS: i64 = 200;

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
    seconds: f64,
    failures: Vec<String>,
}

/// Drops the target tables and the ledger, directly upstream: the next run starts from nothing.
async fn reset(db: &Client) {
    db.batch_execute(
        "DROP SCHEMA IF EXISTS sales_dsql CASCADE; DROP SCHEMA IF EXISTS snap2dsql CASCADE;",
    )
    .await
    .unwrap();
}

/// Rows in the target and duplicates (rows beyond one per old key), both tables, read directly
/// upstream (not through the stand-in, not by the loader).
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

/// Where a case loads: the stand-in, the export and mapping, the upstream database.
struct Setup<'a> {
    standin: &'a Standin,
    f: &'a Fixture,
    /// The upstream database (source and target side by side), for checks.
    direct: String,
    /// The same database through the stand-in: `run`'s target.
    target: String,
}

impl<'a> Setup<'a> {
    fn new(standin: &'a Standin, f: &'a Fixture) -> Setup<'a> {
        Setup {
            standin,
            f,
            direct: f.url.clone(),
            target: standin.url(db_name(&f.url)),
        }
    }
}

/// `run`'s flags beyond the inputs: small batches and chunks so that a run has about a
/// hundred transactions over several chunks, each chunk with its own writers.
struct Flags {
    chunk_rows: u32,
    concurrency: u32,
    extra: &'static [&'static str],
}

const FLAGS: Flags = Flags {
    chunk_rows: 4_000,
    concurrency: 2,
    extra: &[],
};

fn spawn_run(s: &Setup<'_>, flags: &Flags, log: &Path) -> Child {
    let mut args: Vec<String> = vec![
        "run".into(),
        "--export".into(),
        s.f.export_dir.display().to_string(),
        "--mapping".into(),
        s.f.mapping_path.display().to_string(),
        "--target".into(),
        s.target.clone(),
        "--create-tables".into(),
        "--batch-rows".into(),
        BATCH_ROWS.to_string(),
        "--chunk-rows".into(),
        flags.chunk_rows.to_string(),
        "--concurrency".into(),
        flags.concurrency.to_string(),
        "--parallel-chunks".into(),
        "2".into(),
    ];
    args.extend(flags.extra.iter().map(|s| s.to_string()));
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

/// Waits until every row is committed (or the child exits): the end of the load phase.
async fn wait_for_load(db: &Client, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none()
        && ledger_rows(db, None).await < TOTAL
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One run of a case whose fault is a stand-in knob: `run` starts, `on` turns the fault on once
/// the load is under way, `off` turns it off once every row is committed (so `run`'s own
/// verification reads in peace), and the run must end verified. `evidence` then says, from the
/// stand-in's counters, whether the fault happened.
async fn with_knob(
    s: &Setup<'_>,
    flags: &Flags,
    log: &Path,
    on: impl FnOnce(&Standin),
    off: impl FnOnce(&Standin),
) -> Result<(), String> {
    let db = connect(&s.direct).await;
    let mut child = spawn_run(s, flags, log);
    wait_for_progress(&db, &mut child, 2 * BATCH_ROWS).await;
    on(s.standin);
    wait_for_load(&db, &mut child).await;
    off(s.standin);
    if !finished_ok(&mut child, Duration::from_secs(180)).await {
        return Err(format!("the run failed (log {})", log.display()));
    }
    Ok(())
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
        seconds: 0.0,
        failures: Vec::new(),
    };
    let started = Instant::now();
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
    r.seconds = started.elapsed().as_secs_f64();
    r
}

/// The counter `what` of the stand-in grew since `before`, or the case did not do its job.
fn evidence(what: &str, before: u64, now: u64) -> Result<(), String> {
    if now > before {
        Ok(())
    } else {
        Err(format!("the fault never happened: no {what}"))
    }
}

/// A case whose fault is a stand-in knob ([`with_knob`]); `name` is (case, log file prefix),
/// `evidence` (what, the counter that grows when the fault happens).
#[allow(clippy::too_many_arguments)]
async fn knob_case(
    name: (&'static str, &str),
    s: &Setup<'_>,
    n: usize,
    logs: &Path,
    flags: &Flags,
    counter: (&str, fn(&CounterSnapshot) -> u64),
    on: impl Fn(&Standin),
    off: impl Fn(&Standin),
) -> CaseResult {
    let (what, count) = counter;
    case(name.0, &s.direct, n, |i| {
        let (on, off) = (&on, &off);
        let log = logs.join(format!("{}-{i}.log", name.1));
        async move {
            let before = count(&s.standin.counters());
            with_knob(s, flags, &log, on, off).await?;
            evidence(what, before, count(&s.standin.counters()))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_during_a_load_end_exact_without_duplicates() {
    let n = runs();
    let logdir = tempfile::tempdir().unwrap();
    let logs: &Path = logdir.path();
    let mut rng = StdRng::seed_from_u64(0xfa17_2026);
    let mut results = Vec::new();

    let url = storefront_db("fault", CUSTOMERS, ORDERS);
    let f = Fixture::new(&url, None, 5_000, 1_000).await;
    let standin = standin::start().await;
    let s = Setup::new(&standin, &f);
    let s = &s;
    let db = connect(&s.direct).await;

    // SIGKILL of the loader at a random point, then a resumed run.
    results.push(
        case("SIGKILL of the loader, then resumed", &url, n, |i| {
            let (db, rows) = (&db, rng.random_range(0..=(TOTAL - 1_000) / 200) * 200);
            let delay = rng.random_range(0..40);
            async move {
                let mut child = spawn_run(s, &FLAGS, &logs.join(format!("kill-{i}.log")));
                wait_for_progress(db, &mut child, rows).await;
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let mid_run = child.try_wait().unwrap().is_none();
                child.kill().ok();
                child.wait().ok();
                if !mid_run {
                    return Err("the load ended before the kill".into());
                }
                let log = logs.join(format!("kill-{i}-resume.log"));
                let mut resumed = spawn_run(s, &FLAGS, &log);
                if !finished_ok(&mut resumed, Duration::from_secs(120)).await {
                    return Err(format!("the resumed run failed (log {})", log.display()));
                }
                Ok(())
            }
        })
        .await,
    );

    // Every connection closed by the stand-in, mid-transaction, every 40-120 ms.
    results.push(
        case("connections dropped mid-batch", &url, n, |i| {
            let seed = rng.random();
            async move {
                let log = logs.join(format!("drop-{i}.log"));
                let db = connect(&s.direct).await;
                let mut child = spawn_run(s, &FLAGS, &log);
                let done = AtomicBool::new(false);
                let dropper = async {
                    let mut rng = StdRng::seed_from_u64(seed);
                    let mut dropped = 0;
                    // Mid-batch: until every row is committed (a scan that outlives the
                    // 40-120 ms between drops could never finish, so verification is spared).
                    while !done.load(Ordering::SeqCst) && ledger_rows(&db, None).await < TOTAL {
                        tokio::time::sleep(Duration::from_millis(rng.random_range(40..120))).await;
                        dropped += s.standin.drop_all_connections();
                    }
                    dropped
                };
                let waiter = async {
                    let ok = finished_ok(&mut child, Duration::from_secs(180)).await;
                    done.store(true, Ordering::SeqCst);
                    ok
                };
                let (dropped, ok) = tokio::join!(dropper, waiter);
                if dropped == 0 {
                    return Err("no connection was dropped".into());
                }
                if !ok {
                    return Err(format!(
                        "the run failed after {dropped} dropped connections (log {})",
                        log.display()
                    ));
                }
                Ok(())
            }
        })
        .await,
    );

    // 30% of commits fail with 40001 (OC000), as DSQL's optimistic concurrency does.
    results.push(
        knob_case(
            ("30% injected OCC conflicts", "occ"),
            s,
            n,
            logs,
            &FLAGS,
            ("injected conflict", |c| c.injected_conflicts),
            |h| h.set_conflict_fraction(0.3),
            |h| h.set_conflict_fraction(0.0),
        )
        .await,
    );

    // At most 2 connections (53300) while 2 chunks of 2 writers each, and their ledger reads,
    // want more.
    results.push(
        knob_case(
            ("connection limit hit mid-load (53300)", "max"),
            s,
            n,
            logs,
            &FLAGS,
            ("connection refused with 53300", |c| {
                c.connections_refused_max
            }),
            |h| h.set_max_connections(2),
            |h| h.set_max_connections(MAX_CONNECTIONS),
        )
        .await,
    );

    // Eight new connections a second, two at once (53400), while each new chunk opens 4 writers
    // and a ledger read at once.
    let burst = Flags {
        concurrency: 4,
        ..FLAGS
    };
    results.push(
        knob_case(
            ("connect rate exceeded (53400)", "rate"),
            s,
            n,
            logs,
            &burst,
            ("connection refused with 53400", |c| {
                c.connections_refused_rate
            }),
            |h| {
                h.set_connection_rate(Some(Rate {
                    per_second: 8,
                    burst: 2,
                }))
            },
            |h| h.set_connection_rate(Some(CONNECTION_RATE)),
        )
        .await,
    );

    // Connections closed at an age of 1 s (57P01, after their transaction): 100 ms commits and
    // a chunk a part file (25 batches for 2 writers), so a chunk's writers outlive their
    // connections.
    let long = Flags {
        chunk_rows: 100_000,
        ..FLAGS
    };
    results.push(
        knob_case(
            ("connections closed at their age (57P01)", "age"),
            s,
            n,
            logs,
            &long,
            ("connection closed at its age", |c| c.connections_closed_age),
            |h| {
                h.set_commit_latency(Duration::from_millis(100));
                h.set_max_connection_age(Duration::from_secs(1));
            },
            |h| {
                h.set_commit_latency(Duration::ZERO);
                h.set_max_connection_age(MAX_CONNECTION_AGE);
            },
        )
        .await,
    );

    // Connections that stop answering without closing (sockets open, nothing answered), two
    // a run (mid-transaction, or a new one mid-connect), found by `run`'s statement, commit and
    // connect timeouts (1 s) and retried.
    results.push(
        case("connections gone silent", &url, n, |i| async move {
            let before = s.standin.counters().connections_silenced;
            let log = logs.join(format!("silent-{i}.log"));
            let bounded = Flags {
                extra: &[
                    "--statement-timeout",
                    "1",
                    "--commit-timeout",
                    "1",
                    "--connect-timeout",
                    "1",
                ],
                ..FLAGS
            };
            let db = connect(&s.direct).await;
            let mut child = spawn_run(s, &bounded, &log);
            for _ in 0..2 {
                wait_for_progress(&db, &mut child, 2 * BATCH_ROWS).await;
                s.standin.silence_connections(1);
            }
            if !finished_ok(&mut child, Duration::from_secs(180)).await {
                return Err(format!("the run failed (log {})", log.display()));
            }
            let silenced = s.standin.counters().connections_silenced - before;
            if silenced != 2 {
                return Err(format!("{silenced} connections went silent, not 2"));
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if !text.contains("no answer within 1 s") {
                return Err(format!(
                    "the loader never hit its bound (log {})",
                    log.display()
                ));
            }
            Ok(())
        })
        .await,
    );
    drop(db);
    drop(standin);

    // Transactions ended by the age limit (54000): 300 ms, while a session holds the ledger
    // locked for 600 ms at a time, so a batch's ledger row waits past its transaction's age
    // (the stand-in waits up to 2 s on a lock before calling it a conflict).
    let aged = standin::start_with(|c| c.lock_wait = Duration::from_secs(2)).await;
    let s = Setup::new(&aged, &f);
    let s = &s;
    results.push(
        case(
            "transactions ended by the age limit (54000)",
            &url,
            n,
            |i| async move {
                let before = s.standin.counters().limit_errors;
                let log = logs.join(format!("txn-age-{i}.log"));
                let db = connect(&s.direct).await;
                let locker = connect(&s.direct).await;
                let mut child = spawn_run(s, &FLAGS, &log);
                wait_for_progress(&db, &mut child, 2 * BATCH_ROWS).await;
                s.standin
                    .set_max_transaction_age(Duration::from_millis(300));
                let mut locks = 0;
                while child.try_wait().unwrap().is_none() && ledger_rows(&db, None).await < TOTAL {
                    locker
                        .batch_execute(
                            "BEGIN; LOCK TABLE snap2dsql.ledger IN SHARE ROW EXCLUSIVE MODE;
                         SELECT pg_sleep(0.6); COMMIT;",
                        )
                        .await
                        .map_err(|e| format!("lock the ledger: {e}"))?;
                    locks += 1;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                s.standin
                    .set_max_transaction_age(snap2dsql_standin::config::MAX_TRANSACTION_AGE);
                if !finished_ok(&mut child, Duration::from_secs(180)).await {
                    return Err(format!(
                        "the run failed after {locks} locks (log {})",
                        log.display()
                    ));
                }
                evidence(
                    "transaction ended by the age limit",
                    before,
                    s.standin.counters().limit_errors,
                )
            },
        )
        .await,
    );
    drop(aged);

    // The upstream PostgreSQL restarted (fast shutdown, then start) in the middle of the load,
    // behind a stand-in of its own.
    let server = tokio::task::block_in_place(PgServer::start).expect("a private server");
    let private_url = server.storefront_db("fault_restart", CUSTOMERS, ORDERS);
    let pf = Fixture::new(&private_url, None, 5_000, 1_000).await;
    let private = standin::start_with(|c| c.upstream = server.url("postgres")).await;
    let ps = Setup::new(&private, &pf);
    let ps = &ps;
    let restart = {
        let restarts = std::sync::atomic::AtomicUsize::new(0);
        let r = case("PostgreSQL restarted mid-load", &private_url, n, |i| {
            let (server, restarts) = (&server, &restarts);
            let rows = rng.random_range(1..=(TOTAL - 4_000) / 200) * 200;
            async move {
                let db = connect(&ps.direct).await;
                let log = logs.join(format!("restart-{i}.log"));
                let mut child = spawn_run(ps, &FLAGS, &log);
                wait_for_progress(&db, &mut child, rows).await;
                if child.try_wait().unwrap().is_some() {
                    return Err("the load ended before the restart".into());
                }
                drop(db);
                tokio::task::block_in_place(|| server.restart())?;
                restarts.fetch_add(1, Ordering::SeqCst);
                if !finished_ok(&mut child, Duration::from_secs(180)).await {
                    return Err(format!(
                        "the run did not survive the restart (log {})",
                        log.display()
                    ));
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
    drop(private);

    println!(
        "\n{:<45} {:>5} {:>14} {:>11} {:>11} {:>8}  result",
        "case", "runs", "rows expected", "rows found", "duplicates", "seconds"
    );
    for r in &results {
        println!(
            "{:<45} {:>5} {:>14} {:>11} {:>11} {:>8.1}  {}",
            r.case,
            r.runs,
            r.expected,
            r.found,
            r.duplicates,
            r.seconds,
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
        logdir.keep().display()
    );
}

/// DSQL ends a transaction at its age limit with 54000, the SQLSTATE of its row and size limits
/// too. A batch ended by its age was slow, not too big, and must be retried: the loader tells
/// the answers apart (the fault suite's age-limit case stopped at the first one before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_age_limit_is_told_apart_from_the_row_limit() {
    use snap2dsql::error::{Error, ErrorClass};
    let standin = standin::start().await;
    let c = connect(&standin.db("fault_age_class")).await;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    standin.set_max_transaction_age(Duration::from_millis(200));
    c.batch_execute("BEGIN").await.unwrap();
    let slow = c.query_one("SELECT pg_sleep(1)", &[]).await.unwrap_err();
    c.batch_execute("ROLLBACK").await.unwrap();
    standin.set_max_transaction_age(snap2dsql_standin::config::MAX_TRANSACTION_AGE);
    let slow = Error::db("a slow statement", slow);
    assert_eq!(slow.sqlstate(), Some("54000"), "{slow}");
    assert_eq!(slow.class(), ErrorClass::Expired, "{slow}");
    assert!(slow.is_retryable());
    let big = c
        .batch_execute("INSERT INTO t SELECT generate_series(1, 3001)")
        .await
        .unwrap_err();
    let big = Error::db("3,001 rows", big);
    assert_eq!(big.sqlstate(), Some("54000"), "{big}");
    assert_eq!(big.class(), ErrorClass::TooBig, "{big}");
    assert!(!big.is_retryable());
}

/// A loader that gives up on a silent server (no answer, socket open) closes that connection:
/// otherwise its socket, its task and, server side, its transaction would live on (the fault
/// suite's silent case found the retried batch conflicting with that open transaction for
/// good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_given_up_on_a_silent_server_is_closed() {
    use snap2dsql::error::Error;
    use snap2dsql::target::{Target, within};
    let standin = standin::start().await;
    let target = Target::parse(&standin.db("fault_silent_close"))
        .await
        .unwrap();
    let session = target.session().await.unwrap();
    standin.silence_connections(1);
    let query = within(
        Duration::from_millis(500),
        || "a query".to_string(),
        async {
            session
                .simple_query("SELECT 1")
                .await
                .map_err(|e| Error::db("a query", e))
        },
    )
    .await;
    assert!(matches!(query, Err(Error::Timeout { .. })), "{query:?}");
    assert_eq!(standin.counters().connections_silenced, 1);
    assert_eq!(standin.counters().open_connections, 1);
    drop(session);
    let deadline = Instant::now() + Duration::from_secs(5);
    while standin.counters().open_connections > 0 {
        assert!(
            Instant::now() < deadline,
            "the silent connection is still open 5 s after the session was dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
