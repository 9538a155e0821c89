//! DSQL's schema limits (dsql.md "Other limits"), checked on a mapping before any data moves:
//! a migration DSQL would refuse halfway fails in `plan` (and again when `run` or `load` read
//! the mapping), naming each limit it crosses.

use crate::mapping::{Mapping, TableMapping};
use crate::types::PgType;
use std::collections::BTreeSet;

/// Indexes a table, the primary key's counted.
pub const MAX_INDEXES: usize = 24;
/// Key columns an index (and the primary key).
pub const MAX_KEY_COLUMNS: usize = 8;
/// Bytes of a key (all its columns together).
pub const MAX_KEY_BYTES: usize = 1024;
/// Tables a cluster.
pub const MAX_TABLES: usize = 1000;
/// Schemas a cluster.
pub const MAX_SCHEMAS: usize = 10;
/// Bytes of a name (PostgreSQL's NAMEDATALEN - 1: longer names are cut, and two can collide).
pub const MAX_NAME_BYTES: usize = 63;

/// The bytes a value of `t` may take in a key, by its declared size (a character counted as one
/// byte, the most lenient reading); `None` when the type has no bound.
fn key_bytes(t: &PgType) -> Option<usize> {
    Some(match t {
        PgType::SmallInt => 2,
        PgType::Integer | PgType::Real | PgType::Date => 4,
        PgType::BigInt | PgType::Double | PgType::Timestamp | PgType::TimestampTz => 8,
        PgType::Time => 8,
        PgType::Uuid | PgType::Interval => 16,
        PgType::Boolean => 1,
        PgType::Numeric {
            precision: Some(p), ..
        } => (*p as usize).div_ceil(2) + 2,
        PgType::Varchar(Some(n)) | PgType::Char(Some(n)) => *n as usize,
        _ => return None,
    })
}

/// Each limit the mapping crosses, as a sentence naming the table, index or name; empty when
/// DSQL can hold it all.
pub fn check(mapping: &Mapping) -> Vec<String> {
    let mut out = Vec::new();
    if mapping.tables.len() > MAX_TABLES {
        out.push(format!(
            "{} tables: DSQL allows {MAX_TABLES} a cluster",
            mapping.tables.len()
        ));
    }
    let schemas: BTreeSet<&str> = mapping
        .tables
        .iter()
        .map(|t| t.target_schema.as_str())
        .chain(mapping.views.iter().map(|v| v.schema.as_str()))
        .collect();
    if schemas.len() > MAX_SCHEMAS {
        out.push(format!(
            "{} target schemas: DSQL allows {MAX_SCHEMAS} a cluster: map some tables to shared schemas (target_schema)",
            schemas.len()
        ));
    }
    for s in &schemas {
        name(&mut out, "schema", s, s);
        if s.starts_with("pg_") || *s == "sys" {
            out.push(format!(
                "schema {s}: the name is reserved (pg_*, and DSQL's own sys): set another target_schema"
            ));
        }
    }
    for t in &mapping.tables {
        table(&mut out, t);
    }
    for v in &mapping.views {
        name(
            &mut out,
            "view",
            &format!("{}.{}", v.schema, v.name),
            &v.name,
        );
    }
    out
}

fn name(out: &mut Vec<String>, what: &str, full: &str, name: &str) {
    if name.len() > MAX_NAME_BYTES {
        out.push(format!(
            "{what} {full}: the name is {} bytes, DSQL (as PostgreSQL) keeps {MAX_NAME_BYTES}: rename it",
            name.len()
        ));
    }
}

fn table(out: &mut Vec<String>, t: &TableMapping) {
    let target = t.target();
    name(out, "table", &target, &t.target_name);
    for c in t.target_columns() {
        name(out, "column", &format!("{target}.{c}"), c);
    }
    let indexes = t.indexes.len() + usize::from(!t.primary_key.is_empty());
    if indexes > MAX_INDEXES {
        out.push(format!(
            "table {target}: {indexes} indexes (the primary key's included), DSQL allows {MAX_INDEXES}: drop some [[table.index]]"
        ));
    }
    let type_of = |col: &str| -> Option<PgType> {
        t.columns.iter().find_map(|c| {
            if c.target == col {
                Some(c.target_type.clone())
            } else if c.keep_old.as_deref() == Some(col) {
                Some(c.source_type.clone())
            } else {
                None
            }
        })
    };
    let keys = std::iter::once(("primary key".to_string(), &t.primary_key)).chain(
        t.indexes
            .iter()
            .map(|ix| (format!("index {}", ix.name), &ix.columns)),
    );
    for (what, columns) in keys {
        if columns.len() > MAX_KEY_COLUMNS {
            out.push(format!(
                "table {target}, {what}: {} key columns, DSQL allows {MAX_KEY_COLUMNS}",
                columns.len()
            ));
        }
        let declared: Option<usize> = columns
            .iter()
            .map(|c| type_of(c).as_ref().and_then(key_bytes))
            .sum();
        if let Some(bytes) = declared
            && bytes > MAX_KEY_BYTES
        {
            out.push(format!(
                "table {target}, {what}: its columns' declared sizes allow {bytes} bytes, DSQL keys hold {MAX_KEY_BYTES}: a longer key would fail its batch (narrow target_type, or drop the index)"
            ));
        }
    }
    for c in &t.checks {
        name(out, "constraint", &format!("{target}.{}", c.name), &c.name);
    }
    for ix in &t.indexes {
        name(out, "index", &format!("{target}.{}", ix.name), &ix.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sizes_are_counted_from_declared_types() {
        assert_eq!(key_bytes(&PgType::Varchar(Some(2000))), Some(2000));
        assert_eq!(key_bytes(&PgType::Text), None);
        assert_eq!(key_bytes(&PgType::Uuid), Some(16));
    }
}
