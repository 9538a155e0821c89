//! `load-chunk` (state `LoadChunk`, inside the Distributed Map `LoadChunks`): load one chunk
//! into the target exactly once, inside DSQL's limits.
//!
//! Prints one CloudWatch EMF line per chunk ([`snap2dsql::pipeline::metrics`]), also when the
//! chunk stops with an error after it began writing (the figures up to the stop).
//!
//! Running twice: the target's ledger records every committed batch, so a Retry or a redrive
//! writes only what is missing ([`snap2dsql::pipeline::steps::load_chunk`]).

use lambda_runtime::{LambdaEvent, service_fn};
use snap2dsql::load;
use snap2dsql::pipeline::contract::{ChunkItem, ChunkResult};
use snap2dsql::pipeline::{Config, metrics, steps};
use snap2dsql::target::Target;
use snap2dsql_lambda::Failure;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    snap2dsql_lambda::init_logging();
    let config = Config::from_env()?;
    let s3 = snap2dsql_lambda::s3_client().await;
    let target = config.target().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<ChunkItem>| {
        handle(&s3, &target, &config, event)
    }))
    .await
}

async fn handle(
    s3: &aws_sdk_s3::Client,
    target: &Target,
    config: &Config,
    event: LambdaEvent<ChunkItem>,
) -> Result<ChunkResult, Failure> {
    // Boxed: the step's future is deep, and the scope around it would nest it further.
    let step = Box::pin(steps::load_chunk(s3, target, &config.load, &event.payload));
    let (result, stopped) = load::with_stopped_figures(step).await;
    match result {
        Ok(outcome) => {
            metrics::emit_chunk(&outcome);
            Ok(outcome)
        }
        Err(e) => {
            if let Some(figures) = stopped {
                metrics::emit_stopped_chunk(&figures, e.error_type);
            }
            Err(e.into())
        }
    }
}
