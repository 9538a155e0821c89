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
pub mod expr;
pub mod limits;
pub mod report;
pub mod target;

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
    /// Views, sorted by name: created on the target after the load when DSQL can run them.
    pub views: Vec<ViewDef>,
    /// Everything else the source holds that is not a table, a view or an enum (sequences not
    /// owned by a column, triggers, functions, other types, extensions, comments), sorted: the
    /// schema report says what becomes of each.
    pub objects: Vec<SchemaObject>,
}

/// A view and its query, in the canonical spelling of [`expr::canonical_query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViewDef {
    /// `"schema.view"`.
    pub name: String,
    /// The view's SELECT, as pg_query deparses it (the same text from a dump and a catalog).
    pub query: String,
}

/// What kind of object a [`SchemaObject`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    MaterializedView,
    Sequence,
    Trigger,
    Function,
    Type,
    Extension,
    Comment,
}

/// A source object that is neither a table, a view nor an enum.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SchemaObject {
    pub kind: ObjectKind,
    /// `"schema.name"`; a trigger is `"schema.table.trigger"`; a comment names what it is on
    /// (`table s.t`, `column s.t.c`, `view s.v`).
    pub name: String,
    /// A function's language, a type's kind (`domain`, `composite`, `range`), a comment's text.
    pub detail: String,
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
    /// CHECK constraints declared on this table, sorted by name.
    pub checks: Vec<CheckDef>,
}

/// A CHECK constraint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckDef {
    /// Constraint name (PostgreSQL's default name when the DDL gave none).
    pub name: String,
    /// The condition, in the canonical spelling of [`expr::canonical`].
    pub expr: String,
    /// False for a constraint added `NOT VALID`: rows of the source may violate it.
    pub valid: bool,
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
    /// The column's DEFAULT in the canonical spelling of [`expr::canonical`]; `None` when it has
    /// none or when the default is a sequence's `nextval(..)` (then `serial` says so).
    pub default: Option<String>,
    /// The expression of a `GENERATED ALWAYS AS (..) STORED` column.
    pub generated: Option<String>,
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
    /// URL is read from the live catalog, anything else is a plain-text pg_dump file, with or
    /// without data (`COPY .. FROM stdin` blocks are skipped). A custom-format dump is refused
    /// with the pg_restore command that turns it into SQL.
    pub async fn load(arg: &str) -> Result<SourceSchema> {
        if arg.starts_with("postgres://") || arg.starts_with("postgresql://") {
            let client = catalog::connect(arg).await?;
            SourceSchema::from_postgres(&client, &crate::db::redact_url(arg)).await
        } else {
            let bytes = tokio::fs::read(arg).await.map_err(|e| Error::io(arg, e))?;
            let bad = |reason: String| Error::Schema {
                source_name: arg.to_string(),
                reason,
            };
            if bytes.starts_with(b"PGDMP") {
                return Err(bad(format!(
                    "a pg_dump archive (custom or tar format), not SQL: turn it into SQL with \
                     `pg_restore --schema-only -f schema.sql {arg}` and give schema.sql"
                )));
            }
            let sql = String::from_utf8(bytes).map_err(|e| {
                bad(format!(
                    "not UTF-8 text at byte {}: give a plain-text pg_dump (pg_dump -Fp)",
                    e.utf8_error().valid_up_to()
                ))
            })?;
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
            table.checks.sort_by(|a, b| a.name.cmp(&b.name));
        }
        self.views.sort_by(|a, b| a.name.cmp(&b.name));
        self.objects.sort();
        self.objects.dedup();
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
