//! After the load: secondary indexes, foreign keys (when the mapping asks) and identity
//! restarts, in DSQL's dialect.
//!
//! As DSQL requires (dsql-recorded.md §3-4), each index is `CREATE [UNIQUE] INDEX ASYNC IF NOT
//! EXISTS "name" ON "s"."t" (..)`, which answers a job id; each foreign key is `ALTER TABLE ..
//! ADD CONSTRAINT .. FOREIGN KEY .. NOT VALID` then `ALTER TABLE ASYNC .. VALIDATE CONSTRAINT ..`,
//! a job too. The work is split so that the CLI and the serverless pipeline can share it:
//! - [`waves`] orders the statements so that no two jobs of one wave touch the same table
//!   (two builds on one table can wait on each other);
//! - [`submit`] runs a wave's statements once and returns the jobs DSQL started;
//! - [`poll`] reads their states from `sys.jobs` without waiting (a Step Functions poll loop);
//! - [`wait`] blocks on one job: `CALL sys.wait_for_job('<id>')` in autocommit, bounded and
//!   repeated, then `sys.jobs` read again (a job can end `completed` with its error in
//!   `details`);
//! - [`restart_identities`] moves each identity column's sequence past the largest loaded value;
//! - [`run`] does all of it in order, waiting (the CLI's `run`);
//! - [`Progress`] does the same in steps that never wait: [`Progress::start`] submits the first
//!   wave, [`Progress::poll`] reads its jobs once and submits the next wave when it is built
//!   (the pipeline's `BuildIndexes` and `PollIndexes`).
//!
//! Running twice: before submitting an index or a validation, a job already submitted for the
//! same object (found by its name in `sys.jobs.object_name`) and not finished is adopted instead
//! of submitting another. An index that exists (`IF NOT EXISTS` answers no job, or 42P07
//! duplicate_table) or a constraint that exists (42710 duplicate_object) counts as done, unless
//! the object's newest job failed, which is reported. Restarting an identity again sets the same
//! value. Every statement is retried on a new connection after a conflict (40001/OC001: DDL
//! conflicts with DDL), a lost or silent connection, or throttling.

pub mod jobs;

use crate::ddl::{self, Kind, Statement};
use crate::error::{Error, Result};
use crate::load::LoadOptions;
use crate::mapping::Mapping;
use crate::migrate::retrying;
use crate::target::{Target, within};
use jobs::{JobId, JobState};
use std::time::{Duration, Instant};

/// Bound on each post-load statement: a submission answers at once (the work is a job), a
/// NOT VALID constraint or a restart is a catalog change. Generous, since DDL commits can wait
/// on catalog conflicts; still finds a silent connection within two minutes.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(120);
/// Bound on one `CALL sys.wait_for_job`. A build on a big table can legitimately take longer:
/// the call is then abandoned (its connection dropped), `sys.jobs` read, and the call made
/// again, so a silent connection costs at most this long.
pub const WAIT_CALL_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Between reads of `sys.jobs` when the job is polled rather than waited on by `CALL`. An
/// index build takes ~20 s even on an empty table (dsql-recorded.md §3.3).
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Bound on the whole wait for one job: builds of very large tables take hours. Past it the
/// wait fails naming the job, which a rerun adopts again.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
/// Bound on reading a column's maximum for an identity restart: just over DSQL's 300 s
/// transaction limit, so DSQL's own 54000 answer comes first.
pub const READ_TIMEOUT: Duration = Duration::from_secs(330);

/// The bounds of the post-load steps.
#[derive(Debug, Clone)]
pub struct PostLoadOptions {
    pub statement_timeout: Duration,
    pub wait_call_timeout: Duration,
    pub poll_interval: Duration,
    pub job_timeout: Duration,
    pub read_timeout: Duration,
}

impl Default for PostLoadOptions {
    fn default() -> Self {
        PostLoadOptions {
            statement_timeout: STATEMENT_TIMEOUT,
            wait_call_timeout: WAIT_CALL_TIMEOUT,
            poll_interval: POLL_INTERVAL,
            job_timeout: JOB_TIMEOUT,
            read_timeout: READ_TIMEOUT,
        }
    }
}

/// A job DSQL is running for a post-load statement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubmittedJob {
    /// What the job builds: `index orders_customer_id_idx on sales.orders`.
    pub what: String,
    pub job: JobId,
}

/// What [`submit`] did.
#[derive(Debug, Clone, Default)]
pub struct Submitted {
    /// Statements run (or found done).
    pub statements: usize,
    /// Jobs to wait for.
    pub jobs: Vec<SubmittedJob>,
}

/// The post-load statements in waves ([`ddl::post_load_waves`]): each wave is submitted, and
/// its jobs waited for, before the next.
pub fn waves(mapping: &Mapping) -> Vec<Vec<Statement>> {
    ddl::post_load_waves(mapping)
}

/// Runs each statement once and returns the jobs started (or adopted: see the module doc on
/// running twice). Give it one wave at a time.
pub async fn submit(
    target: &Target,
    statements: &[Statement],
    options: &PostLoadOptions,
) -> Result<Submitted> {
    let mut out = Submitted {
        statements: statements.len(),
        jobs: Vec::new(),
    };
    for st in statements {
        let job = retrying(target, &st.what, |client| async move {
            submit_one(&client, st, options).await
        })
        .await?;
        if let Some(job) = job {
            tracing::info!(what = %st.what, %job, "post-load job submitted");
            out.jobs.push(SubmittedJob {
                what: st.what.clone(),
                job,
            });
        }
    }
    Ok(out)
}

async fn submit_one(
    client: &tokio_postgres::Client,
    st: &Statement,
    options: &PostLoadOptions,
) -> Result<Option<JobId>> {
    let bound = options.statement_timeout;
    let Kind::Job { schema, object } = &st.kind else {
        let run = async {
            match client.batch_execute(&st.sql).await {
                Err(e) if !e.code().is_some_and(|c| ddl::is_already_done(c.code())) => {
                    Err(Error::statement(&st.what, &st.sql, e))
                }
                _ => Ok(None),
            }
        };
        return within(bound, || st.what.clone(), run).await;
    };
    let find = || {
        within(
            bound,
            || st.what.clone(),
            jobs::find(client, &st.what, schema, object),
        )
    };
    // A job of an earlier run still going: adopt it rather than start another.
    if let Some((job, state)) = find().await?
        && !state.is_final()
    {
        return Ok(Some(job));
    }
    let answer = within(bound, || st.what.clone(), async {
        match client.simple_query(&st.sql).await {
            Ok(messages) => {
                jobs::job_in_answer(&messages).map_err(|reason| Error::UnexpectedAnswer {
                    what: format!(
                        "{}: statement `{}`",
                        st.what,
                        crate::error::shorten_statement(&st.sql)
                    ),
                    reason,
                })
            }
            Err(e) if e.code().is_some_and(|c| ddl::is_already_done(c.code())) => Ok(None),
            Err(e) => Err(Error::statement(&st.what, &st.sql, e)),
        }
    })
    .await?;
    if answer.is_some() {
        return Ok(answer);
    }
    // No job: the object exists already. Its newest job says whether it was ever built.
    match find().await? {
        Some((job, JobState::Failed { status, details })) => Err(Error::JobFailed {
            what: format!(
                "{} (it exists, its build failed: drop it and run again)",
                st.what
            ),
            job: job.to_string(),
            status,
            details,
        }),
        Some((job, JobState::Pending { .. })) => Ok(Some(job)),
        _ => Ok(None),
    }
}

/// The state of each job, read once from `sys.jobs` on one connection (no waiting).
pub async fn poll(target: &Target, jobs: &[SubmittedJob]) -> Result<Vec<JobState>> {
    let options = PostLoadOptions::default();
    retrying(target, "read post-load job states", |client| {
        let options = &options;
        async move {
            let mut out = Vec::with_capacity(jobs.len());
            for j in jobs {
                out.push(
                    within(
                        options.statement_timeout,
                        || "read a job's state".to_string(),
                        jobs::status(&client, &j.job),
                    )
                    .await?,
                );
            }
            Ok(out)
        }
    })
    .await
}

/// One round of a wait: the CALL's answer (`None`: it was cut at the bound), its refusal if
/// any, and the job's state read afterwards.
struct Round {
    answer: Option<Option<bool>>,
    refused: Option<Error>,
    state: JobState,
}

async fn wait_round(
    target: &Target,
    job: &JobId,
    call: bool,
    options: &PostLoadOptions,
) -> Result<Round> {
    let mut client = target.connect().await?;
    let (mut answer, mut refused) = (None, None);
    if call {
        match tokio::time::timeout(options.wait_call_timeout, jobs::call_wait(&client, job)).await {
            Ok(Ok(a)) => answer = Some(a),
            Ok(Err(e)) if e.is_retryable() => return Err(e),
            Ok(Err(e)) => refused = Some(e),
            // Still waiting (or a silent connection): read the state on a new connection.
            Err(_) => client = target.connect().await?,
        }
    }
    let state = within(
        options.statement_timeout,
        || "read a job's state".to_string(),
        jobs::status(&client, job),
    )
    .await?;
    Ok(Round {
        answer,
        refused,
        state,
    })
}

/// Waits for one job to end (see the module doc); a job that ends without doing its work is an
/// [`Error::JobFailed`] naming what it was for and DSQL's details.
pub async fn wait(target: &Target, job: &SubmittedJob, options: &PostLoadOptions) -> Result<()> {
    let started = Instant::now();
    let retry = LoadOptions::default();
    let mut attempt = 0;
    let mut call = true;
    let failed = |status: &str, details: &str| Error::JobFailed {
        what: job.what.clone(),
        job: job.job.to_string(),
        status: status.to_string(),
        details: details.to_string(),
    };
    loop {
        let round = match wait_round(target, &job.job, call, options).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(what = %job.what, job = %job.job, error = %e, "job wait interrupted");
                if retry.retry_after(&e, &mut attempt).await {
                    continue;
                }
                return Err(e);
            }
        };
        let said_false = round.answer == Some(Some(false));
        match round.state {
            JobState::Succeeded if said_false => {
                return Err(failed("completed", "sys.wait_for_job answered false"));
            }
            JobState::Succeeded => return Ok(()),
            JobState::Failed { status, details } => return Err(failed(&status, &details)),
            JobState::Missing => {
                if let Some(e) = round.refused {
                    return Err(e);
                }
                if said_false {
                    return Err(failed("unknown", "sys.wait_for_job answered false"));
                }
                if round.answer.is_some() {
                    // The wait returned and the log no longer lists the job: nothing to check.
                    return Ok(());
                }
            }
            JobState::Pending { status } => {
                if let Some(e) = round.refused {
                    // The wait itself is refused: poll sys.jobs instead.
                    tracing::warn!(what = %job.what, job = %job.job, error = %e, "CALL sys.wait_for_job refused: polling sys.jobs");
                    call = false;
                }
                tracing::info!(what = %job.what, job = %job.job, %status, "job still running");
            }
        }
        if started.elapsed() > options.job_timeout {
            return Err(Error::Timeout {
                what: format!("{} (DSQL job {})", job.what, job.job),
                after: options.job_timeout,
            });
        }
        if !call || round.answer.is_some() {
            tokio::time::sleep(options.poll_interval).await;
        }
    }
}

/// Restarts each identity column's sequence at the largest loaded value + 1 (an empty table
/// keeps its start). Returns how many were restarted.
pub async fn restart_identities(
    target: &Target,
    mapping: &Mapping,
    options: &PostLoadOptions,
) -> Result<usize> {
    let mut restarted = 0;
    for col in ddl::identity_columns(mapping) {
        let col = &col;
        let done = retrying(target, &col.what, |client| async move {
            let max_sql = col.max_sql();
            let max: Option<i64> = within(options.read_timeout, || col.what.clone(), async {
                client
                    .query_one(max_sql.as_str(), &[])
                    .await
                    .map(|r| r.get(0))
                    .map_err(|e| Error::statement(&col.what, &max_sql, e))
            })
            .await?;
            let Some(max) = max else {
                return Ok(false);
            };
            let next = max.checked_add(1).ok_or_else(|| Error::UnexpectedAnswer {
                what: format!("{}: statement `{max_sql}`", col.what),
                reason: "the largest value is bigint's largest: no next value".into(),
            })?;
            let sql = col.restart_sql(next);
            within(options.statement_timeout, || col.what.clone(), async {
                client
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| Error::statement(&col.what, &sql, e))
            })
            .await?;
            Ok(true)
        })
        .await?;
        restarted += usize::from(done);
    }
    Ok(restarted)
}

/// Everything, in order: each wave submitted and its jobs waited for, then the identity
/// restarts. Returns the number of statements run (submissions and restarts).
pub async fn run(target: &Target, mapping: &Mapping, options: &PostLoadOptions) -> Result<usize> {
    let mut statements = 0;
    for wave in waves(mapping) {
        let submitted = submit(target, &wave, options).await?;
        for job in &submitted.jobs {
            wait(target, job, options).await?;
        }
        statements += submitted.statements;
    }
    Ok(statements + restart_identities(target, mapping, options).await?)
}

/// The post-load work between polls: which wave is being built, and its jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The wave being built (0-based); `waves` once all are built.
    pub wave: usize,
    pub waves: usize,
    /// Statements run so far (submissions and restarts).
    pub statements: usize,
    /// The current wave's jobs.
    pub jobs: Vec<SubmittedJob>,
    /// The current wave's jobs still running at the last poll, as `what (status)`.
    pub running: Vec<String>,
    /// Every wave built and the identities restarted.
    pub done: bool,
}

impl Progress {
    /// Submits the first wave (and the next ones while a wave starts no job).
    pub async fn start(
        target: &Target,
        mapping: &Mapping,
        options: &PostLoadOptions,
    ) -> Result<Progress> {
        let progress = Progress {
            wave: 0,
            waves: waves(mapping).len(),
            statements: 0,
            jobs: Vec::new(),
            running: Vec::new(),
            done: false,
        };
        progress.advance(target, mapping, options).await
    }

    /// Reads the current wave's jobs once: a failed job is an [`Error::JobFailed`]; a built wave
    /// moves on to the next; after the last wave the identities are restarted.
    pub async fn poll(
        mut self,
        target: &Target,
        mapping: &Mapping,
        options: &PostLoadOptions,
    ) -> Result<Progress> {
        let states = poll(target, &self.jobs).await?;
        self.running.clear();
        for (job, state) in self.jobs.iter().zip(states) {
            match state {
                JobState::Failed { status, details } => {
                    return Err(Error::JobFailed {
                        what: job.what.clone(),
                        job: job.job.to_string(),
                        status,
                        details,
                    });
                }
                JobState::Pending { status } => {
                    self.running.push(format!("{} ({status})", job.what))
                }
                // Missing: the job log no longer lists a finished job.
                JobState::Succeeded | JobState::Missing => {}
            }
        }
        if !self.running.is_empty() {
            return Ok(self);
        }
        self.wave += 1;
        self.advance(target, mapping, options).await
    }

    /// Submits wave `self.wave` and the ones after it until one has jobs to wait for; after the
    /// last, restarts the identities.
    async fn advance(
        mut self,
        target: &Target,
        mapping: &Mapping,
        options: &PostLoadOptions,
    ) -> Result<Progress> {
        let waves = waves(mapping);
        while let Some(wave) = waves.get(self.wave) {
            let submitted = submit(target, wave, options).await?;
            self.statements += submitted.statements;
            self.running = submitted.jobs.iter().map(|j| j.what.clone()).collect();
            self.jobs = submitted.jobs;
            if !self.jobs.is_empty() {
                return Ok(self);
            }
            self.wave += 1;
        }
        self.statements += restart_identities(target, mapping, options).await?;
        self.done = true;
        Ok(self)
    }
}
