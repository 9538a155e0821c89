//! Async jobs through the stand-in: CREATE INDEX ASYNC and ALTER TABLE ASYNC .. VALIDATE
//! CONSTRAINT run in the background, `sys.jobs` records them, CALL sys.wait_for_job waits. A
//! failed build ends `completed` with its error in `details` (the record's shape, §3.3) or
//! `failed` under the switch; a wait on it answers false. Every fact is read back directly from
//! the upstream catalog, not through the stand-in.

mod common;

use common::{Obs, Probe, database, probe_with};
use snap2dsql_tests::{connect, pg, standin};

async fn job_row(db: &str, id: &str) -> (String, Option<String>, String) {
    let direct = connect(&pg().url(db)).await;
    let r = direct
        .query_one(
            "SELECT status, details, job_type FROM sys.jobs WHERE job_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

async fn catalog(db: &str, sql: &str) -> Option<String> {
    let direct = connect(&pg().url(db)).await;
    direct
        .query_opt(sql, &[])
        .await
        .unwrap()
        .and_then(|r| r.get::<_, Option<String>>(0))
}

#[tokio::test]
async fn an_index_build_completes_and_the_index_is_valid() {
    let s = standin::start().await;
    let (db, mut p) = probe_with(
        s.port(),
        "jobs_ok",
        &[
            "CREATE TABLE t (id int PRIMARY KEY, v text)",
            "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 2000) g",
        ],
    )
    .await;
    let id = p.job("CREATE INDEX ASYNC t_v_idx ON t (v)").await;
    assert_eq!(p.wait(&id).await.as_deref(), Some("t"));
    assert_eq!(
        job_row(&db, &id).await,
        ("completed".into(), None, "INDEX_BUILD".into())
    );
    assert_eq!(
        catalog(
            &db,
            "SELECT indisvalid::text FROM pg_index WHERE indexrelid = 't_v_idx'::regclass"
        )
        .await,
        Some("true".into())
    );
    // Again: 42P07 without IF NOT EXISTS, a job that completes with it.
    let again = p.extended("CREATE INDEX ASYNC t_v_idx ON t (v)").await;
    assert_eq!(again.code(), Some("42P07"));
    let id = p
        .job("CREATE INDEX ASYNC IF NOT EXISTS t_v_idx ON t (v)")
        .await;
    assert_eq!(p.wait(&id).await.as_deref(), Some("t"));
    assert_eq!(s.counters().jobs_submitted, 2);
}

#[tokio::test]
async fn a_unique_build_over_duplicates_completes_with_its_error_and_leaves_no_index() {
    let s = standin::start().await;
    let (db, mut p) = probe_with(
        s.port(),
        "jobs_dup",
        &[
            "CREATE TABLE t (id int PRIMARY KEY, v text)",
            "INSERT INTO t VALUES (1, 'same'), (2, 'same')",
        ],
    )
    .await;
    let id = p.job("CREATE UNIQUE INDEX ASYNC t_v_uq ON t (v)").await;
    assert_eq!(p.wait(&id).await.as_deref(), Some("f"));
    let (status, details, _) = job_row(&db, &id).await;
    assert_eq!(status, "completed");
    assert!(
        details.as_deref().is_some_and(|d| d.contains("t_v_uq")),
        "{details:?}"
    );
    assert_eq!(
        catalog(&db, "SELECT to_regclass('t_v_uq')::text").await,
        None
    );
    // The duplicate removed, the same statement builds.
    p.simple("DELETE FROM t WHERE id = 2").await;
    let id = p.job("CREATE UNIQUE INDEX ASYNC t_v_uq ON t (v)").await;
    assert_eq!(p.wait(&id).await.as_deref(), Some("t"));
}

#[tokio::test]
async fn under_the_switch_a_failed_build_is_failed() {
    let s = standin::start_with(|c| {
        c.unknowns.failed_job_status = standin::FailedJobStatus::Failed;
    })
    .await;
    let (db, mut p) = probe_with(
        s.port(),
        "jobs_failed",
        &[
            "CREATE TABLE t (id int PRIMARY KEY, v text)",
            "INSERT INTO t VALUES (1, 'same'), (2, 'same')",
        ],
    )
    .await;
    let id = p.job("CREATE UNIQUE INDEX ASYNC t_v_uq ON t (v)").await;
    assert_eq!(p.wait(&id).await.as_deref(), Some("f"));
    assert_eq!(job_row(&db, &id).await.0, "failed");
}

#[tokio::test]
async fn validate_async_runs_in_the_background_and_a_violation_is_the_jobs_error() {
    let s = standin::start().await;
    let (db, mut p) = probe_with(
        s.port(),
        "jobs_validate",
        &[
            "CREATE TABLE parent (id int PRIMARY KEY)",
            "CREATE TABLE child (id int PRIMARY KEY, parent_id int)",
            "INSERT INTO parent VALUES (1)",
            "INSERT INTO child VALUES (1, 1), (2, 99)",
        ],
    )
    .await;
    let added = p
        .simple("ALTER TABLE child ADD CONSTRAINT child_fk FOREIGN KEY (parent_id) REFERENCES parent (id) NOT VALID")
        .await;
    assert_eq!(added.last().and_then(Obs::tag), Some("ALTER TABLE"));
    let job = p
        .extended("ALTER TABLE ASYNC child VALIDATE CONSTRAINT child_fk")
        .await;
    assert_eq!(job.tag(), Some("ALTER TABLE"));
    let id = job.value().expect("a job id").to_owned();
    assert_eq!(p.wait(&id).await.as_deref(), Some("f"));
    let (status, details, job_type) = job_row(&db, &id).await;
    assert_eq!(
        (status.as_str(), job_type.as_str()),
        ("completed", "VALIDATE_CONSTRAINT")
    );
    assert!(details.is_some_and(|d| d.contains("child_fk")));
    assert_eq!(
        catalog(
            &db,
            "SELECT convalidated::text FROM pg_constraint WHERE conname = 'child_fk'"
        )
        .await,
        Some("false".into())
    );
    // Fixed, validated.
    p.simple("DELETE FROM child WHERE id = 2").await;
    let id = p
        .job("ALTER TABLE ASYNC child VALIDATE CONSTRAINT child_fk")
        .await;
    assert_eq!(p.wait(&id).await.as_deref(), Some("t"));
    assert_eq!(
        catalog(
            &db,
            "SELECT convalidated::text FROM pg_constraint WHERE conname = 'child_fk'"
        )
        .await,
        Some("true".into())
    );
}

#[tokio::test]
async fn under_the_switch_wait_for_job_answers_only_its_tag() {
    let s = standin::start_with(|c| {
        c.unknowns.wait_for_job_result = standin::WaitForJobResult::TagOnly;
    })
    .await;
    let (_, mut p) = probe_with(
        s.port(),
        "jobs_tag",
        &["CREATE TABLE t (id int PRIMARY KEY)"],
    )
    .await;
    let id = p.job("CREATE INDEX ASYNC ON t (id)").await;
    assert_eq!(
        p.extended(&format!("CALL sys.wait_for_job('{id}')")).await,
        Obs::Ok {
            tag: "CALL".into(),
            columns: Vec::new(),
            rows: Vec::new()
        }
    );
    let simple = p.simple(&format!("CALL sys.wait_for_job('{id}')")).await;
    assert_eq!(simple.last().and_then(Obs::tag), Some("CALL"));
}

#[tokio::test]
async fn a_job_of_another_stand_in_is_waited_for_through_sys_jobs() {
    let a = standin::start_with(|c| {
        c.unknowns.min_job_duration = std::time::Duration::from_millis(800);
    })
    .await;
    let b = standin::start().await;
    let db = database("jobs_other");
    let mut pa = Probe::connect(a.port(), &db).await;
    let mut pb = Probe::connect(b.port(), &db).await;
    pa.simple("CREATE TABLE t (id int PRIMARY KEY, v text)")
        .await;
    let id = pa.job("CREATE INDEX ASYNC ON t (v)").await;
    assert_eq!(pb.wait(&id).await.as_deref(), Some("t"));
    assert_eq!(job_row(&db, &id).await.0, "completed");
    // A well-formed id of no job.
    let none = pb
        .extended("CALL sys.wait_for_job('aaaaaaaaaaaaaaaaaaaaaaaaaa')")
        .await;
    assert_eq!(none.code(), Some("42704"));
}
