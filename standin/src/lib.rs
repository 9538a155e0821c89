//! The DSQL stand-in: a PostgreSQL wire-protocol proxy on loopback, in front of a throwaway
//! PostgreSQL ("upstream"), that answers like Aurora DSQL.
//!
//! Tests, the demo and the benchmarks point the loader at it instead of at plain PostgreSQL, so
//! a statement a real cluster refuses fails here too, with the SQLSTATE and message the cluster
//! gave (dsql-recorded.md, "the record"). Each rule names its source in [`rules`]: `[REC §n]`
//! (recorded on a real cluster), `\[DOCS\]` (AWS documentation) or a switch in [`Unknowns`] (what
//! the record does not say).
//!
//! ```no_run
//! # async fn demo() -> Result<(), snap2dsql_standin::Error> {
//! use snap2dsql_standin::{Config, StandIn};
//! let standin = StandIn::start(Config::new("postgres://postgres@127.0.0.1:5432/postgres")).await?;
//! let url = standin.url("mydb"); // postgres://admin@127.0.0.1:PORT/mydb
//! standin.set_conflict_fraction(0.2);
//! # Ok(()) }
//! ```
//!
//! # Modules
//! - [`server`]: listener, TLS negotiation, startup, connection rules (count, rate, age), the
//!   [`StandInHandle`] with its knobs.
//! - [`session`]: one client connection: the message-level proxy, the simple and extended
//!   protocols, COPY, the statements answered locally, commit, optimistic conflicts.
//! - [`sql`]: statements classified with PostgreSQL's parser (`pg_query`): kinds, refusals,
//!   DSQL syntax (`ASYNC`), rewrites.
//! - [`rules`]: every SQLSTATE and message, with its source; the SET allow-list.
//! - [`txn`]: the transaction as DSQL's limits see it (rows, bytes, age, DDL/DML).
//! - [`copycount`]: rows of a COPY stream counted on the way.
//! - [`jobs`]: `sys.jobs`, async index builds and validations, `sys.wait_for_job`.
//! - [`install`]: what the stand-in installs in each upstream database.
//! - [`upstream`]: the upstream's sessions, cancels, admin connections.
//! - [`wire`]: protocol framing and messages.
//! - [`tls`], [`config`], [`knobs`], [`error`].
//!
//! # How it works
//! A message-level proxy: client and upstream messages are decoded only as far as a rule needs;
//! anything a rule does not change is forwarded as the raw frame it came in, so every format,
//! type and COPY passes through exactly, and the hot path (CopyData, DataRow) is one copy per
//! message. A refusal inside a transaction is raised by PostgreSQL itself
//! (`sys.standin_raise`), so the upstream transaction is aborted exactly as DSQL's is.
//!
//! The upstream is PostgreSQL 15; where 16 answers differently in the record (`SHOW lc_collate`,
//! `version()`, `server_version`, `ADD COLUMN .. STORAGE`), the stand-in gives DSQL's answer.
//!
//! # What it answers
//! | rule | answer | source |
//! |---|---|---|
//! | rows written per transaction > 3,000 (INSERT, UPDATE, DELETE, COPY; several statements add up) | 54000 `transaction row limit exceeded` at the statement that crosses it | REC §5.1 (accumulation, COPY: switch) |
//! | bytes written per transaction > 10 MiB (as the client sent them: COPY data, bind values, statement text) | 54000 `transaction size limit 10mb exceeded` | DOCS |
//! | transaction older than 300 s (a running statement is cancelled) | 54000 `transaction age limit of 300s exceeded` | DOCS |
//! | two DDL, or DDL and DML, in one transaction (a multi-statement query is one) | 0A000, the recorded messages | REC §5.3 |
//! | SAVEPOINT, SERIALIZABLE, SET TRANSACTION, SETs off the allow-list, TRUNCATE, VACUUM, MERGE, triggers, extensions, enums, plain CREATE INDEX, ALTER TABLE forms, column types, identity/sequence caches, ... | the recorded SQLSTATE and message | REC §2-§9 |
//! | a refusal inside BEGIN | the transaction is aborted: 25P02 after it, COMMIT answered `ROLLBACK` | REC §5.4 |
//! | CREATE \[UNIQUE\] INDEX ASYNC, ALTER TABLE ASYNC .. VALIDATE CONSTRAINT | one row `job_id`; a background job in `sys.jobs` | REC §3.2-§3.3, §4 |
//! | CALL sys.wait_for_job('id' or $1) / SELECT sys.wait_for_job(..) | waits, one boolean row (switch) / 42809 | DOCS, REC §3.4 |
//! | the same row written by two transactions | the later writer's COMMIT fails 40001 `(OC000)` | REC §6 |
//! | connections past the count / rate / age | FATAL 53300 / 53400 / 57P01 | DOCS (wording chosen) |
//! | `version()`, `server_version(_num)`, TimeZone, isolation | `PostgreSQL 16`, `16.15`, `160015`, UTC, repeatable read | REC §10 |
//!
//! # Switches and knobs
//! [`Config`] sets everything at start; [`StandInHandle`] changes at run time the limits
//! (`set_max_rows`, `set_max_bytes`, `set_max_transaction_age`, `set_max_connections`,
//! `set_connection_rate`, `set_max_connection_age`), the faults (`set_conflict_fraction`,
//! `set_commit_latency`, `set_silent` (every connection, until lifted), `silence_connections`
//! (some connections, for good), `drop_all_connections`) and `set_binary_copy`, and reads
//! [`CounterSnapshot`]s. [`Unknowns`] holds the answers the record does not give, one switch
//! each. `snap2dsql standin --help` lists the same as command-line flags.
pub mod config;
pub mod copycount;
pub mod error;
pub mod install;
pub mod jobs;
pub mod knobs;
pub mod rules;
pub mod server;
pub mod session;
pub mod sql;
pub mod tls;
pub mod txn;
pub mod upstream;
pub mod wire;

pub use config::{
    BinaryCopy, Config, FailedJobStatus, Faults, Limits, Rate, TlsFiles, Unknowns, WaitForJobResult,
};
pub use error::{Error, Result};
pub use knobs::{CounterSnapshot, Knobs};
pub use server::{StandIn, StandInHandle};
