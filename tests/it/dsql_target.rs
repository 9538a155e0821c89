//! The loader and the post-load steps against the DSQL stand-in (`snap2dsql_tests::standin`),
//! which answers like a real DSQL cluster, under each of its switches: binary COPY accepted,
//! refused, or refused inside a transaction; the shape of `sys.wait_for_job`'s answer; how a
//! failed job ends; a connection that goes silent; connection count, rate and age limits;
//! optimistic-concurrency conflicts.
//!
//! The source and the target share one upstream database per test: the source (`sales`) is
//! read directly, the target (`sales_dsql`) only through the stand-in, so PostgreSQL itself can
//! compare every target row with its source row (`assert_exact`).

use crate::load::{Fixture, TARGET, assert_exact, options, scalar, storefront_db};
use snap2dsql::error::{Error, ErrorClass};
use snap2dsql::load::format::LoadFormat;
use snap2dsql::load::{ChunkOutcome, LoadContext, LoadOptions};
use snap2dsql::migrate;
use snap2dsql::post_load::{self, PostLoadOptions, jobs::JobState};
use snap2dsql::target::{Target, TargetOptions};
use snap2dsql_tests::standin::{
    self, BinaryCopy, FailedJobStatus, Rate, Standin, WaitForJobResult,
};
use snap2dsql_tests::{connect, db_name};
use std::sync::Arc;
use std::time::Duration;

/// A stand-in with DSQL's defaults adjusted by `f`, shared with the tasks that turn its knobs.
async fn start(f: impl FnOnce(&mut standin::Config)) -> Arc<Standin> {
    Arc::new(standin::start_with(f).await)
}

/// The stand-in's URL of the upstream database behind `direct`.
fn through(standin: &Standin, direct: &str) -> String {
    standin.url(db_name(direct))
}

/// A storefront (`customers` customers, `orders` orders), exported and planned, with its target
/// tables and ledger created through the stand-in: (fixture, target through the stand-in).
async fn storefront(
    standin: &Standin,
    prefix: &str,
    customers: u32,
    orders: u32,
    target_options: TargetOptions,
) -> (Fixture, Target) {
    let direct = storefront_db(prefix, customers, orders);
    let f = Fixture::new(&direct, None, 10_000, 1_000).await;
    let target = Target::parse_with(&through(standin, &direct), target_options)
        .await
        .unwrap();
    migrate::prepare_target(&target, &f.mapping, true)
        .await
        .unwrap();
    (f, target)
}

/// Chunks of this many rows: several run at once, each with its own writers.
const CHUNK_ROWS: u64 = 500;

/// Loads every chunk of `f` ([`CHUNK_ROWS`] rows each) into `target`.
async fn load(
    f: &Fixture,
    target: &Target,
    options: LoadOptions,
) -> (snap2dsql::Result<Vec<ChunkOutcome>>, LoadContext) {
    load_chunks_of(f, target, options, CHUNK_ROWS).await
}

async fn load_chunks_of(
    f: &Fixture,
    target: &Target,
    options: LoadOptions,
    chunk_rows: u64,
) -> (snap2dsql::Result<Vec<ChunkOutcome>>, LoadContext) {
    let chunks = f.chunks(chunk_rows).await;
    let (ctx, _) = f.ctx(target, options).await;
    let result = migrate::load_chunks(&ctx, &chunks, 2, &|_, _| {}).await;
    (result, ctx)
}

/// The mapping's secondary indexes, sorted.
fn index_names(mapping: &snap2dsql::mapping::Mapping) -> Vec<String> {
    let mut v: Vec<String> = mapping
        .tables
        .iter()
        .flat_map(|t| t.indexes.iter().map(|i| i.name.clone()))
        .collect();
    v.sort();
    v
}

/// `mapping` with a unique index `name` over sales.orders' quantity, whose values repeat: its
/// job ends with DSQL's error.
fn with_unique_quantity_index(
    mapping: &snap2dsql::mapping::Mapping,
    name: &str,
) -> snap2dsql::mapping::Mapping {
    let mut mapping = mapping.clone();
    let orders = mapping
        .tables
        .iter_mut()
        .find(|t| t.source == "sales.orders")
        .unwrap();
    orders.indexes.push(snap2dsql::mapping::IndexMapping {
        name: name.into(),
        columns: vec!["quantity".into()],
        unique: true,
        reason: None,
    });
    mapping
}

/// The valid indexes of the target schema, read directly from the upstream catalog.
async fn valid_indexes(db: &tokio_postgres::Client) -> Vec<String> {
    db.query(
        "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND i.indisvalid AND NOT i.indisprimary ORDER BY 1",
        &[&TARGET],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_binary_copy_switch_loads_exactly_once_and_reports_the_format() {
    for (switch, want) in [
        (BinaryCopy::Accept, LoadFormat::Binary),
        (BinaryCopy::Refuse, LoadFormat::Text),
        (BinaryCopy::RefuseInTransaction, LoadFormat::Text),
    ] {
        let standin = start(|c| c.unknowns.binary_copy = switch).await;
        let (f, target) =
            storefront(&standin, "dt_copy", 300, 3_000, TargetOptions::default()).await;
        let (outcomes, ctx) = load(&f, &target, options(500, 3)).await;
        let outcomes = outcomes.unwrap_or_else(|e| panic!("{switch:?}: {e}"));
        let written: Vec<_> = outcomes.iter().filter(|o| o.rows_written > 0).collect();
        assert!(
            written.iter().all(|o| o.format == Some(want)),
            "{switch:?}: {outcomes:#?}"
        );
        let report = ctx.format.report(true);
        assert_eq!(report.format, Some(want), "{switch:?}");
        if want == LoadFormat::Binary {
            assert!(report.fallbacks.is_empty(), "{switch:?}: {report:?}");
        } else {
            assert_eq!(report.fallbacks.len(), 1, "{switch:?}: {report:?}");
            let why = &report.fallbacks[0];
            assert!(why.starts_with("binary COPY refused: "), "{why}");
            assert!(
                why.contains("FORMAT binary"),
                "the statement is named: {why}"
            );
            assert!(why.contains("SQLSTATE 0A000"), "{why}");
            assert!(standin.counters().refused_statements > 0);
        }
        let db = connect(&f.url).await;
        assert_exact(&db, f.ns()).await;
        // A second run writes nothing.
        let (again, _) = load(&f, &target, options(500, 3)).await;
        let again = again.unwrap();
        assert_eq!(again.iter().map(|o| o.rows_written).sum::<u64>(), 0);
        assert_exact(&db, f.ns()).await;
        // The post-load indexes, through DSQL's jobs, each one valid once waited for.
        let want_indexes = index_names(&f.mapping);
        assert_eq!(
            migrate::post_load(&target, &f.mapping).await.unwrap(),
            want_indexes.len()
        );
        assert_eq!(valid_indexes(&db).await, want_indexes, "{switch:?}");
        assert!(standin.counters().jobs_submitted >= want_indexes.len() as u64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_answered_rollback_by_dsql_is_seen() {
    let standin = start(|_| {}).await;
    let target = Target::parse(&standin.db("dt_rollback")).await.unwrap();
    // DSQL refuses TRUNCATE (0A000); inside BEGIN that aborts the transaction [REC §5.4].
    crate::write_path::commit_answered_rollback(&target, "TRUNCATE t", "0A000").await;
}

/// Loads `f` while `fault` acts on the stand-in, then checks the target holds exactly the
/// source; returns the chunk outcomes.
async fn exact_despite<Fut>(
    standin: &Arc<Standin>,
    f: &Fixture,
    target: &Target,
    options: LoadOptions,
    fault: impl FnOnce(Arc<Standin>) -> Fut,
) -> Vec<ChunkOutcome>
where
    Fut: Future<Output = ()> + Send + 'static,
{
    let faulty = tokio::spawn(fault(standin.clone()));
    let (outcomes, _) = load(f, target, options).await;
    faulty.await.unwrap();
    let outcomes = outcomes.unwrap();
    let db = connect(&f.url).await;
    assert_exact(&db, f.ns()).await;
    outcomes
}

/// Waits until the stand-in counted `n` commits.
async fn commits(standin: &Standin, n: u64) {
    while standin.counters().commits < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_connection_is_detected_within_the_bound_and_retried() {
    let standin = start(|c| c.faults.commit_latency = Duration::from_millis(20)).await;
    let quick = TargetOptions {
        connect_timeout: Duration::from_secs(1),
        ..TargetOptions::default()
    };
    let (f, target) = storefront(&standin, "dt_silent", 300, 3_000, quick).await;
    let bounded = LoadOptions {
        statement_timeout: Duration::from_secs(1),
        commit_timeout: Duration::from_secs(1),
        ..options(100, 2)
    };
    // Silent for good after the first commits, two attempts per batch: the load stops on the
    // bound, naming it, instead of hanging.
    let handle = standin.clone();
    let silencer = {
        let handle = handle.clone();
        tokio::spawn(async move {
            commits(&handle, 3).await;
            handle.set_silent(true);
        })
    };
    let (result, _) = load(
        &f,
        &target,
        LoadOptions {
            max_attempts: 2,
            ..bounded.clone()
        },
    )
    .await;
    silencer.await.unwrap();
    let err = result.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Connection, "{err}");
    assert!(err.to_string().contains("no answer within 1 s"), "{err}");
    // Silent for three seconds in the middle of a load: retried, exactly once.
    handle.set_silent(false);
    let outcomes = exact_despite(&standin, &f, &target, bounded, |h| async move {
        let before = h.counters().commits;
        commits(&h, before + 3).await;
        h.set_silent(true);
        tokio::time::sleep(Duration::from_secs(3)).await;
        h.set_silent(false);
    })
    .await;
    assert!(
        outcomes.iter().map(|o| o.retries).sum::<u64>() > 0,
        "{outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connection_limits_are_backed_off_until_the_load_completes() {
    let standin = start(|_| {}).await;
    let (f, target) = storefront(&standin, "dt_limits", 300, 3_000, TargetOptions::default()).await;
    // At most one connection (53300) for two seconds.
    let outcomes = exact_despite(&standin, &f, &target, options(100, 4), |h| async move {
        h.set_max_connections(1);
        tokio::time::sleep(Duration::from_secs(2)).await;
        h.set_max_connections(snap2dsql_standin::config::MAX_CONNECTIONS);
    })
    .await;
    assert!(standin.counters().connections_refused_max > 0);
    assert!(outcomes.iter().map(|o| o.retries).sum::<u64>() > 0);
    // One new connection a second (53400) while writers replace theirs every second.
    let db = connect(&f.url).await;
    reset_target(&db).await;
    let young = LoadOptions {
        connection_max_age: Duration::from_secs(1),
        ..options(50, 4)
    };
    standin.set_commit_latency(Duration::from_millis(50));
    exact_despite(&standin, &f, &target, young, |h| async move {
        h.set_connection_rate(Some(Rate {
            per_second: 1,
            burst: 1,
        }));
        tokio::time::sleep(Duration::from_secs(4)).await;
        h.set_connection_rate(Some(snap2dsql_standin::config::CONNECTION_RATE));
    })
    .await;
    assert!(standin.counters().connections_refused_rate > 0);
}

/// Empties the target tables and the ledger (directly upstream: DSQL has no TRUNCATE).
async fn reset_target(db: &tokio_postgres::Client) {
    db.batch_execute(&format!(
        "TRUNCATE {TARGET}.customers, {TARGET}.orders, snap2dsql.ledger"
    ))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_closed_at_their_age_conflicts_and_drops_are_retried_exactly() {
    let standin = start(|c| c.faults.commit_latency = Duration::from_millis(30)).await;
    let (f, target) = storefront(&standin, "dt_age", 300, 3_000, TargetOptions::default()).await;
    let db = connect(&f.url).await;
    // DSQL closes connections at their age (here 1 s, 57P01 after the transaction), in the
    // middle of a chunk's writing: one chunk per table, 30 batches per writer at >= 30 ms each.
    standin.set_max_connection_age(Duration::from_secs(1));
    let (outcomes, _) = load_chunks_of(&f, &target, options(50, 2), 100_000).await;
    outcomes.unwrap();
    assert_exact(&db, f.ns()).await;
    assert!(standin.counters().connections_closed_age > 0);
    standin.set_max_connection_age(snap2dsql_standin::config::MAX_CONNECTION_AGE);
    // 30% of commits conflict (40001 OC000).
    reset_target(&db).await;
    standin.set_conflict_fraction(0.3);
    let outcomes = exact_despite(&standin, &f, &target, options(100, 3), |_| async {}).await;
    standin.set_conflict_fraction(0.0);
    assert!(standin.counters().injected_conflicts > 0);
    assert!(outcomes.iter().map(|o| o.retries).sum::<u64>() > 0);
    // Every connection dropped, mid-transaction, every 100-300 ms.
    reset_target(&db).await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    exact_despite(&standin, &f, &target, options(100, 3), |h| async move {
        let mut n = 0u64;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) && n < 10 {
            tokio::time::sleep(Duration::from_millis(100 + 50 * (n % 5))).await;
            h.drop_all_connections();
            n += 1;
        }
    })
    .await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(standin.counters().connections_dropped > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn post_load_jobs_are_submitted_polled_waited_and_adopted_on_a_rerun() {
    for (result, failed_status) in [
        (WaitForJobResult::Row, FailedJobStatus::Completed),
        (WaitForJobResult::TagOnly, FailedJobStatus::Failed),
    ] {
        let standin = start(|c| {
            c.unknowns.wait_for_job_result = result;
            c.unknowns.failed_job_status = failed_status;
            c.unknowns.min_job_duration = Duration::from_secs(2);
        })
        .await;
        let (f, target) =
            storefront(&standin, "dt_jobs", 100, 1_000, TargetOptions::default()).await;
        load(&f, &target, options(500, 2)).await.0.unwrap();
        let opts = PostLoadOptions {
            poll_interval: Duration::from_millis(200),
            ..PostLoadOptions::default()
        };
        let waves = post_load::waves(&f.mapping);
        let first = post_load::submit(&target, &waves[0], &opts).await.unwrap();
        assert_eq!(first.jobs.len(), waves[0].len(), "{result:?}");
        // Not finished yet (each job takes at least 2 s): polled without waiting.
        let states = post_load::poll(&target, &first.jobs).await.unwrap();
        assert!(
            states.iter().all(|s| matches!(s, JobState::Pending { .. })),
            "{states:?}"
        );
        // Run again while they build: the running jobs are adopted, none submitted twice.
        let submitted = standin.counters().jobs_submitted;
        let again = post_load::submit(&target, &waves[0], &opts).await.unwrap();
        assert_eq!(again.jobs, first.jobs, "{result:?}");
        assert_eq!(standin.counters().jobs_submitted, submitted);
        for job in &first.jobs {
            post_load::wait(&target, job, &opts).await.unwrap();
        }
        let states = post_load::poll(&target, &first.jobs).await.unwrap();
        assert!(
            states.iter().all(|s| *s == JobState::Succeeded),
            "{states:?}"
        );
        // The whole post-load, the first wave included again (its indexes exist: done).
        let names = index_names(&f.mapping);
        assert_eq!(
            migrate::post_load(&target, &f.mapping).await.unwrap(),
            names.len()
        );
        let db = connect(&f.url).await;
        assert_eq!(valid_indexes(&db).await, names, "{result:?}");

        // A unique index over duplicate values: the job ends with DSQL's error, named.
        let mapping = with_unique_quantity_index(&f.mapping, "orders_quantity_uq");
        let err = migrate::post_load(&target, &mapping).await.unwrap_err();
        match &err {
            Error::JobFailed {
                what,
                status,
                details,
                ..
            } => {
                assert!(what.starts_with("index orders_quantity_uq on "), "{err}");
                assert_eq!(
                    status,
                    if failed_status == FailedJobStatus::Completed {
                        "completed"
                    } else {
                        "failed"
                    }
                );
                assert!(details.contains("orders_quantity_uq"), "{err}");
            }
            other => panic!("expected a failed job, got {other:?}"),
        }
        assert!(err.to_string().contains("DSQL job "), "{err}");
    }
}

/// Polls `progress` until every wave is built; returns it and the polls made.
async fn poll_until_done(
    mut progress: post_load::Progress,
    target: &Target,
    mapping: &snap2dsql::mapping::Mapping,
) -> Result<(post_load::Progress, usize), Error> {
    let opts = PostLoadOptions::default();
    let mut polls = 0;
    while !progress.done {
        assert!(
            polls < 200,
            "still running after {polls} polls: {progress:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        progress = progress.poll(target, mapping, &opts).await?;
        polls += 1;
    }
    Ok((progress, polls))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn post_load_progress_builds_wave_by_wave_without_waiting_and_names_a_failed_job() {
    let standin = start(|c| c.unknowns.min_job_duration = Duration::from_secs(1)).await;
    let (f, target) = storefront(
        &standin,
        "dt_progress",
        100,
        1_000,
        TargetOptions::default(),
    )
    .await;
    load(&f, &target, options(500, 2)).await.0.unwrap();
    let opts = PostLoadOptions::default();
    let waves = post_load::waves(&f.mapping);
    // The first wave submitted, nothing waited for: its jobs take at least 1 s.
    let started = post_load::Progress::start(&target, &f.mapping, &opts)
        .await
        .unwrap();
    assert_eq!(
        (started.wave, started.waves, started.done),
        (0, waves.len(), false)
    );
    assert_eq!(started.jobs.len(), waves[0].len());
    assert_eq!(started.running.len(), started.jobs.len());
    let (done, polls) = poll_until_done(started, &target, &f.mapping).await.unwrap();
    assert!(
        polls >= waves.len(),
        "{polls} polls for {} waves",
        waves.len()
    );
    assert_eq!((done.wave, done.running.len()), (waves.len(), 0));
    let db = connect(&f.url).await;
    assert_eq!(valid_indexes(&db).await, index_names(&f.mapping));
    // The waiting form counts the same statements (everything exists now: all done at once).
    assert_eq!(
        migrate::post_load(&target, &f.mapping).await.unwrap(),
        done.statements
    );

    // A unique index over duplicate values: a poll fails naming it, with DSQL's details.
    let mapping = with_unique_quantity_index(&f.mapping, "orders_progress_uq");
    let started = post_load::Progress::start(&target, &mapping, &opts)
        .await
        .unwrap();
    match poll_until_done(started, &target, &mapping).await {
        Err(Error::JobFailed { what, details, .. }) => {
            assert!(what.starts_with("index orders_progress_uq on "), "{what}");
            assert!(details.contains("orders_progress_uq"), "{details}");
        }
        other => panic!("expected a failed job, got {other:?}"),
    }
}

/// Runs the CLI; panics with its output unless it exits 0. Returns its stdout.
fn snap2dsql(args: &[&str]) -> String {
    let out = std::process::Command::new(crate::load::cli())
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "snap2dsql {}: {stdout}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plan_run_verify_end_to_end_under_each_switch() {
    // The storefront, a table of every type and bigint identities with a foreign key, in one
    // source database.
    let source = storefront_db("dt_e2e", 300, 3_000);
    snap2dsql_tests::pg().psql(
        db_name(&source),
        &format!("{}{}", crate::write_path::KINDS, crate::write_path::TICKETS),
    );
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    let plan = dir.path().join("plan");
    let (export_s, plan_s) = (export.display().to_string(), plan.display().to_string());
    snap2dsql(&["local-export", "--source", &source, "--out", &export_s]);
    snap2dsql(&[
        "plan",
        "--export",
        &export_s,
        "--source-schema",
        &source,
        "--out",
        &plan_s,
    ]);
    let mapping_path = plan.join("mapping.toml");
    let mut mapping = snap2dsql::mapping::Mapping::load(&mapping_path).unwrap();
    crate::write_path::tickets_as_identities(&mut mapping);
    mapping.save(&mapping_path).unwrap();
    let mapping_s = mapping_path.display().to_string();
    let src = connect(&source).await;
    let next_ticket = scalar(&src, "SELECT max(id) + 1 FROM public.tickets").await;
    for (case, want) in [
        ("accept", LoadFormat::Binary),
        ("refuse", LoadFormat::Text),
        ("refuse-in-transaction", LoadFormat::Text),
    ] {
        let standin = start(|c| {
            c.unknowns.binary_copy = case.parse().unwrap();
            match case {
                "accept" => {}
                "refuse" => {
                    c.unknowns.wait_for_job_result = WaitForJobResult::TagOnly;
                    c.unknowns.copy_rows_count = false;
                    c.unknowns.min_job_duration = Duration::from_secs(1);
                }
                _ => {
                    c.unknowns.failed_job_status = FailedJobStatus::Failed;
                    c.unknowns.reads_count_as_dml = true;
                    c.faults.commit_latency = Duration::from_millis(10);
                    c.faults.inject_conflicts = 0.1;
                }
            }
        })
        .await;
        let target = standin.db("dt_e2e_target");
        let report = dir.path().join(format!("{case}.json"));
        let report_s = report.display().to_string();
        let inputs = [
            "--export",
            export_s.as_str(),
            "--mapping",
            &mapping_s,
            "--target",
            &target,
        ];
        let run = [
            &["run"],
            &inputs[..],
            &["--create-tables", "--report", &report_s],
        ]
        .concat();
        let stdout = snap2dsql(&run);
        assert!(
            stdout.contains(&format!("rows sent as {}", want.describe())),
            "{case}: {stdout}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(json["ok"], true, "{case}: {json}");
        assert_eq!(json["load_format"]["format"], want.name(), "{case}");
        assert_eq!(
            json["load_format"]["fallbacks"].as_array().unwrap().len(),
            usize::from(want != LoadFormat::Binary),
            "{case}: {json}"
        );
        snap2dsql(&[&["verify"], &inputs[..]].concat());
        // Indexes valid, foreign keys validated, identities restarted: read upstream.
        let db = connect(&standin.direct_url(&target)).await;
        let invalid = scalar(
            &db,
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE c.relnamespace IN ('sales'::regnamespace, 'public'::regnamespace) AND NOT i.indisvalid",
        )
        .await;
        assert_eq!(invalid, 0, "{case}");
        let fks = db
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE convalidated) FROM pg_constraint
                 WHERE contype = 'f' AND connamespace IN ('sales'::regnamespace, 'public'::regnamespace)",
                &[],
            )
            .await
            .unwrap();
        let (all, validated): (i64, i64) = (fks.get(0), fks.get(1));
        assert_eq!(
            (all, validated),
            (2, 2),
            "{case}: foreign keys (all, validated)"
        );
        let next = scalar(
            &db,
            "INSERT INTO public.tickets (note) VALUES ('new') RETURNING id",
        )
        .await;
        assert_eq!(
            next, next_ticket,
            "{case}: the identity continues after the source's"
        );
        db.batch_execute("DELETE FROM public.tickets WHERE note = 'new'")
            .await
            .unwrap();
        // Running again: nothing written, everything still verifies.
        snap2dsql(&run);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let written: u64 = json["tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["rows_written"].as_u64().unwrap())
            .sum();
        assert_eq!((json["ok"].as_bool(), written), (Some(true), 0), "{case}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_statement_dsql_refuses_is_named_with_dsqls_rule() {
    let standin = start(|_| {}).await;
    let direct = storefront_db("dt_refused", 20, 100);
    let mut f = Fixture::new(&direct, None, 10_000, 1_000).await;
    // A hand-edited mapping that skipped validation: an integer identity column, which DSQL
    // refuses (identities are bigint) [REC §8].
    let customers = f
        .mapping
        .tables
        .iter_mut()
        .find(|t| t.source == "sales.customers")
        .unwrap();
    let col = customers
        .columns
        .iter_mut()
        .find(|c| c.name == "id")
        .unwrap();
    col.keep_old = None;
    col.target_type = snap2dsql::types::PgType::Integer;
    col.rewrite = snap2dsql::mapping::Rewrite::None;
    col.identity = true;
    let target = Target::parse(&through(&standin, &direct)).await.unwrap();
    let err = migrate::prepare_target(&target, &f.mapping, true)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("create table sales_dsql.customers"),
        "{text}"
    );
    assert!(
        text.contains(": statement `CREATE TABLE IF NOT EXISTS \"sales_dsql\".\"customers\""),
        "{text}"
    );
    assert!(
        text.ends_with(
            "server answered SQLSTATE 0A000: datatype integer not supported, identity column type must be bigint"
        ),
        "{text}"
    );
    assert_eq!(err.class(), ErrorClass::Fatal);
}
