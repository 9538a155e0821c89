//! The serverless pipeline: what each Lambda does, as library calls the function crates wire up.
//!
//! The state machine (`statemachine/migrate.asl.json`) chains five functions; each one is a thin
//! handler over one call here (the `verify` function's states pass a `step`):
//!
//! | function | call | ASL state |
//! |---|---|---|
//! | `snapshot` | [`rds::snapshot_step`] | `Snapshot` |
//! | `poll-export` | [`rds::poll_export`] | `PollExport` |
//! | `fan-out` | [`steps::fan_out`] | `FanOut` |
//! | `load-chunk` | [`steps::load_chunk`] | `LoadChunk` (inside the Distributed Map `LoadChunks`) |
//! | `verify` | [`finish::build_indexes`] | `BuildIndexes` |
//! | `verify` | [`finish::poll_indexes`] | `PollIndexes` (a loop with `WaitForIndexes`) |
//! | `verify` | [`finish::plan_verify`] | `PlanVerify` |
//! | `verify` | [`finish::verify_part`] | `VerifyPart` (inside the Distributed Map `VerifyParts`) |
//! | `verify` | [`finish::verify`] | `Verify` |
//!
//! - [`contract`]: the JSON payloads between states (serde types; fixtures under
//!   `shared/tests/fixtures/pipeline/`).
//! - [`failure`]: the fixed set of error types the state machine's Retry and Catch name.
//! - [`config`]: each function's settings from its environment, read once at cold start.
//! - [`metrics`]: the CloudWatch Embedded Metric Format lines `load-chunk` and `verify` print.
//! - `rds`: the snapshot and export-task calls (RDS API; cargo feature `rds`).
//! - [`steps`]: planning and loading over the export in S3.
//! - [`finish`]: the post-load poll loop, and verification in parts.
pub mod config;
pub mod contract;
pub mod failure;
pub mod finish;
pub mod metrics;
#[cfg(feature = "rds")]
pub mod rds;
pub mod steps;

pub use config::Config;
pub use failure::StepError;
