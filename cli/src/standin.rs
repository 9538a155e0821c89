//! `snap2dsql standin`: flags -> the stand-in's `Config`, then serve until killed.

use crate::args::StandinArgs;
use snap2dsql::error::Error;
use snap2dsql_standin::{Config, StandIn, TlsFiles};
use std::process::ExitCode;
use std::time::Duration;

fn seconds(flag: &str, s: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| Error::Usage(format!("--{flag} {s}: not a duration in seconds")))
}

fn usage(e: snap2dsql_standin::Error) -> Error {
    Error::Usage(e.to_string())
}

/// The stand-in's configuration from its flags.
pub fn config(a: StandinArgs) -> Result<Config, Error> {
    let mut c = Config::new(a.upstream);
    c.listen = a.listen;
    c.tls = match (a.tls_cert, a.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
    };
    c.limits.max_rows = a.max_rows;
    c.limits.max_bytes = a.max_bytes;
    c.limits.max_transaction_age = seconds("max-transaction-age", a.max_transaction_age)?;
    c.limits.max_connections = a.max_connections;
    c.limits.connection_rate = match a.connection_rate.as_str() {
        "off" => None,
        r => Some(r.parse().map_err(usage)?),
    };
    c.limits.max_connection_age = seconds("max-connection-age", a.max_connection_age)?;
    if !(0.0..=1.0).contains(&a.inject_conflicts) {
        return Err(Error::Usage(format!(
            "--inject-conflicts {}: a fraction from 0 to 1",
            a.inject_conflicts
        )));
    }
    c.faults.inject_conflicts = a.inject_conflicts;
    c.faults.commit_latency = Duration::from_millis(a.commit_latency_ms);
    c.unknowns.binary_copy = a.binary_copy.parse().map_err(usage)?;
    c.unknowns.copy_rows_count = !a.copy_rows_uncounted;
    c.unknowns.update_delete_rows_count = !a.update_delete_rows_uncounted;
    c.unknowns.wait_for_job_result = a.wait_for_job_result.parse().map_err(usage)?;
    c.unknowns.failed_job_status = a.failed_job_status.parse().map_err(usage)?;
    c.unknowns.min_job_duration = Duration::from_millis(a.min_job_ms);
    c.unknowns.reads_count_as_dml = a.reads_count_as_dml;
    c.lock_wait = Duration::from_millis(a.lock_wait_ms.max(1));
    c.extra_settings = a.allow_setting;
    Ok(c)
}

/// Starts the stand-in, prints the URL to connect to, serves until the process is killed.
pub async fn serve(a: StandinArgs) -> Result<ExitCode, Error> {
    let handle = StandIn::start(config(a)?).await.map_err(usage)?;
    println!("{}", handle.url("postgres"));
    handle.wait().await;
    Ok(ExitCode::SUCCESS)
}
