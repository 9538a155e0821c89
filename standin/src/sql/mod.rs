//! What a statement is, for DSQL's rules: classified with PostgreSQL's own parser (`pg_query`).
//!
//! [`analyze`] turns one statement's text into an [`Analysis`]: the text to send upstream (DSQL
//! syntax and environment calls rewritten, [`tokens`]), its [`Kind`] (what the transaction rules
//! count), a [`Refusal`] when DSQL refuses it whatever the session's state ([`classify`]), the
//! checks that need the session's state or the catalog, and the statements the stand-in answers
//! itself ([`Virtual`]). Text PostgreSQL cannot parse is forwarded unchanged, so PostgreSQL
//! answers its own syntax errors.

pub mod classify;
pub mod expressions;
pub mod tokens;
pub mod types;

use crate::rules::{self, Refusal};

/// What the transaction rules see in a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// BEGIN / START TRANSACTION.
    Begin,
    /// COMMIT / END.
    Commit,
    /// ROLLBACK / ABORT.
    Rollback,
    /// A write: counts toward the row and size limits, takes part in conflicts, is DML for the
    /// DDL/DML rule.
    Write(Write),
    /// `SELECT ... FOR UPDATE | FOR KEY SHARE`: takes part in conflicts [REC §6].
    LockingRead,
    /// A read, SHOW, EXPLAIN, COPY TO.
    Read,
    /// One DDL statement: at most one a transaction, never with DML [REC §5.3].
    Ddl,
    /// Anything else the rules do not count (SET, SET CONSTRAINTS, ANALYZE, CALL, PREPARE...).
    Other,
    /// Answered by the stand-in itself.
    Virtual(Virtual),
    /// PostgreSQL's parser refused it: forwarded, PostgreSQL answers.
    Unparsed,
}

impl Kind {
    pub fn is_write(&self) -> bool {
        matches!(self, Kind::Write(_))
    }

    pub fn is_ddl(&self) -> bool {
        matches!(
            self,
            Kind::Ddl | Kind::Virtual(Virtual::CreateIndexAsync(_) | Virtual::ValidateAsync(_))
        )
    }

    /// Takes part in optimistic conflicts: a row lock upstream means a conflict.
    pub fn conflicts(&self) -> bool {
        matches!(self, Kind::Write(_) | Kind::LockingRead)
    }
}

/// The kinds of write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// INSERT; `values_rows` when it is `INSERT ... VALUES` with that many rows.
    Insert {
        values_rows: Option<u64>,
    },
    Update,
    Delete,
    /// COPY ... FROM STDIN.
    Copy(CopyFormat),
}

/// The format of a COPY FROM STDIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    Text,
    Csv,
    Binary,
}

/// The statements the stand-in answers itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Virtual {
    /// `CREATE \[UNIQUE\] INDEX ASYNC` [REC §3.2]: one row, `job_id`.
    CreateIndexAsync(IndexJob),
    /// `ALTER TABLE ASYNC t VALIDATE CONSTRAINT c` [REC §4]: one row, `job_id`.
    ValidateAsync(ValidateJob),
    /// `CALL sys.wait_for_job(<literal or $n>)` [REC §3.4; DOCS].
    WaitForJob(JobArg),
    /// `SHOW server_version` / `server_version_num` [REC §10].
    Show {
        name: &'static str,
        value: &'static str,
    },
}

/// An index build to run in the background.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexJob {
    /// `CREATE \[UNIQUE\] INDEX CONCURRENTLY ...`, the statement the build runs upstream.
    pub build_sql: String,
    /// The index's name; None: PostgreSQL's naming (`<table>_<columns>_idx`).
    pub name: Option<String>,
    pub schema: Option<String>,
    pub table: String,
    /// Column names (or `expr`) for the default name.
    pub columns: Vec<String>,
    pub if_not_exists: bool,
}

/// A constraint validation to run in the background.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateJob {
    pub build_sql: String,
    pub schema: Option<String>,
    pub table: String,
    pub constraint: String,
}

/// The argument of `CALL sys.wait_for_job`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobArg {
    Literal(String),
    /// `$n`, counted from 1.
    Param(usize),
}

/// A rule that needs the session's state or the catalog, checked when the statement runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `ALTER TABLE t DROP COLUMN c`: refused when `c` is in the primary key [REC §4].
    DropColumn {
        schema: Option<String>,
        table: String,
        column: String,
    },
    /// `ADD CONSTRAINT .. USING INDEX i`: refused while i's build is not complete [REC §4].
    UsingIndex { index: String },
}

/// One statement, classified.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The text to send upstream.
    pub upstream_sql: String,
    pub kind: Kind,
    /// Refused whatever the session's state.
    pub refusal: Option<Refusal>,
    /// A write with RETURNING: its rows are held until its row count is accepted.
    pub returning: bool,
    pub checks: Vec<Check>,
    /// DISCARD ALL / DEALLOCATE ALL: the stand-in's own prepared statements go too.
    pub discards_prepared: bool,
    /// DROP TABLE: DSQL records a DROP job [REC §3.1, §3.3].
    pub drop_job: bool,
}

impl Analysis {
    fn new(sql: &str, kind: Kind) -> Analysis {
        Analysis {
            upstream_sql: sql.to_owned(),
            kind,
            refusal: None,
            returning: false,
            checks: Vec::new(),
            discards_prepared: false,
            drop_job: false,
        }
    }

    fn refused(sql: &str, refusal: Refusal) -> Analysis {
        let mut a = Analysis::new(sql, Kind::Other);
        a.refusal = Some(refusal);
        a
    }
}

/// Classifies one statement (`settable`: the extra SET parameters of the configuration).
pub fn analyze(sql: &str, extra_settings: &[String]) -> Analysis {
    let lower_has = |w: &[u8]| {
        sql.as_bytes()
            .windows(w.len())
            .any(|x| x.eq_ignore_ascii_case(w))
    };
    let needs_tokens = lower_has(b"async")
        || lower_has(b"version")
        || lower_has(b"current_setting")
        || lower_has(b"tablesample");
    let toks = if needs_tokens {
        tokens::scan(sql)
    } else {
        None
    };
    if let Some(toks) = &toks {
        if let Some((form, word)) = tokens::find_async(sql, toks) {
            return classify::asynchronous(sql, form, word);
        }
        if tokens::has_tablesample(sql, toks) {
            return Analysis::refused(sql, Refusal::new(rules::UNSUPPORTED, rules::TABLESAMPLE));
        }
    }
    let parsed = match pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) {
        Ok(p) => p,
        Err(_) => return Analysis::new(sql, Kind::Unparsed),
    };
    let mut a = classify::statement(sql, &parsed, extra_settings);
    if a.refusal.is_none()
        && let Some(toks) = &toks
        && let Some(rewritten) = tokens::rewrite_environment(sql, toks)
    {
        a.upstream_sql = rewritten;
    }
    a
}

/// The statements of a simple query's text. Text the scanner cannot split (an unterminated
/// literal) is one statement, for PostgreSQL to refuse.
pub fn split(sql: &str) -> Vec<&str> {
    match pg_query::split_with_scanner(sql) {
        Ok(parts) => parts.into_iter().filter(|p| !only_comments(p)).collect(),
        Err(_) => vec![sql],
    }
}

/// True when `s` holds no token (blank or comments).
fn only_comments(s: &str) -> bool {
    s.trim().is_empty() || tokens::scan(s).is_some_and(|t| t.is_empty())
}
