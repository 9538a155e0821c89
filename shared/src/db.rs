//! Connections to the source database (targets: [`crate::target`]).

use crate::error::{Error, Result};

/// Connects to a source database URL and drives the connection on the runtime.
/// `sslmode=require` gets TLS verified against the system roots (chain and host name);
/// otherwise (`disable`, or the default `prefer`) the connection is plain TCP: a local
/// rehearsal or test server. Errors never echo the URL's password.
pub async fn connect_source(url: &str) -> Result<tokio_postgres::Client> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| Error::db(format!("parse connection URL for {}", redact_url(url)), e))?;
    let context = || format!("connect to {}", redact_url(url));
    let client = if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        let (client, conn) = config
            .connect(crate::target::verify_full_tls()?)
            .await
            .map_err(|e| Error::db(context(), e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
        client
    } else {
        let (client, conn) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| Error::db(context(), e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
        client
    };
    Ok(client)
}

/// A URL safe to print: any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user_pass, host)) => match user_pass.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{user_pass}@{host}"),
        },
        None => authority.to_string(),
    };
    // Also a `password=` query parameter.
    let tail = match tail.find("password=") {
        Some(i) => {
            let end = tail[i..].find('&').map(|e| i + e).unwrap_or(tail.len());
            format!("{}password=***{}", &tail[..i], &tail[end..])
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_printed() {
        assert_eq!(
            redact_url("postgres://admin:s3cret@host:5432/db"),
            "postgres://admin:***@host:5432/db"
        );
        assert_eq!(
            redact_url("postgres://u@h/db?password=tok&sslmode=verify-full"),
            "postgres://u@h/db?password=***&sslmode=verify-full"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}
