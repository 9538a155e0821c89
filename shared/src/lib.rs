//! snap2dsql: move an Aurora PostgreSQL snapshot export into Aurora DSQL.
//!
//! The modules follow the data:
//! - [`store`]: where the export lives (local directory or S3).
//! - [`export`]: the export's layout and metadata: tables, columns, part files, footers.
//! - [`local_export`]: a live PostgreSQL database written out as Aurora would export it (rehearsals,
//!   tests).
//! - [`types`]: PostgreSQL types as the export records them, and their DSQL targets.
//! - [`schema`]: the source schema (keys, NOT NULL, serials, enums, indexes) from a DDL file or a
//!   live database.
//! - [`mapping`]: `mapping.toml`, the reviewed description of the migration.
//! - [`plan`]: export + schema -> mapping, with a report of every decision and guess.
//! - [`keys`]: the deterministic UUID a rewritten integer key becomes.
//! - [`ddl`]: target DDL for DSQL or PostgreSQL.
//! - [`chunk`]: the export cut into units of loading work, from footers alone.
//! - [`estimate`]: what a migration of a given size asks of DSQL and AWS, and costs
//!   (`plan --estimate`); the one check of connections against DSQL's limits.
//! - [`target`]: connections to PostgreSQL or DSQL (IAM token, verify-full TLS).
//! - [`migrate`]: the steps around chunks: prepare the target, load all, post-load, count.
//! - [`post_load`]: after the load: indexes and foreign keys (DSQL's async jobs, `sys.jobs`,
//!   `CALL sys.wait_for_job`), identity restarts.
//! - [`record`]: the mapping a load used, remembered in the target (`snap2dsql.migrations`).
//! - [`load`]: one chunk into the target exactly once (ledger), inside DSQL's limits.
//! - [`pages`]: long reads of the target split into primary-key ranges, each a short transaction.
//! - [`db`]: connections to the source.
//! - [`convert`]: exported values (typed or PostgreSQL text output) -> binary COPY fields of the
//!   target type.
//! - [`verify`]: row-level verification of the target against the export (counts, null counts,
//!   order-independent row fingerprints, the differing rows named by key), with an export side
//!   independent of the loader's code.
//! - [`pipeline`]: the serverless pipeline's steps (snapshot, export poll, fan-out, load-chunk,
//!   verify), their JSON payloads and error types; the Lambdas in `functions/` are thin shells over it.
//! - [`error`]: the one error type, with file/row group/row/column locations.
pub mod chunk;
pub mod convert;
pub mod db;
pub mod ddl;
pub mod error;
pub mod estimate;
pub mod export;
pub mod keys;
pub mod load;
pub mod local_export;
pub mod mapping;
pub mod migrate;
pub mod pages;
pub mod pipeline;
pub mod plan;
pub mod post_load;
pub mod record;
pub mod schema;
pub mod store;
pub mod target;
pub mod types;
pub mod verify;

pub use error::{Error, Result};
