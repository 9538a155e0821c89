//! Reading the source schema from a live database's `pg_catalog`.
//!
//! The queries mirror what `pg_dump --schema-only` writes, so that the result equals
//! [`SourceSchema::from_ddl`](super::SourceSchema::from_ddl) of a dump of the same database:
//! tables that belong to an extension are left out (pg_dump leaves them to CREATE EXTENSION),
//! indexes behind a constraint are the constraint's, and foreign keys a partition inherits
//! from its partitioned table are left to the partitioned table (pg_dump writes them once).

use super::{
    CheckDef, ColumnSchema, ForeignKey, IndexDef, ObjectKind, SchemaObject, SourceSchema,
    TableSchema, ViewDef, expr, qualify,
};
use crate::error::{Error, Result};
use crate::types::PgType;
use std::collections::BTreeMap;

/// The schemas that hold no user tables.
const USER_SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') \
     AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'";

/// Connects to the source database ([`crate::db::connect_source`]: TLS verified when the URL
/// says `sslmode=require`, plain TCP otherwise).
pub(super) async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    crate::db::connect_source(url).await
}

/// Reads every user table of the connected database (order-free lists not yet sorted). Leaves
/// the session's search_path empty.
pub(super) async fn read(
    client: &tokio_postgres::Client,
    source_name: &str,
) -> Result<SourceSchema> {
    let query = |what: &str| format!("source schema {source_name}: read {what}");
    let mut schema = SourceSchema::default();
    // As pg_dump does: with an empty search_path, pg_get_expr and pg_get_viewdef qualify every
    // name outside pg_catalog, so a user's function or type is recognisable as such.
    client
        .batch_execute("SELECT pg_catalog.set_config('search_path', '', false)")
        .await
        .map_err(|e| Error::db(query("(set search_path)"), e))?;

    let rows = client
        .query(
            &format!(
                "SELECT n.nspname, t.typname, e.enumlabel::text
                 FROM pg_catalog.pg_type t
                 JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
                 JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid
                 WHERE {USER_SCHEMAS}
                 ORDER BY n.nspname, t.typname, e.enumsortorder"
            ),
            &[],
        )
        .await
        .map_err(|e| Error::db(query("enum types"), e))?;
    for row in rows {
        let name = qualify(row.get(0), row.get(1));
        schema.enums.entry(name).or_default().push(row.get(2));
    }

    let rows = client
        .query(
            &format!(
                "SELECT c.oid, n.nspname, c.relname
                 FROM pg_catalog.pg_class c
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMAS}
                   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                                   WHERE d.classid = 'pg_catalog.pg_class'::regclass
                                     AND d.objid = c.oid AND d.deptype = 'e')"
            ),
            &[],
        )
        .await
        .map_err(|e| Error::db(query("tables"), e))?;
    // Keyed by oid while the other catalogs refer to tables by oid.
    let mut tables: BTreeMap<u32, (String, TableSchema)> = rows
        .iter()
        .map(|row| {
            (
                row.get(0),
                (qualify(row.get(1), row.get(2)), TableSchema::default()),
            )
        })
        .collect();

    let rows = client
        .query(
            "SELECT a.attrelid, a.attname,
                    pg_catalog.format_type(a.atttypid, a.atttypmod),
                    (t.typcategory = 'A' AND t.typelem <> 0) AS is_array,
                    bt.typtype::text, bn.nspname, bt.typname,
                    a.attnotnull, a.attidentity IN ('a', 'd') AS identity,
                    pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attgenerated::text
             FROM pg_catalog.pg_attribute a
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p')
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
             JOIN pg_catalog.pg_type bt ON bt.oid = CASE
                 WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN t.typelem ELSE t.oid END
             JOIN pg_catalog.pg_namespace bn ON bn.oid = bt.typnamespace
             LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attrelid, a.attnum",
            &[],
        )
        .await
        .map_err(|e| Error::db(query("columns"), e))?;
    let enums = schema.enums.clone();
    for row in rows {
        let Some((_, t)) = tables.get_mut(&row.get::<_, u32>(0)) else {
            continue;
        };
        let default: Option<String> = row.get(9);
        let generated = !row.get::<_, &str>(10).is_empty();
        let nextval = default
            .as_deref()
            .is_some_and(super::ddl::default_is_nextval);
        let canonical = default.as_deref().and_then(expr::canonical);
        t.columns.push(ColumnSchema {
            name: row.get(1),
            data_type: column_type(
                row.get(2),
                row.get(3),
                row.get(4),
                row.get(5),
                row.get(6),
                &enums,
            ),
            not_null: row.get(7),
            serial: row.get::<_, bool>(8) || nextval,
            default: canonical.clone().filter(|_| !generated && !nextval),
            generated: canonical.filter(|_| generated),
        });
    }

    let rows = client
        .query(
            "SELECT con.conrelid, con.conname, con.contype::text,
                    ARRAY(SELECT a.attname::text
                          FROM unnest(con.conkey) WITH ORDINALITY k(attnum, i)
                          JOIN pg_catalog.pg_attribute a
                            ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                          ORDER BY k.i),
                    rn.nspname, rc.relname,
                    ARRAY(SELECT a.attname::text
                          FROM unnest(con.confkey) WITH ORDINALITY k(attnum, i)
                          JOIN pg_catalog.pg_attribute a
                            ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                          ORDER BY k.i),
                    CASE WHEN con.contype = 'c'
                         THEN pg_catalog.pg_get_expr(con.conbin, con.conrelid) END,
                    con.convalidated
             FROM pg_catalog.pg_constraint con
             LEFT JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
             LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
             WHERE con.contype IN ('p', 'u')
                OR (con.contype = 'f' AND con.conparentid = 0)
                OR (con.contype = 'c' AND con.conislocal)
             ORDER BY con.conrelid, con.conname",
            &[],
        )
        .await
        .map_err(|e| Error::db(query("constraints"), e))?;
    for row in rows {
        let Some((_, t)) = tables.get_mut(&row.get::<_, u32>(0)) else {
            continue;
        };
        let columns: Vec<String> = row.get(3);
        match row.get::<_, &str>(2) {
            "p" => t.primary_key = columns,
            "u" => t.unique.push(columns),
            "c" => {
                let (Some(condition), valid) = (row.get::<_, Option<&str>>(7), row.get(8)) else {
                    continue;
                };
                if let Some(expr) = expr::canonical(condition) {
                    t.checks.push(CheckDef {
                        name: row.get(1),
                        expr,
                        valid,
                    });
                }
            }
            _ => {
                let (Some(ns), Some(rel)) = (row.get::<_, Option<&str>>(4), row.get(5)) else {
                    continue;
                };
                t.foreign_keys.push(ForeignKey {
                    name: row.get(1),
                    columns,
                    ref_table: qualify(ns, rel),
                    ref_columns: row.get(6),
                });
            }
        }
    }

    let rows = client
        .query(
            "SELECT i.indrelid, ic.relname, i.indisunique,
                    ARRAY(SELECT a.attname::text
                          FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, o)
                          JOIN pg_catalog.pg_attribute a
                            ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                          WHERE k.o <= i.indnkeyatts
                          ORDER BY k.o),
                    am.amname = 'btree'
                      AND i.indexprs IS NULL AND i.indpred IS NULL
                      AND i.indnatts = i.indnkeyatts
                      AND NOT EXISTS (SELECT 1 FROM unnest(i.indoption::int2[]) o WHERE o <> 0)
                      AND NOT EXISTS (SELECT 1 FROM unnest(i.indclass::oid[]) k(opc)
                                      JOIN pg_catalog.pg_opclass oc ON oc.oid = k.opc
                                      WHERE NOT oc.opcdefault)
                      AND NOT EXISTS (SELECT 1
                                      FROM unnest(i.indkey::int2[], i.indcollation::oid[]) k(attnum, coll)
                                      JOIN pg_catalog.pg_attribute a
                                        ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                                      WHERE k.coll <> a.attcollation)
             FROM pg_catalog.pg_index i
             JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
             JOIN pg_catalog.pg_am am ON am.oid = ic.relam
             WHERE (i.indisvalid OR ic.relkind = 'I')
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con
                               WHERE con.conrelid = i.indrelid AND con.conindid = i.indexrelid
                                 AND con.contype IN ('p', 'u', 'x'))",
            &[],
        )
        .await
        .map_err(|e| Error::db(query("indexes"), e))?;
    for row in rows {
        let Some((_, t)) = tables.get_mut(&row.get::<_, u32>(0)) else {
            continue;
        };
        t.indexes.push(IndexDef {
            name: row.get(1),
            columns: row.get(3),
            unique: row.get(2),
            plain: row.get(4),
        });
    }
    schema.tables = tables.into_values().collect();
    read_objects(client, &query, &mut schema).await?;
    Ok(schema)
}

/// Not an extension's member: pg_dump leaves those to CREATE EXTENSION, and so does the report.
fn not_in_extension(class: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend dep
                     WHERE dep.classid = '{class}'::regclass AND dep.objid = {oid}
                       AND dep.deptype = 'e')"
    )
}

/// Views, sequences no column owns, triggers, functions, types other than enums, extensions, and
/// comments on tables, views and columns: what a pg_dump of the database writes of them.
async fn read_objects(
    client: &tokio_postgres::Client,
    query: &dyn Fn(&str) -> String,
    schema: &mut SourceSchema,
) -> Result<()> {
    let rows = |what: &'static str, sql: String| async move {
        client
            .query(&sql, &[])
            .await
            .map_err(|e| Error::db(query(what), e))
    };
    let class = not_in_extension("pg_catalog.pg_class", "c.oid");
    for row in rows(
        "views",
        format!(
            "SELECT n.nspname, c.relname, pg_catalog.pg_get_viewdef(c.oid)
             FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'v' AND {USER_SCHEMAS} AND {class}"
        ),
    )
    .await?
    {
        if let Some(query) = expr::canonical_query(row.get(2)) {
            schema.views.push(ViewDef {
                name: qualify(row.get(0), row.get(1)),
                query,
            });
        }
    }
    let mut objects = Vec::new();
    let mut push =
        |kind, name: String, detail: String| objects.push(SchemaObject { kind, name, detail });
    for row in rows(
        "materialized views and sequences",
        format!(
            "SELECT n.nspname, c.relname, c.relkind::text
             FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE {USER_SCHEMAS} AND {class}
               AND (c.relkind = 'm'
                    OR (c.relkind = 'S'
                        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                                        WHERE d.classid = 'pg_catalog.pg_class'::regclass
                                          AND d.objid = c.oid AND d.deptype IN ('a', 'i')
                                          AND d.refclassid = 'pg_catalog.pg_class'::regclass)))"
        ),
    )
    .await?
    {
        let kind = match row.get::<_, &str>(2) {
            "m" => ObjectKind::MaterializedView,
            _ => ObjectKind::Sequence,
        };
        push(kind, qualify(row.get(0), row.get(1)), String::new());
    }
    for row in rows(
        "triggers",
        format!(
            "SELECT n.nspname, c.relname, t.tgname, pn.nspname, p.proname
             FROM pg_catalog.pg_trigger t
             JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
             JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
             WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND {USER_SCHEMAS} AND {class}"
        ),
    )
    .await?
    {
        let table = qualify(row.get(0), row.get(1));
        push(
            ObjectKind::Trigger,
            format!("{table}.{}", row.get::<_, &str>(2)),
            format!("runs {}", qualify(row.get(3), row.get(4))),
        );
    }
    let proc = not_in_extension("pg_catalog.pg_proc", "p.oid");
    for row in rows(
        "functions",
        format!(
            "SELECT n.nspname, p.proname, l.lanname
             FROM pg_catalog.pg_proc p
             JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
             JOIN pg_catalog.pg_language l ON l.oid = p.prolang
             WHERE p.prokind IN ('f', 'p') AND {USER_SCHEMAS} AND {proc}"
        ),
    )
    .await?
    {
        push(
            ObjectKind::Function,
            qualify(row.get(0), row.get(1)),
            format!("language {}", row.get::<_, &str>(2)),
        );
    }
    let typ = not_in_extension("pg_catalog.pg_type", "t.oid");
    for row in rows(
        "types",
        format!(
            "SELECT n.nspname, t.typname,
                    CASE t.typtype WHEN 'd' THEN 'domain' WHEN 'r' THEN 'range'
                                   ELSE 'composite' END
             FROM pg_catalog.pg_type t
             JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
             LEFT JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
             WHERE (t.typtype IN ('d', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
               AND {USER_SCHEMAS} AND {typ}"
        ),
    )
    .await?
    {
        push(
            ObjectKind::Type,
            qualify(row.get(0), row.get(1)),
            row.get(2),
        );
    }
    for row in rows(
        "extensions",
        format!(
            "SELECT extname FROM pg_catalog.pg_extension WHERE extname <> '{}'",
            super::ddl::BUILT_IN_EXTENSION
        ),
    )
    .await?
    {
        push(ObjectKind::Extension, row.get(0), String::new());
    }
    for row in rows(
        "comments",
        format!(
            "SELECT n.nspname, c.relname, c.relkind::text, a.attname::text, d.description
             FROM pg_catalog.pg_description d
             JOIN pg_catalog.pg_class c ON c.oid = d.objoid
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_catalog.pg_attribute a
               ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
             WHERE d.classoid = 'pg_catalog.pg_class'::regclass
               AND c.relkind IN ('r', 'p', 'v') AND {USER_SCHEMAS} AND {class}"
        ),
    )
    .await?
    {
        let relation = qualify(row.get(0), row.get(1));
        let on = match (row.get::<_, Option<&str>>(3), row.get::<_, &str>(2)) {
            (Some(column), _) => format!("column {relation}.{column}"),
            (None, "v") => format!("view {relation}"),
            (None, _) => format!("table {relation}"),
        };
        push(ObjectKind::Comment, on, row.get(4));
    }
    schema.objects = objects;
    Ok(())
}

/// A column's type from the catalog, spelled the way the DDL reader spells the same type:
/// built-in types by `format_type`, enums by their qualified name, other user-defined types as
/// `schema.name` plus modifiers.
fn column_type(
    formatted: String,
    is_array: bool,
    kind: &str,
    schema: &str,
    name: &str,
    enums: &BTreeMap<String, Vec<String>>,
) -> PgType {
    let qualified = qualify(schema, name);
    let base = if kind == "e" && enums.contains_key(&qualified) {
        PgType::Enum(qualified)
    } else if schema == "pg_catalog" {
        if name == "interval" {
            // `interval day to second(3)`: fields are not part of the model.
            PgType::Interval
        } else {
            return PgType::parse(&formatted).unwrap_or(PgType::Other(formatted));
        }
    } else {
        let scalar = formatted.strip_suffix("[]").unwrap_or(&formatted);
        let mods = match scalar.rfind('(') {
            Some(open) if scalar.ends_with(')') => &scalar[open..],
            _ => "",
        };
        PgType::Other(format!("{qualified}{mods}"))
    };
    if is_array {
        PgType::Array(Box::new(base))
    } else {
        base
    }
}
