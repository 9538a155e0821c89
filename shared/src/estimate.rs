//! `plan --estimate`: what a migration of a given size asks of DSQL, Lambda, Step Functions and
//! S3, and what it costs, before anything runs.
//!
//! The size comes from an export (footers: exact rows, bytes, part files and chunks) or is stated
//! (rows, bytes, tables). The figures follow from the loader's own bounds ([`crate::chunk`]),
//! the pipeline's knobs (chunks at once, connections per chunk) and a few stated assumptions,
//! each a named constant or an option: the rate one connection writes at, the part-file size of
//! an export, the rows one verify item covers. Prices are AWS's public list prices in US East
//! (N. Virginia), named with their source and the date they were read ([`Prices`]).
//!
//! [`check_connections`] is the one check of `chunks at once × connections per chunk` against
//! DSQL's connection limits; the CLI's `run`, the pipeline's `load-chunk` and this estimate all
//! call it.

use crate::chunk::{CHUNK_MAX_BYTES, CHUNK_MAX_ROWS, Chunk};
use crate::error::{Error, Result};
use serde::Serialize;

/// DSQL's open connections per cluster (53300 past it; `dsql.md`, "Other limits").
pub const DSQL_MAX_CONNECTIONS: u64 = 10_000;
/// DSQL's sustained rate of new connections per second (53400 past it).
pub const DSQL_NEW_CONNECTIONS_PER_SECOND: u64 = 100;
/// DSQL's burst of new connections: the token bucket the 100/s refill.
pub const DSQL_NEW_CONNECTION_BURST: u64 = 1_000;

/// Rows one writer connection commits per second, by default. Measured DSQL loads range from
/// ~200 rows/s a connection (awslabs' toolkit: 103k rows/s over 512 connections, client
/// CPU-bound, 1.17 KB rows) to a few thousand (a warmed table, small rows, binary COPY, 50 ms
/// commits of 2,500-row batches); 1,000 is a middle a first plan can stand on. State yours with
/// `--rows-per-connection-second` once a trial chunk has measured it.
pub const DEFAULT_ROWS_PER_CONNECTION_SECOND: f64 = 1_000.0;
/// Part-file size assumed for a stated size: Aurora writes files of "usually 1-10 MB"
/// (`aurora-export.md`), and a chunk never spans two files, so for most exports the files, not
/// [`CHUNK_MAX_ROWS`], set the number of chunks. 10 MiB is the optimistic end.
pub const DEFAULT_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Rows one verify item covers: the pipeline's verify parts
/// ([`crate::verify::parts::ITEM_ROWS`]), cut on each side: every table is at least one export
/// part (runs of whole row groups) and one target part (a key range), so a table of `n` rows is
/// `2 x max(1, ceil(n / VERIFY_ITEM_ROWS))` items.
pub const VERIFY_ITEM_ROWS: u64 = crate::verify::parts::ITEM_ROWS;
/// Rows a verify item checks per second (export rows read and canonicalised, or target rows
/// paged by key); every row is checked once on each side.
pub const VERIFY_ROWS_PER_SECOND: f64 = 10_000.0;
/// Seconds of a load-chunk invocation that are not writing rows: start, mapping and orphan
/// list, footer, ledger read, connects.
pub const CHUNK_OVERHEAD_SECONDS: f64 = 2.0;
/// State transitions of one execution outside the maps: Defaults, Route, the snapshot and
/// export poll loops (3 a poll; ~30 polls of a one-hour export at 2 minutes), FanOut, the
/// Choices, the verify combine.
pub const MAIN_FLOW_TRANSITIONS: u64 = 100;
/// Memory of the functions, as `infra/template.yaml` sets them (MB).
pub const LOAD_CHUNK_MEMORY_MB: u64 = 2_048;
pub const VERIFY_MEMORY_MB: u64 = 1_024;
pub const FAN_OUT_MEMORY_MB: u64 = 1_024;
/// Columns assumed for a stated size (each row group's projected columns are one ranged GET).
pub const DEFAULT_COLUMNS: u64 = 20;

/// AWS list prices used by the estimate, US East (N. Virginia).
#[derive(Debug, Clone, Serialize)]
pub struct Prices {
    /// Lambda duration, Arm (Graviton), first 7.5 billion GB-s a month.
    pub lambda_gb_second_arm: f64,
    pub lambda_per_million_requests: f64,
    /// Step Functions Standard workflows.
    pub sfn_per_thousand_transitions: f64,
    /// S3 Standard GET, and PUT (also COPY, POST, LIST).
    pub s3_get_per_thousand: f64,
    pub s3_put_per_thousand: f64,
    pub dsql_per_million_dpu: f64,
    pub dsql_storage_gb_month: f64,
    /// Where each price was read, and when.
    pub sources: &'static [&'static str],
}

/// The prices as read on 2026-12-07 (the sources say which page gave which price).
pub const PRICES_US_EAST_1: Prices = Prices {
    lambda_gb_second_arm: 0.000_013_333_4,
    lambda_per_million_requests: 0.20,
    sfn_per_thousand_transitions: 0.025,
    s3_get_per_thousand: 0.000_4,
    s3_put_per_thousand: 0.005,
    dsql_per_million_dpu: 8.00,
    dsql_storage_gb_month: 0.33,
    sources: &[
        "Lambda: https://aws.amazon.com/lambda/pricing/ (Arm $0.0000133334 per GB-s, $0.20 per 1M requests), read 2026-12-07",
        "Step Functions: https://aws.amazon.com/step-functions/pricing/ (Standard, $0.025 per 1,000 state transitions), read 2026-12-07",
        "S3: https://aws.amazon.com/s3/pricing/ (Standard, GET $0.0004 and PUT/LIST $0.005 per 1,000 requests), read 2026-12-07",
        "Aurora DSQL: https://aws.amazon.com/rds/aurora/dsql/pricing/ ($8.00 per 1M DPU, $0.33 per GB-month), read 2026-12-07",
    ],
};

/// How big the migration is.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Size {
    pub rows: u64,
    /// Bytes of the export's Parquet files.
    pub bytes: u64,
    pub tables: u64,
    /// Part files; stated sizes assume files of [`DEFAULT_FILE_BYTES`].
    pub files: u64,
    /// Row groups of all files (one ranged GET per projected column of each).
    pub row_groups: u64,
    pub columns: u64,
    /// The exact chunk count when planned from an export; `None` for a stated size.
    pub chunks: Option<u64>,
}

impl Size {
    /// A stated size: `rows` and `bytes` over `tables` tables of equal size, part files of
    /// `file_bytes`, one row group a file, `columns` columns a table.
    pub fn stated(rows: u64, bytes: u64, tables: u64, file_bytes: u64, columns: u64) -> Size {
        let tables = tables.max(1);
        let files = tables * bytes.div_ceil(tables).div_ceil(file_bytes.max(1)).max(1);
        Size {
            rows,
            bytes,
            tables,
            files,
            row_groups: files,
            columns,
            chunks: None,
        }
    }

    /// The size of planned chunks (exact): rows, bytes of the files they read, files, row
    /// groups. `columns` is the widest table's column count.
    pub fn of_chunks(chunks: &[Chunk], tables: u64, bytes: u64, columns: u64) -> Size {
        let mut files: Vec<&str> = chunks.iter().map(|c| c.file.as_str()).collect();
        files.sort_unstable();
        files.dedup();
        Size {
            rows: chunks.iter().map(|c| c.rows).sum(),
            bytes,
            tables,
            files: files.len() as u64,
            row_groups: chunks
                .iter()
                .map(|c| (c.row_group_end - c.row_group_start) as u64)
                .sum(),
            columns,
            chunks: Some(chunks.len() as u64),
        }
    }

    /// Chunks: exact when planned; otherwise each file cut by [`CHUNK_MAX_ROWS`] and
    /// [`CHUNK_MAX_BYTES`] (rows spread evenly over the files), at least one a file.
    pub fn chunks(&self) -> u64 {
        if let Some(n) = self.chunks {
            return n;
        }
        let files = self.files.max(1);
        let rows_per_file = self.rows.div_ceil(files);
        let bytes_per_file = self.bytes.div_ceil(files);
        let per_file = rows_per_file
            .div_ceil(CHUNK_MAX_ROWS)
            .max(bytes_per_file.div_ceil(CHUNK_MAX_BYTES))
            .max(1);
        files * per_file
    }
}

/// The pipeline's knobs and the stated assumptions.
#[derive(Debug, Clone, Serialize)]
pub struct Knobs {
    /// Chunks loaded at once (the Distributed Map's MaxConcurrency; `run --parallel-chunks`).
    pub parallel_chunks: u64,
    /// Writer connections per chunk (LOAD_CONNECTIONS; `run --concurrency`).
    pub connections: u64,
    pub rows_per_connection_second: f64,
    /// DPUs DSQL bills per GiB loaded, when known (measure one batch with EXPLAIN ANALYZE
    /// VERBOSE); without it the DPU cost is not estimated.
    pub dpu_per_gib: Option<f64>,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            parallel_chunks: 8,
            connections: crate::load::DEFAULT_CONNECTIONS as u64,
            rows_per_connection_second: DEFAULT_ROWS_PER_CONNECTION_SECOND,
            dpu_per_gib: None,
        }
    }
}

/// What `chunks at once × connections per chunk` asks of DSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Connections {
    /// Open at once: every writer of every running chunk.
    pub peak: u64,
    /// Opened in the first second, when every chunk starts together: its writers and its
    /// ledger read's connection.
    pub burst: u64,
}

impl Connections {
    /// What `parallel_chunks` chunks of `connections` writers each open.
    pub fn of(parallel_chunks: u64, connections: u64) -> Connections {
        Connections {
            peak: parallel_chunks.saturating_mul(connections),
            burst: parallel_chunks.saturating_mul(connections.saturating_add(1)),
        }
    }
}

/// Refuses `parallel_chunks × connections` past DSQL's connection limits: more than
/// [`DSQL_MAX_CONNECTIONS`] open, or a start that opens more than [`DSQL_NEW_CONNECTION_BURST`]
/// at once (DSQL refills new connections at [`DSQL_NEW_CONNECTIONS_PER_SECOND`] a second, so a
/// larger start is refused with 53400 and connects time out).
pub fn check_connections(parallel_chunks: u64, connections: u64) -> Result<Connections> {
    let c = Connections::of(parallel_chunks, connections);
    if c.peak > DSQL_MAX_CONNECTIONS {
        return Err(Error::Usage(format!(
            "{parallel_chunks} chunks at once x {connections} connections each = {} open DSQL connections, past DSQL's {DSQL_MAX_CONNECTIONS} a cluster: lower max_concurrency (--parallel-chunks) or the connections per chunk (LOAD_CONNECTIONS, --concurrency)",
            c.peak
        )));
    }
    if c.burst > DSQL_NEW_CONNECTION_BURST {
        return Err(Error::Usage(format!(
            "{parallel_chunks} chunks at once x ({connections} writers + 1 ledger read) = {} new DSQL connections when the load starts, past DSQL's burst of {DSQL_NEW_CONNECTION_BURST} (then {DSQL_NEW_CONNECTIONS_PER_SECOND} a second): lower max_concurrency (--parallel-chunks) or the connections per chunk (LOAD_CONNECTIONS, --concurrency)",
            c.burst
        )));
    }
    Ok(c)
}

/// The figures `plan --estimate` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub size: Size,
    pub knobs: Knobs,
    pub chunks: u64,
    pub verify_items: u64,
    pub connections: Connections,
    /// New connections per second over the load: each chunk opens its writers and a ledger
    /// connection.
    pub new_connections_per_second: f64,
    pub load_seconds: f64,
    pub verify_seconds: f64,
    pub lambda_gb_seconds: f64,
    pub lambda_requests: u64,
    pub state_transitions: u64,
    pub s3_gets: u64,
    pub s3_puts: u64,
    pub cost: Cost,
    pub prices: Prices,
    /// Why the knobs are refused, when they are.
    pub refused: Option<String>,
}

/// Dollars, by service.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cost {
    pub lambda: f64,
    pub step_functions: f64,
    pub s3: f64,
    /// `None` without a DPU-per-GiB figure.
    pub dsql_dpu: Option<f64>,
    pub dsql_storage_month: f64,
    /// Everything known, the first month's storage included.
    pub total: f64,
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Estimates a migration of `size` with `knobs` at `prices`.
pub fn estimate(size: &Size, knobs: &Knobs, prices: &Prices) -> Estimate {
    let chunks = size.chunks();
    let verify_items = 2 * size.tables.max(size.rows.div_ceil(VERIFY_ITEM_ROWS));
    let connections = Connections::of(knobs.parallel_chunks, knobs.connections);
    let refused = check_connections(knobs.parallel_chunks, knobs.connections)
        .err()
        .map(|e| e.to_string());
    let rate = knobs.rows_per_connection_second.max(f64::MIN_POSITIVE);
    let writers = knobs.connections.max(1) as f64;
    // Seconds of all load-chunk invocations together, and the wall clock with
    // `parallel_chunks` of them running at once.
    let chunk_seconds =
        size.rows as f64 / (rate * writers) + chunks as f64 * CHUNK_OVERHEAD_SECONDS;
    let running = knobs.parallel_chunks.clamp(1, chunks.max(1)) as f64;
    let load_seconds = chunk_seconds / running;
    let new_connections_per_second = if load_seconds > 0.0 {
        (chunks * (knobs.connections + 1)) as f64 / load_seconds
    } else {
        0.0
    };
    let item_seconds = 2.0 * size.rows as f64 / VERIFY_ROWS_PER_SECOND;
    let verify_seconds = item_seconds / knobs.parallel_chunks.clamp(1, verify_items.max(1)) as f64;
    let lambda_gb_seconds = chunk_seconds * LOAD_CHUNK_MEMORY_MB as f64 / 1024.0
        + item_seconds * VERIFY_MEMORY_MB as f64 / 1024.0
        // The fan-out reads every footer and scans the reference columns: about a minute.
        + 60.0 * FAN_OUT_MEMORY_MB as f64 / 1024.0;
    let lambda_requests = chunks + verify_items + MAIN_FLOW_TRANSITIONS / 3;
    let state_transitions = MAIN_FLOW_TRANSITIONS + chunks + verify_items;
    // load-chunk: mapping, orphan list, footer (two ranged GETs), one GET per projected column
    // of each row group; verify reads the same row groups again.
    let s3_gets = chunks * 4 + size.row_groups * size.columns.max(1) * 2 + verify_items * 2;
    // chunks.json, mapping, orphans, verify parts and report, the Map's result files.
    let s3_puts = 10 + verify_items + chunks.div_ceil(1_000);
    let gb = size.bytes as f64 / 1e9;
    let mut cost = Cost {
        lambda: lambda_gb_seconds * prices.lambda_gb_second_arm
            + lambda_requests as f64 / 1e6 * prices.lambda_per_million_requests,
        step_functions: state_transitions as f64 / 1e3 * prices.sfn_per_thousand_transitions,
        s3: s3_gets as f64 / 1e3 * prices.s3_get_per_thousand
            + s3_puts as f64 / 1e3 * prices.s3_put_per_thousand,
        dsql_dpu: knobs
            .dpu_per_gib
            .map(|d| size.bytes as f64 / GIB * d / 1e6 * prices.dsql_per_million_dpu),
        dsql_storage_month: gb * prices.dsql_storage_gb_month,
        total: 0.0,
    };
    cost.total = cost.lambda
        + cost.step_functions
        + cost.s3
        + cost.dsql_dpu.unwrap_or(0.0)
        + cost.dsql_storage_month;
    Estimate {
        size: size.clone(),
        knobs: knobs.clone(),
        chunks,
        verify_items,
        connections,
        new_connections_per_second,
        load_seconds,
        verify_seconds,
        lambda_gb_seconds,
        lambda_requests,
        state_transitions,
        s3_gets,
        s3_puts,
        cost,
        prices: prices.clone(),
        refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn connection_limits_refuse_what_dsql_would() {
        // 8 x 4: 32 open, 40 new at the start.
        assert_eq!(
            check_connections(8, 4).unwrap(),
            Connections {
                peak: 32,
                burst: 40
            }
        );
        // 200 x 4 = 800 open, 1,000 new: exactly the burst.
        assert_eq!(check_connections(200, 4).unwrap().burst, 1_000);
        let e = check_connections(201, 4).unwrap_err().to_string();
        assert!(e.contains("1005 new DSQL connections"), "{e}");
        assert!(e.contains("burst of 1000"), "{e}");
        // Past 10,000 open (and so past the burst too): the open count is named first.
        let e = check_connections(101, 100).unwrap_err().to_string();
        assert!(e.contains("10100 open DSQL connections"), "{e}");
        assert!(e.contains("10000 a cluster"), "{e}");
        assert!(check_connections(u64::MAX, u64::MAX).is_err());
    }

    #[test]
    fn a_stated_size_is_cut_by_files_and_chunk_bounds() {
        // 1 TB in 10 tables, 10 MiB files: 100 GB a table is 9,537 files (rounded up).
        let s = Size::stated(
            10_000_000_000,
            1_000_000_000_000,
            10,
            DEFAULT_FILE_BYTES,
            20,
        );
        assert_eq!(s.files, 10 * 100_000_000_000u64.div_ceil(10 * 1024 * 1024));
        assert_eq!(s.files, 95_370);
        // 10^10 rows over 95,370 files: 104,856 rows a file, one chunk each.
        assert_eq!(s.chunks(), 95_370);
        // Files of 1 TiB: each 2.5e9 rows cut at 2,000,000 rows = 1,250 chunks, and at
        // 256 MiB = 4,096 chunks: the bytes bound wins.
        let big = Size::stated(10_000_000_000, 4 << 40, 4, 1 << 40, 20);
        assert_eq!(big.files, 4);
        assert_eq!(big.chunks(), 4 * 4_096);
    }

    #[test]
    fn the_arithmetic_matches_a_hand_computation() {
        // 1,000,000 rows, 1 GB, 1 table, 10 files of 100 MB (10 row groups), 5 columns; 2
        // chunks at once, 4 connections at 500 rows/s, 100 DPU a GiB.
        let size = Size {
            rows: 1_000_000,
            bytes: 1_000_000_000,
            tables: 1,
            files: 10,
            row_groups: 10,
            columns: 5,
            chunks: None,
        };
        let knobs = Knobs {
            parallel_chunks: 2,
            connections: 4,
            rows_per_connection_second: 500.0,
            dpu_per_gib: Some(100.0),
        };
        let e = estimate(&size, &knobs, &PRICES_US_EAST_1);
        assert_eq!(e.chunks, 10);
        // One export part and one target part.
        assert_eq!(e.verify_items, 2);
        assert_eq!(e.connections, Connections { peak: 8, burst: 10 });
        assert!(e.refused.is_none());
        // 1e6 / (500 x 4) = 500 s of writing, + 10 x 2 s overhead = 520 s; 2 at once: 260 s.
        assert!(close(e.load_seconds, 260.0), "{}", e.load_seconds);
        // 10 chunks x 5 connections over 260 s.
        assert!(close(e.new_connections_per_second, 50.0 / 260.0));
        // Verify: 2 x 1e6 / 1e4 = 200 s over two items, 2 at once: 100 s.
        assert!(close(e.verify_seconds, 100.0));
        // 520 s x 2 GB + 200 s x 1 GB + 60 s x 1 GB = 1,300 GB-s.
        assert!(
            close(e.lambda_gb_seconds, 1_300.0),
            "{}",
            e.lambda_gb_seconds
        );
        assert_eq!(e.lambda_requests, 10 + 2 + 33);
        assert_eq!(e.state_transitions, 100 + 10 + 2);
        assert_eq!(e.s3_gets, 40 + 10 * 5 * 2 + 4);
        assert_eq!(e.s3_puts, 10 + 2 + 1);
        let lambda = 1_300.0 * 0.000_013_333_4 + 45.0 / 1e6 * 0.20;
        assert!(close(e.cost.lambda, lambda));
        assert!(close(e.cost.step_functions, 112.0 / 1e3 * 0.025));
        assert!(close(e.cost.s3, 144.0 / 1e3 * 0.000_4 + 13.0 / 1e3 * 0.005));
        // 1e9 bytes = 0.9313 GiB x 100 DPU = 93.13 DPU x $8 / 1e6.
        let dpu = 1e9 / (1u64 << 30) as f64 * 100.0 * 8.0 / 1e6;
        assert!(close(e.cost.dsql_dpu.unwrap(), dpu));
        assert!(close(e.cost.dsql_storage_month, 0.33));
        assert!(close(
            e.cost.total,
            lambda + 112.0 / 1e3 * 0.025 + 144.0 / 1e3 * 0.000_4 + 13.0 / 1e3 * 0.005 + dpu + 0.33
        ));
    }

    #[test]
    fn refused_knobs_are_reported_in_the_estimate() {
        let knobs = Knobs {
            parallel_chunks: 500,
            ..Knobs::default()
        };
        let e = estimate(
            &Size::stated(1_000, 1_000, 1, DEFAULT_FILE_BYTES, 1),
            &knobs,
            &PRICES_US_EAST_1,
        );
        assert_eq!(e.connections.peak, 2_000);
        assert!(e.refused.unwrap().contains("2500 new DSQL connections"));
    }

    #[test]
    fn the_memory_figures_are_the_templates() {
        let template = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml"),
        )
        .unwrap();
        for (function, mb) in [
            ("LoadChunkFunction", LOAD_CHUNK_MEMORY_MB),
            ("VerifyFunction", VERIFY_MEMORY_MB),
            ("FanOutFunction", FAN_OUT_MEMORY_MB),
        ] {
            let at = template
                .find(&format!("\n  {function}:"))
                .unwrap_or_else(|| panic!("{function} is not in the template"));
            let memory = template[at..]
                .lines()
                .find_map(|l| l.trim().strip_prefix("MemorySize:"))
                .unwrap_or_else(|| panic!("{function} has no MemorySize"));
            assert_eq!(memory.trim(), mb.to_string(), "{function}");
        }
    }
}
