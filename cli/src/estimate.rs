//! `plan --estimate`: sizes the migration (from an export's footers, or stated) and prints what
//! the library's [`snap2dsql::estimate`] makes of it. Exit 2 when the knobs are past DSQL's
//! connection limits.

use crate::args::PlanArgs;
use snap2dsql::error::{Error, Result};
use snap2dsql::estimate::{Estimate, Knobs, PRICES_US_EAST_1, Size};
use snap2dsql::export::Export;
use std::process::ExitCode;

pub async fn run(a: &PlanArgs) -> Result<ExitCode> {
    let e = &a.estimate;
    let size = match (a.export_args(), e.rows, e.bytes) {
        (_, Some(rows), Some(bytes)) => {
            Size::stated(rows, bytes, e.tables, e.file_mib.max(1) << 20, e.columns)
        }
        (Some(source), _, _) => {
            let export = Export::open(&source.export, source.database.as_deref()).await?;
            let schema = match &source.source_schema {
                Some(s) => Some(snap2dsql::schema::SourceSchema::load(s).await?),
                None => None,
            };
            let plan = snap2dsql::plan::plan(&export, schema.as_ref()).await?;
            let chunks = snap2dsql::chunk::plan_chunks(&export, &plan.mapping).await?;
            let mapped: Vec<_> = plan
                .mapping
                .tables
                .iter()
                .filter_map(|t| export.table(&t.source))
                .collect();
            Size::of_chunks(
                &chunks,
                mapped.len() as u64,
                mapped
                    .iter()
                    .flat_map(|t| t.files.iter().map(|f| f.size))
                    .sum(),
                mapped
                    .iter()
                    .map(|t| t.columns.len() as u64)
                    .max()
                    .unwrap_or(0),
            )
        }
        _ => {
            return Err(Error::Usage(
                "plan --estimate needs --export, or a stated size: --rows and --bytes".into(),
            ));
        }
    };
    let knobs = Knobs {
        parallel_chunks: e.parallel_chunks,
        connections: e.connections,
        rows_per_connection_second: e.rows_per_connection_second,
        dpu_per_gib: e.dpu_per_gib,
    };
    if knobs.parallel_chunks == 0 || knobs.connections == 0 {
        return Err(Error::Usage(
            "--parallel-chunks and --connections must be at least 1".into(),
        ));
    }
    if knobs.rows_per_connection_second.is_nan() || knobs.rows_per_connection_second <= 0.0 {
        return Err(Error::Usage(
            "--rows-per-connection-second must be above 0".into(),
        ));
    }
    let estimate = snap2dsql::estimate::estimate(&size, &knobs, &PRICES_US_EAST_1);
    if a.json {
        crate::report::print_json(&estimate);
    } else {
        print(&estimate);
    }
    match estimate.refused {
        Some(why) => Err(Error::Usage(why)),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// `12345678` -> `12,345,678`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3_600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3_600, s % 3_600 / 60),
    }
}

fn print(e: &Estimate) {
    use snap2dsql::chunk::{CHUNK_MAX_BYTES, CHUNK_MAX_ROWS};
    use snap2dsql::estimate as est;
    let s = &e.size;
    let k = &e.knobs;
    let p = &e.prices;
    let source = if s.chunks.is_some() {
        "planned from the export's footers".to_string()
    } else {
        format!(
            "stated; part files of about {} MiB and {} columns a table assumed",
            s.bytes.div_ceil(s.files.max(1)).div_ceil(1 << 20),
            s.columns
        )
    };
    println!(
        "Estimate: {} rows, {:.2} GB in {} tables, {} part files ({source})",
        thousands(s.rows),
        s.bytes as f64 / 1e9,
        s.tables,
        thousands(s.files)
    );
    println!();
    println!("Work items");
    println!(
        "  chunks (load-chunk items)   {:>14}   at most {} rows / {} MiB each, never across part files",
        thousands(e.chunks),
        thousands(CHUNK_MAX_ROWS),
        CHUNK_MAX_BYTES >> 20
    );
    println!(
        "  verify items                {:>14}   {} rows each, export side and target side, at least two a table",
        thousands(e.verify_items),
        thousands(est::VERIFY_ITEM_ROWS)
    );
    println!();
    println!(
        "DSQL connections ({} chunks at once x {} connections)",
        k.parallel_chunks, k.connections
    );
    println!(
        "  open at the peak            {:>14}   limit {}",
        thousands(e.connections.peak),
        thousands(est::DSQL_MAX_CONNECTIONS)
    );
    println!(
        "  new when the load starts    {:>14}   burst {}",
        thousands(e.connections.burst),
        thousands(est::DSQL_NEW_CONNECTION_BURST)
    );
    println!(
        "  new per second, on average  {:>14.1}   limit {} a second",
        e.new_connections_per_second,
        est::DSQL_NEW_CONNECTIONS_PER_SECOND
    );
    println!();
    println!(
        "Duration at {} rows/s a connection (verify at {} rows/s an item)",
        thousands(k.rows_per_connection_second.round() as u64),
        thousands(est::VERIFY_ROWS_PER_SECOND as u64)
    );
    println!(
        "  load                        {:>14}",
        duration(e.load_seconds)
    );
    println!(
        "  verify                      {:>14}",
        duration(e.verify_seconds)
    );
    println!();
    println!("AWS usage");
    println!(
        "  Lambda GB-seconds           {:>14}   load-chunk {} MB, verify {} MB, fan-out {} MB",
        thousands(e.lambda_gb_seconds.round() as u64),
        est::LOAD_CHUNK_MEMORY_MB,
        est::VERIFY_MEMORY_MB,
        est::FAN_OUT_MEMORY_MB
    );
    println!(
        "  Lambda requests             {:>14}",
        thousands(e.lambda_requests)
    );
    println!(
        "  state transitions           {:>14}   Standard workflow",
        thousands(e.state_transitions)
    );
    println!(
        "  S3 GET / PUT                {:>14}   / {}",
        thousands(e.s3_gets),
        thousands(e.s3_puts)
    );
    println!();
    println!("Cost, US East (N. Virginia) list prices");
    println!(
        "  Lambda                      {:>14.2} $   ${} per GB-s (Arm), ${:.2} per 1M requests",
        e.cost.lambda, p.lambda_gb_second_arm, p.lambda_per_million_requests
    );
    println!(
        "  Step Functions              {:>14.2} $   ${} per 1,000 state transitions",
        e.cost.step_functions, p.sfn_per_thousand_transitions
    );
    println!(
        "  S3 requests                 {:>14.2} $   ${} per 1,000 GET, ${} per 1,000 PUT",
        e.cost.s3, p.s3_get_per_thousand, p.s3_put_per_thousand
    );
    match e.cost.dsql_dpu {
        Some(d) => println!(
            "  DSQL DPUs                   {:>14.2} $   ${:.2} per 1M DPU, {} DPU per GiB (stated)",
            d,
            p.dsql_per_million_dpu,
            k.dpu_per_gib.unwrap_or_default()
        ),
        None => println!(
            "  DSQL DPUs                   {:>14}     ${:.2} per 1M DPU; not estimated: give --dpu-per-gib",
            "-", p.dsql_per_million_dpu
        ),
    }
    println!(
        "  DSQL storage, a month       {:>14.2} $   ${:.2} per GB-month, at the export's size",
        e.cost.dsql_storage_month, p.dsql_storage_gb_month
    );
    println!(
        "  total                       {:>14.2} $   {}",
        e.cost.total,
        if e.cost.dsql_dpu.is_some() {
            "the first month's storage included"
        } else {
            "the first month's storage included, DPUs not"
        }
    );
    println!();
    println!("Prices:");
    for source in p.sources {
        println!("  {source}");
    }
    if e.new_connections_per_second > est::DSQL_NEW_CONNECTIONS_PER_SECOND as f64 {
        println!();
        println!(
            "Warning: chunks this short open {:.0} new connections a second, past DSQL's {}: expect 53400 answers and retries (fewer chunks at once, or fewer connections each)",
            e.new_connections_per_second,
            est::DSQL_NEW_CONNECTIONS_PER_SECOND
        );
    }
    if let Some(why) = &e.refused {
        println!();
        println!("Refused: {why}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_with_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(10_000_000_000), "10,000,000,000");
        assert_eq!(duration(59.4), "59 s");
        assert_eq!(duration(61.0), "1 min 1 s");
        assert_eq!(duration(7_260.0), "2 h 1 min");
    }
}
