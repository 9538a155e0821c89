//! `fan-out` (state `FanOut`): plan the chunks of the completed export, write them to S3 as the
//! Distributed Map's item list, create the target tables, and return counts and the list's key.
//!
//! Running twice: the same objects are written again with the same content, and the DDL is
//! `IF NOT EXISTS` ([`snap2dsql::pipeline::steps::fan_out`]).

use lambda_runtime::{LambdaEvent, service_fn};
use snap2dsql::pipeline::contract::{FanOutResult, StepInput};
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
        handle(&s3, &target, &config, event)
    }))
    .await
}

async fn handle(
    s3: &aws_sdk_s3::Client,
    target: &Target,
    config: &Config,
    event: LambdaEvent<StepInput>,
) -> Result<FanOutResult, Failure> {
    Ok(steps::fan_out(s3, target, config, &event.payload).await?)
}
