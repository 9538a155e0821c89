//! The failures a step reports to the state machine: a small fixed set of error types.
//!
//! Each function returns a [`StepError`]; the function crates turn it into Lambda's error
//! response (`errorType`, `errorMessage`) at the edge. The state machine matches these names in
//! Retry and Catch (`statemachine/migrate.asl.json`), so they are constants here and a test
//! checks that the ASL names exactly these.

use crate::error::Error;

/// Sending the same work again may succeed: a conflict, a dropped connection, throttling. The
/// load step is exactly-once, so the state machine retries it with backoff.
pub const RETRYABLE: &str = "Snap2dsql.Retryable";
/// Retrying cannot help: bad input, bad data, a permission, a bug. The message says what.
pub const FATAL: &str = "Snap2dsql.Fatal";
/// The export task failed or was canceled; the message carries RDS's failure cause.
pub const EXPORT_FAILED: &str = "Snap2dsql.ExportFailed";
/// The snapshot or the export did not finish before the execution's deadline.
pub const DEADLINE_EXCEEDED: &str = "Snap2dsql.DeadlineExceeded";
/// Row-level verification found differences; the message names them and the report.
pub const VERIFY_MISMATCH: &str = "Snap2dsql.VerifyMismatch";

/// Every error type a function can report.
pub const ALL: [&str; 5] = [
    RETRYABLE,
    FATAL,
    EXPORT_FAILED,
    DEADLINE_EXCEEDED,
    VERIFY_MISMATCH,
];

/// A step's failure: one of the error types above and a message that names the thing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct StepError {
    pub error_type: &'static str,
    pub message: String,
}

impl StepError {
    pub fn fatal(message: impl Into<String>) -> Self {
        StepError {
            error_type: FATAL,
            message: message.into(),
        }
    }

    pub fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        StepError {
            error_type,
            message: message.into(),
        }
    }

    /// True when the state machine retries this error.
    pub fn is_retryable(&self) -> bool {
        self.error_type == RETRYABLE
    }
}

/// A library error is retryable exactly when its class says so (decided by SQLSTATE). An S3
/// call refused with AccessDenied also names the IAM permission the function's role lacks.
impl From<Error> for StepError {
    fn from(e: Error) -> Self {
        let error_type = if e.is_retryable() { RETRYABLE } else { FATAL };
        let mut message = e.to_string();
        if let Some(needed) = missing_permission(&e) {
            message.push_str(&format!(" (the function's role needs {needed})"));
        }
        StepError {
            error_type,
            message,
        }
    }
}

/// The IAM action and resource an S3 call needs, when the call was refused with AccessDenied.
pub fn missing_permission(e: &Error) -> Option<String> {
    let Error::S3 {
        operation,
        bucket,
        key,
        reason,
    } = e
    else {
        return None;
    };
    if !reason.contains("AccessDenied") {
        return None;
    }
    Some(match *operation {
        "ListObjectsV2" => format!("s3:ListBucket on arn:aws:s3:::{bucket}"),
        "PutObject" => format!("s3:PutObject on arn:aws:s3:::{bucket}/{key}"),
        _ => format!("s3:GetObject on arn:aws:s3:::{bucket}/{key}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;

    fn batch(class: ErrorClass) -> Error {
        Error::Batch {
            chunk: "public.orders/f.parquet#0-1".into(),
            range: "rows 0..2500".into(),
            table: "public.orders".into(),
            why: "retries exhausted".into(),
            class,
            source: Box::new(Error::Usage("server said no".into())),
        }
    }

    #[test]
    fn library_errors_map_to_retryable_or_fatal_by_class() {
        for class in [
            ErrorClass::Conflict,
            ErrorClass::Connection,
            ErrorClass::Throttled,
            ErrorClass::Expired,
        ] {
            let e = StepError::from(batch(class));
            assert_eq!(e.error_type, RETRYABLE, "{class:?}");
            assert!(e.message.contains("rows 0..2500"), "{}", e.message);
        }
        for class in [ErrorClass::TooBig, ErrorClass::Data, ErrorClass::Fatal] {
            assert_eq!(StepError::from(batch(class)).error_type, FATAL, "{class:?}");
        }
        let e = StepError::from(Error::Usage("bad knob".into()));
        assert_eq!((e.error_type, e.message.as_str()), (FATAL, "bad knob"));
    }

    #[test]
    fn an_s3_access_denied_names_the_permission() {
        let e = StepError::from(Error::S3 {
            operation: "ListObjectsV2",
            bucket: "b".into(),
            key: "exports/x/".into(),
            reason: "service error: AccessDenied: Access Denied".into(),
        });
        assert!(
            e.message
                .ends_with("(the function's role needs s3:ListBucket on arn:aws:s3:::b)"),
            "{}",
            e.message
        );
        let other = StepError::from(Error::S3 {
            operation: "GetObject",
            bucket: "b".into(),
            key: "k".into(),
            reason: "NoSuchKey".into(),
        });
        assert!(!other.message.contains("needs"), "{}", other.message);
    }

    #[test]
    fn the_state_machine_names_exactly_these_error_types() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../statemachine/migrate.asl.json");
        let asl = std::fs::read_to_string(&path).unwrap();
        let used: std::collections::BTreeSet<&str> = asl
            .match_indices("\"Snap2dsql.")
            .map(|(i, _)| {
                let rest = &asl[i + 1..];
                &rest[..rest.find('"').unwrap()]
            })
            .collect();
        let ours: std::collections::BTreeSet<&str> = ALL.into_iter().collect();
        assert!(
            used.is_subset(&ours),
            "the ASL names error types no function raises: {:?}",
            used.difference(&ours).collect::<Vec<_>>()
        );
        assert!(used.contains(RETRYABLE), "LoadChunk must retry {RETRYABLE}");
    }
}
