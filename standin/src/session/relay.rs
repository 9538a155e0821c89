//! The responses a session expects from upstream, in order, and the reader that matches each
//! upstream message to the request it answers.
//!
//! Every message sent upstream that gets an answer pushes an [`Expect`]; [`Session::drain`] sends
//! a Flush (or relies on a Sync) and reads until the queue is empty. After an upstream error,
//! PostgreSQL ignores everything up to the next Sync, so the entries queued after the failed one
//! are dropped up to that Sync. Result rows of an Execute are relayed frame by frame as they
//! arrive; the Execute's outcome is kept for [`super::extended`] to check and answer.

use bytes::Bytes;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Session, Step};
use crate::error::Result;
use crate::sql::{Kind, Write};
use crate::wire::Frame;
use crate::wire::msg::{self, ErrorFields, btag, tag};

/// An upstream answer the session waits for.
#[derive(Debug)]
pub(crate) enum Expect {
    /// ParseComplete, BindComplete or CloseComplete. `relay`: pass it on; `client`: an error
    /// answers a client message (relayed) rather than one of the stand-in's own.
    Ack { relay: bool, client: bool },
    /// ParameterDescription, then RowDescription or NoData.
    DescribeStatement { relay: bool },
    /// RowDescription or NoData (`relay_no_data`: false for a simple query, which never gets
    /// NoData).
    DescribePortal { relay: bool, relay_no_data: bool },
    /// A client statement's Execute.
    Execute(Box<ExecCtx>),
    /// One of the stand-in's own statements: the rows it returned.
    Internal(Vec<Bytes>),
    /// ReadyForQuery.
    Sync { relay: bool },
    /// Everything up to ReadyForQuery is relayed (FunctionCall).
    UntilReady,
}

impl Expect {
    pub fn internal_ack() -> Expect {
        Expect::Ack {
            relay: false,
            client: false,
        }
    }
}

/// How one of the stand-in's own statements ended.
#[derive(Debug)]
pub(crate) enum InternalResult {
    Done {
        rows: Vec<Bytes>,
    },
    Failed(ErrorFields),
    /// Never ran: the upstream was ignoring messages after an earlier error.
    Skipped,
}

/// How an Execute ended upstream.
#[derive(Debug, Default)]
pub(crate) enum Outcome {
    #[default]
    Pending,
    Complete(Frame),
    Failed(Frame, ErrorFields),
    /// EmptyQueryResponse or PortalSuspended (already relayed).
    Relayed,
}

/// What the session knows about an Execute while it runs.
#[derive(Debug)]
pub(crate) struct ExecCtx {
    pub kind: Kind,
    /// Rows are held (RETURNING, locking reads) until the statement's fate is known.
    pub hold_rows: bool,
    pub held: Vec<Bytes>,
    pub outcome: Outcome,
    /// A savepoint precedes the statement: a conflict can be rolled back to it.
    pub savepoint: bool,
    /// When the transaction's age limit passes; the statement is cancelled then.
    pub deadline: Option<Instant>,
    pub age_cancelled: bool,
    /// Bytes the client sent for this write (parameters, text, COPY data).
    pub bytes: u64,
    /// COPY: rows seen in the stream.
    pub copy_rows: u64,
    /// COPY stopped by the stand-in: the refusal its error becomes.
    pub copy_refusal: Option<crate::rules::Refusal>,
}

impl ExecCtx {
    pub fn new(kind: Kind, returning: bool) -> ExecCtx {
        let hold_rows = returning || matches!(kind, Kind::LockingRead);
        ExecCtx {
            kind,
            hold_rows,
            held: Vec::new(),
            outcome: Outcome::Pending,
            savepoint: false,
            deadline: None,
            age_cancelled: false,
            bytes: 0,
            copy_rows: 0,
            copy_refusal: None,
        }
    }

    pub fn copy_format(&self) -> Option<crate::sql::CopyFormat> {
        match &self.kind {
            Kind::Write(Write::Copy(f)) => Some(*f),
            _ => None,
        }
    }
}

impl<C: AsyncRead + AsyncWrite + Unpin + Send + Sync> Session<C> {
    /// Reads upstream answers until every expected one has arrived.
    pub(crate) fn drain(&mut self) -> Step<'_> {
        Box::pin(self.drain_inner())
    }

    async fn drain_inner(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            self.up.flush().await?;
            return Ok(());
        }
        if self.need_flush {
            msg::empty(self.up.wbuf(), tag::FLUSH);
            self.need_flush = false;
        }
        self.up.flush().await?;
        while !self.pending.is_empty() {
            let f = self.next_upstream().await?;
            match f.tag {
                btag::NOTICE | btag::NOTIFICATION => {
                    if self.front_is_internal() {
                        continue;
                    }
                    self.relay(&f).await?;
                    continue;
                }
                btag::PARAMETER_STATUS => {
                    self.relay(&f).await?;
                    continue;
                }
                _ => {}
            }
            self.answer(f).await?;
        }
        Ok(())
    }

    fn front_is_internal(&self) -> bool {
        matches!(
            self.pending.front(),
            Some(
                Expect::Internal(_)
                    | Expect::Ack { client: false, .. }
                    | Expect::Sync { relay: false }
            )
        )
    }

    /// The next upstream message; while an Execute runs, its transaction's age is watched.
    async fn next_upstream(&mut self) -> Result<Frame> {
        if let Some(f) = self.pushback.take() {
            return Ok(f);
        }
        loop {
            if let Some(f) = self.up.try_frame()? {
                return Ok(f);
            }
            self.client.flush().await?;
            // PostgreSQL answers nothing before its running Execute ends (the Parse and Bind
            // answers wait in its output buffer too): watch every queued Execute.
            let deadline = self
                .pending
                .iter()
                .filter_map(|e| match e {
                    Expect::Execute(ctx) if !ctx.age_cancelled => ctx.deadline,
                    _ => None,
                })
                .min();
            match deadline {
                Some(d) => {
                    tokio::select! {
                        r = self.up.fill() => r?,
                        _ = tokio::time::sleep_until(d.into()) => self.cancel_for_age(),
                    }
                }
                None => self.up.fill().await?,
            }
        }
    }

    /// The transaction reached its age limit while a statement runs: stop the statement.
    fn cancel_for_age(&mut self) {
        for e in self.pending.iter_mut() {
            if let Expect::Execute(ctx) = e
                && ctx.deadline.is_some()
            {
                ctx.age_cancelled = true;
            }
        }
        let target = self.shared.target.clone();
        let (pid, secret) = (self.up_pid, self.up_secret);
        tokio::spawn(async move { target.cancel(pid, secret).await });
    }

    /// After an upstream error, drops what PostgreSQL will ignore: entries up to the next Sync.
    fn skip_to_sync(&mut self) {
        while let Some(e) = self.pending.front() {
            if matches!(e, Expect::Sync { .. }) {
                break;
            }
            self.pending.pop_front();
        }
    }

    fn answer(&mut self, f: Frame) -> Step<'_> {
        Box::pin(self.answer_inner(f))
    }

    async fn answer_inner(&mut self, f: Frame) -> Result<()> {
        let Some(front) = self.pending.front_mut() else {
            return Ok(());
        };
        match front {
            Expect::Ack { relay, client } => {
                let (relay, client) = (*relay, *client);
                self.pending.pop_front();
                if f.tag == btag::ERROR {
                    self.upstream_error(f, client).await?;
                } else if relay {
                    self.relay(&f).await?;
                }
            }
            Expect::DescribeStatement { relay } => {
                let relay = *relay;
                if f.tag == btag::ERROR {
                    self.pending.pop_front();
                    return self.upstream_error(f, true).await;
                }
                if f.tag != btag::PARAMETER_DESCRIPTION {
                    self.pending.pop_front();
                }
                if relay {
                    self.relay(&f).await?;
                }
            }
            Expect::DescribePortal {
                relay,
                relay_no_data,
            } => {
                let (relay, relay_no_data) = (*relay, *relay_no_data);
                self.pending.pop_front();
                if f.tag == btag::ERROR {
                    return self.upstream_error(f, true).await;
                }
                if relay && (f.tag != btag::NO_DATA || relay_no_data) {
                    self.relay(&f).await?;
                }
            }
            Expect::Execute(ctx) => match f.tag {
                btag::DATA_ROW if ctx.hold_rows => ctx.held.push(f.raw),
                btag::DATA_ROW | btag::COPY_DATA | btag::COPY_DONE | btag::COPY_OUT => {
                    self.relay(&f).await?;
                }
                btag::COMMAND_COMPLETE => {
                    ctx.outcome = Outcome::Complete(f);
                    self.finish_front();
                }
                btag::EMPTY_QUERY | btag::PORTAL_SUSPENDED => {
                    ctx.outcome = Outcome::Relayed;
                    self.relay(&f).await?;
                    self.finish_front();
                }
                btag::ERROR => {
                    let fields = msg::parse_error(f.body())?;
                    ctx.outcome = Outcome::Failed(f, fields);
                    self.finish_front();
                    self.skip_to_sync();
                }
                btag::COPY_IN => {
                    self.relay(&f).await?;
                    self.client.flush().await?;
                    let Some(Expect::Execute(mut ctx)) = self.pending.pop_front() else {
                        return Ok(());
                    };
                    let result = self.copy_in(&mut ctx).await;
                    self.pending.push_front(Expect::Execute(ctx));
                    result?;
                }
                _ => self.relay(&f).await?,
            },
            Expect::Internal(rows) => match f.tag {
                btag::DATA_ROW => rows.push(f.raw),
                btag::COMMAND_COMPLETE => {
                    let rows = std::mem::take(rows);
                    self.pending.pop_front();
                    self.internal_result = Some(super::InternalResult::Done { rows });
                }
                btag::ERROR => {
                    self.pending.pop_front();
                    self.internal_result =
                        Some(super::InternalResult::Failed(msg::parse_error(f.body())?));
                    self.skip_to_sync();
                }
                _ => {}
            },
            Expect::Sync { relay } => {
                let relay = *relay;
                if f.tag == btag::READY {
                    self.pending.pop_front();
                    self.ready(&f).await?;
                    if relay {
                        self.relay(&f).await?;
                    }
                } else if f.tag == btag::ERROR {
                    // An error at Sync: a deferred constraint of an implicit COMMIT.
                    self.relay(&f).await?;
                    self.discarding = true;
                }
            }
            Expect::UntilReady => {
                if f.tag == btag::READY {
                    self.pending.pop_front();
                    self.ready(&f).await?;
                }
                self.relay(&f).await?;
            }
        }
        Ok(())
    }

    fn finish_front(&mut self) {
        if let Some(Expect::Execute(ctx)) = self.pending.pop_front() {
            self.exec_done = Some(ctx);
        }
    }

    /// An upstream error answering a Parse, Bind, Describe or Close.
    async fn upstream_error(&mut self, f: Frame, client: bool) -> Result<()> {
        if client {
            self.relay(&f).await?;
            self.discarding = true;
        } else {
            self.internal_result = Some(super::InternalResult::Failed(msg::parse_error(f.body())?));
        }
        if self.status == b'T' {
            self.status = b'E';
        }
        self.skip_to_sync();
        Ok(())
    }

    /// ReadyForQuery: the upstream's transaction status is the truth; a transaction that ended
    /// is counted and forgotten.
    async fn ready(&mut self, f: &Frame) -> Result<()> {
        let status = f.body().first().copied().unwrap_or(b'I');
        if status == b'I' && self.txn.started.is_some() {
            let counters = &self.shared.knobs.counters;
            if self.status == b'I' && self.txn.wrote && !self.discarding {
                crate::knobs::Counters::add(&counters.commits, 1);
                crate::knobs::Counters::max(&counters.rows_per_transaction_max, self.txn.rows);
                crate::knobs::Counters::max(&counters.bytes_per_transaction_max, self.txn.bytes);
            }
            self.txn.reset();
        }
        self.status = status;
        Ok(())
    }
}
