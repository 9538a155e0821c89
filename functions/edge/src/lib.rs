//! The edge every function shares: JSON logs, AWS clients built once per cold start, and the one
//! place a step's failure becomes Lambda's error response.
//!
//! The library decides what a failure is ([`snap2dsql::pipeline::failure`]); here it only
//! becomes a [`Diagnostic`] whose `error_type` is that failure's fixed name, which the state
//! machine's Retry and Catch match.

use lambda_runtime::Diagnostic;
use snap2dsql::pipeline::StepError;

/// A step's failure on its way out of the function.
#[derive(Debug)]
pub struct Failure(pub StepError);

impl From<StepError> for Failure {
    fn from(e: StepError) -> Self {
        Failure(e)
    }
}

impl From<snap2dsql::Error> for Failure {
    fn from(e: snap2dsql::Error) -> Self {
        Failure(e.into())
    }
}

impl From<Failure> for Diagnostic {
    fn from(f: Failure) -> Diagnostic {
        tracing::error!(error_type = f.0.error_type, message = %f.0.message, "step failed");
        Diagnostic {
            error_type: f.0.error_type.into(),
            error_message: f.0.message,
        }
    }
}

/// Logging as Lambda expects it: JSON lines when the function's log format is JSON
/// (`AWS_LAMBDA_LOG_FORMAT`), level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`.
pub fn init_logging() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// The shared AWS configuration (region, credentials, `AWS_ENDPOINT_URL` for the emulator).
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_from_env().await
}

/// An RDS client (feature `rds`: the snapshot and poll-export functions).
#[cfg(feature = "rds")]
pub async fn rds_client() -> aws_sdk_rds::Client {
    aws_sdk_rds::Client::new(&aws_config().await)
}

/// An S3 client (path-style addressing against an emulator endpoint).
pub async fn s3_client() -> aws_sdk_s3::Client {
    snap2dsql::store::s3_client().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use snap2dsql::pipeline::failure;

    #[test]
    fn failures_keep_their_fixed_error_type() {
        for t in failure::ALL {
            let d: Diagnostic = Failure(StepError::new(t, "what went wrong")).into();
            assert_eq!(d.error_type, t);
            assert_eq!(d.error_message, "what went wrong");
        }
        let d: Diagnostic = Failure::from(snap2dsql::Error::Usage("bad input".into())).into();
        assert_eq!(d.error_type, failure::FATAL);
    }
}
