//! One writer connection of a chunk: each batch is one transaction, retried until it commits
//! or fails for good.
//!
//! A batch's transaction sends, in this order:
//! 1. `BEGIN`;
//! 2. the rows, in the run's format ([`super::format`]): `COPY "s"."t" (..) FROM STDIN (FORMAT
//!    binary)` or `(FORMAT text)`, or `INSERT INTO "s"."t" (..) VALUES (..), ..` statements;
//! 3. the batch's ledger row, `INSERT INTO snap2dsql.ledger ..`;
//! 4. `COMMIT`, whose command tag is checked: `ROLLBACK` means nothing was written.
//!
//! The rows go before the ledger row so that a COPY is the transaction's first statement: a
//! server that refuses a COPY after an INSERT in the same transaction never sees one.
//!
//! Every step is bounded ([`LoadOptions::statement_timeout`], [`LoadOptions::commit_timeout`]):
//! a connection that goes silent is dropped and the batch retried on a new one. When the answer
//! to COMMIT is lost (timeout, dropped connection, an unexpected tag), the ledger says whether
//! the batch committed. Connections are replaced once older than
//! [`LoadOptions::connection_max_age`] (DSQL closes them at 60 minutes).

use super::format::{self, FormatDecision, LoadFormat, RawField, Step};
use super::{LoadOptions, RetryCounts, ledger};
use crate::error::{Error, ErrorClass, Result};
use crate::target::{Session, Target, within};
use bytes::Bytes;
use futures::SinkExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;
use tokio_postgres::types::ToSql;

/// One batch: a contiguous row range of the chunk, encoded as binary COPY.
pub(crate) struct Batch {
    pub first_row: u64,
    pub rows: usize,
    pub data: Bytes,
}

/// The statements of one table, built once per chunk.
pub(crate) struct TableSql {
    /// `"schema"."table"`.
    pub table: String,
    /// Quoted target column names, in load order, and their types.
    pub columns: Vec<(String, crate::types::PgType)>,
    pub quoted_columns: Vec<String>,
}

impl TableSql {
    pub fn new(table: &crate::mapping::TableMapping) -> TableSql {
        let columns = format::column_types(table);
        let quoted_columns = columns.iter().map(|(c, _)| crate::ddl::ident(c)).collect();
        TableSql {
            table: crate::ddl::qualified(&table.target_schema, &table.target_name),
            columns,
            quoted_columns,
        }
    }

    /// `COPY "s"."t" ("a", ..) FROM STDIN (FORMAT binary|text)`.
    pub fn copy(&self, format: LoadFormat) -> String {
        format!(
            "COPY {} ({}) FROM STDIN (FORMAT {})",
            self.table,
            self.quoted_columns.join(", "),
            if format == LoadFormat::Text {
                "text"
            } else {
                "binary"
            }
        )
    }
}

/// Counters shared by a chunk's writers.
#[derive(Default)]
pub(crate) struct Counters {
    pub written: AtomicU64,
    pub retries: AtomicU64,
    pub batches: AtomicU64,
    /// Encoded binary COPY bytes of the committed batches.
    pub bytes: AtomicU64,
    /// Retries by class: conflict, connection, throttled, expired (see [`Counters::retried`]).
    pub retried: [AtomicU64; 4],
    /// [`LoadFormat`] of the last committed batch, `u8::MAX` before any.
    pub format: LastFormat,
}

impl Counters {
    /// Counts one retry of a transaction that failed with `class`.
    fn retried(&self, class: ErrorClass) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        let i = match class {
            ErrorClass::Conflict => 0,
            ErrorClass::Connection => 1,
            ErrorClass::Throttled => 2,
            // Only the retryable classes get here; the rest never retry.
            _ => 3,
        };
        self.retried[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The retries so far, by class.
    pub fn retries_by_class(&self) -> RetryCounts {
        let n = |i: usize| self.retried[i].load(Ordering::Relaxed);
        RetryCounts {
            conflict: n(0),
            connection: n(1),
            throttled: n(2),
            expired: n(3),
        }
    }
}

/// A [`LoadFormat`] in an atomic, empty until set.
pub(crate) struct LastFormat(AtomicU8);

impl Default for LastFormat {
    fn default() -> Self {
        LastFormat(AtomicU8::new(u8::MAX))
    }
}

impl LastFormat {
    fn set(&self, f: LoadFormat) {
        self.0.store(f.index(), Ordering::Relaxed);
    }

    pub fn get(&self) -> Option<LoadFormat> {
        LoadFormat::from_index(self.0.load(Ordering::Relaxed))
    }
}

/// A failed attempt: where, and why.
struct Failed {
    step: Step,
    error: Error,
}

fn at(step: Step) -> impl Fn(Error) -> Failed {
    move |error| Failed { step, error }
}

pub(crate) struct Writer {
    pub target: Target,
    pub options: LoadOptions,
    pub migration: String,
    pub table: String,
    pub chunk: String,
    pub sql: Arc<TableSql>,
    pub format: Arc<FormatDecision>,
    pub session: Option<Session>,
    pub counters: Arc<Counters>,
    /// Connections lost in a row while sending rows, reset by a commit or a format change.
    pub losses: u32,
}

impl Writer {
    pub async fn run(
        mut self,
        rx: Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Batch>>>,
    ) -> Result<()> {
        loop {
            let batch = { rx.lock().await.recv().await };
            let Some(batch) = batch else {
                return Ok(());
            };
            self.write(&batch).await?;
        }
    }

    /// The open connection, or a new one when there is none, it closed, or it is older than
    /// the configured age.
    async fn session(&mut self) -> Result<&mut Session> {
        let stale = match &self.session {
            Some(s) => s.is_closed() || s.age() > self.options.connection_max_age,
            None => true,
        };
        if stale {
            self.session = None;
            self.session = Some(self.target.session().await?);
        }
        match &mut self.session {
            Some(s) => Ok(s),
            None => Err(Error::Usage("no connection".into())),
        }
    }

    fn committed(&mut self, batch: &Batch, format: LoadFormat) {
        self.losses = 0;
        self.counters
            .written
            .fetch_add(batch.rows as u64, Ordering::Relaxed);
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_add(batch.data.len() as u64, Ordering::Relaxed);
        self.counters.format.set(format);
        self.format.confirm(format);
    }

    /// One batch, one transaction; retried while the failure is retryable.
    async fn write(&mut self, batch: &Batch) -> Result<()> {
        let range = format!(
            "rows {}..{}",
            batch.first_row,
            batch.first_row + batch.rows as u64
        );
        let mut attempt = 0;
        let mut text: Option<Bytes> = None;
        loop {
            let format = self.format.current();
            let Failed { step, error: err } = match self.try_write(batch, format, &mut text).await {
                Ok(()) => {
                    self.committed(batch, format);
                    return Ok(());
                }
                Err(f) => f,
            };
            let class = err.class();
            if class == ErrorClass::Connection {
                self.session = None;
                if step == Step::Rows && format::lost_connection(&err) {
                    self.losses += 1;
                }
            }
            if self.format.moved_on(format, step, &err, self.losses) {
                self.losses = 0;
                continue;
            }
            // Connection lost at COMMIT leaves the outcome unknown; a duplicate-key error may be
            // a concurrent writer of the same batch. The ledger tells which.
            if class == ErrorClass::Connection || err.sqlstate() == Some("23505") {
                self.session = None;
                if let Ok(true) = self.is_committed(batch).await {
                    // A lost answer to our own COMMIT: the rows are in and count as written.
                    // A duplicate key means another writer committed them: not ours to count.
                    if class == ErrorClass::Connection {
                        self.committed(batch, format);
                    }
                    return Ok(());
                }
            }
            tracing::info!(chunk = %self.chunk, %range, attempt, class = ?class, error = %err, "batch failed");
            if self.options.retry_after(&err, &mut attempt).await {
                self.counters.retried(class);
                continue;
            }
            let why = match class {
                ErrorClass::TooBig => {
                    "a DSQL transaction limit was hit: the batch bounds are too large (a bug in batch sizing, or --batch-rows/--batch-bytes set too high)"
                }
                ErrorClass::Data => "the target refused the data",
                _ if class.is_retryable() => "retries exhausted",
                _ => "failed",
            };
            return Err(Error::Batch {
                chunk: self.chunk.clone(),
                range,
                table: self.table.clone(),
                why: format!("{why} ({} of the rows)", format.describe()),
                class,
                source: Box::new(err),
            });
        }
    }

    async fn is_committed(&mut self, batch: &Batch) -> Result<bool> {
        let (migration, chunk) = (self.migration.clone(), self.chunk.clone());
        let bound = self.options.statement_timeout;
        let session = self.session().await?;
        let read = within(
            bound,
            || format!("read the ledger of chunk {chunk}"),
            ledger::committed_ranges(session, &migration, &chunk),
        )
        .await;
        if read.is_err() {
            self.session = None;
        }
        Ok(read?.iter().any(|(a, _)| *a == batch.first_row))
    }

    async fn try_write(
        &mut self,
        batch: &Batch,
        format: LoadFormat,
        text: &mut Option<Bytes>,
    ) -> std::result::Result<(), Failed> {
        let fingerprint = xxhash_rust::xxh3::xxh3_64(&batch.data) as i64;
        let (migration, table, chunk) = (
            self.migration.clone(),
            self.table.clone(),
            self.chunk.clone(),
        );
        let sql = self.sql.clone();
        let (bound, commit_bound) = (self.options.statement_timeout, self.options.commit_timeout);
        if format == LoadFormat::Text && text.is_none() {
            *text = Some(Bytes::from(
                format::to_copy_text(&batch.data, &sql.columns, &chunk, batch.first_row)
                    .map_err(at(Step::Rows))?,
            ));
        }
        let session = self.session().await.map_err(at(Step::Connect))?;
        let tags = session.tags();
        let ctx = |what: &str| format!("{what} (chunk {chunk}, first row {})", batch.first_row);
        let tx = within(bound, || ctx("begin"), async {
            session
                .client
                .transaction()
                .await
                .map_err(|e| Error::db(ctx("begin"), e))
        })
        .await
        .map_err(at(Step::Begin))?;
        match format {
            LoadFormat::Binary | LoadFormat::Text => {
                let data = match (format, &*text) {
                    (LoadFormat::Text, Some(t)) => t.clone(),
                    _ => batch.data.clone(),
                };
                copy(&tx, &sql.copy(format), data, bound, &ctx)
                    .await
                    .map_err(at(Step::Rows))?;
            }
            LoadFormat::Insert => insert(&tx, &sql, &batch.data, bound, &ctx)
                .await
                .map_err(at(Step::Rows))?,
        }
        within(bound, || ctx("record the batch in the ledger"), async {
            tx.execute(
                ledger::INSERT,
                &[
                    &migration,
                    &table,
                    &chunk,
                    &(batch.first_row as i64),
                    &(batch.rows as i32),
                    &(batch.data.len() as i64),
                    &fingerprint,
                ],
            )
            .await
            .map_err(|e| Error::statement(ctx("record the batch in the ledger"), ledger::INSERT, e))
        })
        .await
        .map_err(at(Step::Ledger))?;
        crate::target::commit_checked(tx, &tags, commit_bound, &ctx("commit"))
            .await
            .map_err(at(Step::Commit))?;
        Ok(())
    }
}

/// Sends `data` through `COPY .. FROM STDIN`, each step bounded.
async fn copy(
    tx: &tokio_postgres::Transaction<'_>,
    sql: &str,
    data: Bytes,
    bound: Duration,
    ctx: &impl Fn(&str) -> String,
) -> Result<()> {
    let sink = within(bound, || ctx("start COPY"), async {
        tx.copy_in::<_, Bytes>(sql)
            .await
            .map_err(|e| Error::statement(ctx("start COPY"), sql, e))
    })
    .await?;
    futures::pin_mut!(sink);
    within(bound, || ctx("send COPY data"), async {
        sink.send(data)
            .await
            .map_err(|e| Error::statement(ctx("send COPY data"), sql, e))
    })
    .await?;
    within(bound, || ctx("COPY"), async {
        sink.as_mut()
            .finish()
            .await
            .map_err(|e| Error::statement(ctx("COPY"), sql, e))
    })
    .await?;
    Ok(())
}

/// Sends the batch's rows as multi-row INSERTs with the binary fields as bind parameters.
async fn insert(
    tx: &tokio_postgres::Transaction<'_>,
    sql: &TableSql,
    data: &[u8],
    bound: Duration,
    ctx: &impl Fn(&str) -> String,
) -> Result<()> {
    let width = sql.columns.len();
    let per_statement = format::rows_per_insert(width);
    let mut tuples = format::Tuples::new(data);
    let mut fields = Vec::with_capacity(width);
    let mut params: Vec<RawField<'_>> = Vec::with_capacity(per_statement.min(4_096) * width);
    let mut full: Option<(String, tokio_postgres::Statement)> = None;
    loop {
        let more = tuples.next_into(&mut fields).is_some();
        if more {
            if fields.len() != width {
                return Err(Error::Reencode {
                    chunk: ctx("INSERT"),
                    row: 0,
                    column: "(whole row)".into(),
                    reason: format!(
                        "a batch row has {} fields for {width} columns",
                        fields.len()
                    ),
                });
            }
            params.extend(fields.iter().map(|f| RawField(*f)));
        }
        let rows = params.len() / width.max(1);
        if rows == 0 || (more && rows < per_statement) {
            if more {
                continue;
            }
            return Ok(());
        }
        let text = format::insert_statement(&sql.table, &sql.quoted_columns, rows);
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        within(bound, || ctx("INSERT"), async {
            // The full-size statement is prepared once per batch; a shorter last one as it comes.
            let statement = match &full {
                Some((t, st)) if *t == text => st.clone(),
                _ => {
                    let st = tx
                        .prepare(&text)
                        .await
                        .map_err(|e| Error::statement(ctx("prepare INSERT"), &text, e))?;
                    if rows == per_statement {
                        full = Some((text.clone(), st.clone()));
                    }
                    st
                }
            };
            tx.execute(&statement, &refs)
                .await
                .map_err(|e| Error::statement(ctx("INSERT"), &text, e))
        })
        .await?;
        params.clear();
        if !more {
            return Ok(());
        }
    }
}
