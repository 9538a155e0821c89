//! `verify`: the steps after the load, chosen by the request's `step`
//! ([`snap2dsql::pipeline::contract::VerifyRequest`]):
//! - `build_indexes` (state `BuildIndexes`) and `poll_indexes` (`PollIndexes`): the post-load
//!   jobs as a poll loop on `sys.jobs`;
//! - `plan_verify` (`PlanVerify`): the verify item list in S3;
//! - `verify_part` (`VerifyPart`, inside the Distributed Map `VerifyParts`): one item's
//!   aggregates, written to S3;
//! - `verify` (`Verify`): the parts combined into the report in S3; any difference fails with
//!   `Snap2dsql.VerifyMismatch` naming the rows.
//!
//! The combining step prints CloudWatch EMF lines per table, mismatch or not
//! ([`snap2dsql::pipeline::metrics`]).
//!
//! Running twice: each step says what it does ([`snap2dsql::pipeline::finish`]).

use lambda_runtime::{LambdaEvent, service_fn};
use snap2dsql::pipeline::contract::{VerifyRequest, VerifyResponse};
use snap2dsql::pipeline::{Config, finish};
use snap2dsql::target::Target;
use snap2dsql_lambda::Failure;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    snap2dsql_lambda::init_logging();
    let config = Config::from_env()?;
    let s3 = snap2dsql_lambda::s3_client().await;
    let target = config.target().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<VerifyRequest>| {
        handle(&s3, &target, event)
    }))
    .await
}

async fn handle(
    s3: &aws_sdk_s3::Client,
    target: &Target,
    event: LambdaEvent<VerifyRequest>,
) -> Result<VerifyResponse, Failure> {
    Ok(match &event.payload {
        VerifyRequest::BuildIndexes(input) => {
            VerifyResponse::PostLoad(finish::build_indexes(s3, target, input).await?)
        }
        VerifyRequest::PollIndexes(input) => {
            VerifyResponse::PostLoad(finish::poll_indexes(s3, target, input).await?)
        }
        VerifyRequest::PlanVerify(input) => {
            VerifyResponse::Plan(finish::plan_verify(s3, target, input).await?)
        }
        VerifyRequest::VerifyPart(input) => {
            VerifyResponse::Part(finish::verify_part(s3, target, input).await?)
        }
        VerifyRequest::Verify(input) => {
            VerifyResponse::Verified(finish::verify(s3, target, input).await?)
        }
    })
}
