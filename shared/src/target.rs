//! The target database: a plain PostgreSQL URL (rehearsals, tests) or an Aurora DSQL endpoint.
//!
//! A DSQL endpoint (`<id>.dsql.<region>.on.aws`) gets, per connection, a fresh IAM auth token
//! (SigV4 presigned locally by aws-sdk-dsql, 900 s lifetime: it only matters at connect time) and
//! TLS with full verification (certificate chain and host name) against the system roots. A
//! `postgres://` URL to any other host is used as given, without TLS. Neither tokens nor
//! passwords ever reach a log line or an error message: errors name the redacted URL.

use crate::db::redact_url;
use crate::error::{Error, Result};
use std::sync::Arc;
use std::time::Duration;

/// IAM auth token lifetime: short, since a token only matters while connecting.
pub const TOKEN_LIFETIME_SECS: u64 = 900;
/// DSQL closes a connection after 60 minutes; recycle before that.
pub const CONNECTION_MAX_AGE: Duration = Duration::from_secs(55 * 60);

/// Where to write, and how to connect there.
#[derive(Clone)]
pub struct Target {
    config: tokio_postgres::Config,
    display: String,
    dsql: Option<Dsql>,
}

#[derive(Clone)]
struct Dsql {
    host: String,
    region: String,
    admin: bool,
    sdk: aws_config::SdkConfig,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.display)
            .finish()
    }
}

/// The region of a DSQL endpoint host name, if it is one.
pub fn dsql_region(host: &str) -> Option<&str> {
    let rest = host.strip_suffix(".on.aws")?;
    let (prefix, region) = rest.rsplit_once('.')?;
    prefix.ends_with(".dsql").then_some(region)
}

/// TLS client configuration that verifies the server's chain against the system roots and
/// its name against the host (verify-full).
pub fn verify_full_tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        // A single unparsable system certificate must not disable TLS for the rest.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(Error::Usage(
            "no system root certificates found (install ca-certificates): TLS to DSQL cannot be verified".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Usage(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl Target {
    /// Reads a target: `postgres://user@host:port/db`. A DSQL host name makes it a DSQL target
    /// (user `admin` by default, database `postgres`, port 5432).
    pub async fn parse(url: &str) -> Result<Target> {
        let display = redact_url(url);
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::db(format!("parse target URL {display}"), e))?;
        let host = config.get_hosts().first().and_then(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => Some(h.clone()),
            #[allow(unreachable_patterns)]
            _ => None,
        });
        let dsql = match host.as_deref().and_then(|h| dsql_region(h).map(|r| (h, r))) {
            Some((host, region)) => {
                if config.get_user().is_none() {
                    config.user("admin");
                }
                if config.get_dbname().is_none() {
                    config.dbname("postgres");
                }
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                let admin = config.get_user() == Some("admin");
                Some(Dsql {
                    host: host.to_string(),
                    region: region.to_string(),
                    admin,
                    sdk: aws_config::load_from_env().await,
                    tls: verify_full_tls()?,
                })
            }
            None => None,
        };
        config.application_name("snap2dsql");
        config.connect_timeout(Duration::from_secs(30));
        Ok(Target {
            config,
            display,
            dsql,
        })
    }

    /// True for a DSQL endpoint.
    pub fn is_dsql(&self) -> bool {
        self.dsql.is_some()
    }

    /// The URL with any password hidden, for messages.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Opens a new connection (for DSQL with a new token) and drives it on the runtime.
    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        let context = || format!("connect to {}", self.display);
        match &self.dsql {
            None => {
                let (client, conn) = self
                    .config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| Error::db(context(), e))?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "target connection closed with an error");
                    }
                });
                Ok(client)
            }
            Some(d) => {
                let token_config = aws_sdk_dsql::auth_token::Config::builder()
                    .hostname(&d.host)
                    .region(aws_config::Region::new(d.region.clone()))
                    .expires_in(TOKEN_LIFETIME_SECS)
                    .build()
                    .map_err(|e| Error::Usage(format!("DSQL token config for {}: {e}", d.host)))?;
                let generator = aws_sdk_dsql::auth_token::AuthTokenGenerator::new(token_config);
                let token = if d.admin {
                    generator.db_connect_admin_auth_token(&d.sdk).await
                } else {
                    generator.db_connect_auth_token(&d.sdk).await
                }
                .map_err(|e| Error::Usage(format!("DSQL auth token for {}: {e}", d.host)))?;
                let mut config = self.config.clone();
                config.password(token.as_str());
                let (client, conn) = config
                    .connect(d.tls.clone())
                    .await
                    .map_err(|e| Error::db(context(), e))?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "target connection closed with an error");
                    }
                });
                Ok(client)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dsql_region;

    #[test]
    fn recognises_dsql_endpoints() {
        assert_eq!(
            dsql_region("abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws"),
            Some("us-east-1")
        );
        assert_eq!(dsql_region("127.0.0.1"), None);
        assert_eq!(dsql_region("db.example.com"), None);
        assert_eq!(dsql_region("x.rds.us-east-1.on.aws"), None);
    }
}
