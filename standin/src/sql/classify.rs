//! The parse tree of one statement -> its [`Kind`], and DSQL's refusal when it has one.
//!
//! Each rule names its source in [`crate::rules`]. Statements are allowed by node type: the
//! queries, DML, the DDL DSQL documents (tables, schemas, views, domains, SQL functions,
//! sequences, roles and grants, comments, statistics) and the session statements; any other
//! utility statement is refused as `unsupported statement: <Node>`, DSQL's recorded shape
//! [REC §9].

use pg_query::protobuf::node::Node as N;
use pg_query::protobuf::{
    self, AlterTableType, ConstrType, LockClauseStrength, ObjectType, TransactionStmtKind,
    VariableSetKind,
};

use super::tokens::{self, AsyncForm, Tok};
use super::types;
use super::{Analysis, Check, CopyFormat, IndexJob, JobArg, Kind, ValidateJob, Virtual, Write};
use crate::rules::{self, Refusal};

fn refuse(code: &'static str, message: impl Into<String>) -> Option<Refusal> {
    Some(Refusal::new(code, message))
}

fn unsupported(message: impl Into<String>) -> Option<Refusal> {
    refuse(rules::UNSUPPORTED, message)
}

pub(super) fn string_of(n: &protobuf::Node) -> Option<&str> {
    match n.node.as_ref()? {
        N::String(s) => Some(&s.sval),
        N::AConst(c) => match c.val.as_ref()? {
            protobuf::a_const::Val::Sval(s) => Some(&s.sval),
            _ => None,
        },
        N::TypeCast(t) => string_of(t.arg.as_deref()?),
        _ => None,
    }
}

fn number_of(n: &protobuf::Node) -> Option<f64> {
    match n.node.as_ref()? {
        N::Integer(i) => Some(i.ival as f64),
        N::Float(f) => f.fval.parse().ok(),
        N::AConst(c) => match c.val.as_ref()? {
            protobuf::a_const::Val::Ival(i) => Some(i.ival as f64),
            protobuf::a_const::Val::Fval(f) => f.fval.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

fn def_elems(list: &[protobuf::Node]) -> impl Iterator<Item = &protobuf::DefElem> {
    list.iter().filter_map(|n| match n.node.as_ref() {
        Some(N::DefElem(d)) => Some(d.as_ref()),
        _ => None,
    })
}

fn option<'a>(list: &'a [protobuf::Node], name: &str) -> Option<&'a protobuf::DefElem> {
    def_elems(list).find(|d| d.defname == name)
}

/// CACHE must be 1 or at least 65536 [REC §8]; None when it is missing or out of range.
fn cache_ok(options: &[protobuf::Node]) -> bool {
    option(options, "cache")
        .and_then(|d| number_of(d.arg.as_deref()?))
        .is_some_and(|c| c == 1.0 || c >= 65536.0)
}

/// `CREATE \[UNIQUE\] INDEX ASYNC` and `ALTER TABLE ASYNC`.
pub fn asynchronous(sql: &str, form: AsyncForm, word: Tok) -> Analysis {
    let (build_sql, replacement) = match form {
        AsyncForm::Index => (tokens::replace(sql, word, "CONCURRENTLY"), "CONCURRENTLY"),
        AsyncForm::AlterTable => (tokens::replace(sql, word, ""), ""),
    };
    let parsed = match pg_query::parse(&build_sql, pg_query::ParserOptions::DEFAULT) {
        Ok(p) => p,
        Err(e) => {
            // DSQL's own parser answers; PostgreSQL's message is the same text [REC §3.2].
            let message = match e {
                pg_query::Error::Parse(m) => m,
                other => other.to_string(),
            };
            let _ = replacement;
            return Analysis::refused(sql, Refusal::new(rules::SYNTAX, message));
        }
    };
    let Some(node) = only_statement(&parsed) else {
        return Analysis::new(sql, Kind::Unparsed);
    };
    match (form, node) {
        (AsyncForm::Index, N::IndexStmt(i)) => index_async(sql, build_sql, i),
        (AsyncForm::AlterTable, N::AlterTableStmt(a)) => validate_async(sql, build_sql, a),
        _ => Analysis::refused(
            sql,
            Refusal::new(rules::UNSUPPORTED, rules::ALTER_ASYNC_OTHER),
        ),
    }
}

fn index_async(sql: &str, build_sql: String, i: &protobuf::IndexStmt) -> Analysis {
    let Some(rel) = &i.relation else {
        return Analysis::new(sql, Kind::Unparsed);
    };
    if !i.access_method.is_empty() && i.access_method != "btree" {
        // \[DOCS\] non-btree indexes are unsupported; wording CHOSEN.
        return Analysis::refused(
            sql,
            Refusal::new(
                rules::UNSUPPORTED,
                format!("index access method {} not supported", i.access_method),
            ),
        );
    }
    let mut columns = Vec::new();
    for p in &i.index_params {
        if let Some(N::IndexElem(e)) = p.node.as_ref() {
            // \[DOCS\] CREATE INDEX ASYNC takes NULLS FIRST|LAST, not ASC|DESC; wording CHOSEN.
            if e.ordering != protobuf::SortByDir::SortbyDefault as i32 {
                return Analysis::refused(
                    sql,
                    Refusal::new(
                        rules::UNSUPPORTED,
                        "ASC/DESC not supported in CREATE INDEX ASYNC",
                    ),
                );
            }
            columns.push(if e.name.is_empty() {
                "expr".to_owned()
            } else {
                e.name.clone()
            });
        }
    }
    let job = IndexJob {
        build_sql,
        name: (!i.idxname.is_empty()).then(|| i.idxname.clone()),
        schema: (!rel.schemaname.is_empty()).then(|| rel.schemaname.clone()),
        table: rel.relname.clone(),
        columns,
        if_not_exists: i.if_not_exists,
    };
    Analysis::new(sql, Kind::Virtual(Virtual::CreateIndexAsync(job)))
}

fn validate_async(sql: &str, build_sql: String, a: &protobuf::AlterTableStmt) -> Analysis {
    let cmds: Vec<&protobuf::AlterTableCmd> = a
        .cmds
        .iter()
        .filter_map(|c| match c.node.as_ref() {
            Some(N::AlterTableCmd(c)) => Some(c.as_ref()),
            _ => None,
        })
        .collect();
    match (&a.relation, cmds.as_slice()) {
        (Some(rel), [cmd]) if cmd.subtype == AlterTableType::AtValidateConstraint as i32 => {
            let job = ValidateJob {
                build_sql,
                schema: (!rel.schemaname.is_empty()).then(|| rel.schemaname.clone()),
                table: rel.relname.clone(),
                constraint: cmd.name.clone(),
            };
            Analysis::new(sql, Kind::Virtual(Virtual::ValidateAsync(job)))
        }
        _ => Analysis::refused(
            sql,
            Refusal::new(rules::UNSUPPORTED, rules::ALTER_ASYNC_OTHER),
        ),
    }
}

fn only_statement(parsed: &pg_query::ParseResult) -> Option<&N> {
    match parsed.protobuf.stmts.as_slice() {
        [one] => one.stmt.as_ref()?.node.as_ref(),
        _ => None,
    }
}

/// Classifies a statement PostgreSQL parsed.
pub fn statement(sql: &str, parsed: &pg_query::ParseResult, extra: &[String]) -> Analysis {
    let Some(node) = only_statement(parsed) else {
        // Several statements in one Parse: PostgreSQL refuses them itself.
        return Analysis::new(sql, Kind::Unparsed);
    };
    let mut a = Analysis::new(sql, Kind::Other);
    let (kind, refusal) = classify(node, extra, &mut a);
    a.kind = kind;
    a.refusal = refusal.or_else(|| super::expressions::refusal(parsed));
    a
}

fn classify(node: &N, extra: &[String], a: &mut Analysis) -> (Kind, Option<Refusal>) {
    let generic = |name: &str| (Kind::Other, unsupported(rules::statement(name)));
    match node {
        N::SelectStmt(s) => {
            if s.into_clause.is_some() {
                return generic("CreateTableAs");
            }
            (select_kind(s), None)
        }
        N::InsertStmt(i) => {
            a.returning = i
                .returning_clause
                .as_ref()
                .is_some_and(|r| !r.exprs.is_empty());
            let values_rows = i
                .select_stmt
                .as_deref()
                .and_then(|s| match s.node.as_ref() {
                    Some(N::SelectStmt(s)) if !s.values_lists.is_empty() => {
                        Some(s.values_lists.len() as u64)
                    }
                    _ => None,
                });
            (Kind::Write(Write::Insert { values_rows }), None)
        }
        N::UpdateStmt(u) => {
            a.returning = u
                .returning_clause
                .as_ref()
                .is_some_and(|r| !r.exprs.is_empty());
            (Kind::Write(Write::Update), None)
        }
        N::DeleteStmt(d) => {
            a.returning = d
                .returning_clause
                .as_ref()
                .is_some_and(|r| !r.exprs.is_empty());
            (Kind::Write(Write::Delete), None)
        }
        N::MergeStmt(_) => (Kind::Other, unsupported(rules::MERGE)),
        N::CopyStmt(c) => copy(c),
        N::TransactionStmt(t) => transaction(t),
        N::VariableSetStmt(v) => (Kind::Other, set(v, extra)),
        N::VariableShowStmt(v) => show(&v.name),
        N::CallStmt(c) => (call(c), None),
        N::IndexStmt(_) => (Kind::Ddl, unsupported(rules::PLAIN_INDEX)),
        N::CreateStmt(c) => (Kind::Ddl, create_table(c)),
        N::AlterTableStmt(t) => (Kind::Ddl, alter_table(t, a)),
        N::CreateSeqStmt(s) => (
            Kind::Ddl,
            (!cache_ok(&s.options))
                .then(|| Refusal::new(rules::UNSUPPORTED, rules::SEQUENCE_CACHE)),
        ),
        N::CreateFunctionStmt(f) => {
            let language = option(&f.options, "language")
                .and_then(|d| string_of(d.arg.as_deref()?))
                .unwrap_or("sql")
                .to_ascii_lowercase();
            let refusal = (language != "sql")
                .then(|| Refusal::new(rules::UNSUPPORTED, rules::function_language(&language)));
            (Kind::Ddl, refusal)
        }
        N::DropStmt(d) if d.remove_type == ObjectType::ObjectType as i32 => {
            (Kind::Ddl, unsupported(rules::DROP_TYPE))
        }
        N::DropStmt(d) if d.remove_type == ObjectType::ObjectTable as i32 => {
            a.drop_job = true;
            (Kind::Ddl, None)
        }
        N::RenameStmt(r) if r.rename_type == ObjectType::ObjectType as i32 => {
            (Kind::Ddl, unsupported(rules::RENAME_TYPE))
        }
        N::DefineStmt(d) if d.kind == ObjectType::ObjectType as i32 => {
            (Kind::Ddl, unsupported(rules::CREATE_TYPE))
        }
        N::CreateEnumStmt(_) => (Kind::Ddl, unsupported(rules::CREATE_TYPE)),
        N::AlterEnumStmt(_) => (Kind::Ddl, unsupported(rules::ALTER_TYPE)),
        N::CreateTrigStmt(_) => (Kind::Ddl, unsupported(rules::TRIGGER)),
        N::VacuumStmt(v) if v.is_vacuumcmd => (Kind::Other, unsupported(rules::VACUUM)),
        N::VacuumStmt(_) => (Kind::Other, None),
        N::CreateTableAsStmt(_) => generic("CreateTableAs"),
        N::DropStmt(_)
        | N::RenameStmt(_)
        | N::CreateSchemaStmt(_)
        | N::ViewStmt(_)
        | N::CreateDomainStmt(_)
        | N::AlterDomainStmt(_)
        | N::AlterSeqStmt(_)
        | N::CommentStmt(_)
        | N::GrantStmt(_)
        | N::GrantRoleStmt(_)
        | N::CreateRoleStmt(_)
        | N::AlterRoleStmt(_)
        | N::DropRoleStmt(_)
        | N::AlterFunctionStmt(_)
        | N::AlterOwnerStmt(_)
        | N::AlterObjectSchemaStmt(_)
        | N::AlterDefaultPrivilegesStmt(_)
        | N::CreateStatsStmt(_)
        | N::AlterStatsStmt(_) => (Kind::Ddl, None),
        N::ExplainStmt(_) | N::DeclareCursorStmt(_) | N::FetchStmt(_) => (Kind::Read, None),
        N::DiscardStmt(d) => {
            a.discards_prepared = d.target == protobuf::DiscardMode::DiscardAll as i32
                || d.target == protobuf::DiscardMode::DiscardPlans as i32;
            (Kind::Other, None)
        }
        N::DeallocateStmt(d) => {
            a.discards_prepared = d.isall;
            (Kind::Other, None)
        }
        N::ConstraintsSetStmt(_)
        | N::PrepareStmt(_)
        | N::ExecuteStmt(_)
        | N::ClosePortalStmt(_)
        | N::CheckPointStmt(_) => (Kind::Other, None),
        other => generic(&node_name(other)),
    }
}

/// PostgreSQL's node tag without `Stmt` (`TruncateStmt` -> `Truncate`).
fn node_name(node: &N) -> String {
    let debug = format!("{node:?}");
    let name = debug.split('(').next().unwrap_or("");
    name.strip_suffix("Stmt").unwrap_or(name).to_owned()
}

fn select_kind(s: &protobuf::SelectStmt) -> Kind {
    let locking = s.locking_clause.iter().any(|l| match l.node.as_ref() {
        Some(N::LockingClause(l)) => {
            l.strength == LockClauseStrength::LcsForupdate as i32
                || l.strength == LockClauseStrength::LcsForkeyshare as i32
        }
        _ => false,
    });
    if locking {
        Kind::LockingRead
    } else {
        Kind::Read
    }
}

fn copy(c: &protobuf::CopyStmt) -> (Kind, Option<Refusal>) {
    if !c.filename.is_empty() || c.is_program {
        return (Kind::Other, unsupported(rules::COPY_FILE));
    }
    if !c.is_from {
        return (Kind::Read, None);
    }
    let format = match option(&c.options, "format").and_then(|d| string_of(d.arg.as_deref()?)) {
        Some(f) if f.eq_ignore_ascii_case("binary") => CopyFormat::Binary,
        Some(f) if f.eq_ignore_ascii_case("csv") => CopyFormat::Csv,
        _ => CopyFormat::Text,
    };
    (Kind::Write(Write::Copy(format)), None)
}

/// The isolation level named in a BEGIN or SET TRANSACTION, refused unless REPEATABLE READ.
fn isolation(options: &[protobuf::Node]) -> Option<Refusal> {
    let level =
        option(options, "transaction_isolation").and_then(|d| string_of(d.arg.as_deref()?))?;
    (!level.eq_ignore_ascii_case("repeatable read"))
        .then(|| Refusal::new(rules::UNSUPPORTED, rules::isolation_level(level)))
}

fn transaction(t: &protobuf::TransactionStmt) -> (Kind, Option<Refusal>) {
    use TransactionStmtKind as T;
    let kind = t.kind;
    let refused = |what: &str| (Kind::Other, unsupported(rules::transaction_statement(what)));
    if kind == T::TransStmtBegin as i32 || kind == T::TransStmtStart as i32 {
        (Kind::Begin, isolation(&t.options))
    } else if kind == T::TransStmtCommit as i32 {
        (Kind::Commit, None)
    } else if kind == T::TransStmtRollback as i32 {
        (Kind::Rollback, None)
    } else if kind == T::TransStmtSavepoint as i32 {
        refused("SAVEPOINT")
    } else if kind == T::TransStmtRelease as i32 {
        refused("RELEASE")
    } else if kind == T::TransStmtRollbackTo as i32 {
        refused("ROLLBACK TO")
    } else if kind == T::TransStmtPrepare as i32 {
        refused("PREPARE TRANSACTION")
    } else if kind == T::TransStmtCommitPrepared as i32 {
        refused("COMMIT PREPARED")
    } else {
        refused("ROLLBACK PREPARED")
    }
}

fn set(v: &protobuf::VariableSetStmt, extra: &[String]) -> Option<Refusal> {
    if v.kind == VariableSetKind::VarSetMulti as i32 {
        // SET TRANSACTION / SET SESSION CHARACTERISTICS AS TRANSACTION [REC §2].
        return isolation(&v.args).or_else(|| unsupported(rules::setting("TRANSACTION")));
    }
    if v.kind == VariableSetKind::VarResetAll as i32 {
        // RESET ALL returns to the session's start values, which the stand-in chose.
        return None;
    }
    (!rules::settable(&v.name, extra))
        .then(|| Refusal::new(rules::UNSUPPORTED, rules::setting(&v.name)))
}

fn show(name: &str) -> (Kind, Option<Refusal>) {
    match name.to_ascii_lowercase().as_str() {
        "server_version" => (
            Kind::Virtual(Virtual::Show {
                name: "server_version",
                value: "16.15",
            }),
            None,
        ),
        "server_version_num" => (
            Kind::Virtual(Virtual::Show {
                name: "server_version_num",
                value: "160015",
            }),
            None,
        ),
        // Parameters PostgreSQL 16 no longer has [REC §2]; the upstream is 15.
        n @ ("lc_collate" | "lc_ctype") => (
            Kind::Read,
            refuse(rules::UNDEFINED_OBJECT, rules::unrecognized_parameter(n)),
        ),
        _ => (Kind::Read, None),
    }
}

fn call(c: &protobuf::CallStmt) -> Kind {
    let Some(f) = &c.funccall else {
        return Kind::Other;
    };
    let names: Vec<String> = f
        .funcname
        .iter()
        .filter_map(|n| string_of(n).map(str::to_ascii_lowercase))
        .collect();
    if names != ["sys", "wait_for_job"] || f.args.len() != 1 {
        return Kind::Other;
    }
    match f.args[0].node.as_ref() {
        Some(N::ParamRef(p)) => {
            Kind::Virtual(Virtual::WaitForJob(JobArg::Param(p.number as usize)))
        }
        _ => match string_of(&f.args[0]) {
            Some(s) => Kind::Virtual(Virtual::WaitForJob(JobArg::Literal(s.to_owned()))),
            // A subquery or an expression: PostgreSQL answers (0A000 for a subquery [REC §3.4]).
            None => Kind::Other,
        },
    }
}

fn create_table(c: &protobuf::CreateStmt) -> Option<Refusal> {
    if let Some(rel) = &c.relation {
        match rel.relpersistence.as_str() {
            "t" => return unsupported(rules::TEMPORARY_TABLE),
            "u" => return unsupported(rules::UNLOGGED_TABLE),
            _ => {}
        }
    }
    if !c.inh_relations.is_empty() {
        return unsupported(rules::INHERITS);
    }
    if c.partspec.is_some() || c.partbound.is_some() {
        return unsupported(rules::PARTITION);
    }
    for e in &c.table_elts {
        if let Some(N::ColumnDef(col)) = e.node.as_ref()
            && let Some(r) = column(col)
        {
            return Some(r);
        }
    }
    None
}

/// A column of CREATE TABLE: its type, and an identity column's type and cache [REC §8].
fn column(col: &protobuf::ColumnDef) -> Option<Refusal> {
    let t = col.type_name.as_ref()?;
    if let Some(r) = types::column_refusal(t) {
        return Some(r);
    }
    for c in &col.constraints {
        if let Some(N::Constraint(k)) = c.node.as_ref()
            && k.contype == ConstrType::ConstrIdentity as i32
        {
            let name = types::base_name(t).unwrap_or_default();
            if name != "int8" && name != "bigint" {
                return unsupported(rules::identity_type(types::display(&name)));
            }
            if !cache_ok(&k.options) {
                return unsupported(rules::IDENTITY_CACHE);
            }
        }
    }
    None
}

fn alter_table(t: &protobuf::AlterTableStmt, a: &mut Analysis) -> Option<Refusal> {
    if t.objtype != ObjectType::ObjectTable as i32 {
        return None;
    }
    let rel = t.relation.as_ref()?;
    let mut storage = Vec::new();
    for c in &t.cmds {
        let Some(N::AlterTableCmd(cmd)) = c.node.as_ref() else {
            continue;
        };
        let def = cmd.def.as_deref().and_then(|d| d.node.as_ref());
        let sub = cmd.subtype;
        if sub == AlterTableType::AtAddColumn as i32 {
            if let Some(N::ColumnDef(col)) = def {
                if let Some(r) = col.type_name.as_ref().and_then(types::column_refusal) {
                    return Some(r);
                }
                let constrained = col.raw_default.is_some()
                    || col.constraints.iter().any(|k| match k.node.as_ref() {
                        Some(N::Constraint(k)) => k.contype != ConstrType::ConstrNull as i32,
                        _ => false,
                    });
                if constrained {
                    return unsupported(rules::ADD_COLUMN_CONSTRAINT);
                }
                if !col.storage_name.is_empty() {
                    storage.push((col.colname.clone(), col.storage_name.to_ascii_lowercase()));
                }
            }
        } else if sub == AlterTableType::AtDropColumn as i32 {
            a.checks.push(Check::DropColumn {
                schema: (!rel.schemaname.is_empty()).then(|| rel.schemaname.clone()),
                table: rel.relname.clone(),
                column: cmd.name.clone(),
            });
        } else if sub == AlterTableType::AtAddConstraint as i32 {
            if let Some(N::Constraint(k)) = def {
                let ct = k.contype;
                let not_valid_ok = (ct == ConstrType::ConstrForeign as i32
                    || ct == ConstrType::ConstrCheck as i32)
                    && k.skip_validation;
                let key =
                    ct == ConstrType::ConstrPrimary as i32 || ct == ConstrType::ConstrUnique as i32;
                if key && !k.indexname.is_empty() {
                    a.checks.push(Check::UsingIndex {
                        index: k.indexname.clone(),
                    });
                } else if !not_valid_ok {
                    return unsupported(rules::ADD_CONSTRAINT);
                }
            }
        } else if sub == AlterTableType::AtValidateConstraint as i32 {
            return unsupported(rules::VALIDATE_SYNC);
        } else if sub == AlterTableType::AtAlterColumnType as i32 {
            return unsupported(rules::ALTER_COLUMN_TYPE);
        }
    }
    if !storage.is_empty()
        && let Some(sql) = tokens::move_add_column_storage(&a.upstream_sql, &storage)
    {
        a.upstream_sql = sql;
    }
    None
}
