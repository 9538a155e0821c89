//! The ledger: `snap2dsql.ledger` in the target, one row per committed batch, written in the
//! same transaction as the batch's rows.
//!
//! A batch is identified by (migration, chunk, first row). Because the ledger row and the data
//! commit together, the ledger is exactly what the target holds: a rerun of a chunk skips the
//! row ranges the ledger lists and writes the rest, and a second writer racing on the same batch
//! fails on the ledger's primary key (SQLSTATE 23505) instead of doubling rows.
//!
//! Running twice: the DDL uses `IF NOT EXISTS`; reading is read-only.

use crate::error::{Error, Result};

/// Schema and table names of the ledger.
pub const LEDGER_SCHEMA: &str = "snap2dsql";
/// The ledger's primary-key constraint: a violation of it means "already committed".
pub const LEDGER_PKEY: &str = "ledger_pkey";

/// DDL of the ledger, one statement per transaction (DSQL runs DDL one statement at a time).
pub fn ddl() -> [&'static str; 2] {
    [
        "CREATE SCHEMA IF NOT EXISTS snap2dsql",
        "CREATE TABLE IF NOT EXISTS snap2dsql.ledger (
            migration text NOT NULL,
            table_name text NOT NULL,
            chunk text NOT NULL,
            first_row bigint NOT NULL,
            rows integer NOT NULL,
            bytes bigint NOT NULL,
            fingerprint bigint NOT NULL,
            committed_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT ledger_pkey PRIMARY KEY (migration, chunk, first_row)
        )",
    ]
}

/// Creates the ledger if it is missing.
pub async fn ensure(client: &tokio_postgres::Client) -> Result<()> {
    for sql in ddl() {
        if let Err(e) = client.batch_execute(sql).await {
            // A concurrent creator may win the race: that is the outcome we wanted.
            if !e
                .code()
                .is_some_and(|c| crate::ddl::is_already_done(c.code()) || c.code() == "23505")
            {
                return Err(Error::statement(
                    "create the ledger (snap2dsql.ledger)",
                    sql,
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// The SQL that records one batch; run inside the batch's transaction.
pub const INSERT: &str = "INSERT INTO snap2dsql.ledger (migration, table_name, chunk, first_row, rows, bytes, fingerprint) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Row ranges `[first, first + rows)` of `chunk` already committed, sorted.
pub async fn committed_ranges(
    client: &tokio_postgres::Client,
    migration: &str,
    chunk: &str,
) -> Result<Vec<(u64, u64)>> {
    let rows = client
        .query(
            "SELECT first_row, rows FROM snap2dsql.ledger WHERE migration = $1 AND chunk = $2 ORDER BY first_row",
            &[&migration, &chunk],
        )
        .await
        .map_err(|e| Error::db(format!("read the ledger of chunk {chunk}"), e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let first: i64 = r.get(0);
            let n: i32 = r.get(1);
            (first as u64, first as u64 + n as u64)
        })
        .collect())
}

/// Rows and batches committed per table for a migration (for `status`).
pub async fn progress(
    client: &tokio_postgres::Client,
    migration: &str,
) -> Result<Vec<(String, u64, u64, u64)>> {
    let rows = client
        .query(
            "SELECT table_name, count(DISTINCT chunk), count(*), coalesce(sum(rows), 0)::bigint
             FROM snap2dsql.ledger WHERE migration = $1 GROUP BY table_name ORDER BY table_name",
            &[&migration],
        )
        .await
        .map_err(|e| Error::db("read the ledger", e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let chunks: i64 = r.get(1);
            let batches: i64 = r.get(2);
            let n: i64 = r.get(3);
            (
                r.get::<_, String>(0),
                chunks as u64,
                batches as u64,
                n as u64,
            )
        })
        .collect())
}

/// True when a database error is the ledger's primary key refusing a second record of a batch.
pub fn is_already_committed(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|d| d.code().code() == "23505" && d.constraint() == Some(LEDGER_PKEY))
}
