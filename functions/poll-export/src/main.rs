//! `poll-export` (state `PollExport`): where the export task is: status, percent, and the
//! failure cause when it failed. Called once per poll of the export loop.
//!
//! Running twice: it only reads ([`snap2dsql::pipeline::rds::poll_export`]).

use lambda_runtime::{LambdaEvent, service_fn};
use snap2dsql::pipeline::contract::{ExportStatus, StepInput};
use snap2dsql::pipeline::rds;
use snap2dsql_lambda::Failure;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    snap2dsql_lambda::init_logging();
    let client = snap2dsql_lambda::rds_client().await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<StepInput>| {
        handle(&client, event)
    }))
    .await
}

async fn handle(
    client: &aws_sdk_rds::Client,
    event: LambdaEvent<StepInput>,
) -> Result<ExportStatus, Failure> {
    Ok(rds::poll_export(client, &event.payload).await?)
}
