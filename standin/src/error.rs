//! The stand-in's error type.
//!
//! Errors that end one client connection (a peer closed, a broken message, the upstream refused)
//! are logged and close that connection only; errors of [`crate::StandIn::start`] (a port in use,
//! an unreadable certificate, an unusable upstream URL) reach the caller.

/// Everything that can go wrong in the stand-in.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot be served (address, certificate, upstream URL).
    #[error("stand-in configuration: {0}")]
    Config(String),

    /// A socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),

    /// A peer closed its side of the connection.
    #[error("{0} closed the connection")]
    Closed(&'static str),

    /// A peer sent something the protocol does not allow.
    #[error("protocol: {0}")]
    Protocol(String),

    /// The upstream PostgreSQL refused or failed (connect, install, admin query).
    #[error("upstream {what}: {source}")]
    Upstream {
        what: String,
        #[source]
        source: tokio_postgres::Error,
    },

    /// The upstream refused a session (its ErrorResponse is relayed to the client as is).
    #[error("upstream refused the session: {message}")]
    Refused { message: String, raw: bytes::Bytes },

    /// TLS setup or handshake failed.
    #[error("tls: {0}")]
    Tls(String),
}

impl Error {
    pub(crate) fn upstream(what: impl Into<String>, source: tokio_postgres::Error) -> Error {
        Error::Upstream {
            what: what.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
