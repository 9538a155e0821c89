//! Binary COPY throughput directly into PostgreSQL and through the DSQL stand-in, same data,
//! same transactions: what the proxy costs. Figures only, nothing asserted.
//!
//! ```sh
//! cargo run --release -p snap2dsql-standin --example copy_throughput [-- ROWS [CONNECTIONS ...]]
//! ```
//!
//! Each transaction is the loader's: BEGIN, one ledger INSERT, a binary COPY of 2,500 rows
//! (bigint key, ~40-byte text, float8), COMMIT. The payloads are encoded before the clock starts.
//! Every connection count runs against a fresh pair of databases on the harness's PostgreSQL.

use bytes::{BufMut, Bytes, BytesMut};
use futures::SinkExt;
use snap2dsql_tests::{connect, standin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Rows a transaction: the loader's default batch.
const BATCH: usize = 2_500;

fn encode(first: i64, rows: usize) -> Bytes {
    let mut b = BytesMut::with_capacity(rows * 72 + 32);
    b.put_slice(b"PGCOPY\n\xff\r\n\0");
    b.put_i32(0);
    b.put_i32(0);
    for i in first..first + rows as i64 {
        b.put_i16(3);
        b.put_i32(8);
        b.put_i64(i);
        let v = format!("customer {i:>12} of the storefront");
        b.put_i32(v.len() as i32);
        b.put_slice(v.as_bytes());
        b.put_i32(8);
        b.put_f64(i as f64 * 0.5);
    }
    b.put_i16(-1);
    b.freeze()
}

async fn load(url: &str, batches: Arc<Vec<Bytes>>, connections: usize) -> f64 {
    let setup = connect(url).await;
    setup
        .batch_execute("CREATE TABLE ledger (batch bigint PRIMARY KEY)")
        .await
        .unwrap();
    setup
        .batch_execute("CREATE TABLE t (id bigint PRIMARY KEY, v text, n float8)")
        .await
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (url, batches, next) = (url.to_owned(), batches.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = connect(&url).await;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(data) = batches.get(i) else { break };
                let tx = c.transaction().await.unwrap();
                tx.execute("INSERT INTO ledger (batch) VALUES ($1)", &[&(i as i64)])
                    .await
                    .unwrap();
                let sink = tx
                    .copy_in::<_, Bytes>("COPY t (id, v, n) FROM STDIN (FORMAT binary)")
                    .await
                    .unwrap();
                futures::pin_mut!(sink);
                sink.send(data.clone()).await.unwrap();
                sink.as_mut().finish().await.unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seconds = start.elapsed().as_secs_f64();
    let n: i64 = setup
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n as usize, batches.len() * BATCH, "every row loaded");
    n as f64 / seconds
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().map_or(500_000, |a| a.parse().expect("ROWS"));
    let mut counts: Vec<usize> = args.map(|a| a.parse().expect("CONNECTIONS")).collect();
    if counts.is_empty() {
        counts = vec![1, 8, 64];
    }
    let batches: Arc<Vec<Bytes>> = Arc::new(
        (0..rows.div_ceil(BATCH))
            .map(|b| encode((b * BATCH) as i64, BATCH))
            .collect(),
    );
    let bytes: usize = batches.iter().map(Bytes::len).sum();
    let s = standin::start().await;
    println!(
        "binary COPY of {} rows ({:.1} MiB) in transactions of {BATCH} rows + 1 ledger row",
        batches.len() * BATCH,
        bytes as f64 / (1 << 20) as f64
    );
    println!("connections  direct rows/s  stand-in rows/s  stand-in / direct");
    for c in counts {
        let direct = load(
            &snap2dsql_tests::pg().create_db("bench_direct"),
            batches.clone(),
            c,
        )
        .await;
        let through = load(&s.db("bench_standin"), batches.clone(), c).await;
        println!(
            "{c:>11}  {direct:>13.0}  {through:>15.0}  {:>17.2}",
            through / direct
        );
    }
    let k = s.counters();
    println!(
        "stand-in: {} commits, {} COPY rows, {} connections",
        k.commits, k.copy_rows, k.connections_accepted
    );
}
