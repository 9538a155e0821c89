//! The extended query protocol, and every statement's Execute with DSQL's rules around it.
//!
//! Statements DSQL refuses whatever the state are refused at Parse (as DSQL's parser does);
//! statements the stand-in answers itself are never parsed upstream. At Execute the rules that
//! need the transaction's state run first (age, one DDL, no DDL with DML, binary COPY, catalog
//! checks); a write inside an explicit transaction gets a savepoint so a conflict can be taken
//! back ([`super::occ`]); when the statement ends, its rows and bytes are counted against the
//! limits before its CommandComplete is passed on.

use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};

use super::relay::{ExecCtx, Outcome};
use super::{Expect, InternalResult, Mode, Portal, Prepared, SAVEPOINT, Session, Step};
use crate::config::BinaryCopy;
use crate::error::Result;
use crate::knobs::Counters;
use crate::rules::{self, Refusal};
use crate::sql::{self, Check, CopyFormat, Kind, Write};
use crate::wire::Frame;
use crate::wire::msg::{self, btag, tag};

/// SQLSTATEs PostgreSQL gives where DSQL would report an optimistic conflict: a lock wait cut
/// short by `lock_timeout` (55P03), a serialization failure under REPEATABLE READ (40001), a
/// deadlock (40P01).
pub(crate) fn is_conflict(code: &str) -> bool {
    matches!(code, "55P03" | "40001" | "40P01")
}

impl<C: AsyncRead + AsyncWrite + Unpin + Send + Sync> Session<C> {
    pub(crate) async fn on_parse(&mut self, f: &Frame) -> Result<()> {
        if self.discarding {
            return Ok(());
        }
        let p = msg::parse_parse(f.body())?;
        let analysis = sql::analyze(p.query, &self.shared.config.extra_settings);
        if let Some(r) = analysis.refusal.clone() {
            return self.refuse(&r).await;
        }
        // A COPY is checked at Parse too: refused at its Execute, a client that pipelines
        // Bind/Execute/Sync before the COPY data (tokio-postgres) would see two ReadyForQuery
        // for one request (the Sync it sent with the Execute is not swallowed by a COPY).
        if matches!(analysis.kind, Kind::Write(Write::Copy(_)))
            && let Some(r) = self.precheck(&analysis).await?
        {
            return self.refuse(&r).await;
        }
        let name = p.name.to_owned();
        let prepared = Arc::new(Prepared {
            sql: p.query.to_owned(),
            param_types: p.param_types.clone(),
            analysis,
        });
        if matches!(prepared.analysis.kind, Kind::Virtual(_)) {
            self.drain().await?;
            msg::empty(self.client.wbuf(), btag::PARSE_COMPLETE);
        } else {
            if prepared.analysis.upstream_sql != prepared.sql {
                msg::fe_parse(
                    self.up.wbuf(),
                    &name,
                    &prepared.analysis.upstream_sql,
                    &prepared.param_types,
                );
                self.expect_ack();
            } else {
                self.forward_acked(f);
            }
        }
        self.statements.insert(name, prepared);
        Ok(())
    }

    pub(crate) async fn on_bind(&mut self, f: &Frame) -> Result<()> {
        if self.discarding {
            return Ok(());
        }
        let b = msg::parse_bind(f.body())?;
        let prepared = self.statements.get(b.statement).cloned();
        let portal_name = b.portal.to_owned();
        match prepared {
            Some(p) if matches!(p.analysis.kind, Kind::Virtual(_)) => {
                self.drain().await?;
                msg::empty(self.client.wbuf(), btag::BIND_COMPLETE);
                self.portals.insert(
                    portal_name,
                    Portal {
                        prepared: p,
                        bind: Some(f.clone()),
                    },
                );
            }
            other => {
                self.forward_acked(f);
                if let Some(p) = other {
                    self.portals.insert(
                        portal_name,
                        Portal {
                            prepared: p,
                            bind: Some(f.clone()),
                        },
                    );
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn on_describe(&mut self, f: &Frame) -> Result<()> {
        if self.discarding {
            return Ok(());
        }
        let (kind, name) = msg::parse_target(f.body())?;
        let virtual_of = |p: &Prepared| match &p.analysis.kind {
            Kind::Virtual(v) => Some(v.clone()),
            _ => None,
        };
        if kind == b'S' {
            if let Some(v) = self.statements.get(name).and_then(|p| virtual_of(p)) {
                self.drain().await?;
                self.describe_virtual(&v, true, &[]);
                return Ok(());
            }
            self.up.queue(&f.raw);
            self.pending
                .push_back(Expect::DescribeStatement { relay: true });
        } else {
            let found = self
                .portals
                .get(name)
                .and_then(|p| virtual_of(&p.prepared).map(|v| (v, p.bind.clone())));
            if let Some((v, bind)) = found {
                self.drain().await?;
                let formats = result_formats(bind.as_ref());
                self.describe_virtual(&v, false, &formats);
                return Ok(());
            }
            self.up.queue(&f.raw);
            self.pending.push_back(Expect::DescribePortal {
                relay: true,
                relay_no_data: true,
            });
        }
        self.need_flush = true;
        Ok(())
    }

    pub(crate) async fn on_close(&mut self, f: &Frame) -> Result<()> {
        if self.discarding {
            return Ok(());
        }
        let (kind, name) = msg::parse_target(f.body())?;
        let is_virtual = if kind == b'S' {
            self.statements
                .remove(name)
                .is_some_and(|p| matches!(p.analysis.kind, Kind::Virtual(_)))
        } else {
            self.portals
                .remove(name)
                .is_some_and(|p| matches!(p.prepared.analysis.kind, Kind::Virtual(_)))
        };
        if is_virtual {
            self.drain().await?;
            msg::empty(self.client.wbuf(), btag::CLOSE_COMPLETE);
        } else {
            self.forward_acked(f);
        }
        Ok(())
    }

    /// A client message answered by ParseComplete, BindComplete or CloseComplete, forwarded.
    fn forward_acked(&mut self, f: &Frame) {
        self.up.queue(&f.raw);
        self.expect_ack();
    }

    fn expect_ack(&mut self) {
        self.pending.push_back(Expect::Ack {
            relay: true,
            client: true,
        });
        self.need_flush = true;
    }

    pub(crate) async fn on_sync(&mut self) -> Result<()> {
        self.sync().await
    }

    /// Ends the client's request: Sync upstream, its ReadyForQuery relayed; the batch's error
    /// state is over, and outside a transaction its portals are gone.
    pub(crate) async fn sync(&mut self) -> Result<()> {
        msg::empty(self.up.wbuf(), tag::SYNC);
        self.pending.push_back(Expect::Sync { relay: true });
        self.need_flush = false;
        self.drain().await?;
        self.discarding = false;
        if self.status == b'I' {
            self.portals.clear();
        }
        Ok(())
    }

    pub(crate) async fn on_flush(&mut self) -> Result<()> {
        self.need_flush = true;
        self.drain().await?;
        self.client.flush().await
    }

    pub(crate) async fn on_execute(&mut self, f: &Frame) -> Result<()> {
        if self.discarding {
            return Ok(());
        }
        let (portal, _max) = msg::parse_execute(f.body())?;
        match self.portals.get(portal).cloned() {
            Some(p) => self.execute(p, Some(f), Mode::Extended).await,
            None => {
                // Unknown portal: PostgreSQL answers 34000.
                let ctx = ExecCtx::new(Kind::Unparsed, false);
                self.forward_execute(ctx, Some(f)).await?;
                if let Some(ctx) = self.exec_done.take() {
                    self.fail_or_relay(ctx).await?;
                }
                Ok(())
            }
        }
    }

    /// The rules that need the transaction's state or the catalog.
    pub(crate) async fn precheck(&mut self, a: &sql::Analysis) -> Result<Option<Refusal>> {
        if self.status == b'E' {
            // PostgreSQL answers 25P02 first [REC §5.4].
            return Ok(None);
        }
        let knobs = &self.shared.knobs;
        let limit = knobs.max_transaction_age();
        if !matches!(a.kind, Kind::Rollback | Kind::Commit)
            && self.txn.expired(limit, Instant::now())
        {
            self.txn.aged = true;
            return Ok(Some(Refusal::new(rules::LIMIT, rules::age_limit(limit))));
        }
        if let Some(m) = self
            .txn
            .ddl_rule(&a.kind, self.shared.config.unknowns.reads_count_as_dml)
        {
            return Ok(Some(Refusal::new(rules::UNSUPPORTED, m)));
        }
        if matches!(a.kind, Kind::Write(Write::Copy(CopyFormat::Binary))) {
            let refused = match knobs.binary_copy() {
                BinaryCopy::Accept => false,
                BinaryCopy::Refuse => true,
                BinaryCopy::RefuseInTransaction => self.status == b'T',
            };
            if refused {
                return Ok(Some(Refusal::new(
                    rules::UNSUPPORTED,
                    rules::BINARY_COPY_REFUSED,
                )));
            }
        }
        for check in &a.checks {
            match check {
                Check::UsingIndex { index } => {
                    if self.shared.jobs.index_pending(&self.db, index) {
                        return Ok(Some(Refusal::new(
                            rules::NOT_READY,
                            rules::index_not_valid(index),
                        )));
                    }
                }
                Check::DropColumn {
                    schema,
                    table,
                    column,
                } => {
                    if self
                        .is_primary_key_column(schema.as_deref(), table, column)
                        .await
                    {
                        return Ok(Some(Refusal::new(
                            rules::UNSUPPORTED,
                            rules::drop_primary_key_column(column),
                        )));
                    }
                }
            }
        }
        Ok(None)
    }

    async fn is_primary_key_column(&self, schema: Option<&str>, table: &str, column: &str) -> bool {
        let Ok(admin) = self.shared.admin(&self.db).await else {
            return false;
        };
        let relation = match schema {
            Some(s) => format!("{}.{}", crate::jobs::quote(s), crate::jobs::quote(table)),
            None => crate::jobs::quote(table),
        };
        admin
            .query_opt(
                "SELECT 1 FROM pg_index i JOIN pg_attribute a \
                 ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
                 WHERE i.indrelid = to_regclass($1) AND i.indisprimary AND a.attname = $2",
                &[&relation, &column],
            )
            .await
            .ok()
            .flatten()
            .is_some()
    }

    /// Runs a statement's Execute (the client's, or one the stand-in makes for a simple query).
    pub(crate) fn execute<'a>(
        &'a mut self,
        portal: Portal,
        frame: Option<&'a Frame>,
        mode: Mode,
    ) -> Step<'a> {
        Box::pin(self.execute_inner(portal, frame, mode))
    }

    async fn execute_inner(
        &mut self,
        portal: Portal,
        frame: Option<&Frame>,
        mode: Mode,
    ) -> Result<()> {
        self.txn.statement(Instant::now());
        if mode == Mode::Extended
            && let Some(r) = self.precheck(&portal.prepared.analysis).await?
        {
            return self.refuse(&r).await;
        }
        let a = &portal.prepared.analysis;
        match &a.kind {
            Kind::Virtual(v) => return self.run_virtual(v.clone(), &portal, mode).await,
            Kind::Commit if self.status == b'T' && !self.commit_allowed().await? => {
                return Ok(());
            }
            _ => {}
        }
        let mut ctx = ExecCtx::new(a.kind.clone(), a.returning);
        // Ending a transaction is never stopped by its age; an aborted one has no age left.
        if self.status != b'E' && !matches!(a.kind, Kind::Commit | Kind::Rollback) {
            ctx.deadline = self.txn.deadline(self.shared.knobs.max_transaction_age());
        }
        if a.kind.is_write() {
            ctx.bytes = portal.prepared.sql.len() as u64
                + portal
                    .bind
                    .as_ref()
                    .and_then(|b| msg::parse_bind(b.body()).ok())
                    .and_then(|b| msg::parse_bind_params(b.rest).ok())
                    .map_or(0, |p| p.value_bytes());
        }
        if a.kind.conflicts() && self.status == b'T' {
            self.ensure_internals().await?;
            let r = self.internal(SAVEPOINT, &[]).await?;
            if self.discarding {
                return Ok(());
            }
            ctx.savepoint = matches!(r, InternalResult::Done { .. });
        }
        self.forward_execute(ctx, frame).await?;
        if let Some(ctx) = self.exec_done.take() {
            self.finish(ctx, &portal, mode).await?;
        }
        Ok(())
    }

    /// Sends an Execute upstream and reads its results.
    pub(crate) async fn forward_execute(
        &mut self,
        ctx: ExecCtx,
        frame: Option<&Frame>,
    ) -> Result<()> {
        match frame {
            Some(f) => self.up.queue(&f.raw),
            None => msg::fe_execute(self.up.wbuf(), "", 0),
        }
        self.pending.push_back(Expect::Execute(Box::new(ctx)));
        self.need_flush = true;
        self.drain().await
    }

    /// A statement ended upstream: count it, check the limits, answer.
    fn finish<'a>(&'a mut self, ctx: Box<ExecCtx>, portal: &'a Portal, mode: Mode) -> Step<'a> {
        Box::pin(self.finish_inner(ctx, portal, mode))
    }

    async fn finish_inner(&mut self, ctx: Box<ExecCtx>, portal: &Portal, mode: Mode) -> Result<()> {
        let mut ctx = ctx;
        if !matches!(ctx.outcome, Outcome::Complete(_)) {
            if let Outcome::Failed(_, fields) = &ctx.outcome
                && ctx.savepoint
                && ctx.copy_refusal.is_none()
                && !ctx.age_cancelled
                && is_conflict(&fields.code)
            {
                return self.doomed(ctx, portal, mode).await;
            }
            return self.fail_or_relay(ctx).await;
        }
        let Outcome::Complete(done) = std::mem::take(&mut ctx.outcome) else {
            return Ok(());
        };
        let tag = msg::parse_command_complete(done.body())?.to_owned();
        let knobs = Arc::clone(&self.shared.knobs);
        if let Kind::Write(w) = &ctx.kind {
            let n = msg::tag_rows(&tag).unwrap_or(0);
            let unknowns = &self.shared.config.unknowns;
            let counted = match w {
                Write::Copy(_) => unknowns.copy_rows_count,
                Write::Update | Write::Delete => unknowns.update_delete_rows_count,
                Write::Insert { .. } => true,
            };
            if counted {
                self.txn.rows += n;
            }
            self.txn.bytes += ctx.bytes;
            Counters::add(&knobs.counters.rows_written, n);
            if let Write::Copy(_) = w {
                Counters::add(&knobs.counters.copy_rows, n);
            }
            if self.txn.rows > knobs.max_rows() {
                return self
                    .refuse(&Refusal::new(rules::LIMIT, rules::ROW_LIMIT))
                    .await;
            }
            if self.txn.bytes > knobs.max_bytes() {
                return self
                    .refuse(&Refusal::new(rules::LIMIT, rules::SIZE_LIMIT))
                    .await;
            }
        }
        let limit = knobs.max_transaction_age();
        let ends = matches!(ctx.kind, Kind::Commit | Kind::Rollback);
        if ctx.age_cancelled || (!ends && self.txn.expired(limit, Instant::now())) {
            self.txn.aged = true;
            return self
                .refuse(&Refusal::new(rules::LIMIT, rules::age_limit(limit)))
                .await;
        }
        for row in std::mem::take(&mut ctx.held) {
            self.client.send(&row).await?;
        }
        self.client.send(&done.raw).await?;
        self.txn.ran(&ctx.kind);
        match &ctx.kind {
            Kind::Begin => self.status = b'T',
            Kind::Commit | Kind::Rollback => self.end_transaction(&tag),
            _ => {}
        }
        if portal.prepared.analysis.drop_job {
            self.shared.jobs.record_drop(&self.db).await;
        }
        if portal.prepared.analysis.discards_prepared {
            self.internals_ready = false;
            self.ensure_internals().await?;
        }
        Ok(())
    }

    /// An explicit transaction ended with `tag` (COMMIT or ROLLBACK).
    pub(crate) fn end_transaction(&mut self, tag: &str) {
        let c = &self.shared.knobs.counters;
        if self.status == b'T' && tag == "COMMIT" {
            Counters::add(&c.commits, 1);
            Counters::max(&c.rows_per_transaction_max, self.txn.rows);
            Counters::max(&c.bytes_per_transaction_max, self.txn.bytes);
        } else if self.status != b'I' {
            Counters::add(&c.rollbacks, 1);
        }
        self.status = b'I';
        self.txn.reset();
    }

    /// A failed statement: its error is passed on (rewritten where DSQL's differs).
    pub(crate) async fn fail_or_relay(&mut self, ctx: Box<ExecCtx>) -> Result<()> {
        let Outcome::Failed(frame, fields) = ctx.outcome else {
            return Ok(());
        };
        let limit = self.shared.knobs.max_transaction_age();
        if let Some(r) = &ctx.copy_refusal {
            self.local_error(&r.code, &r.message);
        } else if ctx.age_cancelled && fields.code == "57014" {
            self.txn.aged = true;
            self.local_error(rules::LIMIT, &rules::age_limit(limit));
        } else if is_conflict(&fields.code) {
            // Outside an explicit transaction the statement's own commit conflicts [REC §6].
            self.local_error(rules::CONFLICT, rules::CONFLICT_MESSAGE);
        } else {
            self.relay(&frame).await?;
            self.discarding = true;
        }
        if self.status == b'T' {
            self.status = b'E';
        }
        Ok(())
    }
}

/// The result format codes of a Bind.
pub(crate) fn result_formats(bind: Option<&Frame>) -> Vec<i16> {
    bind.and_then(|b| msg::parse_bind(b.body()).ok())
        .and_then(|b| msg::parse_bind_params(b.rest).ok())
        .map(|p| p.result_formats)
        .unwrap_or_default()
}
