//! The DSQL guard: makes a PostgreSQL target refuse what DSQL refuses, for rehearsals and tests.
//!
//! DSQL has no triggers; this lives only in a PostgreSQL stand-in. Statement-level AFTER triggers
//! with transition tables (they fire for COPY too) count the rows and bytes each transaction
//! modifies in transaction-local settings and raise SQLSTATE 54000 with DSQL's messages past
//! 3,000 rows or 10 MiB. A deferred constraint trigger on the ledger raises SQLSTATE 40001 with
//! `(OC000)` at commit on a chosen fraction of transactions, like an optimistic conflict.
//!
//! Running twice: every statement is `IF NOT EXISTS` / `CREATE OR REPLACE`; the conflict
//! fraction is set to the latest value.

use crate::ddl::{ident, qualified};
use crate::error::{Error, Result};

/// DSQL's rows-per-transaction limit.
pub const MAX_ROWS: i64 = 3_000;
/// DSQL's bytes-per-transaction limit (10 MiB).
pub const MAX_BYTES: i64 = 10 * 1024 * 1024;

const SETUP: &[&str] = &[
    "CREATE SCHEMA IF NOT EXISTS snap2dsql_guard",
    "CREATE TABLE IF NOT EXISTS snap2dsql_guard.config (
        id int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
        occ_fraction float8 NOT NULL DEFAULT 0,
        max_rows bigint NOT NULL DEFAULT 3000,
        max_bytes bigint NOT NULL DEFAULT 10485760)",
    "INSERT INTO snap2dsql_guard.config DEFAULT VALUES ON CONFLICT DO NOTHING",
    r#"CREATE OR REPLACE FUNCTION snap2dsql_guard.count_new() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE n bigint; b bigint;
BEGIN
  SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) INTO n, b FROM guard_rows t;
  PERFORM snap2dsql_guard.account(n, b);
  RETURN NULL;
END $$"#,
    r#"CREATE OR REPLACE FUNCTION snap2dsql_guard.account(n bigint, b bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE total_rows bigint; total_bytes bigint; cfg record;
BEGIN
  total_rows := coalesce(nullif(current_setting('snap2dsql_guard.rows', true), ''), '0')::bigint + n;
  total_bytes := coalesce(nullif(current_setting('snap2dsql_guard.bytes', true), ''), '0')::bigint + b;
  PERFORM set_config('snap2dsql_guard.rows', total_rows::text, true);
  PERFORM set_config('snap2dsql_guard.bytes', total_bytes::text, true);
  SELECT * INTO cfg FROM snap2dsql_guard.config WHERE id = 1;
  IF total_rows > cfg.max_rows THEN
    RAISE EXCEPTION 'transaction row limit exceeded' USING ERRCODE = '54000';
  END IF;
  IF total_bytes > cfg.max_bytes THEN
    RAISE EXCEPTION 'transaction size limit 10mb exceeded' USING ERRCODE = '54000';
  END IF;
END $$"#,
    r#"CREATE OR REPLACE FUNCTION snap2dsql_guard.occ() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE f float8;
BEGIN
  IF current_setting('snap2dsql_guard.occ_decided', true) = '1' THEN RETURN NULL; END IF;
  PERFORM set_config('snap2dsql_guard.occ_decided', '1', true);
  SELECT occ_fraction INTO f FROM snap2dsql_guard.config WHERE id = 1;
  IF random() < f THEN
    RAISE EXCEPTION 'change conflicts with another transaction, please retry: (OC000)' USING ERRCODE = '40001';
  END IF;
  RETURN NULL;
END $$"#,
];

/// Installs the guard on `tables` (`(schema, table)` of the target) and on the ledger, and sets
/// the fraction of commits that fail with an injected conflict.
pub async fn install(
    client: &tokio_postgres::Client,
    tables: &[(String, String)],
    occ_fraction: f64,
) -> Result<()> {
    for sql in SETUP {
        client
            .batch_execute(sql)
            .await
            .map_err(|e| Error::db("install the DSQL guard", e))?;
    }
    let mut all: Vec<(String, String)> = tables.to_vec();
    all.push(("snap2dsql".into(), "ledger".into()));
    for (schema, table) in &all {
        let t = qualified(schema, table);
        let sql = format!(
            "CREATE OR REPLACE TRIGGER {ins} AFTER INSERT ON {t} REFERENCING NEW TABLE AS guard_rows FOR EACH STATEMENT EXECUTE FUNCTION snap2dsql_guard.count_new();
             CREATE OR REPLACE TRIGGER {upd} AFTER UPDATE ON {t} REFERENCING NEW TABLE AS guard_rows FOR EACH STATEMENT EXECUTE FUNCTION snap2dsql_guard.count_new();
             CREATE OR REPLACE TRIGGER {del} AFTER DELETE ON {t} REFERENCING OLD TABLE AS guard_rows FOR EACH STATEMENT EXECUTE FUNCTION snap2dsql_guard.count_new();",
            ins = ident("snap2dsql_guard_insert"),
            upd = ident("snap2dsql_guard_update"),
            del = ident("snap2dsql_guard_delete"),
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| Error::db(format!("install the DSQL guard on {schema}.{table}"), e))?;
    }
    client
        .batch_execute(
            "DROP TRIGGER IF EXISTS snap2dsql_guard_occ ON snap2dsql.ledger;
             CREATE CONSTRAINT TRIGGER snap2dsql_guard_occ AFTER INSERT ON snap2dsql.ledger
               DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION snap2dsql_guard.occ();",
        )
        .await
        .map_err(|e| Error::db("install the conflict injector", e))?;
    set_occ_fraction(client, occ_fraction).await
}

/// Sets the fraction (0 to 1) of batch commits that fail with an injected `40001 (OC000)`.
pub async fn set_occ_fraction(client: &tokio_postgres::Client, fraction: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&fraction) {
        return Err(Error::Usage(format!(
            "conflict fraction {fraction} must be between 0 and 1"
        )));
    }
    client
        .execute(
            "UPDATE snap2dsql_guard.config SET occ_fraction = $1 WHERE id = 1",
            &[&fraction],
        )
        .await
        .map_err(|e| Error::db("set the injected conflict fraction", e))?;
    Ok(())
}
