//! One client connection: the proxy between the client and its own upstream session.
//!
//! The session reads client messages in order and forwards each upstream unless a rule
//! intervenes. It keeps a queue of the responses it expects from upstream (`relay`), so the
//! answers of forwarded messages, of the statements it injects itself (savepoints, refusals) and
//! of the statements it answers itself stay in protocol order. Result rows and COPY data are
//! forwarded as raw frames.
//!
//! - `extended`: Parse/Bind/Describe/Execute/Close/Sync/Flush, and every statement's Execute
//!   with its rules before and after.
//! - `simple`: a simple Query, run statement by statement through the extended protocol upstream,
//!   so the stand-in can check each one and hold a multi-statement query's implicit transaction
//!   until its end, as PostgreSQL and DSQL do [REC §5.3].
//! - `copy`: COPY FROM STDIN streamed, counted, and stopped at a limit.
//! - `virt`: statements the stand-in answers itself, and COMMIT.
//! - `relay`: the expected-response queue and the upstream reader.
//!
//! A refusal inside a transaction must leave the upstream transaction aborted exactly as DSQL's
//! is (later statements 25P02, COMMIT answered `ROLLBACK`): the stand-in makes PostgreSQL raise
//! the refusal itself (`sys.standin_raise(code, message)`), so PostgreSQL enters the same state,
//! and rewrites that error to carry only DSQL's SQLSTATE and message.

mod copy;
mod extended;
pub(crate) mod occ;
mod relay;
mod simple;
mod virt;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::error::Result;
use crate::rules::{self, Refusal};
use crate::server::Shared;
use crate::sql::Analysis;
use crate::txn::Txn;
use crate::wire::msg::{self, tag};
use crate::wire::{Conn, Frame};
pub(crate) use relay::Expect;
use relay::{ExecCtx, InternalResult};

/// A boxed step of a session: the session's futures nest deeply (a statement waits for its
/// answers, which may run a COPY, which ...), and boxing the big ones keeps every poll's stack
/// small.
pub(crate) type Step<'a, T = ()> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'a>>;

/// The stand-in's own prepared statements in every upstream session.
pub(crate) const RAISE: &str = "__standin_raise";
pub(crate) const SAVEPOINT: &str = "__standin_savepoint";
pub(crate) const ROLLBACK_TO: &str = "__standin_rollback_to";
pub(crate) const ROLLBACK: &str = "__standin_rollback";
/// The portal the stand-in's own statements run in (closed after each).
pub(crate) const PORTAL: &str = "__standin";

const INTERNALS: &[(&str, &str, &[u32])] = &[
    (RAISE, "SELECT sys.standin_raise($1, $2)", &[25, 25]),
    (SAVEPOINT, "SAVEPOINT __standin", &[]),
    (ROLLBACK_TO, "ROLLBACK TO SAVEPOINT __standin", &[]),
    (ROLLBACK, "ROLLBACK", &[]),
];

/// A statement the client prepared (or the one statement of a simple query being run).
#[derive(Debug)]
pub(crate) struct Prepared {
    pub analysis: Analysis,
    /// The client's text (before rewrites).
    pub sql: String,
    pub param_types: Vec<u32>,
}

/// A portal: its statement and the Bind that made it (parameters, result formats).
#[derive(Debug, Clone)]
pub(crate) struct Portal {
    pub prepared: Arc<Prepared>,
    pub bind: Option<Frame>,
}

/// Whether a statement runs for a simple Query or for the client's extended protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Simple,
    Extended,
}

/// A client connection being served.
pub struct Session<C> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) client: Conn<C>,
    pub(crate) up: Conn<TcpStream>,
    pub(crate) db: String,
    pub(crate) up_pid: i32,
    pub(crate) up_secret: i32,
    pub(crate) statements: HashMap<String, Arc<Prepared>>,
    pub(crate) portals: HashMap<String, Portal>,
    pub(crate) pending: VecDeque<Expect>,
    /// An error was reported to the client in this extended batch: its messages up to Sync are
    /// dropped, as PostgreSQL drops them.
    pub(crate) discarding: bool,
    /// Messages were sent upstream since the last Flush or Sync.
    pub(crate) need_flush: bool,
    /// The upstream transaction status as last known: `I`, `T` or `E`.
    pub(crate) status: u8,
    pub(crate) txn: Txn,
    pub(crate) born: Instant,
    pub(crate) internal_result: Option<InternalResult>,
    pub(crate) exec_done: Option<Box<ExecCtx>>,
    pub(crate) internals_ready: bool,
    /// The client has had its ReadyForQuery and sent nothing since (a connection past its age
    /// is closed only then).
    pub(crate) between_requests: bool,
    /// An upstream message read ahead (during COPY) and not yet matched.
    pub(crate) pushback: Option<Frame>,
    pub(crate) cancel: Arc<tokio::sync::Notify>,
}

impl<C: AsyncRead + AsyncWrite + Unpin + Send + Sync> Session<C> {
    pub(crate) fn new(
        shared: Arc<Shared>,
        client: Conn<C>,
        up: Conn<TcpStream>,
        db: String,
        up_key: (i32, i32),
        cancel: Arc<tokio::sync::Notify>,
    ) -> Session<C> {
        Session {
            shared,
            client,
            up,
            db,
            up_pid: up_key.0,
            up_secret: up_key.1,
            statements: HashMap::new(),
            portals: HashMap::new(),
            pending: VecDeque::new(),
            discarding: false,
            need_flush: false,
            status: b'I',
            txn: Txn::default(),
            born: Instant::now(),
            internal_result: None,
            exec_done: None,
            internals_ready: false,
            pushback: None,
            between_requests: true,
            cancel,
        }
    }

    /// Prepares the stand-in's own statements upstream.
    pub(crate) async fn prepare_internals(&mut self) -> Result<()> {
        let buf = self.up.wbuf();
        for (name, sql, types) in INTERNALS {
            msg::fe_target(buf, tag::CLOSE, b'S', name);
            msg::fe_parse(buf, name, sql, types);
        }
        msg::empty(buf, tag::SYNC);
        for _ in INTERNALS {
            self.pending.push_back(Expect::internal_ack());
            self.pending.push_back(Expect::internal_ack());
        }
        self.pending.push_back(Expect::Sync { relay: false });
        self.need_flush = false;
        self.drain().await?;
        self.internals_ready = true;
        Ok(())
    }

    /// Tells the client the session is ready (the end of startup).
    pub(crate) fn ready_for_query(&mut self) {
        msg::ready_for_query(self.client.wbuf(), b'I');
    }

    /// Serves the client until it leaves, the connection fails, or its age is reached.
    pub async fn run(mut self) -> Result<()> {
        loop {
            self.client.flush().await?;
            let age = self.shared.knobs.max_connection_age();
            let deadline = (self.status == b'I' && self.between_requests && !age.is_zero())
                .then(|| self.born + age);
            let frame = match deadline {
                Some(d) => tokio::select! {
                    f = self.client.read_frame() => f?,
                    _ = tokio::time::sleep_until(d.into()) => {
                        return self.close_for_age().await;
                    }
                },
                None => self.client.read_frame().await?,
            };
            self.between_requests = matches!(frame.tag, tag::QUERY | tag::SYNC);
            match frame.tag {
                tag::QUERY => self.simple_query(&frame).await?,
                tag::PARSE => self.on_parse(&frame).await?,
                tag::BIND => self.on_bind(&frame).await?,
                tag::DESCRIBE => self.on_describe(&frame).await?,
                tag::EXECUTE => self.on_execute(&frame).await?,
                tag::CLOSE => self.on_close(&frame).await?,
                tag::SYNC => self.on_sync().await?,
                tag::FLUSH => self.on_flush().await?,
                tag::TERMINATE => {
                    self.up.queue(&frame.raw);
                    self.up.shutdown().await;
                    self.client.shutdown().await;
                    return Ok(());
                }
                tag::FUNCTION_CALL => {
                    self.up.queue(&frame.raw);
                    self.pending.push_back(Expect::UntilReady);
                    self.need_flush = false;
                    self.drain().await?;
                }
                // Copy messages outside a COPY: PostgreSQL drops them too.
                tag::COPY_DATA | tag::COPY_DONE | tag::COPY_FAIL => {}
                other => {
                    return Err(crate::error::Error::Protocol(format!(
                        "client sent message {:?} outside startup",
                        other as char
                    )));
                }
            }
        }
    }

    async fn close_for_age(mut self) -> Result<()> {
        let secs = self.shared.knobs.max_connection_age().as_secs();
        msg::error(
            self.client.wbuf(),
            "FATAL",
            rules::CONNECTION_AGE,
            &rules::connection_age(secs),
        );
        crate::knobs::Counters::add(&self.shared.knobs.counters.connections_closed_age, 1);
        self.client.shutdown().await;
        self.up.shutdown().await;
        Ok(())
    }

    /// Relays one backend message to the client (ParameterStatus rewritten as DSQL reports).
    pub(crate) async fn relay(&mut self, f: &Frame) -> Result<()> {
        self.client.send(&f.raw).await
    }

    /// Reports an error the stand-in makes itself (the upstream is not asked).
    pub(crate) fn local_error(&mut self, code: &str, message: &str) {
        msg::error(self.client.wbuf(), "ERROR", code, message);
        self.discarding = true;
        self.count_refusal(code);
    }

    fn count_refusal(&self, code: &str) {
        let c = &self.shared.knobs.counters;
        if code == rules::LIMIT {
            crate::knobs::Counters::add(&c.limit_errors, 1);
        } else if code != rules::CONFLICT {
            crate::knobs::Counters::add(&c.refused_statements, 1);
        }
    }

    /// Refuses the current statement the way DSQL does: PostgreSQL raises the refusal itself,
    /// so an explicit transaction ends up aborted (and an implicit one rolled back), and the
    /// client gets DSQL's SQLSTATE and message. In an aborted transaction PostgreSQL's 25P02
    /// answers instead, as on DSQL [REC §5.4].
    pub(crate) fn refuse<'a>(&'a mut self, r: &'a Refusal) -> Step<'a> {
        Box::pin(self.refuse_inner(r))
    }

    async fn refuse_inner(&mut self, r: &Refusal) -> Result<()> {
        self.ensure_internals().await?;
        let result = self
            .internal(RAISE, &[Some(r.code.as_str()), Some(r.message.as_str())])
            .await?;
        match result {
            InternalResult::Failed(fields) if fields.code == r.code => {
                msg::error(self.client.wbuf(), "ERROR", &r.code, &r.message);
                self.count_refusal(&r.code);
            }
            InternalResult::Failed(fields) => {
                msg::error_from_fields(self.client.wbuf(), &fields.all);
            }
            InternalResult::Skipped => {}
            InternalResult::Done { .. } => {
                msg::error(self.client.wbuf(), "ERROR", &r.code, &r.message);
                self.count_refusal(&r.code);
            }
        }
        if self.status == b'T' {
            self.status = b'E';
        }
        self.discarding = true;
        Ok(())
    }

    /// Runs one of the stand-in's own prepared statements and waits for its result.
    pub(crate) fn internal<'a>(
        &'a mut self,
        statement: &'a str,
        params: &'a [Option<&'a str>],
    ) -> Step<'a, InternalResult> {
        Box::pin(self.internal_inner(statement, params))
    }

    async fn internal_inner(
        &mut self,
        statement: &str,
        params: &[Option<&str>],
    ) -> Result<InternalResult> {
        let buf = self.up.wbuf();
        msg::fe_bind_text(buf, PORTAL, statement, params);
        msg::fe_execute(buf, PORTAL, 0);
        msg::fe_target(buf, tag::CLOSE, b'P', PORTAL);
        self.pending.push_back(Expect::internal_ack());
        self.pending.push_back(Expect::Internal(Vec::new()));
        self.pending.push_back(Expect::internal_ack());
        self.need_flush = true;
        self.internal_result = None;
        self.drain().await?;
        Ok(self
            .internal_result
            .take()
            .unwrap_or(InternalResult::Skipped))
    }

    /// Sends a Sync of the stand-in's own and waits for its ReadyForQuery.
    pub(crate) async fn internal_sync(&mut self) -> Result<()> {
        msg::empty(self.up.wbuf(), tag::SYNC);
        self.pending.push_back(Expect::Sync { relay: false });
        self.need_flush = false;
        self.drain().await
    }

    /// Prepares the stand-in's statements again if the client discarded them.
    pub(crate) async fn ensure_internals(&mut self) -> Result<()> {
        if self.internals_ready {
            return Ok(());
        }
        let buf = self.up.wbuf();
        for (name, sql, types) in INTERNALS {
            msg::fe_target(buf, tag::CLOSE, b'S', name);
            msg::fe_parse(buf, name, sql, types);
            self.pending.push_back(Expect::internal_ack());
            self.pending.push_back(Expect::internal_ack());
        }
        self.need_flush = true;
        self.drain().await?;
        self.internals_ready = true;
        Ok(())
    }
}
