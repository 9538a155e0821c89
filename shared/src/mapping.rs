//! `mapping.toml`: the reviewed, editable description of what the migration does.
//!
//! `plan` writes it; `run`, `load`, `verify` and the Lambdas read it. Per table it names the
//! target table, per column the source type, the target type, a rename or a drop, and the key
//! rewrite policy. The README documents the format field by field; [`Mapping::validate`] checks
//! that an edited file is still consistent before anything is written anywhere.

use crate::error::{Error, Result};
use crate::types::PgType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;
use uuid::Uuid;

/// The whole mapping file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mapping {
    pub migration: Migration,
    #[serde(default, rename = "table")]
    pub tables: Vec<TableMapping>,
}

/// Migration-wide settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Migration {
    /// Names this migration in the ledger; also seeds the default key namespace.
    pub id: String,
    /// UUIDv5 namespace of every rewritten key. Never change it once rows are loaded.
    pub namespace: Uuid,
    /// The source database inside the export.
    pub database: String,
    /// Add foreign keys (`NOT VALID`) after the load.
    #[serde(default)]
    pub foreign_keys: bool,
}

/// One source table and where it goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableMapping {
    /// `schema.table` in the export.
    pub source: String,
    /// Target schema in DSQL.
    pub target_schema: String,
    /// Target table name in DSQL.
    pub target_name: String,
    /// Target primary key columns (target names); empty: none.
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// True when the primary key was guessed (no source schema was given).
    #[serde(default, skip_serializing_if = "is_false")]
    pub primary_key_guessed: bool,
    #[serde(default, rename = "column")]
    pub columns: Vec<ColumnMapping>,
    /// Secondary indexes, built after the load.
    #[serde(default, rename = "index", skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexMapping>,
    /// Foreign keys, added `NOT VALID` after the load when `migration.foreign_keys` is on.
    #[serde(default, rename = "foreign_key", skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<ForeignKeyMapping>,
}

/// One column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnMapping {
    /// Column name in the export.
    pub name: String,
    /// The column's PostgreSQL type, from `originalType` (refined by the source schema).
    pub source_type: PgType,
    /// Target column name (a rename when it differs from `name`).
    pub target: String,
    /// Target DSQL type.
    pub target_type: PgType,
    #[serde(default, skip_serializing_if = "is_false")]
    pub not_null: bool,
    /// Leave the column out of the target.
    #[serde(default, skip_serializing_if = "is_false")]
    pub drop: bool,
    /// Key rewrite policy of this column.
    #[serde(default, skip_serializing_if = "Rewrite::is_none")]
    pub rewrite: Rewrite,
    /// With `rewrite = "key"`: the extra target column that keeps the old value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_old: Option<String>,
    /// With `rewrite = "reference"`: the source table (`schema.table`) whose key this references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<String>,
    /// With `rewrite = "reference"`: what to do when the parent row does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_orphan: Option<OnOrphan>,
    /// True when the key or reference was guessed from names.
    #[serde(default, skip_serializing_if = "is_false")]
    pub guessed: bool,
    /// Why the type changed, for the reviewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How a column's values are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rewrite {
    /// Values converted to the target type as they are.
    #[default]
    None,
    /// An integer primary key becomes its deterministic UUID (see [`crate::keys`]).
    Key,
    /// A reference to a rewritten key becomes the parent's deterministic UUID.
    Reference,
}

impl Rewrite {
    fn is_none(&self) -> bool {
        *self == Rewrite::None
    }
}

/// What happens to a reference whose parent row is not in the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnOrphan {
    /// Stop before writing, naming the row.
    #[default]
    Fail,
    /// Load the row with NULL in this column, and report it.
    Null,
    /// Load the deterministic key anyway (it points at nothing), and report it.
    Keep,
}

/// A secondary index, built after the load (`CREATE INDEX ASYNC` on DSQL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexMapping {
    pub name: String,
    /// Target column names.
    pub columns: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub unique: bool,
    /// Why it exists: `old key`, `foreign key`, `source index`, `unique constraint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A foreign key between target tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForeignKeyMapping {
    pub name: String,
    /// Target column names in this table.
    pub columns: Vec<String>,
    /// Target table `schema.table`.
    pub ref_table: String,
    pub ref_columns: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// DSQL's limit on columns per table (`dsql.md`).
pub const DSQL_MAX_COLUMNS: usize = 255;

impl Mapping {
    /// Reads and validates a mapping file.
    pub fn load(path: &Path) -> Result<Mapping> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Mapping::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates mapping text; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Mapping> {
        let m: Mapping = toml::from_str(text).map_err(|e| Error::Mapping {
            file: file.to_string(),
            reason: e.to_string(),
        })?;
        m.validate(file)?;
        Ok(m)
    }

    /// The file text, with a header that points at the format's documentation.
    pub fn to_toml(&self) -> Result<String> {
        let body = toml::to_string(self).map_err(|e| Error::Mapping {
            file: "mapping.toml".into(),
            reason: format!("cannot serialise: {e}"),
        })?;
        Ok(format!(
            "# snap2dsql mapping: written by `snap2dsql plan`, yours to edit and review.\n\
             # Format: README.md, section \"mapping.toml\". Never change migration.namespace once rows are loaded.\n\n{body}"
        ))
    }

    /// Writes the file.
    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_toml()?).map_err(|e| Error::io(path, e))
    }

    /// The mapping of source table `schema.table`.
    pub fn table(&self, source: &str) -> Option<&TableMapping> {
        self.tables.iter().find(|t| t.source == source)
    }

    /// Checks what a hand edit can break: duplicate names, policies without their fields,
    /// references to unknown or unrewritten tables, types DSQL cannot store.
    pub fn validate(&self, file: &str) -> Result<()> {
        let bad = |reason: String| Error::Mapping {
            file: file.to_string(),
            reason,
        };
        let mut targets = BTreeSet::new();
        for t in &self.tables {
            let where_ = format!("table {}", t.source);
            if !targets.insert(t.target()) {
                return Err(bad(format!(
                    "{where_}: target {} is used twice",
                    t.target()
                )));
            }
            let mut names = BTreeSet::new();
            for c in t.columns.iter().filter(|c| !c.drop) {
                for n in std::iter::once(&c.target).chain(c.keep_old.iter()) {
                    if !names.insert(n.clone()) {
                        return Err(bad(format!("{where_}: target column {n:?} is used twice")));
                    }
                }
                if !c.target_type.dsql_supported() {
                    return Err(bad(format!(
                        "{where_}, column {}: target_type {} is not a DSQL column type",
                        c.name, c.target_type
                    )));
                }
                match c.rewrite {
                    Rewrite::Key => {
                        if !c.source_type.is_integer() {
                            return Err(bad(format!(
                                "{where_}, column {}: rewrite = \"key\" needs an integer source column, not {}",
                                c.name, c.source_type
                            )));
                        }
                        if c.target_type != PgType::Uuid {
                            return Err(bad(format!(
                                "{where_}, column {}: a rewritten key's target_type must be uuid",
                                c.name
                            )));
                        }
                    }
                    Rewrite::Reference => {
                        let Some(parent) = &c.references else {
                            return Err(bad(format!(
                                "{where_}, column {}: rewrite = \"reference\" needs references = \"schema.table\"",
                                c.name
                            )));
                        };
                        let parent_key = self
                            .table(parent)
                            .and_then(|p| p.columns.iter().find(|pc| pc.rewrite == Rewrite::Key));
                        if parent_key.is_none() {
                            return Err(bad(format!(
                                "{where_}, column {}: references {parent}, which has no rewritten key in this mapping",
                                c.name
                            )));
                        }
                        if !c.source_type.is_integer() || c.target_type != PgType::Uuid {
                            return Err(bad(format!(
                                "{where_}, column {}: a rewritten reference goes from an integer to uuid",
                                c.name
                            )));
                        }
                    }
                    Rewrite::None => {}
                }
            }
            if names.len() > DSQL_MAX_COLUMNS {
                return Err(bad(format!(
                    "{where_}: {} target columns, DSQL allows {DSQL_MAX_COLUMNS}: drop some",
                    names.len()
                )));
            }
            for pk in &t.primary_key {
                if !names.contains(pk) {
                    return Err(bad(format!(
                        "{where_}: primary key column {pk:?} is not a target column"
                    )));
                }
            }
            for ix in &t.indexes {
                for col in &ix.columns {
                    if !names.contains(col) {
                        return Err(bad(format!(
                            "{where_}: index {} names {col:?}, which is not a target column",
                            ix.name
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

impl TableMapping {
    /// Target `schema.table`.
    pub fn target(&self) -> String {
        format!("{}.{}", self.target_schema, self.target_name)
    }

    /// The column whose values are rewritten into the new key, if any.
    pub fn key_column(&self) -> Option<&ColumnMapping> {
        self.columns
            .iter()
            .find(|c| c.rewrite == Rewrite::Key && !c.drop)
    }

    /// Target column names in load order: each kept column, then its `keep_old` column.
    pub fn target_columns(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for c in self.columns.iter().filter(|c| !c.drop) {
            out.push(c.target.as_str());
            if let Some(old) = &c.keep_old {
                out.push(old.as_str());
            }
        }
        out
    }
}
