//! The run's mapping remembered in the target: `snap2dsql.migrations`, beside the ledger, holds
//! every mapping a load prepared the target with (migration id, the mapping's SHA-1, its text in
//! pieces), so `verify` and `status` without `--mapping` use the mapping the load used instead of
//! planning a new one that may differ (a guessed key, another type).
//!
//! DSQL rules: one DDL statement per transaction, `IF NOT EXISTS`; a non-key value holds at most
//! 1 MiB, so the text is stored in pieces of at most [`PIECE_BYTES`], a few pieces per
//! transaction (DSQL's 10 MiB per transaction).
//!
//! [`check`] compares a mapping with the target's tables before anything reads them, so a mapping
//! that is not the one the load used is refused with a message naming the table and column,
//! never a SQL error (`function sum(uuid) does not exist`).
//!
//! Running twice: the DDL is `IF NOT EXISTS`; recording the same mapping again writes nothing
//! but its time (the newest recording is the one used); reading is read-only.

use crate::ddl::ident;
use crate::error::{Error, Result};
use crate::mapping::Mapping;
use crate::target::Target;
use crate::types::PgType;
use sha1::{Digest, Sha1};
use std::fmt::Write as _;

/// At most this many bytes of mapping text in one row: half of DSQL's 1 MiB per value.
pub const PIECE_BYTES: usize = 512 * 1024;
/// Pieces written per transaction: 4 MiB, well under DSQL's 10 MiB.
const PIECES_PER_TRANSACTION: usize = 8;

/// DDL of the record, one statement per transaction.
pub const DDL: &str = "CREATE TABLE IF NOT EXISTS snap2dsql.migrations (
    migration text NOT NULL,
    mapping_sha1 text NOT NULL,
    part integer NOT NULL,
    parts integer NOT NULL,
    mapping text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT migrations_pkey PRIMARY KEY (migration, mapping_sha1, part)
)";

/// The SHA-1 of a mapping's text, in hex.
pub fn sha1_hex(text: &str) -> String {
    let mut s = String::new();
    for b in Sha1::digest(text.as_bytes()) {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `text` cut into pieces of at most `max` bytes, at character boundaries.
fn pieces(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(max);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if out.is_empty() {
        out.push("");
    }
    out
}

/// Creates the record table (the `snap2dsql` schema exists: the ledger made it) and writes
/// `mapping` into it.
pub async fn remember(client: &tokio_postgres::Client, mapping: &Mapping) -> Result<()> {
    if let Err(e) = client.batch_execute(DDL).await
        && !e
            .code()
            .is_some_and(|c| crate::ddl::is_already_done(c.code()) || c.code() == "23505")
    {
        return Err(Error::db(
            "create the mapping record (snap2dsql.migrations)",
            e,
        ));
    }
    let text = mapping.to_toml()?;
    let hash = sha1_hex(&text);
    let parts = pieces(&text, PIECE_BYTES);
    let n = parts.len() as i32;
    let what = || format!("record the mapping of migration {}", mapping.migration.id);
    for (batch, group) in parts.chunks(PIECES_PER_TRANSACTION).enumerate() {
        let mut sql = String::from(
            "INSERT INTO snap2dsql.migrations (migration, mapping_sha1, part, parts, mapping) VALUES ",
        );
        let mut params: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> = Vec::new();
        for (i, piece) in group.iter().enumerate() {
            let part = (batch * PIECES_PER_TRANSACTION + i) as i32;
            let at = params.len();
            if i > 0 {
                sql.push_str(", ");
            }
            let _ = write!(
                sql,
                "(${}, ${}, ${}, ${}, ${})",
                at + 1,
                at + 2,
                at + 3,
                at + 4,
                at + 5
            );
            params.push(Box::new(mapping.migration.id.clone()));
            params.push(Box::new(hash.clone()));
            params.push(Box::new(part));
            params.push(Box::new(n));
            params.push(Box::new(piece.to_string()));
        }
        // The newest recording wins: recording again moves part 0's time forward.
        sql.push_str(
            " ON CONFLICT (migration, mapping_sha1, part) DO UPDATE SET recorded_at = now()",
        );
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        client
            .execute(sql.as_str(), &refs)
            .await
            .map_err(|e| Error::db(what(), e))?;
    }
    Ok(())
}

/// A mapping read back from the target.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub migration: String,
    pub sha1: String,
    pub mapping: Mapping,
}

/// The newest complete mapping recorded in the target: of `migration` when given, else of the
/// only migration the target records (several: an error asking for one). `None` when the
/// target records none.
pub async fn recorded(target: &Target, migration: Option<&str>) -> Result<Option<Recorded>> {
    crate::migrate::retrying(target, "read the mapping record", |client| async move {
        // The record is small: the part-0 rows of each mapping, then one mapping's pieces.
        let heads = match client
            .query(
                "SELECT migration, mapping_sha1, parts FROM snap2dsql.migrations WHERE part = 0 \
                 ORDER BY recorded_at DESC",
                &[],
            )
            .await
        {
            Ok(rows) => rows,
            // No record table (a target loaded before records, or never loaded): no record.
            Err(e)
                if e.code()
                    .is_some_and(|c| matches!(c.code(), "42P01" | "3F000")) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(Error::db("read the mapping record", e)),
        };
        let heads: Vec<(String, String, i32)> = heads
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .filter(|(m, _, _): &(String, String, i32)| migration.is_none_or(|want| want == m))
            .collect();
        let mut ids: Vec<&str> = heads.iter().map(|h| h.0.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() > 1 {
            return Err(Error::Usage(format!(
                "the target records the mappings of {} migrations ({}): pass --mapping",
                ids.len(),
                ids.join(", ")
            )));
        }
        for (m, sha1, parts) in &heads {
            let rows = client
                .query(
                    "SELECT part, mapping FROM snap2dsql.migrations \
                     WHERE migration = $1 AND mapping_sha1 = $2 ORDER BY part",
                    &[m, sha1],
                )
                .await
                .map_err(|e| Error::db("read the mapping record", e))?;
            let texts: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            let complete = texts.len() == *parts as usize
                && texts.iter().enumerate().all(|(i, (p, _))| *p == i as i32);
            if !complete {
                // A recording cut short (the writer died between its transactions): an older
                // complete one is the newest usable.
                continue;
            }
            let text: String = texts.into_iter().map(|(_, t)| t).collect();
            if sha1_hex(&text) != *sha1 {
                continue;
            }
            let mapping =
                Mapping::from_toml(&text, &format!("the target's record of migration {m}"))?;
            return Ok(Some(Recorded {
                migration: m.clone(),
                sha1: sha1.clone(),
                mapping,
            }));
        }
        Ok(None)
    })
    .await
}

/// The target's columns of `schema.table` with their types, in order.
async fn columns(
    client: &tokio_postgres::Client,
    schema: &str,
    table: &str,
) -> Result<Vec<(String, String)>> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
             FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&schema, &table],
        )
        .await
        .map_err(|e| {
            Error::db(
                format!("read the columns of {}.{}", ident(schema), ident(table)),
                e,
            )
        })?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Refuses a mapping the target's tables do not match: a missing table or column, or a column
/// of another kind of type than the mapping says (modifiers aside). `hint` ends the message.
pub async fn check(target: &Target, mapping: &Mapping, hint: &str) -> Result<()> {
    let problems = crate::migrate::retrying(
        target,
        "compare the mapping with the target",
        |client| async move {
            let mut problems = Vec::new();
            for t in &mapping.tables {
                let have = columns(&client, &t.target_schema, &t.target_name).await?;
                if have.is_empty() {
                    problems.push(format!("table {} does not exist in the target", t.target()));
                    continue;
                }
                for c in t.columns.iter().filter(|c| !c.drop) {
                    let mut want = vec![(c.target.clone(), c.target_type.clone())];
                    if let Some(old) = &c.keep_old {
                        want.push((old.clone(), c.source_type.clone()));
                    }
                    for (name, ty) in want {
                        match have.iter().find(|(n, _)| *n == name) {
                            None => problems.push(format!(
                                "{} has no column {name:?} (the mapping's {ty})",
                                t.target()
                            )),
                            Some((_, found)) => {
                                let found_ty =
                                    PgType::parse(found).unwrap_or(PgType::Other(found.clone()));
                                if std::mem::discriminant(&found_ty) != std::mem::discriminant(&ty)
                                {
                                    problems.push(format!(
                                        "{}.{name} is {found} in the target, {ty} in the mapping",
                                        t.target()
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            Ok(problems)
        },
    )
    .await?;
    if problems.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
    Err(Error::Usage(format!(
        "the target does not match the mapping of migration {} ({}{}): {hint}",
        mapping.migration.id,
        shown.join("; "),
        if problems.len() > shown.len() {
            format!("; and {} more", problems.len() - shown.len())
        } else {
            String::new()
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cut_at_character_boundaries_and_join_back() {
        let text = "aé😀".repeat(1000);
        let ps = pieces(&text, 7);
        assert!(ps.iter().all(|p| p.len() <= 7 && !p.is_empty()));
        assert_eq!(ps.concat(), text);
        assert_eq!(pieces("", 7), vec![""]);
        assert_eq!(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }
}
