//! Optimistic concurrency through the stand-in: two transactions writing the same row never
//! wait; the conflicting one fails at COMMIT with 40001 `(OC000)` [REC §6]. The recorded
//! two-session cases (golden occ_conflict.json) run with their own steps, A and B alternating;
//! which side loses is a race on DSQL, so the check is that exactly one does (or none, for the
//! cases the record shows committing both). Then the loader's shapes: INSERT/INSERT of one key,
//! and two writers racing on one ledger row + COPY.

mod common;

use common::{Obs, Probe, database};
use snap2dsql_tests::{connect, standin};

const CONFLICT: &str = "change conflicts with another transaction (OC000)";

fn is_conflict(o: &Obs) -> bool {
    matches!(o, Obs::Error { code, message } if code == "40001" && message.contains("(OC000)"))
}

/// A and B run their steps alternately (A1, B1, A2, B2, ...); answers per session.
async fn race(port: u16, db: &str, a: &[&str], b: &[&str]) -> (Vec<Obs>, Vec<Obs>) {
    let mut pa = Probe::connect(port, db).await;
    let mut pb = Probe::connect(port, db).await;
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
    for i in 0..a.len().max(b.len()) {
        if let Some(s) = a.get(i) {
            ra.push(pa.extended(s).await);
        }
        if let Some(s) = b.get(i) {
            rb.push(pb.extended(s).await);
        }
    }
    (ra, rb)
}

/// The setup of dsql-recorded.md's concurrency probes.
async fn conflict_db(port: u16, prefix: &str) -> String {
    let db = database(prefix);
    let mut p = Probe::connect(port, &db).await;
    for sql in [
        "CREATE TABLE baseline_conflict (id uuid PRIMARY KEY, name text NOT NULL)",
        "CREATE TABLE baseline_conflict_child (id uuid PRIMARY KEY, parent_id uuid NOT NULL REFERENCES baseline_conflict(id))",
        "INSERT INTO baseline_conflict (id, name) VALUES ('00000000-0000-0000-0000-0000000000ab', 'conflict-fk'), ('00000000-0000-0000-0000-0000000000ac', 'conflict-row'), ('00000000-0000-0000-0000-0000000000ad', 'disjoint-a'), ('00000000-0000-0000-0000-0000000000ae', 'disjoint-b'), ('00000000-0000-0000-0000-0000000000af', 'conflict-nonkey')",
        "CREATE TABLE baseline_span (id int PRIMARY KEY, k int NOT NULL, v text)",
        "INSERT INTO baseline_span (id, k, v) VALUES (1, 1, 'a'), (2, 1, 'b'), (3, 1, 'c'), (4, 2, 'other')",
        "CREATE TABLE baseline_fk_action (id uuid PRIMARY KEY, name text NOT NULL)",
        "INSERT INTO baseline_fk_action (id, name) VALUES ('00000000-0000-0000-0000-0000000000c1', 'cascade')",
        "CREATE TABLE baseline_fk_cascade (id uuid PRIMARY KEY, parent_id uuid REFERENCES baseline_fk_action(id) ON DELETE CASCADE, note text)",
        "INSERT INTO baseline_fk_cascade (id, parent_id, note) VALUES ('00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000c1', 'child')",
    ] {
        let got = p.simple(sql).await;
        assert!(matches!(got.last(), Some(Obs::Ok { .. })), "{sql}: {got:?}");
    }
    db
}

struct Case {
    name: &'static str,
    a: [&'static str; 3],
    b: [&'static str; 3],
    /// The statements' tags (A's second, B's second), as the record shows them.
    tags: (&'static str, &'static str),
    conflict: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "occ_write_write",
        a: [
            "BEGIN",
            "UPDATE baseline_conflict SET name = 'ww-a' WHERE id = '00000000-0000-0000-0000-0000000000ac'",
            "COMMIT",
        ],
        b: [
            "BEGIN",
            "UPDATE baseline_conflict SET name = 'ww-b' WHERE id = '00000000-0000-0000-0000-0000000000ac'",
            "COMMIT",
        ],
        tags: ("UPDATE 1", "UPDATE 1"),
        conflict: true,
    },
    Case {
        name: "occ_for_update_vs_write",
        a: [
            "BEGIN",
            "SELECT name FROM baseline_conflict WHERE id = '00000000-0000-0000-0000-0000000000ac' FOR UPDATE",
            "COMMIT",
        ],
        b: [
            "BEGIN",
            "UPDATE baseline_conflict SET name = 'fu-b' WHERE id = '00000000-0000-0000-0000-0000000000ac'",
            "COMMIT",
        ],
        tags: ("SELECT 1", "UPDATE 1"),
        conflict: true,
    },
    Case {
        name: "occ_for_key_share_vs_delete",
        a: [
            "BEGIN",
            "SELECT name FROM baseline_conflict WHERE id = '00000000-0000-0000-0000-0000000000ac' FOR KEY SHARE",
            "COMMIT",
        ],
        b: [
            "BEGIN",
            "DELETE FROM baseline_conflict WHERE id = '00000000-0000-0000-0000-0000000000ac'",
            "COMMIT",
        ],
        tags: ("SELECT 1", "DELETE 1"),
        conflict: true,
    },
    Case {
        name: "occ_fk_delete_insert",
        a: [
            "BEGIN",
            "DELETE FROM baseline_conflict WHERE id = '00000000-0000-0000-0000-0000000000ab'",
            "COMMIT",
        ],
        b: [
            "BEGIN",
            "INSERT INTO baseline_conflict_child (id, parent_id) VALUES ('00000000-0000-0000-0000-0000000000b0', '00000000-0000-0000-0000-0000000000ab')",
            "COMMIT",
        ],
        tags: ("DELETE 1", "INSERT 0 1"),
        conflict: true,
    },
    Case {
        name: "occ_fk_nonkey_update",
        a: [
            "BEGIN",
            "UPDATE baseline_conflict SET name = 'nk' WHERE id = '00000000-0000-0000-0000-0000000000af'",
            "COMMIT",
        ],
        b: [
            "BEGIN",
            "INSERT INTO baseline_conflict_child (id, parent_id) VALUES ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000af')",
            "COMMIT",
        ],
        tags: ("UPDATE 1", "INSERT 0 1"),
        conflict: false,
    },
    Case {
        name: "occ_disjoint_writes",
        a: [
            "BEGIN",
            "UPDATE baseline_conflict SET name = 'da' WHERE id = '00000000-0000-0000-0000-0000000000ad'",
            "COMMIT",
        ],
        b: [
            "BEGIN",
            "UPDATE baseline_conflict SET name = 'db' WHERE id = '00000000-0000-0000-0000-0000000000ae'",
            "COMMIT",
        ],
        tags: ("UPDATE 1", "UPDATE 1"),
        conflict: false,
    },
    Case {
        name: "occ_multirow_predicate",
        a: [
            "BEGIN",
            "UPDATE baseline_span SET v = 'a2' WHERE k = 1",
            "COMMIT",
        ],
        b: [
            "BEGIN",
            "UPDATE baseline_span SET v = 'b2' WHERE k = 1",
            "COMMIT",
        ],
        tags: ("UPDATE 3", "UPDATE 3"),
        conflict: true,
    },
    Case {
        name: "occ_fk_cascade_vs_child_write",
        a: [
            "BEGIN",
            "DELETE FROM baseline_fk_action WHERE id = '00000000-0000-0000-0000-0000000000c1'",
            "COMMIT",
        ],
        b: [
            "BEGIN",
            "UPDATE baseline_fk_cascade SET note = 'touched' WHERE id = '00000000-0000-0000-0000-0000000000d1'",
            "COMMIT",
        ],
        tags: ("DELETE 1", "UPDATE 1"),
        conflict: true,
    },
];

#[tokio::test]
async fn the_recorded_two_session_cases() {
    let s = standin::start().await;
    let mut failures = Vec::new();
    for case in CASES {
        let db = conflict_db(s.port(), case.name).await;
        let (a, b) = race(s.port(), &db, &case.a, &case.b).await;
        let got_tags = (a[1].tag().unwrap_or("error"), b[1].tag().unwrap_or("error"));
        if got_tags != case.tags {
            failures.push(format!(
                "{}: statements {got_tags:?}, expected {:?}",
                case.name, case.tags
            ));
        }
        let losers = [&a[2], &b[2]].iter().filter(|o| is_conflict(o)).count();
        let winners = [&a[2], &b[2]]
            .iter()
            .filter(|o| o.tag() == Some("COMMIT"))
            .count();
        let expected = if case.conflict { (1, 1) } else { (0, 2) };
        if (losers, winners) != expected {
            failures.push(format!("{}: commits {:?} / {:?}", case.name, a[2], b[2]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let c = s.counters();
    assert_eq!(c.conflicts, 6, "{c:?}");
}

#[tokio::test]
async fn the_loser_keeps_its_statement_answer_and_its_rows_are_not_kept() {
    let s = standin::start().await;
    let db = conflict_db(s.port(), "occ_loser").await;
    let (a, b) = race(
        s.port(),
        &db,
        &["BEGIN", "UPDATE baseline_conflict SET name = 'first' WHERE id = '00000000-0000-0000-0000-0000000000ac'", "COMMIT"],
        &["BEGIN", "UPDATE baseline_conflict SET name = 'second' WHERE id = '00000000-0000-0000-0000-0000000000ac' RETURNING name", "COMMIT"],
    )
    .await;
    assert_eq!(a[2].tag(), Some("COMMIT"));
    assert_eq!(b[1].tag(), Some("UPDATE 1"));
    assert_eq!(
        b[2],
        Obs::Error {
            code: "40001".into(),
            message: CONFLICT.into()
        }
    );
    let mut p = Probe::connect(s.port(), &db).await;
    let name = p
        .extended(
            "SELECT name FROM baseline_conflict WHERE id = '00000000-0000-0000-0000-0000000000ac'",
        )
        .await;
    assert_eq!(name.value(), Some("first"));
}

#[tokio::test]
async fn two_inserts_of_one_key_the_second_fails_at_commit() {
    let s = standin::start().await;
    let db = database("occ_insert");
    let mut p = Probe::connect(s.port(), &db).await;
    p.simple("CREATE TABLE t (id int PRIMARY KEY, v text)")
        .await;
    let (a, b) = race(
        s.port(),
        &db,
        &["BEGIN", "INSERT INTO t (id, v) VALUES (1, 'a')", "COMMIT"],
        &["BEGIN", "INSERT INTO t (id, v) VALUES (1, 'b')", "COMMIT"],
    )
    .await;
    assert_eq!(
        (a[1].tag(), b[1].tag()),
        (Some("INSERT 0 1"), Some("INSERT 0 1"))
    );
    assert_eq!(a[2].tag(), Some("COMMIT"));
    assert!(is_conflict(&b[2]), "{:?}", b[2]);
    assert_eq!(p.extended("SELECT v FROM t").await.value(), Some("a"));
}

#[tokio::test]
async fn an_autocommit_write_on_a_locked_row_fails_with_a_conflict_at_once() {
    let s = standin::start().await;
    let db = conflict_db(s.port(), "occ_autocommit").await;
    let mut a = Probe::connect(s.port(), &db).await;
    let mut b = Probe::connect(s.port(), &db).await;
    a.extended("BEGIN").await;
    a.extended(
        "UPDATE baseline_conflict SET name = 'a' WHERE id = '00000000-0000-0000-0000-0000000000ac'",
    )
    .await;
    let got = b
        .extended("UPDATE baseline_conflict SET name = 'b' WHERE id = '00000000-0000-0000-0000-0000000000ac'")
        .await;
    assert!(is_conflict(&got), "{got:?}");
    assert_eq!(a.extended("COMMIT").await.tag(), Some("COMMIT"));
}

/// The loader's shape: each writer inserts its ledger row, then COPYs the batch; two writers
/// racing on one batch collide on the ledger's key, and exactly one batch is kept.
#[tokio::test]
async fn two_writers_racing_on_one_batch_keep_it_once() {
    let s = standin::start().await;
    let url = s.db("occ_ledger");
    let mut a = connect(&url).await;
    let mut b = connect(&url).await;
    // One DDL a transaction: two statements [REC §5.3].
    a.batch_execute(
        "CREATE TABLE ledger (chunk text, first_row bigint, PRIMARY KEY (chunk, first_row))",
    )
    .await
    .unwrap();
    a.batch_execute("CREATE TABLE t (id bigint PRIMARY KEY, v text)")
        .await
        .unwrap();
    async fn write(
        c: &mut tokio_postgres::Client,
        commit: bool,
    ) -> Result<Option<tokio_postgres::Transaction<'_>>, tokio_postgres::Error> {
        let tx = c.transaction().await?;
        tx.execute("INSERT INTO ledger VALUES ($1, $2)", &[&"chunk-1", &0i64])
            .await?;
        let sink = tx.copy_in("COPY t (id, v) FROM STDIN").await?;
        futures::pin_mut!(sink);
        let rows: String = (0..100).map(|i| format!("{i}\trow {i}\n")).collect();
        futures::SinkExt::send(&mut sink, bytes::Bytes::from(rows)).await?;
        assert_eq!(sink.finish().await?, 100);
        if commit {
            tx.commit().await?;
            Ok(None)
        } else {
            Ok(Some(tx))
        }
    }
    // A is in flight (written, not committed) when B writes the same batch.
    let ta = write(&mut a, false).await.unwrap().unwrap();
    let b_result = write(&mut b, true).await;
    ta.commit().await.unwrap();
    let Err(e) = b_result else {
        panic!("the second writer's commit did not conflict");
    };
    let d = e.as_db_error().expect("a database error");
    assert_eq!(d.code().code(), "40001");
    assert!(d.message().contains("(OC000)"));
    let direct = connect(&s.direct_url(&url)).await;
    let n: i64 = direct
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    let l: i64 = direct
        .query_one("SELECT count(*) FROM ledger", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!((n, l), (100, 1));
}

#[tokio::test]
async fn injected_conflicts_fail_commits_of_writing_transactions_only() {
    let s = standin::start().await;
    s.set_conflict_fraction(1.0);
    let db = database("occ_inject");
    let mut p = Probe::connect(s.port(), &db).await;
    p.simple("CREATE TABLE t (id int)").await;
    p.extended("BEGIN").await;
    p.extended("SELECT 1").await;
    assert_eq!(p.extended("COMMIT").await.tag(), Some("COMMIT"));
    p.extended("BEGIN").await;
    p.extended("INSERT INTO t VALUES (1)").await;
    assert!(is_conflict(&p.extended("COMMIT").await));
    assert_eq!(
        p.extended("SELECT count(*) FROM t").await.value(),
        Some("0")
    );
    s.set_conflict_fraction(0.0);
    p.extended("BEGIN").await;
    p.extended("INSERT INTO t VALUES (1)").await;
    assert_eq!(p.extended("COMMIT").await.tag(), Some("COMMIT"));
    let c = s.counters();
    assert_eq!((c.injected_conflicts, c.commits), (1, 2), "{c:?}");
}
