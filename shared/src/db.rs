//! Database connections: the source (a plain PostgreSQL URL) and, later, targets.

use crate::error::{Error, Result};

/// Connects to a PostgreSQL URL as given (no TLS: a local rehearsal or a test server) and
/// drives the connection on the runtime. Connection errors never echo the URL's password.
pub async fn connect_plain(url: &str) -> Result<tokio_postgres::Client> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| Error::db(format!("parse connection URL for {}", redact_url(url)), e))?;
    let (client, conn) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| Error::db(format!("connect to {}", redact_url(url)), e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection closed with an error");
        }
    });
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
