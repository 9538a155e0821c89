//! Optimistic concurrency, approximated on PostgreSQL's locks.
//!
//! DSQL never makes a writer wait: two transactions writing the same row both succeed at the
//! statement and the later committer fails at COMMIT with 40001 `(OC000)` [REC §6]. PostgreSQL
//! instead blocks the second writer on the first one's row lock. The stand-in bounds that wait
//! (`lock_timeout`, [`crate::config::LOCK_WAIT`]) and runs every write of an explicit transaction
//! after a savepoint of its own; when the write hits the lock timeout (55P03), a serialization
//! failure (40001) or a deadlock (40P01), it rolls back to the savepoint, marks the transaction
//! doomed, and answers the statement as if it had succeeded. The doomed transaction's COMMIT then
//! fails with 40001 `(OC000)`.
//!
//! The approximation, documented:
//! - The second writer to touch a row loses, whatever the commit order (DSQL: the later
//!   committer). Exactly one of two conflicting transactions fails either way.
//! - The doomed statement's row count is what it would have written in its snapshot: the rows a
//!   COPY sent, the rows of `INSERT .. VALUES`, else a `count(*)` over the statement's target
//!   and conditions with its parameters (`INSERT .. SELECT` counts its query). RETURNING rows are
//!   not produced. A locking read answers its rows without the lock.
//! - The doomed write's effects are rolled back at once, so later reads of the same transaction
//!   do not see them (it fails at COMMIT anyway).
//! - A key committed by another transaction after this one's snapshot is answered as PostgreSQL
//!   does (23505 at the INSERT); DSQL may answer 40001 at COMMIT instead.
//! - Outside an explicit transaction (no savepoint) the statement's own implicit commit
//!   conflicts: the statement fails with 40001 `(OC000)`.

use bytes::Bytes;
use pg_query::protobuf::{self, node::Node as N};
use tokio::io::{AsyncRead, AsyncWrite};

use super::relay::ExecCtx;
use super::{Expect, InternalResult, Mode, PORTAL, Portal, ROLLBACK_TO, Session};
use crate::error::Result;
use crate::rules::{self, Refusal};
use crate::sql::{Kind, Write};
use crate::wire::msg::{self, tag};

const TEMP: &str = "__standin_tmp";

impl<C: AsyncRead + AsyncWrite + Unpin + Send + Sync> Session<C> {
    /// A conflicting write inside an explicit transaction: taken back, answered, doomed.
    pub(crate) async fn doomed(
        &mut self,
        ctx: Box<ExecCtx>,
        portal: &Portal,
        mode: Mode,
    ) -> Result<()> {
        // The upstream ignores messages until a Sync after the failed statement.
        self.internal_sync().await?;
        let r = self.internal(ROLLBACK_TO, &[]).await?;
        if !matches!(r, InternalResult::Done { .. }) {
            tracing::warn!("stand-in could not roll back to its savepoint: {r:?}");
        }
        self.status = b'T';
        self.txn.doomed = true;
        let (rows, answer_rows) = match &ctx.kind {
            Kind::Write(Write::Copy(_)) => (ctx.copy_rows, Vec::new()),
            Kind::Write(Write::Insert {
                values_rows: Some(n),
            }) => (*n, Vec::new()),
            Kind::LockingRead => {
                let rows = self.rerun(portal, Rerun::WithoutLock).await?;
                (rows.len() as u64, rows)
            }
            _ => {
                let rows = self.rerun(portal, Rerun::Count).await?;
                let n = rows
                    .first()
                    .and_then(first_text)
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                (n, Vec::new())
            }
        };
        if let Kind::Write(w) = &ctx.kind {
            let counted = match w {
                Write::Copy(_) => self.shared.config.unknowns.copy_rows_count,
                Write::Update | Write::Delete => {
                    self.shared.config.unknowns.update_delete_rows_count
                }
                Write::Insert { .. } => true,
            };
            if counted {
                self.txn.rows += rows;
            }
            self.txn.bytes += ctx.bytes;
            if self.txn.rows > self.shared.knobs.max_rows() {
                return self
                    .refuse(&Refusal::new(rules::LIMIT, rules::ROW_LIMIT))
                    .await;
            }
        }
        for row in answer_rows {
            self.client.send(&row).await?;
        }
        let tag = match &ctx.kind {
            Kind::Write(Write::Insert { .. }) => format!("INSERT 0 {rows}"),
            Kind::Write(Write::Update) => format!("UPDATE {rows}"),
            Kind::Write(Write::Delete) => format!("DELETE {rows}"),
            Kind::Write(Write::Copy(_)) => format!("COPY {rows}"),
            _ => format!("SELECT {rows}"),
        };
        msg::command_complete(self.client.wbuf(), &tag);
        self.txn.ran(&ctx.kind);
        let _ = mode;
        Ok(())
    }

    /// Runs a read derived from the portal's statement, with the portal's parameters; answers
    /// its rows (in the client's result formats for `WithoutLock`, text for `Count`).
    async fn rerun(&mut self, portal: &Portal, how: Rerun) -> Result<Vec<Bytes>> {
        let Some(sql) = derived_sql(&portal.prepared.sql, how) else {
            return Ok(Vec::new());
        };
        let bind = portal.bind.as_ref().map(|b| b.raw.clone());
        let parsed_bind = bind
            .as_ref()
            .and_then(|b| msg::parse_bind(&b[5..]).ok())
            .and_then(|b| msg::parse_bind_params(b.rest).ok());
        let empty = msg::BindParams {
            formats: Vec::new(),
            values: Vec::new(),
            result_formats: Vec::new(),
        };
        let params = parsed_bind.as_ref().unwrap_or(&empty);
        let results: Vec<i16> = match how {
            Rerun::Count => Vec::new(),
            Rerun::WithoutLock => params.result_formats.clone(),
        };
        let buf = self.up.wbuf();
        msg::fe_target(buf, tag::CLOSE, b'S', TEMP);
        msg::fe_parse(buf, TEMP, &sql, &portal.prepared.param_types);
        msg::fe_bind_raw(buf, PORTAL, TEMP, params, &results);
        msg::fe_execute(buf, PORTAL, 0);
        msg::fe_target(buf, tag::CLOSE, b'P', PORTAL);
        msg::fe_target(buf, tag::CLOSE, b'S', TEMP);
        for _ in 0..3 {
            self.pending.push_back(Expect::internal_ack());
        }
        self.pending.push_back(Expect::Internal(Vec::new()));
        for _ in 0..2 {
            self.pending.push_back(Expect::internal_ack());
        }
        self.need_flush = true;
        self.internal_result = None;
        self.drain().await?;
        match self.internal_result.take() {
            Some(InternalResult::Done { rows, .. }) => Ok(rows),
            Some(InternalResult::Failed(e)) => {
                // The read failed (its statement cannot be rewritten): answer no rows, and let
                // PostgreSQL forget the error.
                tracing::debug!("stand-in conflict re-read failed: {}", e.message);
                self.internal_sync().await?;
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Rerun {
    /// `SELECT count(*)` over what the write would have touched.
    Count,
    /// The locking read without its locking clause.
    WithoutLock,
}

/// The first column of a DataRow, as text.
fn first_text(row: &Bytes) -> Option<String> {
    let mut r = msg::Reader::new(&row[5..]);
    let n = r.i16().ok()?;
    if n < 1 {
        return None;
    }
    let len = r.i32().ok()?;
    if len < 0 {
        return None;
    }
    String::from_utf8(r.take(len as usize).ok()?.to_vec()).ok()
}

fn node(n: N) -> protobuf::Node {
    protobuf::Node { node: Some(n) }
}

fn count_star() -> protobuf::Node {
    node(N::ResTarget(Box::new(protobuf::ResTarget {
        val: Some(Box::new(node(N::FuncCall(Box::new(protobuf::FuncCall {
            funcname: vec![node(N::String(protobuf::String {
                sval: "count".into(),
            }))],
            agg_star: true,
            funcformat: protobuf::CoercionForm::CoerceExplicitCall as i32,
            ..Default::default()
        }))))),
        ..Default::default()
    })))
}

/// A SELECT with its enum fields set (the deparser refuses undefined values).
fn plain_select() -> protobuf::SelectStmt {
    protobuf::SelectStmt {
        op: protobuf::SetOperation::SetopNone as i32,
        limit_option: protobuf::LimitOption::Default as i32,
        ..Default::default()
    }
}

/// The SQL of a derived read, deparsed by PostgreSQL's own deparser.
fn derived_sql(sql: &str, how: Rerun) -> Option<String> {
    let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).ok()?;
    let stmt = parsed
        .protobuf
        .stmts
        .first()?
        .stmt
        .as_ref()?
        .node
        .as_ref()?;
    let select = match (how, stmt) {
        (Rerun::WithoutLock, N::SelectStmt(s)) => {
            let mut s = s.clone();
            s.locking_clause.clear();
            *s
        }
        (Rerun::Count, N::UpdateStmt(u)) => {
            let mut from = vec![node(N::RangeVar(u.relation.clone()?))];
            from.extend(u.from_clause.iter().cloned());
            protobuf::SelectStmt {
                target_list: vec![count_star()],
                from_clause: from,
                where_clause: u.where_clause.clone(),
                with_clause: u.with_clause.clone(),
                ..plain_select()
            }
        }
        (Rerun::Count, N::DeleteStmt(d)) => {
            let mut from = vec![node(N::RangeVar(d.relation.clone()?))];
            from.extend(d.using_clause.iter().cloned());
            protobuf::SelectStmt {
                target_list: vec![count_star()],
                from_clause: from,
                where_clause: d.where_clause.clone(),
                with_clause: d.with_clause.clone(),
                ..plain_select()
            }
        }
        (Rerun::Count, N::InsertStmt(i)) => {
            let query = i.select_stmt.clone()?;
            protobuf::SelectStmt {
                target_list: vec![count_star()],
                from_clause: vec![node(N::RangeSubselect(Box::new(
                    protobuf::RangeSubselect {
                        lateral: false,
                        subquery: Some(query),
                        alias: Some(protobuf::Alias {
                            aliasname: "standin".into(),
                            colnames: Vec::new(),
                        }),
                    },
                )))],
                with_clause: i.with_clause.clone(),
                ..plain_select()
            }
        }
        _ => return None,
    };
    let result = protobuf::ParseResult {
        version: parsed.protobuf.version,
        stmts: vec![protobuf::RawStmt {
            stmt: Some(Box::new(node(N::SelectStmt(Box::new(select))))),
            stmt_location: 0,
            stmt_len: 0,
        }],
    };
    pg_query::deparse(&result, Default::default()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_derived_from_the_write() {
        assert_eq!(
            derived_sql("UPDATE t AS x SET a = $1 WHERE k = $2", Rerun::Count).as_deref(),
            Some("SELECT count(*) FROM t x WHERE k = $2")
        );
        assert_eq!(
            derived_sql("DELETE FROM t USING u WHERE t.id = u.id", Rerun::Count).as_deref(),
            Some("SELECT count(*) FROM t, u WHERE t.id = u.id")
        );
        assert_eq!(
            derived_sql("INSERT INTO t SELECT generate_series(1, 3)", Rerun::Count).as_deref(),
            Some("SELECT count(*) FROM (SELECT generate_series(1, 3)) standin")
        );
        assert_eq!(
            derived_sql(
                "SELECT name FROM t WHERE id = 1 FOR UPDATE",
                Rerun::WithoutLock
            )
            .as_deref(),
            Some("SELECT name FROM t WHERE id = 1")
        );
    }
}
