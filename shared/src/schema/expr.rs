//! SQL expressions of the source schema (column defaults, CHECK conditions, view queries): one
//! canonical spelling whichever reader found them, and what they refer to.
//!
//! A pg_dump file spells an expression the way `pg_get_expr` prints it, and the catalog reader
//! reads it from `pg_get_expr`; both go through PostgreSQL's parser and back out through
//! pg_query's deparser, so that the two readers store the same text for the same database.

use pg_query::NodeEnum;
use pg_query::protobuf::{self, Node, ResTarget, SelectStmt};

fn deparse_select(target: Node) -> Option<String> {
    let select = SelectStmt {
        target_list: vec![Node {
            node: Some(NodeEnum::ResTarget(Box::new(ResTarget {
                val: Some(Box::new(target)),
                ..Default::default()
            }))),
        }],
        // Protobuf's zero is "undefined", which the deparser refuses.
        op: protobuf::SetOperation::SetopNone as i32,
        limit_option: protobuf::LimitOption::Default as i32,
        ..Default::default()
    };
    let text = NodeEnum::SelectStmt(Box::new(select))
        .deparse(pg_query::DeparseOptions::default())
        .ok()?;
    text.strip_prefix("SELECT ").map(str::to_string)
}

/// The canonical spelling of an expression given as SQL text (`None` if it does not parse as
/// one expression).
pub fn canonical(sql: &str) -> Option<String> {
    canonical_node(&single_target(sql)?)
}

/// The canonical spelling of an expression node of a parse tree.
pub fn canonical_node(node: &Node) -> Option<String> {
    deparse_select(node.clone())
}

/// The canonical spelling of a query (a view's SELECT) given as SQL text.
pub fn canonical_query(sql: &str) -> Option<String> {
    let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).ok()?;
    match parsed.protobuf.stmts.as_slice() {
        [raw] => canonical_query_node(raw.stmt.as_deref()?),
        _ => None,
    }
}

/// The canonical spelling of a query node (a view's `SelectStmt`).
pub fn canonical_query_node(node: &Node) -> Option<String> {
    let stmt = node.node.as_ref()?;
    matches!(stmt, NodeEnum::SelectStmt(_))
        .then(|| stmt.deparse(pg_query::DeparseOptions::default()).ok())
        .flatten()
}

/// The one target of `SELECT <sql>`.
fn single_target(sql: &str) -> Option<Node> {
    let parsed =
        pg_query::parse(&format!("SELECT {sql}"), pg_query::ParserOptions::DEFAULT).ok()?;
    let [raw] = parsed.protobuf.stmts.as_slice() else {
        return None;
    };
    let Some(NodeEnum::SelectStmt(select)) = raw.stmt.as_ref()?.node.as_ref() else {
        return None;
    };
    match select.target_list.as_slice() {
        [target] => match &target.node {
            Some(NodeEnum::ResTarget(t)) => t.val.as_deref().cloned(),
            _ => None,
        },
        _ => None,
    }
}

/// What an expression or a query refers to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Refs {
    /// Functions called, as written (`now`, `app.f`, `pg_catalog.lower`).
    pub functions: Vec<String>,
    /// Types cast to, as written (`text`, `sales.mood`, `pg_catalog.int4`).
    pub types: Vec<String>,
    /// Column names referenced (the last part of each reference).
    pub columns: Vec<String>,
    /// Relations read, `"schema.name"` (unqualified names in `public`).
    pub relations: Vec<String>,
}

impl Refs {
    /// The references of a canonical expression (`None` if it does not parse).
    pub fn of_expr(sql: &str) -> Option<Refs> {
        let node = single_target(sql)?;
        Some(Refs::walk(node.node.as_ref()?))
    }

    /// The references of a canonical query.
    pub fn of_query(sql: &str) -> Option<Refs> {
        let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).ok()?;
        let raw = parsed.protobuf.stmts.first()?;
        Some(Refs::walk(raw.stmt.as_deref()?.node.as_ref()?))
    }

    fn walk(root: &NodeEnum) -> Refs {
        let mut refs = Refs::default();
        let names = |nodes: &[Node]| -> Vec<String> {
            nodes
                .iter()
                .filter_map(|n| match &n.node {
                    Some(NodeEnum::String(s)) => Some(s.sval.clone()),
                    _ => None,
                })
                .collect()
        };
        for (node, ..) in root.nodes() {
            match node {
                pg_query::NodeRef::FuncCall(f) => refs.functions.push(names(&f.funcname).join(".")),
                pg_query::NodeRef::TypeCast(c) => {
                    if let Some(t) = &c.type_name {
                        refs.types.push(names(&t.names).join("."));
                    }
                }
                pg_query::NodeRef::ColumnRef(c) => {
                    if let Some(last) = names(&c.fields).pop() {
                        refs.columns.push(last);
                    }
                }
                pg_query::NodeRef::RangeVar(rv) => refs.relations.push(relation(rv)),
                _ => {}
            }
        }
        refs
    }

    /// The first function or type that DSQL would not know or not accept: a schema-qualified
    /// name outside `pg_catalog` (a user's function or type, which is not migrated), a sequence
    /// function, or a type DSQL refuses.
    pub fn foreign_to_dsql(&self) -> Option<String> {
        for f in &self.functions {
            let (schema, name) = split(f);
            if schema.is_some_and(|s| s != "pg_catalog") {
                return Some(format!("calls function {f}, which is not migrated"));
            }
            if matches!(name, "nextval" | "currval" | "setval" | "lastval") {
                return Some(format!("calls {name}(), and the sequence is not migrated"));
            }
        }
        for t in &self.types {
            let (schema, name) = split(t);
            if schema.is_some_and(|s| s != "pg_catalog") {
                return Some(format!("uses type {t}, which DSQL cannot create"));
            }
            let parsed = crate::types::PgType::parse(name).ok();
            if parsed.as_ref().is_some_and(|p| !p.dsql_supported()) {
                return Some(format!("uses type {name}, which DSQL does not support"));
            }
            if parsed.is_none() && !matches!(name, "regclass" | "name" | "oid") {
                return Some(format!("uses type {name}, unknown to snap2dsql"));
            }
        }
        None
    }
}

/// `sql` with every cast to one of `enums` (`'ok'::sales.mood`) made a cast to text, since
/// DSQL has no enums and the column becomes text; `None` if it does not parse. The flag says
/// whether anything changed.
pub fn enums_to_text(
    sql: &str,
    enums: &std::collections::BTreeMap<String, Vec<String>>,
) -> Option<(String, bool)> {
    let mut node = single_target(sql)?;
    let mut changed = false;
    retype(&mut node, enums, &mut changed);
    Some((canonical_node(&node)?, changed))
}

fn retype(
    node: &mut Node,
    enums: &std::collections::BTreeMap<String, Vec<String>>,
    changed: &mut bool,
) {
    let each = |nodes: &mut Vec<Node>, changed: &mut bool| {
        for n in nodes {
            retype(n, enums, changed);
        }
    };
    let one = |n: &mut Option<Box<Node>>, changed: &mut bool| {
        if let Some(n) = n {
            retype(n, enums, changed);
        }
    };
    match node.node.as_mut() {
        Some(NodeEnum::TypeCast(c)) => {
            one(&mut c.arg, changed);
            if let Some(t) = c.type_name.as_mut() {
                let names: Vec<String> = t
                    .names
                    .iter()
                    .filter_map(|n| match &n.node {
                        Some(NodeEnum::String(s)) => Some(s.sval.clone()),
                        _ => None,
                    })
                    .collect();
                let qualified = match names.as_slice() {
                    [name] => format!("public.{name}"),
                    [.., schema, name] => format!("{schema}.{name}"),
                    [] => String::new(),
                };
                if enums.contains_key(&qualified) {
                    t.names = vec![Node {
                        node: Some(NodeEnum::String(protobuf::String {
                            sval: "text".into(),
                        })),
                    }];
                    *changed = true;
                }
            }
        }
        Some(NodeEnum::AExpr(e)) => {
            one(&mut e.lexpr, changed);
            one(&mut e.rexpr, changed);
        }
        Some(NodeEnum::BoolExpr(e)) => each(&mut e.args, changed),
        Some(NodeEnum::FuncCall(f)) => each(&mut f.args, changed),
        Some(NodeEnum::NullTest(t)) => one(&mut t.arg, changed),
        Some(NodeEnum::List(l)) => each(&mut l.items, changed),
        Some(NodeEnum::CoalesceExpr(c)) => each(&mut c.args, changed),
        Some(NodeEnum::AArrayExpr(a)) => each(&mut a.elements, changed),
        Some(NodeEnum::RowExpr(r)) => each(&mut r.args, changed),
        Some(NodeEnum::CaseExpr(c)) => {
            one(&mut c.arg, changed);
            each(&mut c.args, changed);
            one(&mut c.defresult, changed);
        }
        Some(NodeEnum::CaseWhen(w)) => {
            one(&mut w.expr, changed);
            one(&mut w.result, changed);
        }
        _ => {}
    }
}

fn split(name: &str) -> (Option<&str>, &str) {
    match name.rsplit_once('.') {
        Some((schema, name)) => (Some(schema), name),
        None => (None, name),
    }
}

fn relation(rv: &protobuf::RangeVar) -> String {
    let schema = if rv.schemaname.is_empty() {
        "public"
    } else {
        &rv.schemaname
    };
    format!("{schema}.{}", rv.relname)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_and_a_catalog_spelling_agree() {
        assert_eq!(canonical("''::text").as_deref(), Some("''::text"));
        assert_eq!(
            canonical("(price > (0)::numeric)"),
            canonical("price > 0::numeric")
        );
        assert_eq!(
            canonical_query(" SELECT a.x\n   FROM s.t a\n  WHERE (a.x > 1);"),
            canonical_query("select a.x from s.t a where a.x > 1")
        );
        assert_eq!(canonical("1 +"), None);
    }

    #[test]
    fn references_and_what_dsql_would_not_know() {
        let r = Refs::of_expr("(m)::text <> 'sad'::sales.mood AND now() > app.f(x)").unwrap();
        assert_eq!(r.columns, ["m", "x"]);
        assert!(r.functions.contains(&"app.f".to_string()));
        assert!(r.foreign_to_dsql().is_some());
        let ok = Refs::of_expr("lower(name) <> ''::text AND qty > 0").unwrap();
        assert_eq!(ok.foreign_to_dsql(), None, "{ok:?}");
        let seq = Refs::of_expr("nextval('s'::regclass)").unwrap();
        assert!(seq.foreign_to_dsql().unwrap().contains("nextval"));
        let money = Refs::of_expr("0::money").unwrap();
        assert!(money.foreign_to_dsql().unwrap().contains("money"));
        let enums = [("sales.mood".to_string(), vec![])].into_iter().collect();
        let (text, changed) = enums_to_text(
            "m = ANY(ARRAY['sad'::sales.mood, 'ok'::sales.mood])",
            &enums,
        )
        .unwrap();
        assert!(changed);
        assert_eq!(text, "m = ANY(ARRAY['sad'::text, 'ok'::text])");
        let q = Refs::of_query("SELECT c.id FROM sales.customers c JOIN orders o ON o.c = c.id")
            .unwrap();
        assert_eq!(q.relations, ["sales.customers", "public.orders"]);
    }
}
