//! `verify`: every row of the export, after the mapping, against the target; with `--source`,
//! the target against the live source, differences classified by the export.

use crate::args::VerifyArgs;
use crate::run::loaded_mapping;
use snap2dsql::error::{Error, Result};
use snap2dsql::export::Export;
use snap2dsql::target::Target;
use std::process::ExitCode;
use std::sync::Arc;

/// Runs the library's verification, prints the summary, writes the JSON report; exit 0 only
/// when every table matches.
pub async fn verify(a: VerifyArgs) -> Result<ExitCode> {
    let export = Export::open(&a.export.export, a.export.database.as_deref()).await?;
    let target = Target::parse(&a.target).await?;
    let mapping = loaded_mapping(&a.export, &a.mapping, &export, &target).await?;
    let options = snap2dsql::verify::VerifyOptions {
        tables: a.tables.clone(),
        max_listed: a.max_listed,
        ..Default::default()
    };
    let progress = crate::report::Progress::new("verified");
    let report = match &a.source {
        Some(url) => {
            snap2dsql::verify::source::verify_source(
                Arc::new(export),
                Arc::new(mapping),
                &target,
                url,
                &options,
            )
            .await?
        }
        None => {
            snap2dsql::verify::verify(
                Arc::new(export),
                Arc::new(mapping),
                &target,
                &options,
                &|table, rows| progress.update(table, rows),
            )
            .await?
        }
    };
    progress.finish();
    crate::report::print_verify(&report);
    if let Some(path) = &a.report {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::Usage(format!("cannot write the report: {e}")))?;
        std::fs::write(path, json).map_err(|e| Error::io(path, e))?;
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
