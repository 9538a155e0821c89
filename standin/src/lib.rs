//! The DSQL stand-in: a PostgreSQL wire-protocol proxy on loopback, in front of a throwaway
//! PostgreSQL ("upstream"), that answers like Aurora DSQL.
//!
//! Tests, the demo and the benchmarks point the loader at it instead of at plain PostgreSQL, so
//! a statement a real cluster refuses fails here too, with the SQLSTATE and message the cluster
//! gave (dsql-recorded.md, "the record"). Each rule names its source in [`rules`]: `[REC §n]`
//! (recorded on a real cluster), `[DOCS]` (AWS documentation) or a switch in [`Unknowns`] (what
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
//! `version()`, `server_version`), the stand-in gives DSQL's answer.
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
