//! Column types: which DSQL refuses, and how PostgreSQL displays a type's name in the refusal.
//!
//! [REC §8] DSQL refuses these as column types with `datatype X not supported`, X as PostgreSQL
//! displays the type without its modifiers (`bit(8)` is `bit`, `int[]` is `integer[]`). The
//! deny-list holds the recorded types and their families (every geometric, range, network, bit
//! and text-search type; multiranges); any array is refused. Types absent from the list (domains
//! among them) are left to PostgreSQL, so a domain still works [REC §8] and an undefined type is
//! PostgreSQL's own 42704.

use pg_query::protobuf::TypeName;
use pg_query::protobuf::node::Node as N;

/// The type's name as written, without `pg_catalog.` (lower case).
pub fn base_name(t: &TypeName) -> Option<String> {
    let names: Vec<&str> = t
        .names
        .iter()
        .filter_map(|n| match n.node.as_ref() {
            Some(N::String(s)) => Some(s.sval.as_str()),
            _ => None,
        })
        .collect();
    let last = names.last()?;
    if names.len() > 1 && names[0] != "pg_catalog" {
        // A schema-qualified user type: PostgreSQL decides.
        return None;
    }
    Some(last.to_ascii_lowercase())
}

/// How PostgreSQL displays a built-in type name (`format_type` without modifiers).
pub fn display(name: &str) -> &str {
    match name {
        "int2" | "smallint" => "smallint",
        "int4" | "int" | "integer" => "integer",
        "int8" | "bigint" => "bigint",
        "float4" | "real" => "real",
        "float8" => "double precision",
        "bool" | "boolean" => "boolean",
        "varchar" => "character varying",
        "bpchar" | "char" => "character",
        "varbit" => "bit varying",
        "timestamptz" => "timestamp with time zone",
        "timestamp" => "timestamp without time zone",
        "timetz" => "time with time zone",
        "time" => "time without time zone",
        "decimal" => "numeric",
        other => other,
    }
}

/// Serial pseudo-types: DSQL has none (`type "serial" does not exist`, [REC §8]).
pub fn is_serial(name: &str) -> bool {
    matches!(
        name,
        "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2"
    )
}

/// Types DSQL refuses as columns.
pub fn is_refused_column_type(name: &str) -> bool {
    matches!(
        name,
        "money"
            | "xml"
            | "inet"
            | "cidr"
            | "macaddr"
            | "macaddr8"
            | "point"
            | "line"
            | "lseg"
            | "box"
            | "path"
            | "polygon"
            | "circle"
            | "tsvector"
            | "tsquery"
            | "int4range"
            | "int8range"
            | "numrange"
            | "tsrange"
            | "tstzrange"
            | "daterange"
            | "int4multirange"
            | "int8multirange"
            | "nummultirange"
            | "tsmultirange"
            | "tstzmultirange"
            | "datemultirange"
            | "bit"
            | "varbit"
            | "pg_lsn"
            | "txid_snapshot"
            | "pg_snapshot"
    )
}

/// Geometric types, refused even in expressions [REC §7: `line(..)`, `circle(..)`].
pub fn is_geometric(name: &str) -> bool {
    matches!(
        name,
        "point" | "line" | "lseg" | "box" | "path" | "polygon" | "circle"
    )
}

/// The refusal of a column of type `t`, if DSQL refuses it: (SQLSTATE, message).
pub fn column_refusal(t: &TypeName) -> Option<crate::rules::Refusal> {
    use crate::rules::{self, Refusal};
    let name = base_name(t)?;
    if is_serial(&name) {
        return Some(Refusal::new(
            rules::UNDEFINED_OBJECT,
            format!("type \"{name}\" does not exist"),
        ));
    }
    if !t.array_bounds.is_empty() {
        return Some(Refusal::new(
            rules::UNSUPPORTED,
            rules::datatype(&format!("{}[]", display(&name))),
        ));
    }
    if is_refused_column_type(&name) {
        return Some(Refusal::new(
            rules::UNSUPPORTED,
            rules::datatype(display(&name)),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_of(sql: &str) -> TypeName {
        let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).unwrap();
        let stmt = parsed.protobuf.stmts[0].stmt.as_ref().unwrap();
        let Some(N::CreateStmt(c)) = stmt.node.as_ref() else {
            panic!("not CREATE TABLE: {sql}")
        };
        match c.table_elts[0].node.as_ref() {
            Some(N::ColumnDef(col)) => col.type_name.clone().unwrap(),
            _ => panic!("no column in {sql}"),
        }
    }

    fn refusal(sql: &str) -> Option<String> {
        column_refusal(&type_of(sql)).map(|r| format!("{} {}", r.code, r.message))
    }

    #[test]
    fn recorded_type_names_are_displayed_as_postgresql_does() {
        assert_eq!(
            refusal("CREATE TABLE t (v int[])").as_deref(),
            Some("0A000 datatype integer[] not supported")
        );
        assert_eq!(
            refusal("CREATE TABLE t (v text[])").as_deref(),
            Some("0A000 datatype text[] not supported")
        );
        assert_eq!(
            refusal("CREATE TABLE t (v bit(8))").as_deref(),
            Some("0A000 datatype bit not supported")
        );
        assert_eq!(
            refusal("CREATE TABLE t (v varbit(8))").as_deref(),
            Some("0A000 datatype bit varying not supported")
        );
        assert_eq!(
            refusal("CREATE TABLE t (v serial)").as_deref(),
            Some("42704 type \"serial\" does not exist")
        );
        assert_eq!(refusal("CREATE TABLE t (v numeric)"), None);
        assert_eq!(refusal("CREATE TABLE t (v my_domain)"), None);
    }
}
