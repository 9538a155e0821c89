//! Statements the stand-in answers itself, and COMMIT.
//!
//! - `CREATE \[UNIQUE\] INDEX ASYNC` / `ALTER TABLE ASYNC .. VALIDATE CONSTRAINT`: a job is
//!   submitted ([`crate::jobs`]) and answered as one row, column `job_id` [REC §3.2, §4].
//! - `CALL sys.wait_for_job('<id>' | $n)`: waits for the job; one boolean row, or the tag alone
//!   (switch [`crate::Unknowns::wait_for_job_result`]).
//! - `SHOW server_version` / `server_version_num`: DSQL's values [REC §10].
//! - COMMIT of a transaction that lost a conflict, that is past its age, or that draws an injected
//!   conflict fails: the stand-in rolls it back upstream and answers the error, so the session is
//!   out of the transaction as after any failed COMMIT. Commit latency delays the COMMIT of this
//!   session only.

use rand::Rng;
use tokio::io::{AsyncRead, AsyncWrite};

use super::extended::result_formats;
use super::{InternalResult, Mode, Portal, ROLLBACK, Session, Step};
use crate::config::WaitForJobResult;
use crate::error::Result;
use crate::knobs::Counters;
use crate::rules::{self, Refusal};
use crate::sql::{JobArg, Kind, Virtual};
use crate::wire::msg::{self, Column, btag, oid};

impl<C: AsyncRead + AsyncWrite + Unpin + Send + Sync> Session<C> {
    /// The columns a virtual statement answers (None: no rows, NoData).
    fn virtual_columns(&self, v: &Virtual) -> Option<Vec<Column<'static>>> {
        let text = |name: &'static str| Column {
            name,
            type_oid: oid::TEXT,
            type_size: -1,
        };
        match v {
            Virtual::Show { name, .. } => Some(vec![text(name)]),
            Virtual::CreateIndexAsync(_) | Virtual::ValidateAsync(_) => Some(vec![text("job_id")]),
            Virtual::WaitForJob(_) => match self.shared.config.unknowns.wait_for_job_result {
                WaitForJobResult::Row => Some(vec![Column {
                    name: "wait_for_job",
                    type_oid: oid::BOOL,
                    type_size: 1,
                }]),
                WaitForJobResult::TagOnly => None,
            },
        }
    }

    /// Answers Describe of a virtual statement (`statement`: with its parameter types).
    pub(crate) fn describe_virtual(&mut self, v: &Virtual, statement: bool, formats: &[i16]) {
        let columns = self.virtual_columns(v);
        let buf = self.client.wbuf();
        if statement {
            match v {
                Virtual::WaitForJob(JobArg::Param(n)) => {
                    let n = *n as i16;
                    buf.extend_from_slice(&[btag::PARAMETER_DESCRIPTION]);
                    buf.extend_from_slice(&(6 + 4 * n as i32).to_be_bytes());
                    buf.extend_from_slice(&n.to_be_bytes());
                    for _ in 0..n {
                        buf.extend_from_slice(&oid::TEXT.to_be_bytes());
                    }
                }
                _ => msg::parameter_description_none(buf),
            }
        }
        match columns {
            Some(cols) => msg::row_description(buf, &cols, formats),
            None => msg::empty(buf, btag::NO_DATA),
        }
    }

    /// Runs a statement the stand-in answers itself.
    pub(crate) async fn run_virtual(
        &mut self,
        v: Virtual,
        portal: &Portal,
        mode: Mode,
    ) -> Result<()> {
        self.drain().await?;
        if self.status == b'E' {
            self.local_error(rules::ABORTED, rules::ABORTED_MESSAGE);
            return Ok(());
        }
        let formats = result_formats(portal.bind.as_ref());
        let (value, tag): (Option<Vec<u8>>, &str) = match &v {
            Virtual::Show { value, .. } => (Some(value.as_bytes().to_vec()), "SHOW"),
            Virtual::CreateIndexAsync(job) => {
                let jobs = self.shared.jobs.clone();
                match jobs.submit_index(&self.db, job).await {
                    Ok(id) => {
                        Counters::add(&self.shared.knobs.counters.jobs_submitted, 1);
                        (Some(id.into_bytes()), "CREATE INDEX")
                    }
                    Err(r) => return self.refuse(&r).await,
                }
            }
            Virtual::ValidateAsync(job) => {
                let jobs = self.shared.jobs.clone();
                match jobs.submit_validate(&self.db, job).await {
                    Ok(id) => {
                        Counters::add(&self.shared.knobs.counters.jobs_submitted, 1);
                        (Some(id.into_bytes()), "ALTER TABLE")
                    }
                    Err(r) => return self.refuse(&r).await,
                }
            }
            Virtual::WaitForJob(arg) => {
                let id = match arg {
                    JobArg::Literal(s) => Some(s.clone()),
                    JobArg::Param(n) => param_text(portal, *n),
                };
                let Some(id) = id else {
                    return self
                        .refuse(&Refusal::new(rules::INVALID_TEXT, rules::JOB_ID_NOT_UUID))
                        .await;
                };
                let jobs = self.shared.jobs.clone();
                let cancel = self.cancel.clone();
                let waited = tokio::select! {
                    r = jobs.wait(&self.db, &id) => r,
                    _ = cancel.notified() => Err(Refusal::new(
                        "57014",
                        "canceling statement due to user request",
                    )),
                };
                match waited {
                    Ok(ok) => {
                        let value = match formats.first() {
                            Some(1) => vec![ok as u8],
                            _ => {
                                if ok {
                                    b"t".to_vec()
                                } else {
                                    b"f".to_vec()
                                }
                            }
                        };
                        let row = self.virtual_columns(&v).map(|_| value);
                        (row, "CALL")
                    }
                    Err(r) => return self.refuse(&r).await,
                }
            }
        };
        if mode == Mode::Simple
            && let Some(cols) = self.virtual_columns(&v)
        {
            msg::row_description(self.client.wbuf(), &cols, &[]);
        }
        if let Some(value) = value {
            msg::data_row(self.client.wbuf(), &[Some(&value)]);
        }
        msg::command_complete(self.client.wbuf(), tag);
        self.txn.ran(&Kind::Virtual(v));
        Ok(())
    }

    /// Decides a COMMIT of an explicit transaction: false when it failed here (the transaction
    /// is rolled back upstream and the error answered), true to send it upstream.
    pub(crate) fn commit_allowed(&mut self) -> Step<'_, bool> {
        Box::pin(self.commit_allowed_inner())
    }

    async fn commit_allowed_inner(&mut self) -> Result<bool> {
        let knobs = self.shared.knobs.clone();
        let limit = knobs.max_transaction_age();
        let failure = if self.txn.aged || self.txn.expired(limit, std::time::Instant::now()) {
            Some((rules::LIMIT, rules::age_limit(limit), None))
        } else if self.txn.doomed {
            Some((
                rules::CONFLICT,
                rules::CONFLICT_MESSAGE.to_owned(),
                Some(&knobs.counters.conflicts),
            ))
        } else if self.txn.wrote && rand::rng().random::<f64>() < knobs.conflict_fraction() {
            Some((
                rules::CONFLICT,
                rules::CONFLICT_MESSAGE.to_owned(),
                Some(&knobs.counters.injected_conflicts),
            ))
        } else {
            None
        };
        if let Some((code, message, counter)) = failure {
            self.ensure_internals().await?;
            let r = self.internal(ROLLBACK, &[]).await?;
            if !matches!(r, InternalResult::Done { .. }) {
                tracing::warn!("stand-in could not roll back a failed commit: {r:?}");
            }
            if let Some(c) = counter {
                Counters::add(c, 1);
            }
            Counters::add(&knobs.counters.rollbacks, 1);
            self.status = b'I';
            self.txn.reset();
            self.local_error(code, &message);
            return Ok(false);
        }
        let latency = knobs.commit_latency();
        if !latency.is_zero() {
            self.client.flush().await?;
            tokio::time::sleep(latency).await;
        }
        Ok(true)
    }
}

/// Parameter `n` (from 1) of a portal's Bind, as text.
fn param_text(portal: &Portal, n: usize) -> Option<String> {
    let bind = portal.bind.as_ref()?;
    let b = msg::parse_bind(bind.body()).ok()?;
    let p = msg::parse_bind_params(b.rest).ok()?;
    let v = (*p.values.get(n.checked_sub(1)?)?)?;
    String::from_utf8(v.to_vec()).ok()
}
