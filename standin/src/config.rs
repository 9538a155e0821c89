//! What a stand-in serves: the upstream, the address, TLS, DSQL's limits, faults, and the answers
//! the record does not give ([`Unknowns`]).
//!
//! Every default is DSQL's documented or recorded value; each field says which. The fields that
//! tests change while the stand-in runs are also [`crate::Knobs`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// DSQL's rows-per-transaction limit [DOCS quotas; REC §5.1: 3,000 is allowed, 3,001 refused].
pub const MAX_ROWS: u64 = 3_000;
/// DSQL's bytes-per-transaction limit, 10 MiB [DOCS quotas].
pub const MAX_BYTES: u64 = 10 * 1024 * 1024;
/// DSQL's transaction age limit, 300 s [DOCS quotas: `transaction age limit of 300s exceeded`].
pub const MAX_TRANSACTION_AGE: Duration = Duration::from_secs(300);
/// DSQL's connection lifetime, 60 minutes \[DOCS\].
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(3600);
/// DSQL's connections per cluster, 10,000 [DOCS quotas].
pub const MAX_CONNECTIONS: usize = 10_000;
/// DSQL's new connections per second and burst [DOCS quotas: 100/s, burst 1,000].
pub const CONNECTION_RATE: Rate = Rate {
    per_second: 100,
    burst: 1_000,
};

/// How long a write may wait for a row lock upstream before the stand-in calls it a conflict.
/// DSQL never waits on a lock; PostgreSQL does, so the wait is bounded and its end is the
/// evidence of a conflict. Long enough for a lock held by a statement that is just finishing,
/// short enough that a writer never visibly waits.
pub const LOCK_WAIT: Duration = Duration::from_millis(20);

/// A token bucket: `per_second` new tokens a second, at most `burst` saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl std::str::FromStr for Rate {
    type Err = crate::Error;
    /// `PER_SECOND[/BURST]` (the burst defaults to the rate).
    fn from_str(s: &str) -> Result<Self, crate::Error> {
        let bad = || {
            crate::Error::Config(format!(
                "connection rate {s:?}: expected PER_SECOND[/BURST], e.g. 100/1000"
            ))
        };
        let (rate, burst) = match s.split_once('/') {
            Some((r, b)) => (r, Some(b)),
            None => (s, None),
        };
        let per_second: u32 = rate.trim().parse().map_err(|_| bad())?;
        let burst: u32 = match burst {
            Some(b) => b.trim().parse().map_err(|_| bad())?,
            None => per_second,
        };
        if burst == 0 {
            return Err(bad());
        }
        Ok(Rate { per_second, burst })
    }
}

/// The certificate chain and private key of the stand-in's TLS (PEM files).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// DSQL's limits, as enforced by the stand-in.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Rows written per transaction (INSERT, UPDATE, DELETE, COPY).
    pub max_rows: u64,
    /// Bytes written per transaction, counted as the bytes the client sent for its writes (COPY
    /// data, bind parameter values, the text of a write statement), not as PostgreSQL stores them.
    pub max_bytes: u64,
    /// Age of a transaction, from its first statement; a statement running when it passes is
    /// stopped.
    pub max_transaction_age: Duration,
    /// Open connections; past it a new one is refused with 53300.
    pub max_connections: usize,
    /// New connections per second; past it a new one is refused with 53400. None: unlimited.
    pub connection_rate: Option<Rate>,
    /// Lifetime of a connection; then it is closed with a FATAL 57P01 (after its transaction).
    pub max_connection_age: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rows: MAX_ROWS,
            max_bytes: MAX_BYTES,
            max_transaction_age: MAX_TRANSACTION_AGE,
            max_connections: MAX_CONNECTIONS,
            connection_rate: Some(CONNECTION_RATE),
            max_connection_age: MAX_CONNECTION_AGE,
        }
    }
}

/// Faults that make the stand-in harder than DSQL's median day.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Fraction of COMMITs of writing transactions that fail with 40001 `(OC000)` although
    /// nothing conflicted (0.0 to 1.0).
    pub inject_conflicts: f64,
    /// Delay before a COMMIT is answered (DSQL's median is ~50 ms [DOCS/measured]); other
    /// connections keep working meanwhile.
    pub commit_latency: Duration,
}

/// Whether `COPY ... FROM STDIN (FORMAT binary)` is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryCopy {
    Accept,
    /// Refused at the COPY statement with 0A000 [`crate::rules::BINARY_COPY_REFUSED`].
    Refuse,
    /// Refused only inside an explicit transaction (accepted in autocommit).
    RefuseInTransaction,
}

impl std::str::FromStr for BinaryCopy {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, crate::Error> {
        match s {
            "accept" => Ok(BinaryCopy::Accept),
            "refuse" => Ok(BinaryCopy::Refuse),
            "refuse-in-transaction" => Ok(BinaryCopy::RefuseInTransaction),
            _ => Err(crate::Error::Config(format!(
                "binary copy {s:?}: expected accept, refuse or refuse-in-transaction"
            ))),
        }
    }
}

/// What a successful `CALL sys.wait_for_job('<id>')` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitForJobResult {
    /// One row, one boolean column `wait_for_job` (true: the job succeeded) \[DOCS\].
    Row,
    /// Only the tag `CALL`.
    TagOnly,
}

impl std::str::FromStr for WaitForJobResult {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, crate::Error> {
        match s {
            "row" => Ok(WaitForJobResult::Row),
            "tag" => Ok(WaitForJobResult::TagOnly),
            _ => Err(crate::Error::Config(format!(
                "wait_for_job result {s:?}: expected row or tag"
            ))),
        }
    }
}

/// How a failed job ends in `sys.jobs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedJobStatus {
    /// `completed` with the error in `details` [REC §3.3: a completed INDEX_BUILD carrying an
    /// error].
    Completed,
    /// `failed` with the error in `details` (a status the record never shows).
    Failed,
}

impl std::str::FromStr for FailedJobStatus {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, crate::Error> {
        match s {
            "completed" => Ok(FailedJobStatus::Completed),
            "failed" => Ok(FailedJobStatus::Failed),
            _ => Err(crate::Error::Config(format!(
                "failed job status {s:?}: expected completed or failed"
            ))),
        }
    }
}

/// The answers the record does not give, one switch each, so the tool can be proven under every
/// possible answer. Each field names what the record says.
#[derive(Debug, Clone)]
pub struct Unknowns {
    /// NOT RECORDED (§1): whether `COPY ... FROM STDIN (FORMAT binary)` is accepted, in autocommit
    /// or inside BEGIN. AWS documents text/CSV `\copy` only. Default: accept.
    pub binary_copy: BinaryCopy,
    /// NOT RECORDED (§1, §5.1): whether COPY rows count toward the 3,000-row cap. Default: they
    /// count (one COPY is one transaction \[DOCS\]).
    pub copy_rows_count: bool,
    /// NOT RECORDED (§5.1): whether UPDATE and DELETE rows count toward the cap. Default: they
    /// count ("rows modified" \[DOCS\]).
    pub update_delete_rows_count: bool,
    /// NOT RECORDED (§3.4): what a successful `CALL sys.wait_for_job` returns. Default: one
    /// boolean row \[DOCS\].
    pub wait_for_job_result: WaitForJobResult,
    /// NOT RECORDED (§3.2): how a unique build over duplicates ends. Default: `completed` with
    /// the error in `details`, as the record shows for another failed build.
    pub failed_job_status: FailedJobStatus,
    /// REC §3.3 shows ~20 s even for an empty table; an async job is not `completed` before this
    /// much time. Default: 0 (tests stay fast); `Duration::from_secs(20)` is DSQL-like.
    pub min_job_duration: Duration,
    /// NOT RECORDED (§5.3): whether a read (SELECT) counts as DML for "ddl and dml are not
    /// supported in the same transaction". Default: no, only writes do.
    pub reads_count_as_dml: bool,
}

impl Default for Unknowns {
    fn default() -> Self {
        Unknowns {
            binary_copy: BinaryCopy::Accept,
            copy_rows_count: true,
            update_delete_rows_count: true,
            wait_for_job_result: WaitForJobResult::Row,
            failed_job_status: FailedJobStatus::Completed,
            min_job_duration: Duration::ZERO,
            reads_count_as_dml: false,
        }
    }
}

/// Everything a stand-in needs to serve.
#[derive(Debug, Clone)]
pub struct Config {
    /// The upstream PostgreSQL, `postgres://user[:password]@host:port[/db]`; the database of each
    /// client connection replaces the URL's.
    pub upstream: String,
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// TLS for clients that ask (SSLRequest answered 'S'); None answers 'N'.
    pub tls: Option<TlsFiles>,
    pub limits: Limits,
    pub faults: Faults,
    pub unknowns: Unknowns,
    /// See [`LOCK_WAIT`].
    pub lock_wait: Duration,
    /// Session parameters accepted by SET beyond DSQL's allow-list ([`crate::rules`]).
    pub extra_settings: Vec<String>,
}

impl Config {
    /// A stand-in in front of `upstream` on a free loopback port, with DSQL's defaults.
    pub fn new(upstream: impl Into<String>) -> Config {
        Config {
            upstream: upstream.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: None,
            limits: Limits::default(),
            faults: Faults::default(),
            unknowns: Unknowns::default(),
            lock_wait: LOCK_WAIT,
            extra_settings: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_parse_from_their_command_line_words() {
        let rate = |s: &str| s.parse::<Rate>().ok();
        assert_eq!(
            rate("100/1000"),
            Some(Rate {
                per_second: 100,
                burst: 1000
            })
        );
        assert_eq!(
            rate("5"),
            Some(Rate {
                per_second: 5,
                burst: 5
            })
        );
        assert_eq!(rate("x/1"), None);
        assert_eq!(
            "refuse-in-transaction".parse::<BinaryCopy>().ok(),
            Some(BinaryCopy::RefuseInTransaction)
        );
        assert_eq!(
            "tag".parse::<WaitForJobResult>().ok(),
            Some(WaitForJobResult::TagOnly)
        );
        assert_eq!(
            "failed".parse::<FailedJobStatus>().ok(),
            Some(FailedJobStatus::Failed)
        );
        assert!("maybe".parse::<BinaryCopy>().is_err());
    }
}
