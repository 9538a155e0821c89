//! Target DDL from a mapping: `ddl.sql` (schemas and tables) and `ddl-post-load.sql`
//! (secondary indexes, optional foreign keys).
//!
//! For DSQL every statement runs in its own transaction (DSQL allows one DDL statement per
//! transaction and never mixes DDL with DML), uses only supported features, and secondary indexes
//! are `CREATE INDEX ASYNC`, built after the load so each loaded row costs one write. The
//! PostgreSQL dialect writes the same schema for local rehearsals. Every identifier is quoted.
//!
//! Running twice: tables and indexes use `IF NOT EXISTS`; a foreign key that already exists fails
//! with SQLSTATE 42710, which [`is_already_done`] recognises.

use crate::mapping::{Mapping, TableMapping};
use std::fmt::Write;

/// Which server the DDL is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Dsql,
    Postgres,
}

impl std::str::FromStr for Dialect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dsql" => Ok(Dialect::Dsql),
            "postgres" | "postgresql" => Ok(Dialect::Postgres),
            other => Err(format!(
                "unknown dialect {other:?}: expected dsql or postgres"
            )),
        }
    }
}

/// Quotes an identifier: always, whatever it contains.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."table"`.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", ident(schema), ident(table))
}

/// One DDL statement and what it is, for progress and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub what: String,
    pub sql: String,
    /// True for `CREATE INDEX ASYNC` on DSQL: returns a job id to wait for.
    pub async_job: bool,
}

/// `ddl.sql`: one `CREATE SCHEMA` per target schema, then one `CREATE TABLE` per table.
pub fn create_statements(mapping: &Mapping, _dialect: Dialect) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut schemas: Vec<&str> = mapping
        .tables
        .iter()
        .map(|t| t.target_schema.as_str())
        .collect();
    schemas.sort();
    schemas.dedup();
    for s in schemas {
        out.push(Statement {
            what: format!("schema {s}"),
            sql: format!("CREATE SCHEMA IF NOT EXISTS {}", ident(s)),
            async_job: false,
        });
    }
    for t in &mapping.tables {
        out.push(Statement {
            what: format!("table {}", t.target()),
            sql: create_table(t),
            async_job: false,
        });
    }
    out
}

fn create_table(t: &TableMapping) -> String {
    let mut lines = Vec::new();
    for c in t.columns.iter().filter(|c| !c.drop) {
        let nn = if c.not_null { " NOT NULL" } else { "" };
        lines.push(format!("    {} {}{nn}", ident(&c.target), c.target_type));
        if let Some(old) = &c.keep_old {
            lines.push(format!("    {} {}", ident(old), c.source_type));
        }
    }
    if !t.primary_key.is_empty() {
        let cols: Vec<String> = t.primary_key.iter().map(|c| ident(c)).collect();
        lines.push(format!("    PRIMARY KEY ({})", cols.join(", ")));
    }
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n)",
        qualified(&t.target_schema, &t.target_name),
        lines.join(",\n")
    )
}

/// `ddl-post-load.sql`: secondary indexes, then (when the mapping asks) foreign keys NOT VALID.
pub fn post_load_statements(mapping: &Mapping, dialect: Dialect) -> Vec<Statement> {
    let mut out = Vec::new();
    for t in &mapping.tables {
        for ix in &t.indexes {
            let cols: Vec<String> = ix.columns.iter().map(|c| ident(c)).collect();
            let unique = if ix.unique { "UNIQUE " } else { "" };
            let asynchronous = if dialect == Dialect::Dsql {
                "ASYNC "
            } else {
                ""
            };
            out.push(Statement {
                what: format!("index {} on {}", ix.name, t.target()),
                sql: format!(
                    "CREATE {unique}INDEX {asynchronous}IF NOT EXISTS {} ON {} ({})",
                    ident(&ix.name),
                    qualified(&t.target_schema, &t.target_name),
                    cols.join(", ")
                ),
                async_job: dialect == Dialect::Dsql,
            });
        }
    }
    if mapping.migration.foreign_keys {
        for t in &mapping.tables {
            for fk in &t.foreign_keys {
                let Some(parent) = mapping.table(&fk.ref_table) else {
                    continue;
                };
                let target_of = |tm: &TableMapping, source_col: &str| {
                    tm.columns
                        .iter()
                        .find(|c| c.name == source_col)
                        .map(|c| ident(&c.target))
                        .unwrap_or_else(|| ident(source_col))
                };
                let cols: Vec<String> = fk.columns.iter().map(|c| target_of(t, c)).collect();
                let refs: Vec<String> = fk
                    .ref_columns
                    .iter()
                    .map(|c| target_of(parent, c))
                    .collect();
                out.push(Statement {
                    what: format!("foreign key {} on {}", fk.name, t.target()),
                    sql: format!(
                        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) NOT VALID",
                        qualified(&t.target_schema, &t.target_name),
                        ident(&fk.name),
                        cols.join(", "),
                        qualified(&parent.target_schema, &parent.target_name),
                        refs.join(", ")
                    ),
                    async_job: false,
                });
            }
        }
    }
    out
}

/// The text of a DDL file: a header, then each statement ending in `;`.
pub fn render(statements: &[Statement], header: &str) -> String {
    let mut s = String::new();
    for line in header.lines() {
        let _ = writeln!(s, "-- {line}");
    }
    for st in statements {
        let _ = write!(s, "\n{};\n", st.sql);
    }
    s
}

/// SQLSTATEs that mean a rerun of a DDL statement found its work already done.
pub fn is_already_done(sqlstate: &str) -> bool {
    // 42P07 duplicate_table (also indexes), 42710 duplicate_object (constraints), 42P06 duplicate_schema
    matches!(sqlstate, "42P07" | "42710" | "42P06")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_always_quoted() {
        assert_eq!(ident("orders"), "\"orders\"");
        assert_eq!(
            ident("we\"ird; DROP TABLE x"),
            "\"we\"\"ird; DROP TABLE x\""
        );
        assert_eq!(qualified("My Schema", "t"), "\"My Schema\".\"t\"");
    }
}
