//! Real clients through the stand-in, as subprocesses: psql (simple protocol, `\copy`,
//! `\gset`, multi-statement `-c`, verbose errors) and psycopg 3 (libpq's extended protocol,
//! binary COPY, SQLSTATEs on exceptions), each with and without TLS (verify-full against the
//! stand-in's certificate). psycopg comes from the repo's `.venv` (`make deps`).

use snap2dsql_tests::standin::{self, TestCertificate};
use snap2dsql_tests::{db_name, pg};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn conninfo(port: u16, db: &str, tls: Option<&Path>) -> String {
    let ssl = match tls {
        Some(cert) => format!("sslmode=verify-full sslrootcert={}", cert.display()),
        None => "sslmode=disable".into(),
    };
    format!("host=127.0.0.1 port={port} user=admin dbname={db} {ssl}")
}

fn psql(conn: &str, args: &[&str]) -> Output {
    Command::new(pg().bin_dir.join("psql"))
        .arg(conn)
        .args([
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            "VERBOSITY=verbose",
        ])
        .args(args)
        .output()
        .expect("run psql")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn psql_session(tls: Option<&TestCertificate>) {
    let files = tls.map(|c| c.files.clone());
    let s = standin::start_with(|c| c.tls = files).await;
    let db = db_name(&s.db("client_psql")).to_owned();
    let conn = conninfo(s.port(), &db, tls.map(|c| c.files.cert.as_path()));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("rows.tsv");
    std::fs::write(
        &data,
        (1..=500)
            .map(|i| format!("{i}\trow {i}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let script = dir.path().join("script.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE TABLE t (id int PRIMARY KEY, v text);\n\
             \\copy t (id, v) FROM '{}'\n\
             SELECT count(*) FROM t;\n\
             CREATE INDEX ASYNC t_v_idx ON t (v) \\gset\n\
             CALL sys.wait_for_job(:'job_id');\n\
             BEGIN; INSERT INTO t VALUES (501, 'x'); COMMIT;\n\
             SELECT version();\n",
            data.display()
        ),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking({
        let conn = conn.clone();
        let script = script.clone();
        move || psql(&conn, &["-f", script.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert!(out.status.success(), "psql failed: {}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines, ["500", "t", "PostgreSQL 16"]);
    // A refusal: psql shows DSQL's SQLSTATE and message, and exits 3 (ON_ERROR_STOP).
    let out = tokio::task::spawn_blocking({
        let conn = conn.clone();
        move || psql(&conn, &["-c", "TRUNCATE t"])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("ERROR:  0A000: unsupported statement: Truncate"),
        "{}",
        text(&out.stderr)
    );
    // Two DDL in one -c: one implicit transaction [REC §5.3].
    let out = tokio::task::spawn_blocking(move || {
        psql(
            &conn,
            &["-c", "CREATE TABLE a (id int); CREATE TABLE b (id int)"],
        )
    })
    .await
    .unwrap();
    assert!(
        text(&out.stderr).contains("multiple ddl statements not supported in a transaction"),
        "{}",
        text(&out.stderr)
    );
    assert!(s.counters().copy_rows >= 500);
}

#[tokio::test]
async fn psql_works_through_the_stand_in() {
    psql_session(None).await;
}

#[tokio::test]
async fn psql_works_through_the_stand_in_over_tls() {
    let cert = TestCertificate::new();
    psql_session(Some(&cert)).await;
}

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make deps` (psycopg is installed into .venv)",
        python.display()
    );
    python
}

const PSYCOPG: &str = r#"
import sys, psycopg
conn = psycopg.connect(sys.argv[1])
with conn.cursor() as cur:
    cur.execute("CREATE TABLE t (id bigint PRIMARY KEY, v text)")
    conn.commit()
    cur.execute("INSERT INTO t (id, v) VALUES (%s, %s) RETURNING v", (1, "one"))
    assert cur.fetchone() == ("one",)
    with cur.copy("COPY t (id, v) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "text"])
        for i in range(2, 1001):
            copy.write_row((i, f"row {i}"))
    conn.commit()
    cur.execute("SELECT count(*), max(id) FROM t WHERE id > %s", (0,))
    assert cur.fetchone() == (1000, 1000), "count"
    cur.execute("CREATE INDEX ASYNC t_v_idx ON t (v)")
    job = cur.fetchone()[0]
    conn.commit()
    conn.autocommit = True
    cur.execute("CALL sys.wait_for_job(%s)", (job,))
    assert cur.fetchone() == (True,), "wait_for_job"
    try:
        cur.execute("SET bytea_output = 'hex'")
        raise SystemExit("SET bytea_output was accepted")
    except psycopg.errors.FeatureNotSupported as e:
        assert e.sqlstate == "0A000", e.sqlstate
        assert str(e) == 'setting configuration parameter "bytea_output" not supported', str(e)
    conn.autocommit = False
    try:
        cur.execute("INSERT INTO t SELECT g, 'x' FROM generate_series(2000, 5001) g")
        raise SystemExit("3002 rows were accepted")
    except psycopg.errors.ProgramLimitExceeded as e:
        assert e.sqlstate == "54000"
    conn.rollback()
    cur.execute("SHOW server_version")
    assert cur.fetchone() == ("16.15",)
print("ok")
"#;

async fn psycopg_session(tls: Option<&TestCertificate>) {
    let files = tls.map(|c| c.files.clone());
    let s = standin::start_with(|c| c.tls = files).await;
    let db = db_name(&s.db("client_psycopg")).to_owned();
    let conn = conninfo(s.port(), &db, tls.map(|c| c.files.cert.as_path()));
    let python = python();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args(["-c", PSYCOPG, &conn])
            .output()
            .expect("run python")
    })
    .await
    .unwrap();
    assert!(
        out.status.success() && text(&out.stdout).trim() == "ok",
        "psycopg: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(s.counters().copy_rows >= 999);
}

#[tokio::test]
async fn psycopg_works_through_the_stand_in() {
    psycopg_session(None).await;
}

#[tokio::test]
async fn psycopg_works_through_the_stand_in_over_tls() {
    let cert = TestCertificate::new();
    psycopg_session(Some(&cert)).await;
}

/// A synchronous test (no runtime of its own) runs the stand-in on a runtime of its own and
/// drives a client as a subprocess, as CLI tests do.
#[test]
fn a_stand_in_on_its_own_runtime_serves_a_synchronous_test() {
    let s = standin::Thread::start_with(|c| c.limits.max_rows = 1);
    let db = db_name(&s.db("client_thread")).to_owned();
    let conn = conninfo(s.port(), &db, None);
    let out = psql(&conn, &["-c", "SELECT version()"]);
    assert_eq!(
        text(&out.stdout).trim(),
        "PostgreSQL 16",
        "{}",
        text(&out.stderr)
    );
    let out = psql(&conn, &["-c", "SELECT * FROM generate_series(1, 2)"]);
    assert!(
        out.status.success(),
        "reads do not count: {}",
        text(&out.stderr)
    );
    let out = psql(&conn, &["-c", "CREATE TABLE t (id int)"]);
    assert!(out.status.success());
    let out = psql(&conn, &["-c", "INSERT INTO t VALUES (1), (2)"]);
    assert!(text(&out.stderr).contains("54000"), "{}", text(&out.stderr));
}
