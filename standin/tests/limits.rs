//! DSQL's per-transaction limits through the stand-in: 10 MiB of writes, the age limit (a
//! statement running when it passes is stopped, an idle transaction's next statement and its
//! COMMIT fail), and commit latency (one session waits, the others do not).

mod common;

use bytes::Bytes;
use common::{Obs, Probe, client_with, copy_until_refused, database, db_error};
use snap2dsql_tests::{connect, standin};
use std::time::Duration;

#[tokio::test]
async fn ten_mib_of_copy_data_in_one_transaction_is_refused_at_the_copy() {
    let s = standin::start().await;
    let (_, mut c) = client_with(
        &s,
        "limit_size",
        &["CREATE TABLE t (id int PRIMARY KEY, v text)"],
    )
    .await;
    // 2,000 rows of 6 KiB: 11.7 MiB, under the row cap, over the size limit.
    let value = "x".repeat(6 * 1024);
    let chunks = (0..20).map(|chunk| {
        let rows: String = (0..100)
            .map(|i| format!("{}\t{value}\n", chunk * 100 + i))
            .collect();
        Bytes::from(rows)
    });
    let tx = c.transaction().await.unwrap();
    let sink = tx.copy_in("COPY t (id, v) FROM STDIN").await.unwrap();
    let e = copy_until_refused(sink, chunks, Duration::ZERO).await;
    assert_eq!(
        db_error(&e),
        (
            "54000".into(),
            "transaction size limit 10mb exceeded".into()
        )
    );
    drop(tx);
    let n: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    // Under the limit (2 MiB in one transaction) it commits.
    let tx = c.transaction().await.unwrap();
    let big = format!("'{}'", "y".repeat(2 << 20));
    tx.batch_execute(&format!("INSERT INTO t VALUES (1, {big})"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(s.counters().bytes_per_transaction_max > 2 << 20);
}

#[tokio::test]
async fn the_size_limit_counts_bind_parameters_across_statements() {
    let s = standin::start().await;
    s.set_max_bytes(100_000);
    let (_, mut c) = client_with(
        &s,
        "limit_params",
        &["CREATE TABLE t (id int PRIMARY KEY, v text)"],
    )
    .await;
    let value = "z".repeat(40_000);
    let tx = c.transaction().await.unwrap();
    tx.execute("INSERT INTO t VALUES ($1, $2)", &[&1i32, &value])
        .await
        .unwrap();
    tx.execute("INSERT INTO t VALUES ($1, $2)", &[&2i32, &value])
        .await
        .unwrap();
    let e = tx
        .execute("INSERT INTO t VALUES ($1, $2)", &[&3i32, &value])
        .await
        .unwrap_err();
    assert_eq!(db_error(&e).0, "54000");
    assert_eq!(s.counters().limit_errors, 1);
}

#[tokio::test]
async fn a_statement_running_when_the_age_limit_passes_is_stopped() {
    let s = standin::start().await;
    s.set_max_transaction_age(Duration::from_secs(1));
    let db = database("limit_age_stmt");
    let mut p = Probe::connect(s.port(), &db).await;
    // In a transaction: the statement is stopped, the transaction is aborted.
    assert_eq!(p.extended("BEGIN").await.tag(), Some("BEGIN"));
    let slow = p.extended("SELECT pg_sleep(30)").await;
    assert_eq!(
        slow,
        Obs::Error {
            code: "54000".into(),
            message: "transaction age limit of 1s exceeded".into()
        }
    );
    assert_eq!(p.extended("SELECT 1").await.code(), Some("25P02"));
    assert_eq!(p.extended("COMMIT").await.tag(), Some("ROLLBACK"));
    // In autocommit: a long read (a scan of a big table) fails the same way.
    let slow = p.simple("SELECT pg_sleep(30)").await;
    assert_eq!(slow.last().and_then(Obs::code), Some("54000"));
    assert_eq!(p.extended("SELECT 1").await.value(), Some("1"));
}

#[tokio::test]
async fn an_idle_transaction_past_its_age_fails_its_next_statement_and_its_commit() {
    let s = standin::start().await;
    s.set_max_transaction_age(Duration::from_millis(500));
    let db = database("limit_age_idle");
    let mut p = Probe::connect(s.port(), &db).await;
    p.simple("CREATE TABLE t (id int)").await;
    assert_eq!(p.extended("BEGIN").await.tag(), Some("BEGIN"));
    assert_eq!(
        p.extended("INSERT INTO t VALUES (1)").await.tag(),
        Some("INSERT 0 1")
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(p.extended("COMMIT").await.code(), Some("54000"));
    // The COMMIT ended the transaction: the session is usable, nothing was kept.
    assert_eq!(
        p.extended("SELECT count(*) FROM t").await.value(),
        Some("0")
    );
    assert_eq!(p.extended("BEGIN").await.tag(), Some("BEGIN"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(p.extended("SELECT 1").await.code(), Some("54000"));
    assert_eq!(p.extended("COMMIT").await.tag(), Some("ROLLBACK"));
}

#[tokio::test]
async fn a_copy_still_streaming_when_the_age_passes_is_stopped() {
    let s = standin::start().await;
    s.set_max_transaction_age(Duration::from_millis(700));
    let (_, mut c) = client_with(&s, "limit_age_copy", &["CREATE TABLE t (id int, v text)"]).await;
    let tx = c.transaction().await.unwrap();
    let sink = tx.copy_in("COPY t (id, v) FROM STDIN").await.unwrap();
    let chunks = (0..40).map(|i| Bytes::from(format!("{i}\tv\n")));
    let e = copy_until_refused(sink, chunks, Duration::from_millis(50)).await;
    assert_eq!(
        db_error(&e),
        (
            "54000".into(),
            "transaction age limit of 0.7s exceeded".into()
        )
    );
}

#[tokio::test]
async fn commit_latency_delays_one_session_and_not_the_others() {
    let s = standin::start().await;
    s.set_commit_latency(Duration::from_secs(3));
    let url = s.db("limit_latency");
    let a = connect(&url).await;
    let b = connect(&url).await;
    a.batch_execute("CREATE TABLE t (id int)").await.unwrap();
    a.batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let commit = tokio::spawn(async move { a.batch_execute("COMMIT").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // While A's COMMIT waits, B runs queries and sees the row not yet committed.
    for _ in 0..5 {
        let n: i64 = b
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0);
    }
    assert!(
        !commit.is_finished(),
        "the commit answered before its latency"
    );
    commit.await.unwrap().unwrap();
    let n: i64 = b
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}
