//! The `snap2dsql` command: the library's capabilities, run locally.
//!
//! Each subcommand parses its flags, makes library calls, prints. Errors become exit codes in
//! one place ([`main`]): 0 done, 1 the work failed (the message says what and where), 2 the
//! command line or its inputs are unusable.

mod args;
mod estimate;
mod report;
mod run;
mod standin;
mod verify;

use args::{Cli, Command};
use clap::Parser;
use snap2dsql::ddl;
use snap2dsql::error::Error;
use snap2dsql::export::Export;
use snap2dsql::mapping::Mapping;
use snap2dsql::schema::SourceSchema;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.json_logs);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            // Every message already carries its causes after `: `.
            eprintln!("error: {e}");
            match e {
                Error::Usage(_) | Error::Mapping { .. } => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SNAP2DSQL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(command: Command) -> Result<ExitCode, Error> {
    match command {
        Command::LocalExport(a) => {
            let client = snap2dsql::db::connect_source(&a.source).await?;
            let opts = snap2dsql::local_export::LocalExportOptions {
                export_id: a.export_id,
                rows_per_file: a.rows_per_file,
                rows_per_row_group: a.rows_per_row_group,
            };
            let progress = report::Progress::new("exporting");
            let summary =
                snap2dsql::local_export::local_export(&client, &a.out, &opts, &|table, rows| {
                    progress.update(table, rows)
                })
                .await?;
            progress.finish();
            report::print_local_export(&summary, &a.out);
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(a) if a.estimate.estimate => estimate::run(&a).await,
        Command::Plan(a) => {
            let Some(source) = a.export_args() else {
                return Err(Error::Usage("plan needs --export".into()));
            };
            let export = Export::open(&source.export, source.database.as_deref()).await?;
            let schema = match &source.source_schema {
                Some(s) => Some(SourceSchema::load(s).await?),
                None => None,
            };
            let plan = snap2dsql::plan::plan(&export, schema.as_ref()).await?;
            std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
            let mapping_path = a.out.join("mapping.toml");
            plan.mapping.save(&mapping_path)?;
            snap2dsql::plan::write_schema_report(&plan.report, &a.out)?;
            let header = format!(
                "snap2dsql DSQL DDL for export {}, database {}.\nRun each statement in its own transaction.",
                plan.report.export_id, plan.report.database
            );
            let ddl_path = a.out.join("ddl.sql");
            std::fs::write(
                &ddl_path,
                ddl::render(&ddl::create_statements(&plan.mapping), &header),
            )
            .map_err(|e| Error::io(&ddl_path, e))?;
            let post_path = a.out.join("ddl-post-load.sql");
            let post_header = format!(
                "{header}\nAfter the load: secondary indexes{}.\n\
                 CREATE INDEX ASYNC and ALTER TABLE ASYNC answer a job_id: wait for each with\n\
                 CALL sys.wait_for_job('<job_id>'), in autocommit, then check that its row in\n\
                 sys.jobs has status completed and NULL details (a failed job also ends completed).",
                if plan.mapping.migration.foreign_keys {
                    ", foreign keys"
                } else {
                    ""
                },
            );
            std::fs::write(
                &post_path,
                ddl::render(&ddl::post_load_statements(&plan.mapping), &post_header),
            )
            .map_err(|e| Error::io(&post_path, e))?;
            if a.json {
                report::print_json(&plan.report);
            } else {
                report::print_plan(&plan.report, &a.out);
            }
            // Written first so it can be edited; refused now if DSQL would refuse it.
            plan.mapping.validate(&mapping_path.display().to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(a) => run::run(a, true).await,
        Command::Load(a) => run::run(a, false).await,
        Command::Status(a) => run::status(a).await,
        Command::Verify(a) => verify::verify(a).await,
        Command::Standin(a) => standin::serve(a).await,
        Command::Key(a) => {
            let mapping = Mapping::load(&a.mapping)?;
            let table = mapping.table(&a.table).ok_or_else(|| {
                Error::Usage(format!(
                    "table {:?} is not in {}",
                    a.table,
                    a.mapping.display()
                ))
            })?;
            if table.key_column().is_none() {
                return Err(Error::Usage(format!(
                    "table {} has no rewritten key in {}: its keys are kept as they are",
                    a.table,
                    a.mapping.display()
                )));
            }
            println!(
                "{}",
                snap2dsql::keys::new_key(mapping.migration.namespace, &a.table, a.old)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
