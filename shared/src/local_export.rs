//! `local-export`: writes a live PostgreSQL database out exactly as Aurora's snapshot export would,
//! so a migration can be rehearsed (and every test gets its input) without AWS.
//!
//! The output under `out` is one export's root, laid out as `aurora-export.md` describes:
//! `export_info_<id>.json`, `export_tables_info_<id>_from_1_to_<N>.json`, and per table
//! `<database>/<schema>.<table>/<batch>/part-NNNNN-<uuid>-c000.gz.parquet` plus a `_SUCCESS`
//! marker in each batch folder. [`crate::export::Export::open`] reads it back like a real export.
//!
//! Decisions, each made to stay as close to Aurora as a live database allows:
//! - **One snapshot.** Catalog reads and every table's rows come from one
//!   `REPEATABLE READ READ ONLY` transaction, so the files hold exactly the rows of a single
//!   moment, as a snapshot would. The transaction is rolled back at the end (nothing was written).
//! - **Session settings.** Inside that transaction (`SET LOCAL`, so the caller's session is left
//!   as it was) `DateStyle` is `ISO, MDY`, `IntervalStyle` `postgres`, `extra_float_digits` `1`
//!   (PostgreSQL's built-in default: shortest exact floats), `TimeZone` `UTC` and `bytea_output`
//!   `hex`: string columns then hold PostgreSQL's default text output whatever the server or role
//!   configuration says, and `timestamptz` values are in UTC like the export's. `row_security`
//!   is `off`, so a table whose row-level security policies would hide rows from the connected
//!   role fails the export (a snapshot holds every row) instead of silently losing rows, and
//!   `statement_timeout` is `0` so a role's timeout cannot cut a long table short.
//! - **Types.** `smallint`, `integer`, `bigint`, `real`, `double precision`, `boolean` and `bytea`
//!   are written natively (INT32 annotated INT(16), INT32, INT64, FLOAT, DOUBLE, BOOLEAN, BINARY);
//!   every other type is a UTF8 string holding its text output (`col::text`). The choice follows
//!   `information_schema.columns.data_type`, the `originalType` of the metadata, so the file and
//!   the metadata never disagree; that view resolves a domain to its base type, so a domain over
//!   `integer` is written as INT32 (`aurora-export.md` lists domains among strings; a loader
//!   driven by `originalType` would then be handed text for an `integer` column, so the metadata
//!   wins here). `character(n)` goes through its output function
//!   (`bpcharout`), which keeps the blank padding `::text` would strip, as a client reading the
//!   column would see it.
//! - **Streaming.** Rows arrive by `COPY (SELECT ...) TO STDOUT (FORMAT binary)` and become Arrow
//!   batches of at most [`BATCH_ROWS`] rows (or [`BATCH_BYTES`] of variable-length data); a
//!   blocking writer task compresses them (GZIP) while the next batch is read. Memory is bounded
//!   by one row group being encoded plus a few batches, never by the table.
//! - **Files.** A new part file every `rows_per_file` rows, row groups of `rows_per_row_group`
//!   rows, one UUID per batch folder (as Spark names a job's files). An **empty table gets no part
//!   file and no folder**, only its metadata entry with 0 rows: a real export may or may not write
//!   an empty file, and readers must treat "no files" as empty anyway (`Export::open` does).
//!   Files carry no Arrow schema in their key-value metadata, as Aurora's (Spark's) do not:
//!   readers must work from the Parquet schema alone.
//! - **Partitioned tables** are exported under the partitioned table's name, one batch folder
//!   (`1`, `2`, ...) per leaf partition in name order; partitions do not appear as tables.
//! - **Skips, as Aurora does:** unlogged and temporary tables, tables with `/` in the schema or
//!   table name, tables with a column name containing any of `, ; { } ( ) =`, newline, tab or
//!   space, and tables the connected role cannot read (status `PERMISSIONS_DO_NOT_EXIST`). Each
//!   keeps an entry in `perTableStatus` with a non-COMPLETE status and a `warningMessage`, and is
//!   listed in [`LocalExportSummary::skipped`]. Tables with no columns are skipped too (there is
//!   nothing to write and no type mapping to record).
//! - **All or nothing.** `out` must be empty or absent, and the connection must not be inside a
//!   transaction (its snapshot would not be the export's, and the export's final `ROLLBACK`
//!   would end the caller's work). The metadata files are written last, so
//!   an export that failed half-way has no `export_info_*.json` and is never mistaken for a
//!   complete one.

// The crate's `Error` carries value locations and is large by design; whether to box it is
// error.rs's decision, not this module's.
#![allow(clippy::result_large_err)]

use crate::error::{Error, Result};
use crate::export::{
    ColumnType, ExportInfo, SchemaMetadata, SkippedTable, TableStatus, TablesInfo,
};
use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int16Builder,
    Int32Builder, Int64Builder, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::basic::{Compression, GzipLevel};
use parquet::file::properties::WriterProperties;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_postgres::Client;
use tokio_postgres::binary_copy::{BinaryCopyOutRow, BinaryCopyOutStream};
use tokio_postgres::types::Type;

/// Most rows in one Arrow batch handed to the writer: bounds memory for narrow tables.
pub const BATCH_ROWS: usize = 8192;
/// Most bytes of variable-length values (text, bytea) in one batch: bounds memory for wide ones.
pub const BATCH_BYTES: usize = 32 * 1024 * 1024;
/// Batches waiting for the writer; reading runs at most this far ahead of compression.
const CHANNEL_DEPTH: usize = 4;
const GB: f64 = 1024.0 * 1024.0 * 1024.0;

/// What to call the export and how to cut its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalExportOptions {
    /// The export task identifier: names the metadata files, as Aurora's do.
    pub export_id: String,
    /// Rows per part file (default 1,000,000): small values give many files, to test file fan-out.
    pub rows_per_file: usize,
    /// Rows per Parquet row group (default 100,000): the unit a reader can fetch alone.
    pub rows_per_row_group: usize,
}

impl LocalExportOptions {
    /// Options with the default file and row group sizes.
    pub fn new(export_id: impl Into<String>) -> Self {
        LocalExportOptions {
            export_id: export_id.into(),
            rows_per_file: 1_000_000,
            rows_per_row_group: 100_000,
        }
    }
}

impl Default for LocalExportOptions {
    fn default() -> Self {
        LocalExportOptions::new("local-export")
    }
}

/// What was exported: for the command's report and for tests.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalExportSummary {
    pub export_id: String,
    /// The source database, also the export's `<database>` folder.
    pub database: String,
    /// Exported tables, in `schema.table` order.
    pub tables: Vec<TableSummary>,
    /// Tables left out the way Aurora leaves them out, with why; also in the metadata.
    pub skipped: Vec<SkippedTable>,
}

/// One exported table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    /// `schema.table`.
    pub table: String,
    pub rows: u64,
    /// Part files written (0 for an empty table).
    pub files: usize,
}

/// How a column travels: the Parquet/Arrow type and the SQL that produces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Bool,
    Binary,
    /// Text output of the value.
    Text,
    /// `character(n)`: text output through `bpcharout`, padding kept.
    PaddedText,
}

impl Kind {
    /// From `information_schema.columns.data_type`.
    fn from_data_type(data_type: &str) -> Kind {
        match data_type {
            "smallint" => Kind::Int16,
            "integer" => Kind::Int32,
            "bigint" => Kind::Int64,
            "real" => Kind::Float32,
            "double precision" => Kind::Float64,
            "boolean" => Kind::Bool,
            "bytea" => Kind::Binary,
            "character" => Kind::PaddedText,
            _ => Kind::Text,
        }
    }

    /// The select-list expression for column `ident` (already quoted).
    fn select_expr(self, ident: &str) -> String {
        match self {
            Kind::Int16 => format!("{ident}::int2"),
            Kind::Int32 => format!("{ident}::int4"),
            Kind::Int64 => format!("{ident}::int8"),
            Kind::Float32 => format!("{ident}::float4"),
            Kind::Float64 => format!("{ident}::float8"),
            Kind::Bool => format!("{ident}::bool"),
            Kind::Binary => format!("{ident}::bytea"),
            Kind::Text => format!("{ident}::text"),
            Kind::PaddedText => format!("pg_catalog.textin(pg_catalog.bpcharout({ident}))"),
        }
    }

    /// The type binary COPY sends for [`Kind::select_expr`].
    fn pg_type(self) -> Type {
        match self {
            Kind::Int16 => Type::INT2,
            Kind::Int32 => Type::INT4,
            Kind::Int64 => Type::INT8,
            Kind::Float32 => Type::FLOAT4,
            Kind::Float64 => Type::FLOAT8,
            Kind::Bool => Type::BOOL,
            Kind::Binary => Type::BYTEA,
            Kind::Text | Kind::PaddedText => Type::TEXT,
        }
    }

    fn arrow(self) -> DataType {
        match self {
            Kind::Int16 => DataType::Int16,
            Kind::Int32 => DataType::Int32,
            Kind::Int64 => DataType::Int64,
            Kind::Float32 => DataType::Float32,
            Kind::Float64 => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Binary => DataType::Binary,
            Kind::Text | Kind::PaddedText => DataType::Utf8,
        }
    }

    /// `expectedExportedType` in the metadata.
    fn exported_type(self) -> &'static str {
        match self {
            Kind::Int16 | Kind::Int32 => "int32",
            Kind::Int64 => "int64",
            Kind::Float32 => "float",
            Kind::Float64 => "double",
            Kind::Bool => "boolean",
            Kind::Binary => "binary",
            Kind::Text | Kind::PaddedText => "binary (UTF8)",
        }
    }
}

/// A column as the metadata records it, and how it is read.
#[derive(Debug, Clone)]
struct Column {
    meta: ColumnType,
    kind: Kind,
}

/// A relation to read rows from: the table itself, or one leaf partition of it.
#[derive(Debug, Clone)]
struct Source {
    schema: String,
    name: String,
}

/// A table found in the catalog, before deciding whether to export it.
#[derive(Debug, Clone)]
struct CatalogTable {
    oid: u32,
    schema: String,
    name: String,
    relkind: String,
    persistence: String,
    readable: bool,
}

impl CatalogTable {
    fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// Quotes an identifier for SQL: names may hold spaces, quotes, upper case or any Unicode.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Characters that make Aurora skip a table when a column name contains one.
const BAD_COLUMN_CHARS: &[char] = &[',', ';', '{', '}', '(', ')', '=', '\n', '\t', ' '];

/// Writes every ordinary (and partitioned) table of the connected database, in all schemas but
/// `pg_catalog`, `information_schema` and `pg_toast*`, under `out` in Aurora's export layout.
///
/// `progress` is called with `schema.table` and the rows written so far for it, after each batch
/// and once when the table is done. See the module documentation for the layout and the choices.
///
/// Fails (with the table and column named) on a database error, an unreadable value, or a file
/// that cannot be written; fails before touching anything when `out` holds files or the
/// connection is inside a transaction. A failed export leaves no `export_info_*.json`.
pub async fn local_export(
    client: &Client,
    out: &Path,
    opts: &LocalExportOptions,
    progress: &(dyn Fn(&str, u64) + Sync),
) -> Result<LocalExportSummary> {
    check_options(opts)?;
    check_no_open_transaction(client).await?;
    prepare_out_dir(out).await?;
    let started = chrono::Utc::now();
    client
        .batch_execute(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
             SET LOCAL DateStyle = 'ISO, MDY';
             SET LOCAL IntervalStyle = 'postgres';
             SET LOCAL extra_float_digits = 1;
             SET LOCAL TimeZone = 'UTC';
             SET LOCAL bytea_output = 'hex';
             SET LOCAL row_security = off;
             SET LOCAL statement_timeout = 0;",
        )
        .await
        .map_err(|e| Error::db("starting the export's repeatable read transaction", e))?;
    let result = export_in_transaction(client, out, opts, progress).await;
    // Read-only: rolling back ends the transaction without writing anything, also after errors.
    let end = client.batch_execute("ROLLBACK").await;
    let (summary, statuses, total_bytes) = result?;
    end.map_err(|e| Error::db("ending the export's transaction", e))?;
    write_metadata(out, opts, &summary, statuses, total_bytes, started).await?;
    Ok(summary)
}

/// A `BEGIN` inside an open transaction only warns and keeps the outer transaction (and its
/// snapshot), and the final `ROLLBACK` would end the caller's work: refuse such a connection
/// before touching it. Outside a transaction block every statement is the first of its own
/// transaction, where `statement_timestamp()` equals `now()`; inside one, a later statement's
/// differs.
async fn check_no_open_transaction(client: &Client) -> Result<()> {
    // The simple query protocol: one message, so one statement start (the extended protocol
    // restarts the statement clock at each message).
    let messages = client
        .simple_query("SELECT (pg_catalog.statement_timestamp() <> pg_catalog.now())::text")
        .await
        .map_err(|e| {
            Error::db(
                "checking that the connection is not inside a transaction",
                e,
            )
        })?;
    let in_transaction = messages.iter().any(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0) == Some("true"),
        _ => false,
    });
    if in_transaction {
        return Err(Error::Usage(
            "the connection is inside a transaction: local-export needs its own repeatable read transaction (commit or roll back first)".into(),
        ));
    }
    Ok(())
}

fn check_options(opts: &LocalExportOptions) -> Result<()> {
    let id = &opts.export_id;
    if id.is_empty() || id.contains(['/', '\\', '\0']) || id.starts_with('.') {
        return Err(Error::Usage(format!(
            "export id {id:?} cannot name a file: use letters, digits and hyphens"
        )));
    }
    if opts.rows_per_file == 0 || opts.rows_per_row_group == 0 {
        return Err(Error::Usage(format!(
            "rows per file ({}) and rows per row group ({}) must both be at least 1",
            opts.rows_per_file, opts.rows_per_row_group
        )));
    }
    Ok(())
}

/// Creates `out`, refusing one that already holds files: old part files would mix with new ones.
async fn prepare_out_dir(out: &Path) -> Result<()> {
    match tokio::fs::read_dir(out).await {
        Ok(mut entries) => {
            if entries
                .next_entry()
                .await
                .map_err(|e| Error::io(out, e))?
                .is_some()
            {
                return Err(Error::Usage(format!(
                    "output directory {} is not empty: local-export writes a fresh export and will not mix it with old files",
                    out.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => tokio::fs::create_dir_all(out)
            .await
            .map_err(|e| Error::io(out, e)),
        Err(e) => Err(Error::io(out, e)),
    }
}

type Exported = (LocalExportSummary, Vec<TableStatus>, u64);

async fn export_in_transaction(
    client: &Client,
    out: &Path,
    opts: &LocalExportOptions,
    progress: &(dyn Fn(&str, u64) + Sync),
) -> Result<Exported> {
    let database: String = client
        .query_one("SELECT pg_catalog.current_database()::text", &[])
        .await
        .map_err(|e| Error::db("reading the database name", e))?
        .get(0);
    if database.contains(['/', '\\']) || database == "." || database == ".." {
        return Err(Error::Usage(format!(
            "database name {database:?} cannot name the export's folder"
        )));
    }
    let tables = list_tables(client).await?;
    let mut columns = list_columns(client).await?;

    let mut summary = LocalExportSummary {
        export_id: opts.export_id.clone(),
        database: database.clone(),
        tables: Vec::new(),
        skipped: Vec::new(),
    };
    let mut statuses = Vec::new();
    let mut total_bytes = 0u64;
    for table in &tables {
        let target = format!("{database}.{}.{}", table.schema, table.name);
        let cols = columns
            .remove(&(table.schema.clone(), table.name.clone()))
            .unwrap_or_default();
        let sources = if table.relkind == "p" {
            leaf_partitions(client, table).await?
        } else {
            Vec::new()
        };
        if let Some((status, reason)) = skip_reason(table, &cols, &sources) {
            summary.skipped.push(SkippedTable {
                target: target.clone(),
                status: status.to_string(),
                reason: reason.clone(),
            });
            statuses.push(TableStatus {
                target,
                status: status.to_string(),
                warning_message: Some(reason),
                ..TableStatus::default()
            });
            continue;
        }
        let sources = if table.relkind == "p" {
            sources.into_iter().map(|(s, _)| s).collect()
        } else {
            vec![Source {
                schema: table.schema.clone(),
                name: table.name.clone(),
            }]
        };
        let qualified = table.qualified();
        let table_dir = out.join(&database).join(&qualified);
        let start = chrono::Utc::now();
        let mut rows = 0u64;
        let mut files = 0usize;
        let mut bytes = 0u64;
        for (i, source) in sources.iter().enumerate() {
            let batch_dir = table_dir.join((i + 1).to_string());
            let written = export_source(
                client, &qualified, source, &cols, &batch_dir, opts, rows, progress,
            )
            .await?;
            rows += written.rows;
            files += written.files;
            bytes += written.bytes;
        }
        progress(&qualified, rows);
        total_bytes += bytes;
        statuses.push(TableStatus {
            target,
            status: "COMPLETE".into(),
            size_gb: Some(bytes as f64 / GB),
            table_statistics: Some(serde_json::json!({
                "extractedRowCount": rows,
                "extractionStartTime": start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "extractionEndTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "partitioningInfo": {
                    "numberOfPartitions": files,
                    "numberOfCompletedPartitions": files,
                },
            })),
            schema_metadata: Some(SchemaMetadata {
                original_type_mappings: cols.into_iter().map(|c| c.meta).collect(),
            }),
            warning_message: None,
        });
        summary.tables.push(TableSummary {
            table: qualified,
            rows,
            files,
        });
    }
    Ok((summary, statuses, total_bytes))
}

/// Why Aurora would leave this table out, as (status, warning message); `None` to export it.
fn skip_reason(
    table: &CatalogTable,
    cols: &[Column],
    partitions: &[(Source, bool)],
) -> Option<(&'static str, String)> {
    let qualified = table.qualified();
    if table.persistence == "t" {
        return Some((
            "SKIPPED",
            format!("table {qualified} is temporary: the export skips temporary tables"),
        ));
    }
    if table.persistence == "u" {
        return Some((
            "SKIPPED",
            format!("table {qualified} is unlogged: the export skips unlogged tables"),
        ));
    }
    if table.schema.contains('/') || table.name.contains('/') {
        return Some((
            "SKIPPED",
            format!("table {qualified} has '/' in its name: the export skips such tables"),
        ));
    }
    if !table.readable || partitions.iter().any(|(_, readable)| !readable) {
        return Some((
            "PERMISSIONS_DO_NOT_EXIST",
            format!(
                "table {qualified} is not readable by the connected role (SELECT privilege or schema USAGE missing)"
            ),
        ));
    }
    if let Some(c) = cols
        .iter()
        .find(|c| c.meta.column_name.contains(BAD_COLUMN_CHARS))
    {
        return Some((
            "SKIPPED",
            format!(
                "table {qualified}: column {:?} contains one of , ; {{ }} ( ) = newline tab or space: the export skips such tables",
                c.meta.column_name
            ),
        ));
    }
    if cols.is_empty() {
        return Some((
            "SKIPPED",
            format!("table {qualified} has no columns: nothing to export"),
        ));
    }
    None
}

/// Ordinary and partitioned tables (not partitions), with what decides whether they are skipped.
async fn list_tables(client: &Client) -> Result<Vec<CatalogTable>> {
    let rows = client
        .query(
            "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, c.relpersistence::text,
                    pg_catalog.has_schema_privilege(n.oid, 'USAGE')
                    AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
             FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_toast%'
             ORDER BY n.nspname, c.relname",
            &[],
        )
        .await
        .map_err(|e| Error::db("listing the database's tables", e))?;
    Ok(rows
        .iter()
        .map(|r| CatalogTable {
            oid: r.get(0),
            schema: r.get(1),
            name: r.get(2),
            relkind: r.get(3),
            persistence: r.get(4),
            readable: r.get(5),
        })
        .collect())
}

/// Leaf partitions of a partitioned table, in name order, with whether each is readable.
async fn leaf_partitions(client: &Client, table: &CatalogTable) -> Result<Vec<(Source, bool)>> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text,
                    pg_catalog.has_schema_privilege(n.oid, 'USAGE')
                    AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
             FROM pg_catalog.pg_partition_tree($1::oid) t
             JOIN pg_catalog.pg_class c ON c.oid = t.relid
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE t.isleaf AND c.relkind = 'r'
             ORDER BY n.nspname, c.relname",
            &[&table.oid],
        )
        .await
        .map_err(|e| {
            Error::db(
                format!("listing the partitions of table {}", table.qualified()),
                e,
            )
        })?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                Source {
                    schema: r.get(0),
                    name: r.get(1),
                },
                r.get(2),
            )
        })
        .collect())
}

/// Every column of every user table from `information_schema.columns`, keyed by
/// (schema, table), in `ordinal_position` (attnum) order.
async fn list_columns(client: &Client) -> Result<BTreeMap<(String, String), Vec<Column>>> {
    let rows = client
        .query(
            "SELECT table_schema::text, table_name::text, column_name::text, data_type::text,
                    character_maximum_length::int8, numeric_precision::int8,
                    numeric_scale::int8, datetime_precision::int8
             FROM information_schema.columns
             WHERE table_schema::text NOT IN ('pg_catalog', 'information_schema')
             ORDER BY table_schema, table_name, ordinal_position",
            &[],
        )
        .await
        .map_err(|e| Error::db("reading information_schema.columns", e))?;
    let mut out: BTreeMap<(String, String), Vec<Column>> = BTreeMap::new();
    for r in &rows {
        let data_type: String = r.get(3);
        let kind = Kind::from_data_type(&data_type);
        out.entry((r.get(0), r.get(1))).or_default().push(Column {
            kind,
            meta: ColumnType {
                column_name: r.get(2),
                original_type: data_type,
                expected_exported_type: kind.exported_type().to_string(),
                original_char_max_length: r.get(4),
                original_num_precision: r.get(5),
                original_num_scale: r.get(6),
                original_date_time_precision: r.get(7),
            },
        });
    }
    Ok(out)
}

/// What one batch folder received.
#[derive(Debug, Default, Clone, Copy)]
struct Written {
    rows: u64,
    files: usize,
    bytes: u64,
}

/// Streams one relation into one batch folder: reads here, writes on a blocking task.
#[allow(clippy::too_many_arguments)]
async fn export_source(
    client: &Client,
    table: &str,
    source: &Source,
    cols: &[Column],
    batch_dir: &Path,
    opts: &LocalExportOptions,
    rows_before: u64,
    progress: &(dyn Fn(&str, u64) + Sync),
) -> Result<Written> {
    let schema: SchemaRef = Arc::new(Schema::new(
        cols.iter()
            .map(|c| Field::new(c.meta.column_name.clone(), c.kind.arrow(), true))
            .collect::<Vec<_>>(),
    ));
    let select = cols
        .iter()
        .map(|c| c.kind.select_expr(&quote_ident(&c.meta.column_name)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "COPY (SELECT {select} FROM {}.{}) TO STDOUT (FORMAT binary)",
        quote_ident(&source.schema),
        quote_ident(&source.name)
    );
    let types: Vec<Type> = cols.iter().map(|c| c.kind.pg_type()).collect();
    let context = || {
        format!(
            "reading table {table} (from {}.{})",
            source.schema, source.name
        )
    };

    let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(CHANNEL_DEPTH);
    let mut writer = PartWriter::new(table, batch_dir, schema.clone(), opts);
    let writer_task = tokio::task::spawn_blocking(move || -> Result<Written> {
        while let Some(batch) = rx.blocking_recv() {
            writer.write(&batch)?;
        }
        writer.finish()
    });

    let read = async {
        let stream = client
            .copy_out(sql.as_str())
            .await
            .map_err(|e| Error::db(context(), e))?;
        let stream = BinaryCopyOutStream::new(stream, &types);
        futures::pin_mut!(stream);
        let mut batch = BatchBuilder::new(cols, schema.clone());
        let mut rows = 0u64;
        while let Some(row) = stream.next().await {
            let row = row.map_err(|e| Error::db(context(), e))?;
            batch.append(&row, table)?;
            rows += 1;
            if batch.rows >= BATCH_ROWS || batch.bytes >= BATCH_BYTES {
                let full = batch.finish(table)?;
                if tx.send(full).await.is_err() {
                    // The writer stopped: its own error says why.
                    return Ok(rows);
                }
                progress(table, rows_before + rows);
            }
        }
        if batch.rows > 0 {
            let last = batch.finish(table)?;
            if tx.send(last).await.is_err() {
                return Ok(rows);
            }
        }
        Ok::<u64, Error>(rows)
    };
    let read_result = read.await;
    drop(tx);
    let written = writer_task.await.map_err(|e| Error::Parquet {
        file: batch_dir.display().to_string(),
        reason: format!("writer task for table {table} failed: {e}"),
    })?;
    let rows = read_result?;
    let written = written?;
    if written.rows != rows {
        return Err(Error::Parquet {
            file: batch_dir.display().to_string(),
            reason: format!("table {table}: read {rows} rows but wrote {}", written.rows),
        });
    }
    Ok(written)
}

/// One Arrow column under construction.
enum ColumnBuilder {
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Bool(BooleanBuilder),
    Binary(BinaryBuilder),
    Text(StringBuilder),
}

impl ColumnBuilder {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Int16 => ColumnBuilder::Int16(Int16Builder::with_capacity(BATCH_ROWS)),
            Kind::Int32 => ColumnBuilder::Int32(Int32Builder::with_capacity(BATCH_ROWS)),
            Kind::Int64 => ColumnBuilder::Int64(Int64Builder::with_capacity(BATCH_ROWS)),
            Kind::Float32 => ColumnBuilder::Float32(Float32Builder::with_capacity(BATCH_ROWS)),
            Kind::Float64 => ColumnBuilder::Float64(Float64Builder::with_capacity(BATCH_ROWS)),
            Kind::Bool => ColumnBuilder::Bool(BooleanBuilder::with_capacity(BATCH_ROWS)),
            Kind::Binary => ColumnBuilder::Binary(BinaryBuilder::new()),
            Kind::Text | Kind::PaddedText => ColumnBuilder::Text(StringBuilder::new()),
        }
    }

    /// Appends field `i` of `row`; returns the variable-length bytes added.
    fn append(&mut self, row: &BinaryCopyOutRow, i: usize) -> Result<usize, tokio_postgres::Error> {
        Ok(match self {
            ColumnBuilder::Int16(b) => {
                b.append_option(row.try_get::<Option<i16>>(i)?);
                0
            }
            ColumnBuilder::Int32(b) => {
                b.append_option(row.try_get::<Option<i32>>(i)?);
                0
            }
            ColumnBuilder::Int64(b) => {
                b.append_option(row.try_get::<Option<i64>>(i)?);
                0
            }
            ColumnBuilder::Float32(b) => {
                b.append_option(row.try_get::<Option<f32>>(i)?);
                0
            }
            ColumnBuilder::Float64(b) => {
                b.append_option(row.try_get::<Option<f64>>(i)?);
                0
            }
            ColumnBuilder::Bool(b) => {
                b.append_option(row.try_get::<Option<bool>>(i)?);
                0
            }
            ColumnBuilder::Binary(b) => {
                let v = row.try_get::<Option<&[u8]>>(i)?;
                b.append_option(v);
                v.map_or(0, <[u8]>::len)
            }
            ColumnBuilder::Text(b) => {
                let v = row.try_get::<Option<&str>>(i)?;
                b.append_option(v);
                v.map_or(0, str::len)
            }
        })
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Int16(b) => Arc::new(b.finish()),
            ColumnBuilder::Int32(b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(b) => Arc::new(b.finish()),
            ColumnBuilder::Float32(b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(b) => Arc::new(b.finish()),
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Binary(b) => Arc::new(b.finish()),
            ColumnBuilder::Text(b) => Arc::new(b.finish()),
        }
    }
}

/// Rows of one Arrow batch under construction.
struct BatchBuilder<'a> {
    cols: &'a [Column],
    schema: SchemaRef,
    builders: Vec<ColumnBuilder>,
    rows: usize,
    bytes: usize,
}

impl<'a> BatchBuilder<'a> {
    fn new(cols: &'a [Column], schema: SchemaRef) -> Self {
        BatchBuilder {
            cols,
            schema,
            builders: cols.iter().map(|c| ColumnBuilder::new(c.kind)).collect(),
            rows: 0,
            bytes: 0,
        }
    }

    fn append(&mut self, row: &BinaryCopyOutRow, table: &str) -> Result<()> {
        for (i, b) in self.builders.iter_mut().enumerate() {
            self.bytes += b.append(row, i).map_err(|e| {
                Error::db(
                    format!(
                        "table {table}, column {:?}: decoding a value",
                        self.cols[i].meta.column_name
                    ),
                    e,
                )
            })?;
        }
        self.rows += 1;
        Ok(())
    }

    /// The batch so far; the builder starts over empty.
    fn finish(&mut self, table: &str) -> Result<RecordBatch> {
        let arrays = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect();
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| Error::Parquet {
            file: table.to_string(),
            reason: format!("table {table}: building an arrow batch: {e}"),
        })
    }
}

/// Writes one batch folder's part files, cutting a new file every `rows_per_file` rows.
struct PartWriter {
    table: String,
    dir: PathBuf,
    schema: SchemaRef,
    props: WriterProperties,
    rows_per_file: usize,
    /// One UUID for all files of the folder, as Spark names one job's output.
    uuid: String,
    current: Option<(ArrowWriter<BufWriter<File>>, PathBuf)>,
    rows_in_file: usize,
    written: Written,
}

impl PartWriter {
    fn new(table: &str, dir: &Path, schema: SchemaRef, opts: &LocalExportOptions) -> Self {
        let props = WriterProperties::builder()
            .set_compression(Compression::GZIP(GzipLevel::default()))
            .set_max_row_group_row_count(Some(opts.rows_per_row_group))
            .set_created_by(format!(
                "snap2dsql local-export {}",
                env!("CARGO_PKG_VERSION")
            ))
            .build();
        PartWriter {
            table: table.to_string(),
            dir: dir.to_path_buf(),
            schema,
            props,
            rows_per_file: opts.rows_per_file,
            uuid: uuid::Builder::from_random_bytes(rand::random())
                .into_uuid()
                .to_string(),
            current: None,
            rows_in_file: 0,
            written: Written::default(),
        }
    }

    fn parquet_err(&self, path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Parquet {
            file: path.display().to_string(),
            reason: format!("table {}: {what}: {e}", self.table),
        }
    }

    fn open_next(&mut self) -> Result<()> {
        if self.written.files == 0 {
            std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        }
        let path = self.dir.join(format!(
            "part-{:05}-{}-c000.gz.parquet",
            self.written.files, self.uuid
        ));
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let options = ArrowWriterOptions::new()
            .with_properties(self.props.clone())
            .with_skip_arrow_metadata(true);
        let writer =
            ArrowWriter::try_new_with_options(BufWriter::new(file), self.schema.clone(), options)
                .map_err(|e| self.parquet_err(&path, "starting a part file", e))?;
        self.current = Some((writer, path));
        self.rows_in_file = 0;
        self.written.files += 1;
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        if let Some((writer, path)) = self.current.take() {
            let mut buf = writer
                .into_inner()
                .map_err(|e| self.parquet_err(&path, "finishing a part file", e))?;
            buf.flush().map_err(|e| Error::io(&path, e))?;
            let size = std::fs::metadata(&path)
                .map_err(|e| Error::io(&path, e))?
                .len();
            self.written.bytes += size;
        }
        Ok(())
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            if self.current.is_none() || self.rows_in_file >= self.rows_per_file {
                self.close_current()?;
                self.open_next()?;
            }
            let take = (batch.num_rows() - offset).min(self.rows_per_file - self.rows_in_file);
            let slice = batch.slice(offset, take);
            let table = self.table.clone();
            if let Some((writer, path)) = self.current.as_mut() {
                writer.write(&slice).map_err(|e| Error::Parquet {
                    file: path.display().to_string(),
                    reason: format!("table {table}: writing rows: {e}"),
                })?;
            }
            self.rows_in_file += take;
            self.written.rows += take as u64;
            offset += take;
        }
        Ok(())
    }

    /// Closes the last file and marks the folder complete with `_SUCCESS`, as Spark does.
    fn finish(mut self) -> Result<Written> {
        self.close_current()?;
        if self.written.files > 0 {
            let marker = self.dir.join("_SUCCESS");
            File::create(&marker).map_err(|e| Error::io(&marker, e))?;
        }
        Ok(self.written)
    }
}

/// Writes the two metadata files, `export_info_*.json` last: it is what makes the export exist.
async fn write_metadata(
    out: &Path,
    opts: &LocalExportOptions,
    summary: &LocalExportSummary,
    mut statuses: Vec<TableStatus>,
    total_bytes: u64,
    started: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let id = &opts.export_id;
    if statuses.is_empty() {
        // A database with no tables still appears, as a database-only entry.
        statuses.push(TableStatus {
            target: summary.database.clone(),
            status: "COMPLETE".into(),
            warning_message: Some("the database has no tables to export".into()),
            ..TableStatus::default()
        });
    }
    let n = statuses.len();
    let tables_info = TablesInfo {
        per_table_status: statuses,
    };
    let info = ExportInfo {
        export_task_identifier: id.clone(),
        source_arn: Some(format!(
            "arn:aws:rds:local:000000000000:cluster:{}",
            summary.database
        )),
        status: "COMPLETE".into(),
        percent_progress: Some(100),
        task_start_time: Some(started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        task_end_time: Some(
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ),
        total_exported_data_in_gb: Some(total_bytes as f64 / GB),
        ..ExportInfo::default()
    };
    write_json(
        &out.join(format!("export_tables_info_{id}_from_1_to_{n}.json")),
        &tables_info,
    )
    .await?;
    write_json(&out.join(format!("export_info_{id}.json")), &info).await
}

async fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::Metadata {
        file: path.display().to_string(),
        reason: format!("serializing: {e}"),
    })?;
    tokio::fs::write(path, bytes)
        .await
        .map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_with_doubled_quotes() {
        assert_eq!(quote_ident("a\"b c"), "\"a\"\"b c\"");
        assert_eq!(quote_ident("Ünï"), "\"Ünï\"");
    }

    #[test]
    fn only_seven_types_are_native() {
        for (t, k) in [
            ("smallint", Kind::Int16),
            ("integer", Kind::Int32),
            ("bigint", Kind::Int64),
            ("real", Kind::Float32),
            ("double precision", Kind::Float64),
            ("boolean", Kind::Bool),
            ("bytea", Kind::Binary),
            ("character", Kind::PaddedText),
            ("numeric", Kind::Text),
            ("ARRAY", Kind::Text),
            ("USER-DEFINED", Kind::Text),
            ("timestamp with time zone", Kind::Text),
        ] {
            assert_eq!(Kind::from_data_type(t), k, "{t}");
        }
        assert_eq!(Kind::Int16.exported_type(), "int32");
        assert_eq!(Kind::Text.exported_type(), "binary (UTF8)");
    }

    #[test]
    fn options_are_checked() {
        assert!(check_options(&LocalExportOptions::default()).is_ok());
        assert!(check_options(&LocalExportOptions::new("a/b")).is_err());
        let mut o = LocalExportOptions::new("x");
        o.rows_per_file = 0;
        assert!(check_options(&o).is_err());
    }
}
