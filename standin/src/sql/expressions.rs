//! Refusals found anywhere in a statement's expressions, whatever the statement: values of
//! geometric types and text search configurations [REC §7], locking strengths other than FOR
//! UPDATE and FOR KEY SHARE [REC §6], and the recorded LEFT JOIN LATERAL defect [REC §7].

use pg_query::protobuf::node::Node as N;
use pg_query::protobuf::{self, LockClauseStrength};

use super::classify::string_of;
use super::types;
use crate::rules::{self, Refusal};

fn refuse(code: &'static str, message: impl Into<String>) -> Option<Refusal> {
    Some(Refusal::new(code, message))
}

fn unsupported(message: impl Into<String>) -> Option<Refusal> {
    refuse(rules::UNSUPPORTED, message)
}

/// Refusals anywhere in a statement's expressions: geometric values and text search
/// configurations [REC §7], locking strengths [REC §6], the LEFT JOIN LATERAL defect [REC §7].
pub fn refusal(parsed: &pg_query::ParseResult) -> Option<Refusal> {
    for (node, ..) in parsed.protobuf.nodes() {
        let found = match node {
            pg_query::NodeRef::FuncCall(f) => function(f),
            pg_query::NodeRef::TypeCast(t) => t
                .type_name
                .as_ref()
                .and_then(types::base_name)
                .filter(|n| types::is_geometric(n))
                .map(|n| Refusal::new(rules::UNSUPPORTED, rules::datatype(&n))),
            pg_query::NodeRef::SelectStmt(s) => locking(s),
            pg_query::NodeRef::JoinExpr(j) => lateral(j),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

fn function(f: &protobuf::FuncCall) -> Option<Refusal> {
    let names: Vec<&str> = f.funcname.iter().filter_map(string_of).collect();
    let (schema, name) = match names.as_slice() {
        [name] => (None, name.to_ascii_lowercase()),
        [schema, name] => (Some(*schema), name.to_ascii_lowercase()),
        _ => return None,
    };
    if schema.is_some_and(|s| s != "pg_catalog") {
        return None;
    }
    if types::is_geometric(&name) {
        return unsupported(rules::datatype(&name));
    }
    let text_search = matches!(
        name.as_str(),
        "to_tsvector"
            | "to_tsquery"
            | "plainto_tsquery"
            | "phraseto_tsquery"
            | "websearch_to_tsquery"
    );
    if text_search && f.args.len() >= 2 {
        // DSQL has no text search configurations [REC §7].
        let config = string_of(&f.args[0])?;
        let config = config.rsplit('.').next().unwrap_or(config);
        return refuse(
            rules::UNDEFINED_OBJECT,
            rules::text_search_configuration(config),
        );
    }
    None
}

fn locking(s: &protobuf::SelectStmt) -> Option<Refusal> {
    s.locking_clause.iter().find_map(|l| match l.node.as_ref() {
        Some(N::LockingClause(l))
            if l.strength == LockClauseStrength::LcsForshare as i32
                || l.strength == LockClauseStrength::LcsFornokeyupdate as i32 =>
        {
            unsupported(rules::LOCKING_CLAUSE)
        }
        _ => None,
    })
}

/// [REC §7] DSQL refuses a LEFT JOIN LATERAL whose subquery's output references the outer
/// relation (42804, a suspected planner defect); CROSS and INNER LATERAL work.
fn lateral(j: &protobuf::JoinExpr) -> Option<Refusal> {
    if j.jointype != protobuf::JoinType::JoinLeft as i32 {
        return None;
    }
    let Some(N::RangeSubselect(r)) = j.rarg.as_deref()?.node.as_ref() else {
        return None;
    };
    if !r.lateral {
        return None;
    }
    let Some(N::SelectStmt(sub)) = r.subquery.as_deref()?.node.as_ref() else {
        return None;
    };
    let mut own = Vec::new();
    let mut first_relation = None;
    for f in &sub.from_clause {
        if let Some(N::RangeVar(v)) = f.node.as_ref() {
            first_relation.get_or_insert(v.relname.clone());
            own.push(v.relname.clone());
            if let Some(alias) = &v.alias {
                own.push(alias.aliasname.clone());
            }
        }
    }
    let relation = first_relation?;
    for (i, t) in sub.target_list.iter().enumerate() {
        if let Some(N::ResTarget(rt)) = t.node.as_ref()
            && rt
                .val
                .as_deref()
                .is_some_and(|v| references_outside(v, &own))
        {
            return refuse(
                rules::DATATYPE_MISMATCH,
                rules::lateral_attribute(i + 1, &relation),
            );
        }
    }
    None
}

/// Whether an expression has a qualified column reference to a relation not in `own`.
fn references_outside(n: &protobuf::Node, own: &[String]) -> bool {
    match n.node.as_ref() {
        Some(N::ColumnRef(c)) => {
            c.fields.len() >= 2
                && string_of(&c.fields[0]).is_some_and(|q| !own.iter().any(|o| o == q))
        }
        Some(N::FuncCall(f)) => f.args.iter().any(|a| references_outside(a, own)),
        Some(N::TypeCast(t)) => t.arg.as_deref().is_some_and(|a| references_outside(a, own)),
        Some(N::AExpr(e)) => [&e.lexpr, &e.rexpr]
            .into_iter()
            .flatten()
            .any(|a| references_outside(a, own)),
        Some(N::CoalesceExpr(c)) => c.args.iter().any(|a| references_outside(a, own)),
        _ => false,
    }
}
