//! Each function's settings, from its environment, read once at cold start (the SAM template
//! sets them; the end-to-end test sets local values).
//!
//! | variable | used by | meaning |
//! |---|---|---|
//! | `EXPORT_BUCKET` | snapshot, fan-out, verify | the export bucket; run objects go under `runs/` |
//! | `EXPORT_PREFIX` | snapshot | key prefix of new exports (default `exports`) |
//! | `EXPORT_ROLE_ARN` | snapshot | the role RDS assumes to write the export |
//! | `EXPORT_KMS_KEY_ARN` | snapshot | the KMS key the export is encrypted with |
//! | `SOURCE_CLUSTER_ID` | snapshot | the cluster to snapshot when the input names none |
//! | `MAPPING_KEY` | fan-out | default key of mapping.toml in the bucket |
//! | `TARGET_URL` | fan-out, load-chunk, verify | `postgres://admin@<id>.dsql.<region>.on.aws/postgres` |
//! | `LOAD_CONNECTIONS` | load-chunk | writer connections per chunk (default 4) |
//! | `LOAD_MAX_ATTEMPTS` | load-chunk | attempts per batch inside one invocation (default 16) |
//! | `METRICS_NAMESPACE` | load-chunk, verify | CloudWatch namespace of the EMF metrics (default `snap2dsql`; not `AWS/...`; read by [`super::metrics::namespace`]) |

use super::failure::StepError;
use super::metrics;
use crate::load::{DEFAULT_CONNECTIONS, DEFAULT_MAX_ATTEMPTS, LoadOptions};
use crate::target::TargetOptions;

/// Default key prefix of exports the pipeline starts.
pub const DEFAULT_EXPORT_PREFIX: &str = "exports";
/// Default key of the mapping object in the export bucket.
pub const DEFAULT_MAPPING_KEY: &str = "mapping.toml";

/// The settings of one function: what its environment gives.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub export_bucket: Option<String>,
    pub export_prefix: String,
    pub export_role_arn: Option<String>,
    pub export_kms_key_arn: Option<String>,
    pub source_cluster_id: Option<String>,
    pub mapping_key: String,
    /// Never logged as is: it may carry a password (plain PostgreSQL targets).
    pub target_url: Option<String>,
    /// How to connect to the target.
    pub target: TargetOptions,
    pub load: LoadOptions,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, StepError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, StepError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let number = |k: &str, default: u64| -> Result<u64, StepError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| {
                    StepError::fatal(format!("{k}={v:?} is not a positive whole number"))
                }),
            }
        };
        let load = LoadOptions {
            connections: number("LOAD_CONNECTIONS", DEFAULT_CONNECTIONS as u64)? as usize,
            max_attempts: number("LOAD_MAX_ATTEMPTS", u64::from(DEFAULT_MAX_ATTEMPTS))? as u32,
            ..LoadOptions::default()
        };
        load.validate()?;
        if load.max_attempts == 0 {
            return Err(StepError::fatal("LOAD_MAX_ATTEMPTS must be at least 1"));
        }
        if let Some(ns) = get(metrics::NAMESPACE_VAR) {
            metrics::check_namespace(&ns)
                .map_err(|why| StepError::fatal(format!("{}: {why}", metrics::NAMESPACE_VAR)))?;
        }
        let target = TargetOptions::default();
        Ok(Config {
            export_bucket: get("EXPORT_BUCKET"),
            export_prefix: get("EXPORT_PREFIX")
                .unwrap_or_else(|| DEFAULT_EXPORT_PREFIX.into())
                .trim_matches('/')
                .to_string(),
            export_role_arn: get("EXPORT_ROLE_ARN"),
            export_kms_key_arn: get("EXPORT_KMS_KEY_ARN"),
            source_cluster_id: get("SOURCE_CLUSTER_ID"),
            mapping_key: get("MAPPING_KEY").unwrap_or_else(|| DEFAULT_MAPPING_KEY.into()),
            target_url: get("TARGET_URL"),
            target,
            load,
        })
    }

    /// A setting this function cannot work without.
    pub fn require<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, StepError> {
        value.as_deref().ok_or_else(|| {
            StepError::fatal(format!(
                "environment variable {name} is not set (the SAM template sets it)"
            ))
        })
    }

    pub fn bucket(&self) -> Result<&str, StepError> {
        Config::require(&self.export_bucket, "EXPORT_BUCKET")
    }

    pub fn target_url(&self) -> Result<&str, StepError> {
        Config::require(&self.target_url, "TARGET_URL")
    }

    /// The target, with this function's connection options.
    pub async fn target(&self) -> Result<crate::target::Target, StepError> {
        Ok(crate::target::Target::parse_with(self.target_url()?, self.target.clone()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, StepError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_and_overrides() {
        let c = config(&[]).unwrap();
        assert_eq!(c.export_prefix, "exports");
        assert_eq!(c.mapping_key, "mapping.toml");
        assert_eq!(c.load.connections, DEFAULT_CONNECTIONS);
        assert!(c.bucket().unwrap_err().message.contains("EXPORT_BUCKET"));
        let c = config(&[
            ("EXPORT_BUCKET", "b"),
            ("EXPORT_PREFIX", "/x/y/"),
            ("LOAD_CONNECTIONS", "2"),
            ("LOAD_MAX_ATTEMPTS", "1"),
        ])
        .unwrap();
        assert_eq!(
            (c.bucket().unwrap(), c.export_prefix.as_str()),
            ("b", "x/y")
        );
        assert_eq!((c.load.connections, c.load.max_attempts), (2, 1));
    }

    #[test]
    fn bad_numbers_are_refused_by_name() {
        let e = config(&[("LOAD_CONNECTIONS", "four")]).unwrap_err();
        assert_eq!(e.error_type, super::super::failure::FATAL);
        assert!(
            e.message.contains("LOAD_CONNECTIONS=\"four\""),
            "{}",
            e.message
        );
        assert!(config(&[("LOAD_CONNECTIONS", "0")]).is_err());
        assert!(config(&[("LOAD_MAX_ATTEMPTS", "0")]).is_err());
    }

    #[test]
    fn a_namespace_of_aws_own_is_refused() {
        let e = config(&[("METRICS_NAMESPACE", "AWS/Lambda")]).unwrap_err();
        assert_eq!(e.error_type, super::super::failure::FATAL);
        assert!(e.message.contains("METRICS_NAMESPACE"), "{}", e.message);
        assert!(config(&[("METRICS_NAMESPACE", &"n".repeat(256))]).is_err());
        assert!(config(&[("METRICS_NAMESPACE", "team/AWS/snap2dsql")]).is_ok());
    }
}
