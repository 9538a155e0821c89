//! `verify` (state `Verify`): build the post-load indexes, verify every row of the target
//! against the export, write the JSON report to S3, and fail with `Snap2dsql.VerifyMismatch`
//! naming the differences when anything differs.
//!
//! Prints CloudWatch EMF lines per table, mismatch or not ([`snap2dsql::pipeline::metrics`]).
//!
//! Running twice: indexes are `IF NOT EXISTS` and the report is rewritten
//! ([`snap2dsql::pipeline::steps::verify`]).

use lambda_runtime::{LambdaEvent, service_fn};
use snap2dsql::pipeline::contract::{StepInput, VerifyResult};
use snap2dsql::pipeline::{Config, steps};
use snap2dsql::target::Target;
use snap2dsql_lambda::Failure;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    snap2dsql_lambda::init_logging();
    let config = Config::from_env()?;
    let s3 = snap2dsql_lambda::s3_client().await;
    let target = config.target().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<StepInput>| {
        handle(&s3, &target, event)
    }))
    .await
}

async fn handle(
    s3: &aws_sdk_s3::Client,
    target: &Target,
    event: LambdaEvent<StepInput>,
) -> Result<VerifyResult, Failure> {
    Ok(steps::verify(s3, target, &event.payload).await?)
}
