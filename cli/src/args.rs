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
    /// Serve a local stand-in for Aurora DSQL in front of a PostgreSQL: it refuses what DSQL
    /// refuses, with DSQL's SQLSTATEs and messages. Prints the URL to connect to, serves until
    /// killed.
    Standin(StandinArgs),
}

/// The stand-in's flags: DSQL's values by default (see snap2dsql-standin's `Config`).
#[derive(Debug, Args)]
pub struct StandinArgs {
    /// The upstream PostgreSQL (postgres://user[:password]@host:port/db); a client's database is
    /// the upstream database of the same name.
    #[arg(long)]
    pub upstream: String,
    /// Address and port to listen on (port 0: a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// PEM certificate chain: TLS is offered to clients (with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Rows written per transaction.
    #[arg(long, default_value_t = 3_000)]
    pub max_rows: u64,
    /// Bytes written per transaction (as the client sent them).
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    pub max_bytes: u64,
    /// Transaction age limit, seconds (fractions allowed).
    #[arg(long, default_value_t = 300.0)]
    pub max_transaction_age: f64,
    /// Open connections.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// New connections per second and burst, PER_SECOND[/BURST], or `off`.
    #[arg(long, default_value = "100/1000")]
    pub connection_rate: String,
    /// Connection lifetime, seconds (fractions allowed).
    #[arg(long, default_value_t = 3600.0)]
    pub max_connection_age: f64,
    /// Fraction of commits of writing transactions failed with 40001 (OC000).
    #[arg(long, default_value_t = 0.0)]
    pub inject_conflicts: f64,
    /// Delay before each COMMIT is answered, milliseconds.
    #[arg(long, default_value_t = 0)]
    pub commit_latency_ms: u64,
    /// COPY FROM STDIN (FORMAT binary): accept, refuse, refuse-in-transaction.
    #[arg(long, default_value = "accept")]
    pub binary_copy: String,
    /// COPY rows do not count toward the row cap.
    #[arg(long)]
    pub copy_rows_uncounted: bool,
    /// UPDATE and DELETE rows do not count toward the row cap.
    #[arg(long)]
    pub update_delete_rows_uncounted: bool,
    /// What CALL sys.wait_for_job answers: `row` (one boolean) or `tag` (CALL only).
    #[arg(long, default_value = "row")]
    pub wait_for_job_result: String,
    /// Status of a failed async job: `completed` (error in details) or `failed`.
    #[arg(long, default_value = "completed")]
    pub failed_job_status: String,
    /// Minimum duration of an async job, milliseconds (DSQL: ~20 s even for an empty table).
    #[arg(long, default_value_t = 0)]
    pub min_job_ms: u64,
    /// Reads count as DML for "ddl and dml are not supported in the same transaction".
    #[arg(long)]
    pub reads_count_as_dml: bool,
    /// How long a write waits for a row lock before it is a conflict, milliseconds.
    #[arg(long, default_value_t = 20)]
    pub lock_wait_ms: u64,
    /// Session parameters SET accepts beyond DSQL's list (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub allow_setting: Vec<String>,
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

/// `plan`'s flags: [`ExportArgs`]'s, with `--export` optional when `--estimate` states a size.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The export: a directory, or s3://bucket/prefix/export-id (not with --estimate --rows).
    #[arg(long, required_unless_present = "rows")]
    pub export: Option<String>,
    /// The database to migrate, when the export holds several.
    #[arg(long)]
    pub database: Option<String>,
    /// Source constraints: a postgres:// URL of the source, or a `pg_dump --schema-only` file.
    /// Without it keys and references are guessed, and marked as guesses.
    #[arg(long)]
    pub source_schema: Option<String>,
    /// Directory for mapping.toml, ddl.sql and ddl-post-load.sql.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub estimate: EstimateArgs,
}

impl PlanArgs {
    /// The export flags, when an export is given.
    pub fn export_args(&self) -> Option<ExportArgs> {
        Some(ExportArgs {
            export: self.export.clone()?,
            database: self.database.clone(),
            source_schema: self.source_schema.clone(),
        })
    }
}

/// `plan --estimate`: the size (an export's, or stated), the knobs and the assumptions.
#[derive(Debug, Args)]
pub struct EstimateArgs {
    /// Print what the migration asks of DSQL and AWS, and costs, instead of planning it: for
    /// --export (its footers), or for a stated size (--rows, --bytes, --tables). Writes nothing.
    #[arg(long)]
    pub estimate: bool,
    /// Stated size: rows in all tables.
    #[arg(long, requires_all = ["estimate", "bytes"], conflicts_with = "export")]
    pub rows: Option<u64>,
    /// Stated size: bytes of the export's Parquet files (a suffix KB, MB, GB, TB is 10^3..).
    #[arg(long, requires = "rows", value_parser = parse_bytes)]
    pub bytes: Option<u64>,
    /// Stated size: tables (the rows and bytes are spread evenly over them).
    #[arg(long, requires = "rows", default_value_t = 1)]
    pub tables: u64,
    /// Stated size: the size of the export's part files, MiB (Aurora: usually 1-10 MB).
    #[arg(long, requires = "rows", default_value_t = snap2dsql::estimate::DEFAULT_FILE_BYTES >> 20)]
    pub file_mib: u64,
    /// Stated size: columns a table.
    #[arg(long, requires = "rows", default_value_t = snap2dsql::estimate::DEFAULT_COLUMNS)]
    pub columns: u64,
    /// Chunks loaded at once (the pipeline's max_concurrency, LoadConcurrency).
    #[arg(long, requires = "estimate", default_value_t = 8)]
    pub parallel_chunks: u64,
    /// Writer connections per chunk (LOAD_CONNECTIONS, LoadConnections).
    #[arg(long, requires = "estimate", default_value_t = snap2dsql::load::DEFAULT_CONNECTIONS as u64)]
    pub connections: u64,
    /// Rows one connection commits per second (measure it with a trial chunk).
    #[arg(long, requires = "estimate", default_value_t = snap2dsql::estimate::DEFAULT_ROWS_PER_CONNECTION_SECOND)]
    pub rows_per_connection_second: f64,
    /// DPUs DSQL bills per GiB loaded (EXPLAIN ANALYZE VERBOSE of one batch prints a Statement
    /// DPU Estimate); without it the DPU cost is not estimated.
    #[arg(long, requires = "estimate")]
    pub dpu_per_gib: Option<f64>,
}

/// `1000000`, `1.5GB`, `1TB` (decimal units, as AWS bills).
fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: f64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        other => return Err(format!("unknown unit {other:?}: use B, KB, MB, GB or TB")),
    };
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 1TB, 250GB, 1000000)"))?;
    if !(n.is_finite() && n >= 0.0) {
        return Err(format!("{text:?} is not a size"));
    }
    Ok((n * scale).round() as u64)
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
    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The load format tried first: binary (COPY FORMAT binary), text (COPY FORMAT text) or
    /// insert (multi-row INSERT). A format the target refuses falls back to the next, in that
    /// order, for the whole run.
    #[arg(long, default_value = "binary")]
    pub load_format: String,
    /// Seconds each statement of a batch (and a ledger read) may take before its connection is
    /// dropped and the batch retried on a new one.
    #[arg(long, default_value_t = snap2dsql::load::STATEMENT_TIMEOUT.as_secs())]
    pub statement_timeout: u64,
    /// Seconds a COMMIT may take before its connection is dropped; the ledger then says
    /// whether it committed.
    #[arg(long, default_value_t = snap2dsql::load::COMMIT_TIMEOUT.as_secs())]
    pub commit_timeout: u64,
    /// Seconds a connect (TCP, TLS, authentication) may take.
    #[arg(long, default_value_t = snap2dsql::target::CONNECT_TIMEOUT.as_secs())]
    pub connect_timeout: u64,
    /// Seconds after which a writer replaces its connection (DSQL closes them at 3,600).
    #[arg(long, default_value_t = snap2dsql::target::CONNECTION_MAX_AGE.as_secs())]
    pub connection_max_age: u64,
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
