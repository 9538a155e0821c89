//! `snapshot` (state `Snapshot`): snapshot the source cluster, or take the given snapshot, and
//! once it is available start its export to S3. Called once per poll of the snapshot loop.
//!
//! Running twice: the snapshot and the export task are named after the execution, so a rerun
//! finds them ([`snap2dsql::pipeline::rds::snapshot_step`]).

use lambda_runtime::{LambdaEvent, service_fn};
use snap2dsql::pipeline::contract::{SnapshotStatus, StepInput};
use snap2dsql::pipeline::{Config, rds};
use snap2dsql_lambda::Failure;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    snap2dsql_lambda::init_logging();
    let config = Config::from_env()?;
    let client = snap2dsql_lambda::rds_client().await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<StepInput>| {
        handle(&client, &config, event)
    }))
    .await
}

async fn handle(
    client: &aws_sdk_rds::Client,
    config: &Config,
    event: LambdaEvent<StepInput>,
) -> Result<SnapshotStatus, Failure> {
    Ok(rds::snapshot_step(client, config, &event.payload).await?)
}
