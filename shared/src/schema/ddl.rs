//! Reading the source schema from DDL text, with PostgreSQL's own parser (`pg_query`).
//!
//! The parse tree is walked twice: first for the types (enums and other user-defined types, so
//! that column types can be resolved whatever the statement order), then for tables, constraints
//! and indexes, then for the other objects the schema report covers (views, sequences not owned
//! by a column, triggers, functions, types, extensions, comments on tables, views and columns).
//! Statements that shape nothing the migration or its report needs (SET, OWNER, GRANT...) are
//! skipped, as are statements about tables the DDL never creates.
//!
//! A dump with data is read too: each `COPY .. FROM stdin;` block, up to its `\.` line, is blanked
//! before parsing (line numbers in errors stay right).

use super::{
    CheckDef, ColumnSchema, ForeignKey, IndexDef, ObjectKind, SchemaObject, SourceSchema,
    TableSchema, ViewDef, expr, qualify, resolve_enum,
};
use crate::error::{Error, Result};
use crate::types::PgType;
use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterTableCmd, AlterTableType, ColumnDef, ConstrType, Constraint, CreateStmt, IndexStmt,
    ObjectType, RangeVar, SortByDir, SortByNulls, TypeName,
};
use std::collections::{BTreeMap, BTreeSet};

/// The procedural language every database has: pg_dump does not write it, the catalog reader
/// leaves it out, and the report has nothing to say about it.
pub(super) const BUILT_IN_EXTENSION: &str = "plpgsql";

/// Schema of unqualified names, as in a default `search_path`.
const DEFAULT_SCHEMA: &str = "public";
/// PostgreSQL's identifier limit in bytes (NAMEDATALEN - 1), used for default names.
const MAX_IDENTIFIER: usize = 63;

/// A table while the DDL is read: columns keep the flags `serial` is made of.
#[derive(Default)]
struct TableBuild {
    columns: Vec<ColumnBuild>,
    parents: Vec<String>,
    schema: TableSchema,
}

struct ColumnBuild {
    name: String,
    /// `None` for a column that only adds options to an inherited one (`PARTITION OF`).
    data_type: Option<PgType>,
    not_null: bool,
    nextval: bool,
    identity: bool,
    default: Option<String>,
    generated: Option<String>,
}

#[derive(Default)]
struct Builder {
    tables: BTreeMap<String, TableBuild>,
    enums: BTreeMap<String, Vec<String>>,
    /// Qualified names of every type the DDL creates (enums, domains, composites, ranges).
    user_types: BTreeSet<String>,
    views: Vec<ViewDef>,
    /// Sequences the DDL creates, and those a column owns (`ALTER SEQUENCE .. OWNED BY`).
    sequences: BTreeSet<String>,
    owned_sequences: BTreeSet<String>,
    objects: Vec<SchemaObject>,
}

/// Blanks psql meta-commands (`\restrict KEY` of pg_dump 15+) and the data of `COPY .. FROM
/// stdin;` blocks, keeping every line so that line numbers stay right.
fn strip_data(sql: &str) -> String {
    let mut out = Vec::new();
    let mut in_copy = false;
    for line in sql.lines() {
        if in_copy {
            in_copy = line != "\\.";
            out.push("");
        } else if line.starts_with('\\') {
            out.push("");
        } else if line.starts_with("COPY ") && line.trim_end().ends_with("FROM stdin;") {
            in_copy = true;
            out.push("");
        } else {
            out.push(line);
        }
    }
    out.join("\n")
}

/// Parses `sql` and builds the schema it describes (order-free lists not yet sorted).
pub(super) fn parse(sql: &str, source_name: &str) -> Result<SourceSchema> {
    let sql = strip_data(sql);
    let parsed =
        pg_query::parse(&sql, pg_query::ParserOptions::DEFAULT).map_err(|e| Error::Schema {
            source_name: source_name.to_string(),
            reason: syntax_error(&sql, e),
        })?;
    let stmts: Vec<&NodeEnum> = parsed
        .protobuf
        .stmts
        .iter()
        .filter_map(|raw| raw.stmt.as_ref().and_then(|s| s.node.as_ref()))
        .collect();
    let mut b = Builder::default();
    for stmt in &stmts {
        b.collect_type(stmt);
    }
    for stmt in &stmts {
        b.statement(stmt);
    }
    b.finish(source_name)
}

/// pg_query's message, with the line of the first statement that does not parse when it can
/// be found.
fn syntax_error(sql: &str, e: pg_query::Error) -> String {
    let message = match e {
        pg_query::Error::Parse(m) => m,
        other => other.to_string(),
    };
    let Ok(pieces) = pg_query::split_with_scanner(sql) else {
        return message;
    };
    for piece in pieces {
        if pg_query::parse(piece, pg_query::ParserOptions::DEFAULT).is_ok() {
            continue;
        }
        // `piece` is a slice of `sql`: its offset locates it.
        let start = piece.as_ptr() as usize - sql.as_ptr() as usize;
        let lead = piece.len() - piece.trim_start().len();
        let line = sql[..start + lead].matches('\n').count() + 1;
        return format!("statement at line {line}: {message}");
    }
    message
}

/// True when a DEFAULT expression takes its values from a sequence: a `nextval(...)` call,
/// possibly behind casts.
fn is_nextval(node: &pg_query::Node) -> bool {
    match &node.node {
        Some(NodeEnum::FuncCall(f)) => f
            .funcname
            .last()
            .and_then(string_of)
            .is_some_and(|n| n == "nextval"),
        Some(NodeEnum::TypeCast(c)) => c.arg.as_deref().is_some_and(is_nextval),
        _ => false,
    }
}

/// [`is_nextval`] for an expression in SQL text, as `pg_get_expr` prints a column default.
pub(super) fn default_is_nextval(expr: &str) -> bool {
    let Ok(parsed) = pg_query::parse(&format!("SELECT {expr}"), pg_query::ParserOptions::DEFAULT)
    else {
        return false;
    };
    let Some(NodeEnum::SelectStmt(select)) = parsed
        .protobuf
        .stmts
        .first()
        .and_then(|raw| raw.stmt.as_ref())
        .and_then(|s| s.node.as_ref())
    else {
        return false;
    };
    match select.target_list.as_slice() {
        [target] => match &target.node {
            Some(NodeEnum::ResTarget(t)) => t.val.as_deref().is_some_and(is_nextval),
            _ => false,
        },
        _ => false,
    }
}

fn string_of(node: &pg_query::Node) -> Option<&str> {
    match &node.node {
        Some(NodeEnum::String(s)) => Some(&s.sval),
        _ => None,
    }
}

fn strings(nodes: &[pg_query::Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(string_of)
        .map(str::to_string)
        .collect()
}

/// `"schema.name"` of a possibly qualified name list (`[name]`, `[schema, name]`, or with a
/// database in front).
fn qualified_list(names: &[String]) -> Option<String> {
    match names {
        [name] => Some(qualify(DEFAULT_SCHEMA, name)),
        [.., schema, name] => Some(qualify(schema, name)),
        [] => None,
    }
}

fn relation_name(rv: &RangeVar) -> String {
    let schema = if rv.schemaname.is_empty() {
        DEFAULT_SCHEMA
    } else {
        &rv.schemaname
    };
    qualify(schema, &rv.relname)
}

/// PostgreSQL's `makeObjectName`: `name1_name2_label`, shortening the longer of the first two
/// parts until the whole fits in an identifier.
pub(super) fn object_name(name1: &str, name2: &str, label: &str) -> String {
    let overhead = label.len() + 1 + usize::from(!name2.is_empty());
    let avail = MAX_IDENTIFIER.saturating_sub(overhead);
    let (mut n1, mut n2) = (name1.len(), name2.len());
    while n1 + n2 > avail {
        if n1 > n2 {
            n1 -= 1;
        } else {
            n2 -= 1;
        }
    }
    let clip = |s: &str, mut n: usize| {
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        s[..n].to_string()
    };
    let mut name = clip(name1, n1);
    if !name2.is_empty() {
        name.push('_');
        name.push_str(&clip(name2, n2));
    }
    name.push('_');
    name.push_str(label);
    name
}

/// The bare table name of a `"schema.table"` key.
fn bare(qualified: &str) -> &str {
    qualified.split_once('.').map_or(qualified, |(_, t)| t)
}

impl Builder {
    /// First pass: type definitions.
    fn collect_type(&mut self, stmt: &NodeEnum) {
        match stmt {
            NodeEnum::CreateEnumStmt(s) => {
                if let Some(name) = qualified_list(&strings(&s.type_name)) {
                    self.user_types.insert(name.clone());
                    self.enums.insert(name, strings(&s.vals));
                }
            }
            NodeEnum::AlterEnumStmt(s) => {
                let Some(labels) =
                    qualified_list(&strings(&s.type_name)).and_then(|n| self.enums.get_mut(&n))
                else {
                    return;
                };
                if !s.old_val.is_empty() {
                    // RENAME VALUE old TO new
                    if let Some(l) = labels.iter_mut().find(|l| **l == s.old_val) {
                        l.clone_from(&s.new_val);
                    }
                } else if !labels.contains(&s.new_val) {
                    let at = labels
                        .iter()
                        .position(|l| *l == s.new_val_neighbor)
                        .map(|i| i + usize::from(s.new_val_is_after))
                        .unwrap_or(labels.len());
                    labels.insert(at, s.new_val.clone());
                }
            }
            NodeEnum::CreateDomainStmt(s) => {
                self.user_types
                    .extend(qualified_list(&strings(&s.domainname)));
            }
            NodeEnum::CreateRangeStmt(s) => {
                self.user_types
                    .extend(qualified_list(&strings(&s.type_name)));
            }
            NodeEnum::CompositeTypeStmt(s) => {
                if let Some(rv) = &s.typevar {
                    self.user_types.insert(relation_name(rv));
                }
            }
            _ => {}
        }
    }

    /// Second pass: tables, constraints, defaults and indexes.
    fn statement(&mut self, stmt: &NodeEnum) {
        match stmt {
            NodeEnum::CreateStmt(s) => self.create_table(s),
            NodeEnum::AlterTableStmt(s) if s.objtype() == ObjectType::ObjectTable => {
                let Some(rv) = &s.relation else { return };
                let table = relation_name(rv);
                for cmd in &s.cmds {
                    if let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node {
                        self.alter_table(&table, cmd);
                    }
                }
            }
            NodeEnum::IndexStmt(s) => self.create_index(s),
            other => self.other_object(other),
        }
    }

    /// Views, sequences, triggers, functions, types, extensions and comments.
    fn other_object(&mut self, stmt: &NodeEnum) {
        let mut object = |kind: ObjectKind, name: String, detail: String| {
            self.objects.push(SchemaObject { kind, name, detail });
        };
        match stmt {
            NodeEnum::ViewStmt(s) => {
                if let (Some(rv), Some(query)) = (&s.view, s.query.as_deref())
                    && let Some(query) = expr::canonical_query_node(query)
                {
                    let name = relation_name(rv);
                    self.views.retain(|v| v.name != name);
                    self.views.push(ViewDef { name, query });
                }
            }
            NodeEnum::CreateTableAsStmt(s) if s.objtype() == ObjectType::ObjectMatview => {
                if let Some(rv) = s.into.as_ref().and_then(|i| i.rel.as_ref()) {
                    object(
                        ObjectKind::MaterializedView,
                        relation_name(rv),
                        String::new(),
                    );
                }
            }
            NodeEnum::CreateSeqStmt(s) => {
                if let Some(rv) = &s.sequence {
                    self.sequences.insert(relation_name(rv));
                    if owns(&s.options) {
                        self.owned_sequences.insert(relation_name(rv));
                    }
                }
            }
            NodeEnum::AlterSeqStmt(s) => {
                if let Some(rv) = &s.sequence
                    && owns(&s.options)
                {
                    self.owned_sequences.insert(relation_name(rv));
                }
            }
            NodeEnum::CreateTrigStmt(s) => {
                if let Some(rv) = &s.relation {
                    let function = qualified_list(&strings(&s.funcname)).unwrap_or_default();
                    object(
                        ObjectKind::Trigger,
                        format!("{}.{}", relation_name(rv), s.trigname),
                        format!("runs {function}"),
                    );
                }
            }
            NodeEnum::CreateFunctionStmt(s) => {
                if let Some(name) = qualified_list(&strings(&s.funcname)) {
                    let language = s
                        .options
                        .iter()
                        .filter_map(|o| match &o.node {
                            Some(NodeEnum::DefElem(d)) if d.defname == "language" => {
                                d.arg.as_deref().and_then(string_of)
                            }
                            _ => None,
                        })
                        .next()
                        .unwrap_or("sql");
                    object(ObjectKind::Function, name, format!("language {language}"));
                }
            }
            NodeEnum::CreateDomainStmt(s) => {
                if let Some(name) = qualified_list(&strings(&s.domainname)) {
                    object(ObjectKind::Type, name, "domain".into());
                }
            }
            NodeEnum::CompositeTypeStmt(s) => {
                if let Some(rv) = &s.typevar {
                    object(ObjectKind::Type, relation_name(rv), "composite".into());
                }
            }
            NodeEnum::CreateRangeStmt(s) => {
                if let Some(name) = qualified_list(&strings(&s.type_name)) {
                    object(ObjectKind::Type, name, "range".into());
                }
            }
            NodeEnum::CreateExtensionStmt(s) if s.extname != BUILT_IN_EXTENSION => {
                object(ObjectKind::Extension, s.extname.clone(), String::new());
            }
            NodeEnum::CommentStmt(s) if !s.comment.is_empty() => {
                let names = match s.object.as_deref().and_then(|o| o.node.as_ref()) {
                    Some(NodeEnum::List(l)) => strings(&l.items),
                    _ => return,
                };
                let on = match (s.objtype(), names.as_slice()) {
                    (ObjectType::ObjectTable, _) => {
                        qualified_list(&names).map(|n| format!("table {n}"))
                    }
                    (ObjectType::ObjectView, _) => {
                        qualified_list(&names).map(|n| format!("view {n}"))
                    }
                    (ObjectType::ObjectColumn, [.., table, column]) => {
                        let table = qualified_list(&names[..names.len() - 1])
                            .unwrap_or_else(|| table.clone());
                        Some(format!("column {table}.{column}"))
                    }
                    _ => None,
                };
                if let Some(on) = on {
                    object(ObjectKind::Comment, on, s.comment.clone());
                }
            }
            _ => {}
        }
    }

    fn create_table(&mut self, s: &CreateStmt) {
        let Some(rv) = &s.relation else { return };
        let name = relation_name(rv);
        let mut table = TableBuild {
            parents: s
                .inh_relations
                .iter()
                .filter_map(|n| match &n.node {
                    Some(NodeEnum::RangeVar(p)) => Some(relation_name(p)),
                    _ => None,
                })
                .collect(),
            ..TableBuild::default()
        };
        for elt in &s.table_elts {
            match &elt.node {
                Some(NodeEnum::ColumnDef(c)) => self.add_column(&mut table, &name, c),
                Some(NodeEnum::Constraint(c)) => add_constraint(&mut table, &name, c, None),
                _ => {}
            }
        }
        for c in s.constraints.iter().chain(&s.nnconstraints) {
            if let Some(NodeEnum::Constraint(c)) = &c.node {
                add_constraint(&mut table, &name, c, None);
            }
        }
        self.tables.insert(name, table);
    }

    fn add_column(&self, table: &mut TableBuild, table_name: &str, c: &ColumnDef) {
        let mut col = ColumnBuild {
            name: c.colname.clone(),
            data_type: c.type_name.as_ref().map(|t| self.type_of(t)),
            not_null: c.is_not_null,
            nextval: false,
            identity: false,
            default: None,
            generated: None,
        };
        if c.type_name.as_ref().is_some_and(is_serial_type) {
            col.nextval = true;
            col.not_null = true;
        }
        if let Some(default) = &c.raw_default {
            set_default(&mut col, Some(default));
        }
        if !c.identity.is_empty() {
            col.identity = true;
            col.not_null = true;
        }
        let name = col.name.clone();
        match table.columns.iter_mut().find(|x| x.name == name) {
            Some(existing) => merge_column(existing, col),
            None => table.columns.push(col),
        }
        for con in &c.constraints {
            if let Some(NodeEnum::Constraint(con)) = &con.node {
                add_constraint(table, table_name, con, Some(&name));
            }
        }
    }

    /// A column type: PostgreSQL's parse of the name, qualified with `public` when it names a
    /// type the DDL created; enums are resolved at the end.
    fn type_of(&self, t: &TypeName) -> PgType {
        let names = strings(&t.names);
        let mods: Vec<String> = t
            .typmods
            .iter()
            .filter_map(|m| match &m.node {
                Some(NodeEnum::AConst(c)) => match &c.val {
                    Some(pg_query::protobuf::a_const::Val::Ival(i)) => Some(i.ival.to_string()),
                    Some(pg_query::protobuf::a_const::Val::Fval(f)) => Some(f.fval.clone()),
                    Some(pg_query::protobuf::a_const::Val::Sval(s)) => Some(s.sval.clone()),
                    _ => None,
                },
                Some(NodeEnum::ColumnRef(r)) => Some(strings(&r.fields).join(".")),
                _ => None,
            })
            .collect();
        let mods = if mods.is_empty() {
            String::new()
        } else {
            format!("({})", mods.join(","))
        };
        let base = match names.as_slice() {
            [catalog, name] if catalog == "pg_catalog" => builtin(name, &mods),
            [name] => {
                let public = qualify(DEFAULT_SCHEMA, name);
                if self.user_types.contains(&public) {
                    PgType::Other(format!("{public}{mods}"))
                } else {
                    builtin(name, &mods)
                }
            }
            [.., schema, name] => PgType::Other(format!("{}{mods}", qualify(schema, name))),
            [] => PgType::Other(String::new()),
        };
        // PostgreSQL ignores declared array dimensions: `int[][]` is `int[]`.
        if t.array_bounds.is_empty() {
            base
        } else {
            PgType::Array(Box::new(base))
        }
    }

    fn alter_table(&mut self, table_name: &str, cmd: &AlterTableCmd) {
        let Some(table) = self.tables.get_mut(table_name) else {
            return;
        };
        let column = |table: &mut TableBuild| -> Option<usize> {
            table.columns.iter().position(|c| c.name == cmd.name)
        };
        match cmd.subtype() {
            AlterTableType::AtAddConstraint => {
                if let Some(NodeEnum::Constraint(c)) =
                    cmd.def.as_ref().and_then(|d| d.node.as_ref())
                {
                    add_constraint(table, table_name, c, None);
                }
            }
            AlterTableType::AtColumnDefault => {
                if let Some(i) = column(table) {
                    set_default(&mut table.columns[i], cmd.def.as_deref());
                }
            }
            AlterTableType::AtAddIdentity => {
                if let Some(i) = column(table) {
                    table.columns[i].identity = true;
                    table.columns[i].not_null = true;
                }
            }
            AlterTableType::AtDropIdentity => {
                if let Some(i) = column(table) {
                    table.columns[i].identity = false;
                }
            }
            AlterTableType::AtSetNotNull => {
                if let Some(i) = column(table) {
                    table.columns[i].not_null = true;
                }
            }
            AlterTableType::AtDropNotNull => {
                if let Some(i) = column(table) {
                    table.columns[i].not_null = false;
                }
            }
            AlterTableType::AtAlterColumnType => {
                let def = cmd.def.as_ref().and_then(|d| d.node.as_ref());
                if let (Some(i), Some(NodeEnum::ColumnDef(c))) = (column(table), def)
                    && let Some(t) = &c.type_name
                {
                    let t = self.type_of(t);
                    if let Some(table) = self.tables.get_mut(table_name) {
                        table.columns[i].data_type = Some(t);
                    }
                }
            }
            AlterTableType::AtAddColumn => {
                if let Some(NodeEnum::ColumnDef(c)) = cmd.def.as_ref().and_then(|d| d.node.as_ref())
                {
                    // Taken out and put back: add_column reads the builder's types.
                    if let Some(mut table) = self.tables.remove(table_name) {
                        self.add_column(&mut table, table_name, c);
                        self.tables.insert(table_name.to_string(), table);
                    }
                }
            }
            AlterTableType::AtDropColumn => {
                if let Some(i) = column(table) {
                    table.columns.remove(i);
                }
            }
            AlterTableType::AtDropConstraint => {
                table.schema.foreign_keys.retain(|fk| fk.name != cmd.name);
                table.schema.checks.retain(|c| c.name != cmd.name);
            }
            AlterTableType::AtAddInherit => {
                if let Some(NodeEnum::RangeVar(p)) = cmd.def.as_ref().and_then(|d| d.node.as_ref())
                {
                    table.parents.push(relation_name(p));
                }
            }
            _ => {}
        }
    }

    fn create_index(&mut self, s: &IndexStmt) {
        let Some(rv) = &s.relation else { return };
        let table_name = relation_name(rv);
        let Some(table) = self.tables.get_mut(&table_name) else {
            return;
        };
        let mut plain = s.access_method == "btree"
            && s.where_clause.is_none()
            && s.index_including_params.is_empty();
        let mut columns = Vec::new();
        // Column names as PostgreSQL derives them for a default index name.
        let mut name_parts = Vec::new();
        for param in &s.index_params {
            let Some(NodeEnum::IndexElem(e)) = &param.node else {
                continue;
            };
            let column = if !e.name.is_empty() {
                Some(e.name.clone())
            } else {
                match e.expr.as_deref().and_then(|x| x.node.as_ref()) {
                    Some(NodeEnum::ColumnRef(r)) if r.fields.len() == 1 => {
                        r.fields.first().and_then(string_of).map(str::to_string)
                    }
                    _ => None,
                }
            };
            match &column {
                Some(c) => {
                    columns.push(c.clone());
                    name_parts.push(c.clone());
                }
                None => {
                    plain = false;
                    name_parts.push(e.expr.as_deref().map_or("expr".into(), figure_name));
                }
            }
            let default_order = matches!(
                e.ordering(),
                SortByDir::SortbyDefault | SortByDir::SortbyAsc
            ) && matches!(
                e.nulls_ordering(),
                SortByNulls::SortbyNullsDefault | SortByNulls::SortbyNullsLast
            );
            if !default_order || !e.opclass.is_empty() || !e.collation.is_empty() {
                plain = false;
            }
        }
        let name = if s.idxname.is_empty() {
            object_name(bare(&table_name), &name_parts.join("_"), "idx")
        } else {
            s.idxname.clone()
        };
        table.schema.indexes.push(IndexDef {
            name,
            columns,
            unique: s.unique,
            plain,
        });
    }

    /// Resolves inheritance, references without columns and enum types.
    fn finish(mut self, source_name: &str) -> Result<SourceSchema> {
        let names: Vec<String> = self.tables.keys().cloned().collect();
        let mut done = BTreeMap::new();
        for name in &names {
            let columns = self.columns_of(name, &mut Vec::new(), source_name)?;
            done.insert(name.clone(), columns);
        }
        let primary_keys: BTreeMap<String, Vec<String>> = self
            .tables
            .iter()
            .map(|(n, t)| (n.clone(), t.schema.primary_key.clone()))
            .collect();
        let mut tables = BTreeMap::new();
        for (name, build) in std::mem::take(&mut self.tables) {
            let mut schema = build.schema;
            let columns = done.remove(&name).unwrap_or_default();
            schema.columns = columns
                .into_iter()
                .map(|c| {
                    Ok(ColumnSchema {
                        // PRIMARY KEY implies NOT NULL, whichever statement declared it.
                        not_null: c.not_null || schema.primary_key.contains(&c.name),
                        serial: c.nextval || c.identity,
                        default: c.default,
                        generated: c.generated,
                        data_type: resolve_enum(
                            c.data_type.ok_or_else(|| Error::Schema {
                                source_name: source_name.to_string(),
                                reason: format!(
                                    "table {name}: column {:?} has no type: it is neither declared nor inherited",
                                    c.name
                                ),
                            })?,
                            &self.enums,
                        ),
                        name: c.name,
                    })
                })
                .collect::<Result<_>>()?;
            for fk in &mut schema.foreign_keys {
                if fk.ref_columns.is_empty() {
                    match primary_keys.get(&fk.ref_table) {
                        Some(pk) if !pk.is_empty() => fk.ref_columns.clone_from(pk),
                        _ => {
                            return Err(Error::Schema {
                                source_name: source_name.to_string(),
                                reason: format!(
                                    "table {name}: foreign key {} references {} without columns, and the ddl gives {} no primary key",
                                    fk.name, fk.ref_table, fk.ref_table
                                ),
                            });
                        }
                    }
                }
            }
            tables.insert(name, schema);
        }
        let mut objects = self.objects;
        for seq in self.sequences.difference(&self.owned_sequences) {
            objects.push(SchemaObject {
                kind: ObjectKind::Sequence,
                name: seq.clone(),
                detail: String::new(),
            });
        }
        Ok(SourceSchema {
            tables,
            enums: self.enums,
            views: self.views,
            objects,
        })
    }

    /// A table's columns with its parents' in front, as PostgreSQL lays out an inheriting
    /// table or a partition: parents' columns first, a local column of the same name merged
    /// into the inherited one.
    fn columns_of(
        &self,
        name: &str,
        path: &mut Vec<String>,
        source_name: &str,
    ) -> Result<Vec<ColumnBuild>> {
        if path.iter().any(|p| p == name) {
            return Err(Error::Schema {
                source_name: source_name.to_string(),
                reason: format!("table {name}: circular inheritance"),
            });
        }
        let Some(table) = self.tables.get(name) else {
            return Ok(Vec::new());
        };
        path.push(name.to_string());
        let mut columns: Vec<ColumnBuild> = Vec::new();
        for parent in &table.parents {
            for col in self.columns_of(parent, path, source_name)? {
                match columns.iter_mut().find(|c| c.name == col.name) {
                    Some(existing) => merge_column(existing, col),
                    None => columns.push(col),
                }
            }
        }
        path.pop();
        for col in &table.columns {
            let col = ColumnBuild {
                name: col.name.clone(),
                data_type: col.data_type.clone(),
                not_null: col.not_null,
                nextval: col.nextval,
                identity: col.identity,
                default: col.default.clone(),
                generated: col.generated.clone(),
            };
            match columns.iter_mut().find(|c| c.name == col.name) {
                Some(existing) => merge_column(existing, col),
                None => columns.push(col),
            }
        }
        Ok(columns)
    }
}

/// Folds a second declaration of a column (local over inherited, or options-only) into the
/// first: a declared type wins, flags add up.
fn merge_column(existing: &mut ColumnBuild, col: ColumnBuild) {
    if col.data_type.is_some() {
        existing.data_type = col.data_type;
    }
    existing.not_null |= col.not_null;
    existing.nextval |= col.nextval;
    existing.identity |= col.identity;
    if col.default.is_some() {
        existing.default = col.default;
    }
    if col.generated.is_some() {
        existing.generated = col.generated;
    }
}

/// A column's DEFAULT (or its removal, `None`): a sequence's `nextval` makes it serial, anything
/// else is kept in its canonical spelling.
fn set_default(col: &mut ColumnBuild, default: Option<&pg_query::Node>) {
    col.nextval = default.is_some_and(is_nextval);
    col.default = default
        .filter(|d| !is_nextval(d))
        .and_then(expr::canonical_node);
}

/// True when sequence options say `OWNED BY table.column` (not `OWNED BY NONE`).
fn owns(options: &[pg_query::Node]) -> bool {
    options.iter().any(|o| match &o.node {
        Some(NodeEnum::DefElem(d)) if d.defname == "owned_by" => match d.arg.as_deref() {
            Some(pg_query::Node {
                node: Some(NodeEnum::List(l)),
            }) => strings(&l.items) != ["none"],
            _ => false,
        },
        _ => false,
    })
}

/// `smallserial`, `serial`, `bigserial` and their numbered spellings: an integer column with a
/// sequence default.
fn is_serial_type(t: &TypeName) -> bool {
    matches!(
        strings(&t.names).as_slice(),
        [name] if matches!(
            name.as_str(),
            "smallserial" | "serial" | "bigserial" | "serial2" | "serial4" | "serial8"
        )
    ) && t.array_bounds.is_empty()
}

/// A built-in type by its internal name and modifiers; types PgType does not know keep the
/// name as written.
fn builtin(name: &str, mods: &str) -> PgType {
    let spelled = format!("{name}{mods}");
    PgType::parse(&spelled).unwrap_or(PgType::Other(spelled))
}

/// The name PostgreSQL gives an index expression when it makes up an index name: the function
/// name of a call, the column of a reference, `expr` otherwise.
fn figure_name(node: &pg_query::Node) -> String {
    match &node.node {
        Some(NodeEnum::FuncCall(f)) => f
            .funcname
            .last()
            .and_then(string_of)
            .unwrap_or("expr")
            .to_string(),
        Some(NodeEnum::ColumnRef(r)) => r
            .fields
            .last()
            .and_then(string_of)
            .unwrap_or("expr")
            .to_string(),
        Some(NodeEnum::TypeCast(c)) => match c.arg.as_deref().map(figure_name) {
            Some(n) if n != "expr" => n,
            _ => c
                .type_name
                .as_ref()
                .and_then(|t| t.names.last())
                .and_then(string_of)
                .unwrap_or("expr")
                .to_string(),
        },
        _ => "expr".to_string(),
    }
}

/// Applies a table constraint, or a column constraint when `column` is given.
fn add_constraint(table: &mut TableBuild, table_name: &str, c: &Constraint, column: Option<&str>) {
    let keys = match column {
        Some(col) => vec![col.to_string()],
        None => strings(&c.keys),
    };
    match c.contype() {
        ConstrType::ConstrPrimary => {
            let keys = if keys.is_empty() {
                take_index(table, &c.indexname)
            } else {
                keys
            };
            for key in &keys {
                if let Some(col) = table.columns.iter_mut().find(|x| x.name == *key) {
                    col.not_null = true;
                }
            }
            table.schema.primary_key = keys;
        }
        ConstrType::ConstrUnique => {
            let keys = if keys.is_empty() {
                take_index(table, &c.indexname)
            } else {
                keys
            };
            if !keys.is_empty() {
                table.schema.unique.push(keys);
            }
        }
        ConstrType::ConstrNotnull => {
            for key in &keys {
                if let Some(col) = table.columns.iter_mut().find(|x| x.name == *key) {
                    col.not_null = true;
                }
            }
        }
        ConstrType::ConstrDefault => {
            if let (Some(col), Some(expr)) = (column, c.raw_expr.as_deref())
                && let Some(x) = table.columns.iter_mut().find(|x| x.name == col)
            {
                set_default(x, Some(expr));
            }
        }
        ConstrType::ConstrGenerated => {
            if let (Some(col), Some(e)) = (column, c.raw_expr.as_deref())
                && let Some(x) = table.columns.iter_mut().find(|x| x.name == col)
            {
                x.generated = expr::canonical_node(e);
            }
        }
        ConstrType::ConstrCheck => {
            let Some(text) = c.raw_expr.as_deref().and_then(expr::canonical_node) else {
                return;
            };
            let name = if c.conname.is_empty() {
                check_name(table, table_name, &text)
            } else {
                c.conname.clone()
            };
            table.schema.checks.push(CheckDef {
                name,
                expr: text,
                valid: !c.skip_validation,
            });
        }
        ConstrType::ConstrIdentity => {
            if let Some(x) = column.and_then(|col| table.columns.iter_mut().find(|x| x.name == col))
            {
                x.identity = true;
                x.not_null = true;
            }
        }
        ConstrType::ConstrForeign => {
            let columns = match column {
                Some(col) => vec![col.to_string()],
                None => strings(&c.fk_attrs),
            };
            let Some(ref_table) = c.pktable.as_ref().map(relation_name) else {
                return;
            };
            let name = if c.conname.is_empty() {
                object_name(bare(table_name), &columns.join("_"), "fkey")
            } else {
                c.conname.clone()
            };
            table.schema.foreign_keys.push(ForeignKey {
                name,
                columns,
                ref_table,
                ref_columns: strings(&c.pk_attrs),
            });
        }
        _ => {}
    }
}

/// PostgreSQL's name for an unnamed CHECK: `table_column_check` when the condition reads one
/// column, `table_check` otherwise, with a number after `check` when the name is taken.
fn check_name(table: &TableBuild, table_name: &str, text: &str) -> String {
    let mut columns = expr::Refs::of_expr(text)
        .map(|r| r.columns)
        .unwrap_or_default();
    columns.sort();
    columns.dedup();
    let column = match columns.as_slice() {
        [one] => one.as_str(),
        _ => "",
    };
    let mut n = 0;
    loop {
        let label = if n == 0 {
            "check".to_string()
        } else {
            format!("check{n}")
        };
        let name = object_name(bare(table_name), column, &label);
        if !table.schema.checks.iter().any(|c| c.name == name) {
            return name;
        }
        n += 1;
    }
}

/// The columns of index `name` on this table, removed from the index list because a
/// constraint now owns it (`ADD PRIMARY KEY USING INDEX`).
fn take_index(table: &mut TableBuild, name: &str) -> Vec<String> {
    match table.schema.indexes.iter().position(|i| i.name == name) {
        Some(i) => table.schema.indexes.remove(i).columns,
        None => Vec::new(),
    }
}
