//! Conformance: every probe of dsql-recorded.md (sections 2-10), transcribed in
//! `tests/probes/*.toml`, run through the stand-in against a real PostgreSQL; each answer must
//! be the one the real cluster gave (SQLSTATE and message, or tag, columns and rows).
//!
//! One test per probe group. Each group gets its own stand-in and database, runs the record's
//! setup statements through the stand-in (a real cluster accepted them, so must the stand-in),
//! then its probes in order on one connection, with a ROLLBACK after each as the recorder sent.
//! Steps use the extended protocol (the recorder's pgx) unless the group or probe says simple.

mod common;

use common::{Obs, Probe, database, is_job_id};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

#[derive(Deserialize)]
struct Setup {
    setup: Vec<String>,
}

#[derive(Deserialize)]
struct Group {
    group: String,
    protocol: Option<String>,
    min_job_duration_ms: Option<u64>,
    #[serde(default)]
    setup: Vec<String>,
    probe: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    source: String,
    steps: Vec<String>,
    protocol: Option<String>,
    /// Text parameters per step index.
    #[serde(default)]
    params: HashMap<String, Vec<String>>,
    expect: Vec<Expect>,
}

#[derive(Deserialize, Debug, Default)]
struct Expect {
    tag: Option<String>,
    columns: Option<Vec<String>>,
    rows: Option<Vec<Vec<String>>>,
    code: Option<String>,
    message: Option<String>,
    #[serde(default)]
    job_id: bool,
    results: Option<Vec<Expect>>,
}

fn read(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/probes")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Differences between one answer and its expectation (empty: it matches).
fn compare(got: &Obs, want: &Expect, db: &str) -> Vec<String> {
    let mut out = Vec::new();
    match (got, &want.code) {
        (Obs::Error { code, message }, Some(want_code)) => {
            if code != want_code {
                out.push(format!("SQLSTATE {code}, expected {want_code}"));
            }
            if let Some(m) = &want.message
                && m != message
            {
                out.push(format!("message {message:?}, expected {m:?}"));
            }
        }
        (Obs::Error { code, message }, None) => {
            out.push(format!("error {code} {message:?}, expected success"));
        }
        (Obs::Ok { tag, .. }, Some(want_code)) => {
            out.push(format!("success {tag:?}, expected error {want_code}"));
        }
        (Obs::Ok { tag, columns, rows }, None) => {
            if let Some(t) = &want.tag
                && t != tag
            {
                out.push(format!("tag {tag:?}, expected {t:?}"));
            }
            if let Some(c) = &want.columns
                && c != columns
            {
                out.push(format!("columns {columns:?}, expected {c:?}"));
            }
            if let Some(r) = &want.rows {
                let got_rows: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .map(|v| v.clone().unwrap_or_else(|| "NULL".into()))
                            .collect()
                    })
                    .collect();
                let want_rows: Vec<Vec<String>> = r
                    .iter()
                    .map(|r| r.iter().map(|v| v.replace("${db}", db)).collect())
                    .collect();
                if got_rows != want_rows {
                    out.push(format!("rows {got_rows:?}, expected {want_rows:?}"));
                }
            }
            if want.job_id && !got.value().is_some_and(is_job_id) {
                out.push(format!(
                    "job id {:?} is not 26 base32 characters",
                    got.value()
                ));
            }
        }
    }
    out
}

/// Compares the answers of one simple query.
fn compare_simple(got: &[Obs], want: &Expect, db: &str) -> Vec<String> {
    if let Some(results) = &want.results {
        if got.len() != results.len() {
            return vec![format!(
                "{} results {got:?}, expected {}",
                got.len(),
                results.len()
            )];
        }
        return got
            .iter()
            .zip(results)
            .flat_map(|(g, w)| compare(g, w, db))
            .collect();
    }
    match got.last() {
        Some(last) => compare(last, want, db),
        None => vec!["no answer".into()],
    }
}

async fn run(file: &str) {
    let setup: Setup = toml::from_str(&read("setup.toml")).expect("setup.toml");
    let group: Group = toml::from_str(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let standin = snap2dsql_tests::standin::start_with(|c| {
        if let Some(ms) = group.min_job_duration_ms {
            c.unknowns.min_job_duration = Duration::from_millis(ms);
        }
    })
    .await;
    let db = database(&format!("probe_{}", group.group));
    let mut p = Probe::connect(standin.port(), &db).await;
    for sql in setup.setup.iter().chain(&group.setup) {
        let got = p.simple(sql).await;
        assert!(
            got.iter().all(|o| matches!(o, Obs::Ok { .. })),
            "setup {sql:?} was refused: {got:?}"
        );
    }
    let mut failures = Vec::new();
    for case in &group.probe {
        let mut job = String::new();
        let simple = case
            .protocol
            .as_deref()
            .or(group.protocol.as_deref())
            .is_some_and(|p| p == "simple");
        assert_eq!(
            case.steps.len(),
            case.expect.len(),
            "{}: steps and expectations",
            case.name
        );
        for (i, (step, want)) in case.steps.iter().zip(&case.expect).enumerate() {
            let sql = step.replace("${job}", &job).replace("${db}", &db);
            let params: Vec<String> = case
                .params
                .get(&i.to_string())
                .map(|ps| ps.iter().map(|v| v.replace("${job}", &job)).collect())
                .unwrap_or_default();
            let got = if simple {
                p.simple(&sql).await
            } else {
                let params: Vec<Option<&str>> = params.iter().map(|s| Some(s.as_str())).collect();
                vec![p.extended_with(&sql, &params).await]
            };
            let diffs = if simple {
                compare_simple(&got, want, &db)
            } else {
                compare(&got[0], want, &db)
            };
            for d in diffs {
                failures.push(format!(
                    "{} [{}] step {} {sql:?}: {d}",
                    case.name,
                    case.source,
                    i + 1
                ));
            }
            for o in &got {
                if let Obs::Ok { columns, .. } = o
                    && columns.first().is_some_and(|c| c == "job_id")
                    && let Some(v) = o.value()
                {
                    job = v.to_owned();
                }
            }
        }
        p.extended("ROLLBACK").await;
    }
    println!(
        "probe group {}: {} probes, {} matched",
        group.group,
        group.probe.len(),
        group.probe.len()
            - failures
                .iter()
                .map(|f| f.split(' ').next().unwrap_or(""))
                .collect::<std::collections::HashSet<_>>()
                .len()
    );
    assert!(
        failures.is_empty(),
        "{} answers differ from the record:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn sessions() {
    run("sessions.toml").await;
}

#[tokio::test]
async fn ddl() {
    run("ddl.toml").await;
}

#[tokio::test]
async fn index() {
    run("index.toml").await;
}

#[tokio::test]
async fn alter() {
    run("alter.toml").await;
}

#[tokio::test]
async fn transaction() {
    run("transaction.toml").await;
}

#[tokio::test]
async fn occ() {
    run("occ.toml").await;
}

#[tokio::test]
async fn functions() {
    run("functions.toml").await;
}

#[tokio::test]
async fn types() {
    run("types.toml").await;
}

#[tokio::test]
async fn dml() {
    run("dml.toml").await;
}

#[tokio::test]
async fn environment() {
    run("environment.toml").await;
}

#[tokio::test]
async fn multi_statement() {
    run("multi_statement.toml").await;
}
