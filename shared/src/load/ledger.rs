//! The ledger: `snap2dsql.ledger` in the target, one row per committed batch, written in the
//! same transaction as the batch's rows.
//!
//! A batch is identified by (migration, chunk, first row). Because the ledger row and the data
//! commit together, the ledger is exactly what the target holds: a rerun of a chunk skips the
//! row ranges the ledger lists and writes the rest, and a second writer racing on the same batch
//! fails on the ledger's primary key (SQLSTATE 23505) instead of doubling rows.
//!
//! Reads: [`committed_ranges`] reads one chunk's rows (at most a chunk's rows / a batch's rows,
//! a few hundred), so one statement; [`progress`] reads the whole ledger of a migration, page by
//! page ([`crate::pages`]).
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

/// One table's progress in the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Chunks with at least one committed batch.
    pub chunks: u64,
    pub batches: u64,
    pub rows: u64,
}

/// Rows, batches and chunks committed per source table for a migration (for `status`), read
/// page by page in the ledger's key order (chunk, first row): each page a short transaction,
/// however long the ledger.
pub async fn progress(
    target: &crate::target::Target,
    migration: &str,
) -> Result<std::collections::BTreeMap<String, Progress>> {
    use crate::pages::{KeyColumn, Pager, Reader};
    let mut pager = Pager::new(
        "snap2dsql.ledger".into(),
        vec![
            KeyColumn {
                name: "chunk".into(),
                sql_type: "text".into(),
            },
            KeyColumn {
                name: "first_row".into(),
                sql_type: "bigint".into(),
            },
        ],
    );
    pager.filter = Some("migration = $1::text".into());
    type State = (
        std::collections::BTreeMap<String, Progress>,
        std::collections::HashSet<(String, String)>,
    );
    let mut state: State = Default::default();
    let what = "read the ledger (snap2dsql.ledger)";
    Reader::new(target, &[])
        .pages(
            &pager,
            what,
            Some("SELECT table_name, chunk, count(*), coalesce(sum(rows), 0)::bigint FROM p GROUP BY 1, 2"),
            &mut state,
            |_| vec![Some(migration.to_string())],
            |(tables, chunks), page| {
                for r in &page.result {
                    let table: String = r.try_get(0, what)?;
                    let chunk: String = r.try_get(1, what)?;
                    let batches: i64 = r.try_get(2, what)?;
                    let rows: i64 = r.try_get(3, what)?;
                    let p = tables.entry(table.clone()).or_default();
                    if chunks.insert((table, chunk)) {
                        p.chunks += 1;
                    }
                    p.batches += batches as u64;
                    p.rows += rows as u64;
                }
                Ok(())
            },
        )
        .await?;
    Ok(state.0)
}

/// True when a database error is the ledger's primary key refusing a second record of a batch.
pub fn is_already_committed(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|d| d.code().code() == "23505" && d.constraint() == Some(LEDGER_PKEY))
}
