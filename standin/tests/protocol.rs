//! The protocols through the stand-in with tokio-postgres: extended queries (binary parameters
//! and results, pipelined), simple queries, COPY FROM STDIN in binary, text and CSV (in
//! autocommit and inside a transaction, as the loader does), COPY TO STDOUT, and the binary COPY
//! switch. Every count is read back directly from the upstream, not through the stand-in.

mod common;

use bytes::Bytes;
use common::client_with;
use futures::SinkExt;
use snap2dsql_tests::{connect, standin};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

async fn direct_count(s: &standin::Standin, url: &str, table: &str) -> i64 {
    let direct = connect(&s.direct_url(url)).await;
    direct
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn extended_queries_carry_binary_parameters_and_results_pipelined() {
    let s = standin::start().await;
    let table = "CREATE TABLE t (id uuid PRIMARY KEY, n bigint, f float8, b bytea, j jsonb, \
                 ts timestamptz)";
    let (_, c) = client_with(&s, "proto_ext", &[table]).await;
    let stmt = c
        .prepare("INSERT INTO t VALUES ($1, $2, $3, $4, $5, now()) RETURNING n")
        .await
        .unwrap();
    // Pipelined: every Execute is sent before the first answer is read.
    let futures = (0..20i64).map(|i| {
        let id = uuid::Uuid::from_u128(i as u128 + 1);
        let j = serde_json::json!({ "i": i });
        let stmt = stmt.clone();
        let c = &c;
        async move {
            c.query_one(&stmt, &[&id, &i, &(i as f64 / 2.0), &vec![i as u8; 3], &j])
                .await
                .map(|r| r.get::<_, i64>(0))
        }
    });
    let got: Vec<i64> = futures::future::try_join_all(futures).await.unwrap();
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    let row = c
        .query_one(
            "SELECT sum(n), max(f), (SELECT b FROM t WHERE n = 0), count(j) FROM t WHERE n >= $1",
            &[&0i64],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, rust_decimal_free::Sum>(0).0, 190);
    assert_eq!(row.get::<_, f64>(1), 9.5);
    assert_eq!(row.get::<_, Vec<u8>>(2), vec![0u8; 3]);
    assert_eq!(row.get::<_, i64>(3), 20);
    let simple = c
        .simple_query("SELECT count(*) FROM t; SELECT 'a' AS x")
        .await
        .unwrap();
    let values: Vec<String> = simple
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .collect();
    assert_eq!(values, ["20", "a"]);
}

/// `sum(bigint)` is numeric: read its text form without a decimal crate.
mod rust_decimal_free {
    use tokio_postgres::types::{FromSql, Type};
    pub struct Sum(pub i64);
    impl<'a> FromSql<'a> for Sum {
        fn from_sql(
            _: &Type,
            raw: &'a [u8],
        ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
            // numeric binary: ndigits, weight, sign, dscale, then base-10000 digits.
            let nd = i16::from_be_bytes([raw[0], raw[1]]) as usize;
            let weight = i16::from_be_bytes([raw[2], raw[3]]) as i32;
            let mut v: i64 = 0;
            for i in 0..nd {
                let d = i16::from_be_bytes([raw[8 + 2 * i], raw[9 + 2 * i]]) as i64;
                v += d * 10000i64.pow((weight - i as i32) as u32);
            }
            Ok(Sum(v))
        }
        fn accepts(ty: &Type) -> bool {
            *ty == Type::NUMERIC
        }
    }
}

async fn binary_copy(
    c: &tokio_postgres::Transaction<'_>,
    table: &str,
    from: i64,
    rows: i64,
) -> Result<u64, tokio_postgres::Error> {
    let sink = c
        .copy_in(&format!("COPY {table} (id, v) FROM STDIN (FORMAT binary)"))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::TEXT]);
    futures::pin_mut!(writer);
    for i in from..from + rows {
        writer.as_mut().write(&[&i, &format!("row {i}")]).await?;
    }
    writer.finish().await
}

#[tokio::test]
async fn binary_copy_after_an_insert_in_one_transaction_commits_like_the_loader() {
    let s = standin::start().await;
    let (url, mut c) = client_with(
        &s,
        "proto_copy",
        &[
            "CREATE TABLE ledger (id bigint PRIMARY KEY)",
            "CREATE TABLE t (id bigint PRIMARY KEY, v text)",
        ],
    )
    .await;
    for batch in 0..3i64 {
        let tx = c.transaction().await.unwrap();
        tx.execute("INSERT INTO ledger (id) VALUES ($1)", &[&batch])
            .await
            .unwrap();
        let n = binary_copy(&tx, "t", batch * 2500, 2500).await.unwrap();
        assert_eq!(n, 2500);
        tx.commit().await.unwrap();
    }
    assert_eq!(direct_count(&s, &url, "t").await, 7500);
    assert_eq!(direct_count(&s, &url, "ledger").await, 3);
    let counters = s.counters();
    assert_eq!(counters.copy_rows, 7500);
    assert_eq!(counters.rows_per_transaction_max, 2501);
}

#[tokio::test]
async fn copy_rows_add_to_the_row_cap_and_the_crossing_copy_is_refused() {
    let s = standin::start().await;
    let (url, mut c) = client_with(
        &s,
        "proto_cap",
        &["CREATE TABLE t (id bigint PRIMARY KEY, v text)"],
    )
    .await;
    let tx = c.transaction().await.unwrap();
    tx.execute("INSERT INTO t (id, v) VALUES (-1, 'ledger')", &[])
        .await
        .unwrap();
    let e = binary_copy(&tx, "t", 0, 3000).await.unwrap_err();
    let db = e.as_db_error().expect("a database error");
    assert_eq!(
        (db.code().code(), db.message()),
        ("54000", "transaction row limit exceeded")
    );
    drop(tx);
    // The connection is usable, nothing was kept.
    assert_eq!(direct_count(&s, &url, "t").await, 0);
    let tx = c.transaction().await.unwrap();
    assert_eq!(binary_copy(&tx, "t", 0, 3000).await.unwrap(), 3000);
    tx.commit().await.unwrap();
    assert_eq!(direct_count(&s, &url, "t").await, 3000);
}

#[tokio::test]
async fn text_and_csv_copy_pass_through_and_copy_out_reads_back() {
    let s = standin::start().await;
    let (url, c) = client_with(
        &s,
        "proto_text",
        &["CREATE TABLE t (id int PRIMARY KEY, v text)"],
    )
    .await;
    let sink = c.copy_in("COPY t (id, v) FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(Bytes::from_static(b"1\tone\n2\ttwo\\nlines\n"))
        .await
        .unwrap();
    assert_eq!(sink.finish().await.unwrap(), 2);
    let sink = c
        .copy_in("COPY t (id, v) FROM STDIN (FORMAT csv)")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(Bytes::from_static(b"3,\"three\nlines\"\n4,four\n"))
        .await
        .unwrap();
    assert_eq!(sink.finish().await.unwrap(), 2);
    let out = c
        .copy_out("COPY (SELECT id FROM t ORDER BY id) TO STDOUT")
        .await
        .unwrap();
    let chunks: Vec<Bytes> = futures::TryStreamExt::try_collect(out).await.unwrap();
    assert_eq!(chunks.concat(), b"1\n2\n3\n4\n");
    assert_eq!(direct_count(&s, &url, "t").await, 4);
}

#[tokio::test]
async fn a_copy_failing_upstream_leaves_the_connection_usable() {
    let s = standin::start().await;
    let (_, mut c) = client_with(
        &s,
        "proto_copyfail",
        &[
            "CREATE TABLE t (id bigint PRIMARY KEY, v text)",
            "INSERT INTO t VALUES (5, 'taken')",
        ],
    )
    .await;
    let tx = c.transaction().await.unwrap();
    let e = binary_copy(&tx, "t", 0, 2000).await.unwrap_err();
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("23505"));
    drop(tx);
    let n: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[tokio::test]
async fn the_binary_copy_switch_refuses_at_the_copy_and_keeps_the_connection() {
    let s = standin::start_with(|c| c.unknowns.binary_copy = standin::BinaryCopy::Refuse).await;
    let (url, mut c) = client_with(
        &s,
        "proto_switch",
        &["CREATE TABLE t (id bigint PRIMARY KEY, v text)"],
    )
    .await;
    let tx = c.transaction().await.unwrap();
    let e = binary_copy(&tx, "t", 0, 10).await.unwrap_err();
    let db = e.as_db_error().expect("a database error");
    assert_eq!(db.code().code(), "0A000");
    assert_eq!(db.message(), "COPY with FORMAT binary not supported");
    drop(tx);
    // Text COPY is the fallback and works.
    let sink = c.copy_in("COPY t (id, v) FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(Bytes::from_static(b"1\ta\n")).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 1);

    // Only inside a transaction.
    s.set_binary_copy(standin::BinaryCopy::RefuseInTransaction);
    let tx = c.transaction().await.unwrap();
    assert!(binary_copy(&tx, "t", 10, 10).await.is_err());
    drop(tx);
    let sink = c
        .copy_in("COPY t (id, v) FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::TEXT]);
    futures::pin_mut!(writer);
    writer
        .as_mut()
        .write(&[&20i64, &"autocommit"])
        .await
        .unwrap();
    assert_eq!(writer.finish().await.unwrap(), 1);

    s.set_binary_copy(standin::BinaryCopy::Accept);
    let tx = c.transaction().await.unwrap();
    assert_eq!(binary_copy(&tx, "t", 100, 10).await.unwrap(), 10);
    tx.commit().await.unwrap();
    assert_eq!(direct_count(&s, &url, "t").await, 12);
}
