//! The source schema: the constraints, types and indexes the snapshot export does not carry.
//!
//! An Aurora snapshot export has column names and type names but no keys, no NOT NULL, no
//! serial-ness and no indexes, so the planner reads them from the source schema instead: either a
//! live PostgreSQL database ([`SourceSchema::from_postgres`], reading `pg_catalog`) or a
//! `pg_dump --schema-only` file ([`SourceSchema::from_ddl`], parsed with PostgreSQL's own parser
//! through `pg_query`). Both give the same [`SourceSchema`] for the same database, so the planner
//! does not care which one the user had at hand.
//!
//! Names are stored as PostgreSQL stores them (case-folded unless quoted, never quoted), and
//! tables and enum types are keyed `"schema.name"`. Lists whose order carries no meaning
//! (unique constraints, foreign keys, indexes) are sorted, so two schemas compare equal exactly
//! when they describe the same tables.

// The crate-wide `Error` is large (its `Convert` variant carries a full location); boxing it is
// error.rs's call, not this module's.
#![allow(clippy::result_large_err)]

mod catalog;
mod ddl;

use crate::error::{Error, Result};
use crate::types::PgType;
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything the migration needs to know about the source database's tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct SourceSchema {
    /// Ordinary and partitioned tables, keyed `"schema.table"`.
    pub tables: BTreeMap<String, TableSchema>,
    /// Enum types keyed `"schema.type"`, with their labels in sort order: the export writes enum
    /// values as text, and DSQL has no enums, so the planner needs the labels to check values.
    pub enums: BTreeMap<String, Vec<String>>,
}

/// One table's columns and constraints, as the source declared them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct TableSchema {
    /// Columns in declaration order (inherited columns first, as PostgreSQL orders them).
    pub columns: Vec<ColumnSchema>,
    /// Primary key columns in key order; empty when the table has none.
    pub primary_key: Vec<String>,
    /// UNIQUE constraints (not unique indexes: those are in `indexes`), each in key order.
    pub unique: Vec<Vec<String>>,
    /// Foreign keys declared on this table, sorted by name.
    pub foreign_keys: Vec<ForeignKey>,
    /// Indexes created with CREATE INDEX (not those behind a constraint), sorted by name.
    pub indexes: Vec<IndexDef>,
}

/// A column's declared type and the properties a DSQL target column must reproduce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnSchema {
    /// Column name as stored by PostgreSQL.
    pub name: String,
    /// Declared type; enums are `PgType::Enum("schema.type")`, arrays carry the element type.
    pub data_type: PgType,
    /// True when the column cannot hold NULL (explicitly, or as a key or identity column).
    pub not_null: bool,
    /// True when values come from a sequence (`DEFAULT nextval(...)`, `serial`, or
    /// `GENERATED ... AS IDENTITY`): DSQL has no sequences, so such keys need a plan.
    pub serial: bool,
}

/// A foreign key: the references the loader has to keep consistent when it rewrites keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignKey {
    /// Constraint name (PostgreSQL's default name when the DDL gave none).
    pub name: String,
    /// Referencing columns, in key order.
    pub columns: Vec<String>,
    /// Referenced table, `"schema.table"`.
    pub ref_table: String,
    /// Referenced columns, paired with `columns`.
    pub ref_columns: Vec<String>,
}

/// A secondary index, so the planner can recreate it (or say why it cannot) on DSQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexDef {
    /// Index name.
    pub name: String,
    /// Key columns that are plain column references (expression keys are left out).
    pub columns: Vec<String>,
    /// True for a UNIQUE index.
    pub unique: bool,
    /// False when the index has expressions, a predicate, a non-btree method, INCLUDE columns,
    /// a non-default operator class or a non-default sort order: then `columns` does not say
    /// everything and the index cannot be carried to DSQL as is.
    pub plain: bool,
}

impl SourceSchema {
    /// Reads the source schema named on the command line: a `postgres://` or `postgresql://`
    /// URL is read from the live catalog, anything else is a `pg_dump --schema-only` file.
    pub async fn load(arg: &str) -> Result<SourceSchema> {
        if arg.starts_with("postgres://") || arg.starts_with("postgresql://") {
            let client = catalog::connect(arg).await?;
            SourceSchema::from_postgres(&client, &crate::db::redact_url(arg)).await
        } else {
            let sql = tokio::fs::read_to_string(arg)
                .await
                .map_err(|e| Error::io(arg, e))?;
            SourceSchema::from_ddl(&sql, arg)
        }
    }

    /// Builds the schema from DDL text (typically `pg_dump --schema-only` output);
    /// `source_name` names the file in errors.
    pub fn from_ddl(sql: &str, source_name: &str) -> Result<SourceSchema> {
        let mut schema = ddl::parse(sql, source_name)?;
        schema.normalize();
        Ok(schema)
    }

    /// Builds the schema from a live database's `pg_catalog`; `source_name` names the database
    /// in errors.
    pub async fn from_postgres(
        client: &tokio_postgres::Client,
        source_name: &str,
    ) -> Result<SourceSchema> {
        let mut schema = catalog::read(client, source_name).await?;
        schema.normalize();
        Ok(schema)
    }

    /// The table named `"schema.table"`, if the source has it.
    pub fn table(&self, qualified: &str) -> Option<&TableSchema> {
        self.tables.get(qualified)
    }

    /// Puts order-free lists in a fixed order so that both readers give equal values.
    fn normalize(&mut self) {
        for table in self.tables.values_mut() {
            table.unique.sort();
            table.unique.dedup();
            table.foreign_keys.sort_by(|a, b| a.name.cmp(&b.name));
            table.indexes.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }
}

/// `"schema.name"`, the key of tables and enum types.
fn qualify(schema: &str, name: &str) -> String {
    format!("{schema}.{name}")
}

/// Resolves user-defined type names to enums: `Other("s.t")` becomes `Enum("s.t")` when `s.t`
/// is a known enum type, also inside arrays.
fn resolve_enum(t: PgType, enums: &BTreeMap<String, Vec<String>>) -> PgType {
    match t {
        PgType::Other(name) if enums.contains_key(&name) => PgType::Enum(name),
        PgType::Array(elem) => PgType::Array(Box::new(resolve_enum(*elem, enums))),
        t => t,
    }
}

#[cfg(test)]
mod tests;
