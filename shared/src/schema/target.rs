//! What of the source schema a DSQL target carries, and how it is written.
//!
//! `plan` calls [`carry_table`] for each table it maps and [`carry_rest`] once, and each
//! decision becomes a line of the [`SchemaReport`]:
//! - column defaults DSQL can evaluate are kept (casts to an enum become casts to text, since
//!   the column becomes text); a sequence default makes a rewritten key's `new_key_default`, or
//!   a bigint identity column (CACHE 1, restarted past the loaded maximum after the load);
//! - CHECK constraints whose condition DSQL can evaluate on the target's column types go into
//!   CREATE TABLE (so every loaded row is checked); NOT NULL as before;
//! - views whose query reads only migrated tables and views, and nothing DSQL lacks, are created
//!   after the load;
//! - sequences no column owns, triggers, functions, other types, extensions and comments are
//!   reported as dropped, each with what to do instead.

use super::expr::{self, Refs};
use super::report::{ReportKind, SchemaReport};
use super::{ObjectKind, SourceSchema, TableSchema};
use crate::ddl::{Kind, Statement, ident, qualified};
use crate::mapping::{
    CheckMapping, ColumnMapping, Mapping, Migration, Rewrite, TableMapping, ViewMapping,
};
use crate::types::PgType;

/// ` DEFAULT <expr>` of a target column: its own default, else a rewritten key's
/// `new_key_default`; empty when it has none.
pub fn default_clause(migration: &Migration, c: &ColumnMapping) -> String {
    let key_default = (c.rewrite == Rewrite::Key && !migration.new_key_default.trim().is_empty())
        .then_some(migration.new_key_default.as_str());
    match c.default.as_deref().or(key_default) {
        Some(d) => format!(" DEFAULT {d}"),
        None => String::new(),
    }
}

/// The `CONSTRAINT "name" CHECK (..)` lines of a CREATE TABLE.
pub fn check_clauses(t: &TableMapping) -> Vec<String> {
    t.checks
        .iter()
        .map(|c| format!("    CONSTRAINT {} CHECK ({})", ident(&c.name), c.expr))
        .collect()
}

/// The views, as the last post-load wave: one `CREATE VIEW` each (one DDL statement per
/// transaction), in the mapping's order. Running twice: an existing view answers 42P07, which
/// counts as done.
pub fn view_wave(mapping: &Mapping) -> Option<Vec<Statement>> {
    if mapping.views.is_empty() {
        return None;
    }
    Some(
        mapping
            .views
            .iter()
            .map(|v| Statement {
                what: format!("view {}.{}", v.schema, v.name),
                sql: format!(
                    "CREATE VIEW {} AS {}",
                    qualified(&v.schema, &v.name),
                    v.query
                ),
                kind: Kind::Immediate,
                table: qualified(&v.schema, &v.name),
            })
            .collect(),
    )
}

/// The target type differs from the source's in a way an expression written for the source
/// would notice (an enum becoming text is not such a change once its casts are text casts).
fn retyped(c: &ColumnMapping) -> bool {
    c.rewrite != Rewrite::None
        || !(c.source_type == c.target_type
            || matches!(
                (&c.source_type, &c.target_type),
                (PgType::Enum(_), PgType::Text)
            )
            || (c.source_type.is_integer() && c.target_type.is_integer()))
}

/// Why an expression of the source cannot stand on the target (`None`: it can), and its text for
/// the target.
fn translate(sql: &str, source: &SourceSchema, t: &TableMapping) -> Result<(String, bool), String> {
    let (text, changed) = expr::enums_to_text(sql, &source.enums)
        .ok_or_else(|| "snap2dsql cannot parse it".to_string())?;
    let refs = Refs::of_expr(&text).ok_or_else(|| "snap2dsql cannot parse it".to_string())?;
    if let Some(why) = refs.foreign_to_dsql() {
        return Err(why);
    }
    for name in &refs.columns {
        if let Some(c) = t.columns.iter().find(|c| &c.name == name)
            && retyped(c)
        {
            return Err(format!(
                "it reads column {name}, whose type changes from {} to {}",
                c.source_type, c.target_type
            ));
        }
    }
    Ok((text, changed))
}

/// Reports an expression of the source (a DEFAULT or a CHECK condition) as carried, changed or
/// dropped, and returns its text for the target when it is kept.
fn carry_expr(
    report: &mut SchemaReport,
    kind: ReportKind,
    what: String,
    sql: &str,
    clause: &str,
    source: &SourceSchema,
    t: &TableMapping,
) -> Option<String> {
    match translate(sql, source, t) {
        Ok((text, true)) => {
            report.changed(
                kind,
                what,
                format!("{clause} ({text}): the enum became text"),
            );
            Some(text)
        }
        Ok((text, false)) => {
            report.carried(kind, what);
            Some(text)
        }
        Err(why) => {
            let todo = if kind == ReportKind::ColumnDefault {
                EDIT_DEFAULT
            } else {
                EDIT_CHECK
            };
            report.dropped(kind, what, why, todo);
            None
        }
    }
}

const EDIT_DEFAULT: &str = "set `default` on the column in mapping.toml to an expression DSQL accepts, or set it in the application";
const EDIT_CHECK: &str =
    "add a [[table.check]] in mapping.toml with a condition DSQL accepts on the target's types";

/// Carries one table's defaults, identities and checks into its mapping, and reports on its
/// columns' defaults, its constraints and its indexes.
pub fn carry_table(
    source: &SourceSchema,
    ts: &TableSchema,
    t: &mut TableMapping,
    new_key_default: &str,
    report: &mut SchemaReport,
) {
    let q = t.source.clone();
    let snapshot = t.clone();
    for c in &mut t.columns {
        let Some(declared) = ts.columns.iter().find(|d| d.name == c.name) else {
            continue;
        };
        let name = format!("{q}.{}", c.name);
        if declared.serial {
            let what = format!("{name} (sequence)");
            if c.rewrite == Rewrite::Key {
                if new_key_default.trim().is_empty() {
                    report.dropped(
                        ReportKind::ColumnDefault,
                        what,
                        "the integer key becomes a uuid and new_key_default is empty",
                        "new rows must bring their own uuid key",
                    );
                } else {
                    report.changed(ReportKind::ColumnDefault, what, format!("the integer key becomes a uuid: new rows get DEFAULT {new_key_default} (new_key_default)"));
                }
            } else if c.rewrite == Rewrite::None
                && c.source_type.is_integer()
                && c.target_type.is_integer()
            {
                c.identity = true;
                c.target_type = PgType::BigInt;
                c.default = None;
                c.note = Some("sequence -> bigint identity".into());
                report.changed(ReportKind::ColumnDefault, what, "bigint GENERATED BY DEFAULT AS IDENTITY (CACHE 1), restarted past the largest loaded value after the load");
            } else {
                report.dropped(
                    ReportKind::ColumnDefault,
                    what,
                    format!(
                        "a sequence on a {} column that becomes {}",
                        c.source_type, c.target_type
                    ),
                    "give new rows their value in the application",
                );
            }
        } else if let Some(d) = &declared.default {
            let what = format!("{name} DEFAULT {d}");
            let carried = carry_expr(
                report,
                ReportKind::ColumnDefault,
                what,
                d,
                "DEFAULT",
                source,
                &snapshot,
            );
            c.default = carried;
        }
        if let Some(g) = &declared.generated {
            report.changed(ReportKind::ColumnDefault, format!("{name} GENERATED ALWAYS AS ({g}) STORED"), "loaded as a plain column holding the source's values: DSQL's generated columns are not recorded (dsql-recorded.md); compute it in the application");
        }
        if declared.not_null {
            report.carried(ReportKind::Constraint, format!("{name} NOT NULL"));
        }
    }

    if !ts.primary_key.is_empty() {
        let what = format!("{q} PRIMARY KEY ({})", ts.primary_key.join(", "));
        match t.key_column() {
            Some(k) => report.changed(
                ReportKind::Constraint,
                what,
                format!(
                    "{} becomes a deterministic uuid, the old value kept in {}",
                    k.name,
                    k.keep_old.as_deref().unwrap_or("no column")
                ),
            ),
            None => report.carried(ReportKind::Constraint, what),
        }
    }
    for u in &ts.unique {
        let what = format!("{q} UNIQUE ({})", u.join(", "));
        if *u == ts.primary_key {
            report.carried(ReportKind::Constraint, what);
        } else if t.indexes.iter().any(|ix| ix.unique && ix.columns == *u) {
            report.changed(
                ReportKind::Constraint,
                what,
                "a UNIQUE index built after the load (CREATE UNIQUE INDEX ASYNC)",
            );
        } else {
            report.changed(
                ReportKind::Constraint,
                what,
                "enforced by an index on the same columns built after the load",
            );
        }
    }
    for fk in &ts.foreign_keys {
        let what = format!(
            "{q} {} FOREIGN KEY ({}) REFERENCES {}",
            fk.name,
            fk.columns.join(", "),
            fk.ref_table
        );
        if t.foreign_keys.iter().any(|f| f.name == fk.name) {
            report.changed(ReportKind::Constraint, what, "kept in mapping.toml: added NOT VALID and validated after the load when migration.foreign_keys = true (off by default: loads are faster without)");
        } else {
            report.dropped(
                ReportKind::Constraint,
                what,
                format!("{} is not migrated", fk.ref_table),
                "migrate the referenced table too, or enforce the reference in the application",
            );
        }
    }
    for check in &ts.checks {
        let what = format!("{q} {} CHECK ({})", check.name, check.expr);
        if !check.valid {
            report.dropped(ReportKind::Constraint, what, "NOT VALID in the source: loaded rows may violate it", "after the load: ALTER TABLE .. ADD CONSTRAINT .. CHECK (..) NOT VALID (DSQL accepts that form)");
            continue;
        }
        if let Some(text) = carry_expr(
            report,
            ReportKind::Constraint,
            what,
            &check.expr,
            "CHECK",
            source,
            &snapshot,
        ) {
            t.checks.push(CheckMapping {
                name: check.name.clone(),
                expr: text,
            });
        }
    }
    for ix in &ts.indexes {
        let what = format!("{q} {}", ix.name);
        if !ix.plain {
            report.dropped(ReportKind::Index, what, "it has expressions, a predicate, INCLUDE columns, a sort order, an operator class or a non-btree method, which snap2dsql does not carry", "after the load, CREATE INDEX ASYNC it by hand in a form DSQL accepts (btree; expressions, WHERE and INCLUDE are accepted)");
        } else if t
            .indexes
            .iter()
            .any(|i| i.reason.as_deref() == Some(&format!("source index {}", ix.name)))
        {
            report.changed(
                ReportKind::Index,
                what,
                "built after the load (CREATE INDEX ASYNC)",
            );
        } else {
            report.carried(
                ReportKind::Index,
                format!("{what} (same columns as the key or another index)"),
            );
        }
    }
    let converted = t
        .columns
        .iter()
        .filter(|c| c.source_type != c.target_type)
        .count();
    if converted == 0 {
        report.carried(ReportKind::Table, q);
    } else {
        report.changed(
            ReportKind::Table,
            q,
            format!("{converted} column type(s) change: see the mapping's notes"),
        );
    }
}

/// Reports on the views and the objects no table holds, and returns the views to create after
/// the load, each after the views it reads.
pub fn carry_rest(
    source: &SourceSchema,
    tables: &[TableMapping],
    report: &mut SchemaReport,
) -> Vec<ViewMapping> {
    let mut views: Vec<ViewMapping> = Vec::new();
    let mut pending: Vec<_> = source.views.iter().collect();
    loop {
        let before = pending.len();
        pending.retain(|v| {
            let refs = Refs::of_query(&v.query).unwrap_or_default();
            let known = |r: &String| {
                tables.iter().any(|t| &t.source == r)
                    || views
                        .iter()
                        .any(|w| &format!("{}.{}", w.schema, w.name) == r)
            };
            if !refs.relations.iter().all(known) {
                return true;
            }
            let (schema, name) = v.name.split_once('.').unwrap_or(("public", &v.name));
            match refs.foreign_to_dsql() {
                Some(why) => report.dropped(
                    ReportKind::View,
                    &v.name,
                    why,
                    "rewrite the view for DSQL and create it by hand after the load",
                ),
                None => {
                    report.carried(
                        ReportKind::View,
                        format!("{} (created after the load)", v.name),
                    );
                    views.push(ViewMapping {
                        schema: schema.into(),
                        name: name.into(),
                        query: v.query.clone(),
                    });
                }
            }
            false
        });
        if pending.len() == before {
            break;
        }
    }
    for v in pending {
        let missing: Vec<String> = Refs::of_query(&v.query)
            .unwrap_or_default()
            .relations
            .into_iter()
            .filter(|r| {
                !tables.iter().any(|t| &t.source == r)
                    && !views
                        .iter()
                        .any(|w| &format!("{}.{}", w.schema, w.name) == r)
            })
            .collect();
        report.dropped(
            ReportKind::View,
            &v.name,
            format!("it reads {}, not migrated", missing.join(", ")),
            "migrate what it reads, or create it by hand after the load",
        );
    }
    for name in source.enums.keys() {
        report.changed(
            ReportKind::Type,
            format!("{name} (enum)"),
            "DSQL has no enums: its columns become text, and plan checks the labels",
        );
    }
    for o in &source.objects {
        let (kind, why, todo) = match o.kind {
            ObjectKind::MaterializedView => (
                ReportKind::View,
                "a materialized view: DSQL has none (CREATE TABLE AS is refused too)".to_string(),
                "create a plain view or a table filled by the application",
            ),
            ObjectKind::Sequence => (
                ReportKind::Sequence,
                "no column owns it, and the export holds no sequence values".to_string(),
                "CREATE SEQUENCE .. CACHE 1 (DSQL needs CACHE 1 or >= 65536) START WITH a value past the source's last_value",
            ),
            ObjectKind::Trigger => (
                ReportKind::Trigger,
                format!("DSQL has no triggers (it {})", o.detail),
                "move the logic into the application",
            ),
            ObjectKind::Function if o.detail == "language sql" => (
                ReportKind::Function,
                "functions are not migrated".to_string(),
                "DSQL accepts LANGUAGE sql functions: recreate it by hand",
            ),
            ObjectKind::Function => (
                ReportKind::Function,
                format!(
                    "DSQL refuses functions other than LANGUAGE sql ({})",
                    o.detail
                ),
                "move the logic into the application",
            ),
            ObjectKind::Type if o.detail == "domain" => (
                ReportKind::Type,
                "types are not migrated: its columns get the base type's mapping".to_string(),
                "DSQL accepts CREATE DOMAIN: recreate it by hand if its CHECK matters",
            ),
            ObjectKind::Type => (
                ReportKind::Type,
                format!("DSQL refuses CREATE TYPE ({})", o.detail),
                "its columns are loaded as text",
            ),
            ObjectKind::Extension => (
                ReportKind::Extension,
                "DSQL has no extensions".to_string(),
                "replace what your tables use from it (gen_random_uuid() is built in)",
            ),
            ObjectKind::Comment => (
                ReportKind::Comment,
                format!(
                    "COMMENT ON is neither recorded nor documented for DSQL: {:?}",
                    o.detail
                ),
                "keep it in your documentation, or try COMMENT ON on your cluster by hand",
            ),
        };
        report.dropped(kind, &o.name, why, todo);
    }
    views
}
