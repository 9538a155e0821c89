//! Command-line flags, as clap reads them. Validation into library types happens in `main.rs`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Move an Aurora PostgreSQL snapshot export into Aurora DSQL: plan, load, verify.
#[derive(Debug, Parser)]
#[command(name = "snap2dsql", version, about, long_about = None)]
pub struct Cli {
    /// Log as JSON lines (the Lambda format) instead of text.
    #[arg(long, global = true)]
    pub json_logs: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a live PostgreSQL database out in the layout of an Aurora snapshot export.
    LocalExport(LocalExportArgs),
    /// Read an export and write mapping.toml, ddl.sql and ddl-post-load.sql.
    Plan(PlanArgs),
    /// Print the new UUID key of one old integer key.
    Key(KeyArgs),
    /// Plan (or read a mapping), load every chunk, build indexes, verify every row: the whole job.
    Run(RunArgs),
    /// Like run, without the post-load indexes and the row-level verification (counts only).
    Load(RunArgs),
    /// Per-table progress of a migration, from the target's ledger.
    Status(StatusArgs),
    /// Compare every row of the export (after the mapping) with the target: counts, null
    /// counts, row fingerprints; name the missing, extra and differing rows. Exit 0 only when
    /// every table matches.
    Verify(VerifyArgs),
}

/// Where the export is and which database of it.
#[derive(Debug, Args, Clone)]
pub struct ExportArgs {
    /// The export: a directory, or s3://bucket/prefix/export-id.
    #[arg(long)]
    pub export: String,
    /// The database to migrate, when the export holds several.
    #[arg(long)]
    pub database: Option<String>,
    /// Source constraints: a postgres:// URL of the source, or a `pg_dump --schema-only` file.
    /// Without it keys and references are guessed, and marked as guesses.
    #[arg(long)]
    pub source_schema: Option<String>,
}

#[derive(Debug, Args)]
pub struct LocalExportArgs {
    /// The source database URL (postgres://user@host:port/db).
    #[arg(long)]
    pub source: String,
    /// Output directory: becomes the export's root.
    #[arg(long)]
    pub out: PathBuf,
    /// Export task identifier written into the metadata.
    #[arg(long, default_value = "local-export")]
    pub export_id: String,
    /// Rows per Parquet part file.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows_per_file: usize,
    /// Rows per Parquet row group.
    #[arg(long, default_value_t = 100_000)]
    pub rows_per_row_group: usize,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub export: ExportArgs,
    /// Directory for mapping.toml, ddl.sql and ddl-post-load.sql.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// SQL dialect of the DDL files: dsql, or postgres for local rehearsals.
    #[arg(long, default_value = "dsql")]
    pub dialect: String,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The mapping that holds the migration's key namespace.
    #[arg(long, default_value = "mapping.toml")]
    pub mapping: PathBuf,
    /// Source table, schema.table.
    #[arg(long)]
    pub table: String,
    /// The old integer key.
    #[arg(long, allow_hyphen_values = true)]
    pub old: i64,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub export: ExportArgs,
    /// Target: postgres://user@host:port/db, or a DSQL endpoint
    /// (postgres://admin@<id>.dsql.<region>.on.aws/postgres: IAM token and verify-full TLS).
    #[arg(long)]
    pub target: String,
    /// A reviewed mapping; without it the export is planned now (as `plan` would).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Create the target schemas and tables first (IF NOT EXISTS).
    #[arg(long)]
    pub create_tables: bool,
    /// Writer connections per chunk.
    #[arg(long, default_value_t = snap2dsql::load::DEFAULT_CONNECTIONS)]
    pub concurrency: usize,
    /// Chunks loaded at once.
    #[arg(long, default_value_t = 2)]
    pub parallel_chunks: usize,
    /// Rows per transaction (at most 2,999: the ledger row makes 3,000).
    #[arg(long, default_value_t = snap2dsql::load::DEFAULT_BATCH_ROWS)]
    pub batch_rows: usize,
    /// Encoded bytes per transaction (at most 8 MiB).
    #[arg(long, default_value_t = snap2dsql::load::DEFAULT_BATCH_BYTES)]
    pub batch_bytes: usize,
    /// Attempts per batch on retryable errors.
    #[arg(long, default_value_t = snap2dsql::load::DEFAULT_MAX_ATTEMPTS)]
    pub max_attempts: u32,
    /// PostgreSQL targets only: install triggers that refuse what DSQL refuses (3,000 rows,
    /// 10 MiB per transaction) before loading.
    #[arg(long)]
    pub guard_dsql_limits: bool,
    /// With --guard-dsql-limits: fraction of commits failed with an injected 40001 (OC000).
    #[arg(long, default_value_t = 0.0)]
    pub inject_conflicts: f64,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Rows per chunk (tests and tuning; default 2,000,000).
    #[arg(long, default_value_t = snap2dsql::chunk::CHUNK_MAX_ROWS, hide = true)]
    pub chunk_rows: u64,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub export: ExportArgs,
    /// The target whose ledger to read.
    #[arg(long)]
    pub target: String,
    /// The mapping of the migration (its id names the ledger rows); without it, the mapping the
    /// load recorded in the target.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub export: ExportArgs,
    /// The target to verify: postgres://user@host:port/db, or a DSQL endpoint.
    #[arg(long)]
    pub target: String,
    /// The mapping the load used; without it, the one the load recorded in the target (or,
    /// when it recorded none, a plan of the export made now).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Only these source tables (schema.table), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub tables: Option<Vec<String>>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Differences listed per table at most (all are counted).
    #[arg(long, default_value_t = snap2dsql::verify::DEFAULT_MAX_LISTED)]
    pub max_listed: usize,
    /// Compare the target with this live source database (postgres://...), page by key; rows
    /// changed there after the snapshot are reported apart from migration errors.
    #[arg(long)]
    pub source: Option<String>,
}
