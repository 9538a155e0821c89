//! `run`, `load` and `status`: library calls in order, with progress and a summary.

use crate::args::{ExportArgs, RunArgs, StatusArgs};
use crate::report::TableBars;
use snap2dsql::error::{Error, Result};
use snap2dsql::export::Export;
use snap2dsql::load::LoadOptions;
use snap2dsql::load::format::{FormatReport, LoadFormat};
use snap2dsql::mapping::Mapping;
use snap2dsql::migrate;
use snap2dsql::schema::SourceSchema;
use snap2dsql::target::{Target, TargetOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The given mapping, or a fresh plan of the export.
pub(crate) async fn mapping_for(
    args: &ExportArgs,
    mapping: &Option<PathBuf>,
    export: &Export,
) -> Result<Mapping> {
    match mapping {
        Some(path) => Mapping::load(path),
        None => {
            let schema = match &args.source_schema {
                Some(s) => Some(SourceSchema::load(s).await?),
                None => None,
            };
            let plan = snap2dsql::plan::plan(export, schema.as_ref()).await?;
            for g in &plan.report.guesses {
                eprintln!("guess: {g}");
            }
            for w in &plan.report.warnings {
                eprintln!("warning: {w}");
            }
            plan.mapping.validate("planned mapping")?;
            Ok(plan.mapping)
        }
    }
}

/// The mapping of a migration already loaded (for `verify` and `status`): the given one, else
/// the one the load recorded in the target, else a fresh plan; refused when the target's tables
/// do not match it.
pub(crate) async fn loaded_mapping(
    args: &ExportArgs,
    mapping: &Option<PathBuf>,
    export: &Export,
    target: &Target,
) -> Result<Mapping> {
    let (m, hint) = match mapping {
        Some(path) => (
            Mapping::load(path)?,
            format!(
                "{} is not the mapping the load used (without --mapping, the mapping the load recorded in the target is used)",
                path.display()
            ),
        ),
        None => match snap2dsql::record::recorded(target, None).await? {
            Some(r) => {
                eprintln!(
                    "mapping: the one migration {} recorded in the target (sha1 {})",
                    r.migration, r.sha1
                );
                (
                    r.mapping,
                    "the target changed since the load recorded this mapping".to_string(),
                )
            }
            None => {
                eprintln!("mapping: none recorded in the target; planning the export now");
                (
                    mapping_for(args, &None, export).await?,
                    "the target was not loaded with the mapping planned now: pass the mapping the load used with --mapping".to_string(),
                )
            }
        },
    };
    snap2dsql::record::check(target, &m, &hint).await?;
    Ok(m)
}

/// The JSON summary of a run (`--report`).
#[derive(serde::Serialize)]
struct RunReport {
    export_id: String,
    migration: String,
    target: String,
    seconds: f64,
    rows_per_second: f64,
    chunks: usize,
    /// How the rows were sent, and why earlier formats were left.
    load_format: FormatReport,
    tables: Vec<migrate::TableResult>,
    orphans: Vec<snap2dsql::load::orphans::OrphanReport>,
    post_load_statements: usize,
    /// Row-level verification (`run` only; `load` counts rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<snap2dsql::verify::VerifyReport>,
    ok: bool,
}

/// A whole number of seconds from a flag, above zero.
fn seconds(flag: &str, value: u64) -> Result<Duration> {
    if value == 0 {
        return Err(Error::Usage(format!("--{flag} must be at least 1 second")));
    }
    Ok(Duration::from_secs(value))
}

pub async fn run(a: RunArgs, full: bool) -> Result<ExitCode> {
    let started = Instant::now();
    let options = LoadOptions {
        batch_rows: a.batch_rows,
        batch_bytes: a.batch_bytes,
        connections: a.concurrency,
        max_attempts: a.max_attempts,
        first_format: a.load_format.parse::<LoadFormat>()?,
        statement_timeout: seconds("statement-timeout", a.statement_timeout)?,
        commit_timeout: seconds("commit-timeout", a.commit_timeout)?,
        connection_max_age: seconds("connection-max-age", a.connection_max_age)?,
        ..LoadOptions::default()
    };
    options.validate()?;
    let target_options = TargetOptions {
        connect_timeout: seconds("connect-timeout", a.connect_timeout)?,
        ..TargetOptions::default()
    };
    let export = Export::open(&a.export.export, a.export.database.as_deref()).await?;
    let mapping = mapping_for(&a.export, &a.mapping, &export).await?;
    let target = Target::parse_with(&a.target, target_options).await?;
    let run_options = migrate::RunOptions {
        create_tables: a.create_tables,
        chunk_rows: Some(a.chunk_rows),
        parallel_chunks: a.parallel_chunks,
        full,
    };
    let observer = Progress::default();
    let done = migrate::run(export, mapping, target, options, &run_options, &observer).await?;
    let (ctx, chunks, outcomes, verified) = (done.ctx, done.chunks, done.outcomes, done.verified);
    let (load_seconds, post_load) = (done.load_seconds, done.post_load_statements);
    let orphan_reports = done.orphan_reports;
    let written: u64 = outcomes.iter().map(|o| o.rows_written).sum();
    let load_format = ctx.format.report(written > 0);
    let counts = match &verified {
        Some(v) => v
            .tables
            .iter()
            .map(|t| (t.source.clone(), t.rows_in_target))
            .collect(),
        None => migrate::count_target(&ctx.target, &ctx.mapping).await?,
    };
    let mut tables = migrate::summarise(&ctx.mapping, &chunks, &outcomes, &counts);
    if let Some(v) = &verified {
        for t in &mut tables {
            if let Some(vt) = v.table(&t.source) {
                t.status = vt.status.to_string();
            }
        }
    }
    let ok = tables
        .iter()
        .all(|t| t.status == "ok" || t.status == "match");
    crate::report::print_run(&tables, load_seconds, written, &load_format, full);
    if let Some(v) = &verified {
        crate::report::print_verify(v);
    }
    let report = RunReport {
        export_id: ctx.export.info.export_task_identifier.clone(),
        migration: ctx.mapping.migration.id.clone(),
        target: ctx.target.display().to_string(),
        seconds: started.elapsed().as_secs_f64(),
        rows_per_second: if load_seconds > 0.0 {
            written as f64 / load_seconds
        } else {
            0.0
        },
        chunks: chunks.len(),
        load_format,
        tables,
        orphans: orphan_reports,
        post_load_statements: post_load,
        verify: verified,
        ok,
    };
    if let Some(path) = &a.report {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::Usage(format!("cannot write the report: {e}")))?;
        std::fs::write(path, json).map_err(|e| Error::io(path, e))?;
    }
    if ok {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: some tables do not match the export (see the tables above)");
        Ok(ExitCode::from(1))
    }
}

/// The CLI's view of [`migrate::run`]: orphan messages once planned, a bar per table.
#[derive(Default)]
struct Progress {
    bars: std::sync::OnceLock<TableBars>,
}

impl migrate::Observer for Progress {
    fn planned(&self, mapping: &Mapping, planned: &migrate::Planned) {
        for r in &planned.orphan_reports {
            eprintln!(
                "orphans: {} rows of {}.{} reference a missing {} row: loaded per on_orphan = {:?}",
                r.count, r.table, r.column, r.parent, r.on_orphan
            );
            for e in &r.examples {
                eprintln!("  {e}");
            }
        }
        let _ = self.bars.set(TableBars::new(mapping, &planned.chunks));
    }

    fn rows(&self, table: &str, rows: u64) {
        if let Some(b) = self.bars.get() {
            b.add(table, rows);
        }
    }

    fn loaded(&self) {
        if let Some(b) = self.bars.get() {
            b.finish();
        }
    }
}

pub async fn status(a: StatusArgs) -> Result<ExitCode> {
    let export = Export::open(&a.export.export, a.export.database.as_deref()).await?;
    let target = Target::parse(&a.target).await?;
    let mapping = loaded_mapping(&a.export, &a.mapping, &export, &target).await?;
    let chunks = snap2dsql::chunk::plan_chunks(&export, &mapping).await?;
    let done = snap2dsql::load::ledger::progress(&target, &mapping.migration.id).await?;
    println!(
        "{:<36} {:>12} {:>12} {:>7} {:>13} {:>8}",
        "table", "rows", "loaded", "%", "chunks", "batches"
    );
    let mut complete = true;
    for t in &mapping.tables {
        let expected: u64 = chunks
            .iter()
            .filter(|c| c.table == t.source)
            .map(|c| c.rows)
            .sum();
        let n_chunks = chunks.iter().filter(|c| c.table == t.source).count();
        let p = done.get(&t.source).cloned().unwrap_or_default();
        let (chunks_started, batches, loaded) = (p.chunks, p.batches, p.rows);
        let pct = if expected == 0 {
            100.0
        } else {
            loaded as f64 * 100.0 / expected as f64
        };
        complete &= loaded == expected;
        println!(
            "{:<36} {:>12} {:>12} {:>6.1}% {:>6}/{:<6} {:>8}",
            t.source, expected, loaded, pct, chunks_started, n_chunks, batches
        );
    }
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
