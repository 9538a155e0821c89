//! The target database: a plain PostgreSQL URL (rehearsals, tests) or an Aurora DSQL endpoint,
//! and how every connection to it is opened.
//!
//! A DSQL endpoint (`<id>.dsql.<region>.on.aws`, or `<id>.dsql-<suffix>.<region>.on.aws` through a
//! DSQL VPC endpoint) gets, per connection, a fresh IAM auth token
//! (SigV4 presigned locally by aws-sdk-dsql, 900 s lifetime: it only matters at connect time) and
//! TLS with full verification (certificate chain and host name) against the system roots. A
//! `postgres://` URL to any other host is used as given, without TLS. Neither tokens nor
//! passwords ever reach a log line or an error message: errors name the redacted URL.
//!
//! Every target is spoken to in the DSQL dialect: a local target is the DSQL stand-in
//! (`snap2dsql standin`), which answers like DSQL; a plain PostgreSQL is no rehearsal of DSQL.
//!
//! Connections are opened here, not by tokio-postgres's own connector, so that each one has
//! TCP keepalives and a `TCP_USER_TIMEOUT` (a dead peer or a partition is noticed by the kernel),
//! a bound on the whole connect (TCP, TLS, authentication), and a read tap that records the
//! server's command tags ([`tap`]): a COMMIT answered `ROLLBACK` is then visible.

pub mod tap;

use crate::db::redact_url;
use crate::error::{Error, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tap::{Tags, Tap, TapTls};

/// IAM auth token lifetime: short, since a token only matters while connecting.
pub const TOKEN_LIFETIME_SECS: u64 = 900;
/// DSQL closes a connection after 60 minutes; recycle before that.
pub const CONNECTION_MAX_AGE: Duration = Duration::from_secs(55 * 60);
/// Bound on opening a connection: TCP, TLS and authentication together. A DSQL connect takes
/// well under a second in its region (AWS's own probe recorder uses `connect_timeout=10`); one
/// lost in a burst of hundreds of connects (dsql.md: timeouts without SQLSTATE) is retried with
/// backoff sooner rather than waited on.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP keepalive: first probe after this much silence on an idle connection (a writer waiting
/// for the reader, a `CALL sys.wait_for_job` waiting for a build). With the interval and count
/// below, a vanished peer is noticed within about a minute instead of Linux's two hours.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// TCP keepalive: between unanswered probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// TCP keepalive: unanswered probes before the kernel drops the connection.
pub const KEEPALIVE_RETRIES: u32 = 3;
/// `TCP_USER_TIMEOUT`: data we sent that stays unacknowledged this long (a partition in the
/// middle of a COPY) drops the connection, instead of Linux retransmitting for ~15 minutes.
/// Above a healthy round trip by orders of magnitude; below the batch statement bound.
pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// How connections to a target are made.
#[derive(Debug, Clone)]
pub struct TargetOptions {
    pub connect_timeout: Duration,
    pub keepalive_idle: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_retries: u32,
    pub tcp_user_timeout: Duration,
}

impl Default for TargetOptions {
    fn default() -> Self {
        TargetOptions {
            connect_timeout: CONNECT_TIMEOUT,
            keepalive_idle: KEEPALIVE_IDLE,
            keepalive_interval: KEEPALIVE_INTERVAL,
            keepalive_retries: KEEPALIVE_RETRIES,
            tcp_user_timeout: TCP_USER_TIMEOUT,
        }
    }
}

/// Where to write, and how to connect there.
#[derive(Clone)]
pub struct Target {
    config: tokio_postgres::Config,
    display: String,
    dsql: Option<Dsql>,
    options: TargetOptions,
}

/// One connection to the target, with the command tags its server sent.
///
/// Dropping it closes the connection even when the server went silent: the task that drives
/// it is ended [`CLOSE_GRACE`] later ([`Driver`]).
pub struct Session {
    pub client: tokio_postgres::Client,
    tags: Tags,
    opened: Instant,
    driver: Driver,
}

/// How long a dropped [`Session`]'s connection may take to end by itself (its Terminate
/// written, the server closing) before its task is ended and its socket closed.
pub const CLOSE_GRACE: Duration = Duration::from_millis(200);

/// The task driving a connection. tokio-postgres keeps a connection whose client is gone open
/// until the server has answered every request sent: a server gone silent (no answer, socket
/// open: a hung server or a half-dead network path, which TCP keepalives do not notice because
/// the peer's kernel still acknowledges) would keep the socket, the task and, server side, the
/// transaction forever. Dropping the driver ends the task after [`CLOSE_GRACE`].
struct Driver(Option<tokio::task::AbortHandle>);

impl Driver {
    /// Lets the connection live as long as its client (a bare client handed out).
    fn detach(mut self) {
        self.0 = None;
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let Some(task) = self.0.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    tokio::time::sleep(CLOSE_GRACE).await;
                    task.abort();
                });
            }
            Err(_) => task.abort(),
        }
    }
}

impl Session {
    /// How many statements completed on this connection, and the last one's command tag.
    pub fn last_tag(&self) -> (u64, String) {
        self.tags.last()
    }

    /// The connection's tag record, to read while its client is borrowed by a transaction.
    pub fn tags(&self) -> Tags {
        self.tags.clone()
    }

    /// Time since the connection was opened.
    pub fn age(&self) -> Duration {
        self.opened.elapsed()
    }
}

impl std::ops::Deref for Session {
    type Target = tokio_postgres::Client;
    fn deref(&self) -> &tokio_postgres::Client {
        &self.client
    }
}

impl std::ops::DerefMut for Session {
    fn deref_mut(&mut self) -> &mut tokio_postgres::Client {
        &mut self.client
    }
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
            .field("options", &self.options)
            .finish()
    }
}

/// The region of a DSQL endpoint host name, if it is one: the public endpoint
/// `<cluster-id>.dsql.<region>.on.aws`, or the one reached through an interface VPC endpoint
/// (PrivateLink), `<cluster-id>.dsql-<suffix>.<region>.on.aws`. The IAM token is signed for
/// the host as given, so either works.
pub fn dsql_region(host: &str) -> Option<&str> {
    let rest = host.strip_suffix(".on.aws")?;
    let (prefix, region) = rest.rsplit_once('.')?;
    let (cluster, service) = prefix.rsplit_once('.')?;
    let suffix_ok = match service.strip_prefix("dsql")? {
        "" => true,
        dashed => dashed.strip_prefix('-').is_some_and(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        }),
    };
    (suffix_ok && !cluster.is_empty() && !region.is_empty()).then_some(region)
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
    /// Reads a target with the default options: `postgres://user@host:port/db`.
    /// A DSQL host name makes it a DSQL endpoint (user `admin` by default, database `postgres`,
    /// port 5432).
    pub async fn parse(url: &str) -> Result<Target> {
        Target::parse_with(url, TargetOptions::default()).await
    }

    /// [`Target::parse`] with connection options.
    pub async fn parse_with(url: &str, options: TargetOptions) -> Result<Target> {
        let display = redact_url(url);
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::db(format!("parse target URL {display}"), e))?;
        let host = tcp_host(&config);
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
        if host.is_none() {
            return Err(Error::Usage(format!(
                "target {display}: name a TCP host (a Unix socket path is not supported)"
            )));
        }
        config.application_name("snap2dsql");
        Ok(Target {
            config,
            display,
            dsql,
            options,
        })
    }

    /// True for a DSQL endpoint.
    pub fn is_dsql(&self) -> bool {
        self.dsql.is_some()
    }

    /// How connections are made.
    pub fn options(&self) -> &TargetOptions {
        &self.options
    }

    /// The URL with any password hidden, for messages.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Opens a new connection (for DSQL with a new token) and drives it on the runtime as long
    /// as the client lives (see [`Driver`]: prefer [`Target::session`] where the server may go
    /// silent).
    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        let Session { client, driver, .. } = self.session().await?;
        driver.detach();
        Ok(client)
    }

    /// Opens a new connection that also reports its command tags ([`Session::last_tag`]).
    /// The whole connect is bounded by [`TargetOptions::connect_timeout`].
    pub async fn session(&self) -> Result<Session> {
        within(
            self.options.connect_timeout,
            || format!("connect to {}", self.display),
            self.open(),
        )
        .await
    }

    async fn open(&self) -> Result<Session> {
        let context = || format!("connect to {}", self.display);
        let tags = Tags::default();
        let socket = self.socket().await?;
        let (client, driver) = match &self.dsql {
            None => {
                let (client, conn) = self
                    .config
                    .connect_raw(Tap::new(socket, tags.clone()), tokio_postgres::NoTls)
                    .await
                    .map_err(|e| Error::db(context(), e))?;
                (client, drive(conn))
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
                let mut make = d.tls.clone();
                let tls =
                    tokio_postgres::tls::MakeTlsConnect::<tokio::net::TcpStream>::make_tls_connect(
                        &mut make, &d.host,
                    )
                    .map_err(|e| match e {})?;
                let (client, conn) = config
                    .connect_raw(
                        socket,
                        TapTls {
                            inner: tls,
                            tags: tags.clone(),
                        },
                    )
                    .await
                    .map_err(|e| Error::db(context(), e))?;
                (client, drive(conn))
            }
        };
        Ok(Session {
            client,
            tags,
            opened: Instant::now(),
            driver,
        })
    }

    /// A TCP connection to the target's host with keepalives and a user timeout set.
    async fn socket(&self) -> Result<tokio::net::TcpStream> {
        let what = || format!("connect to {}", self.display);
        let host = tcp_host(&self.config).unwrap_or_default();
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let addrs = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|source| Error::Connect {
                what: format!("{}: resolve {host}", what()),
                source,
            })?;
        let mut last = None;
        for addr in addrs {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(stream) => {
                    self.tune(&stream).map_err(|source| Error::Connect {
                        what: format!("{}: socket options", what()),
                        source,
                    })?;
                    return Ok(stream);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(Error::Connect {
            what: what(),
            source: last.unwrap_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{host} has no address"),
                )
            }),
        })
    }

    fn tune(&self, stream: &tokio::net::TcpStream) -> std::io::Result<()> {
        let o = &self.options;
        stream.set_nodelay(true)?;
        let sock = socket2::SockRef::from(stream);
        sock.set_tcp_keepalive(
            &socket2::TcpKeepalive::new()
                .with_time(o.keepalive_idle)
                .with_interval(o.keepalive_interval)
                .with_retries(o.keepalive_retries),
        )?;
        #[cfg(target_os = "linux")]
        sock.set_tcp_user_timeout(Some(o.tcp_user_timeout))?;
        Ok(())
    }
}

/// Awaits `fut` for at most `bound`; past it, an [`Error::Timeout`] naming `what` (made only
/// then). The caller drops the connection the call was on: its answer may still come.
pub async fn within<T>(
    bound: Duration,
    what: impl FnOnce() -> String,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(bound, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout {
            what: what(),
            after: bound,
        }),
    }
}

/// Commits `tx`, waiting at most `bound`, and checks the command tag the server answered
/// (`tags` of the transaction's connection: [`Session::tags`]). `COMMIT` is success; `ROLLBACK`
/// is an [`Error::CommitTag`] of class Conflict (nothing was written: safe to send again); any
/// other answer, or none within `bound`, leaves the outcome unknown (class Connection: the caller
/// drops the connection and reads what happened).
pub async fn commit_checked(
    tx: tokio_postgres::Transaction<'_>,
    tags: &Tags,
    bound: Duration,
    what: &str,
) -> Result<()> {
    let (before, _) = tags.last();
    within(bound, || what.to_string(), async {
        tx.commit().await.map_err(|e| Error::db(what, e))
    })
    .await?;
    let (after, tag) = tags.last();
    if after == before || tag != "COMMIT" {
        return Err(Error::CommitTag {
            what: what.to_string(),
            tag: if after == before { String::new() } else { tag },
        });
    }
    Ok(())
}

/// The first TCP host of a connection config.
fn tcp_host(config: &tokio_postgres::Config) -> Option<String> {
    config.get_hosts().first().and_then(|h| match h {
        tokio_postgres::config::Host::Tcp(h) => Some(h.clone()),
        #[allow(unreachable_patterns)]
        _ => None,
    })
}

/// Drives a connection on the runtime until it closes (or its [`Driver`] is dropped).
fn drive<S, T>(conn: tokio_postgres::Connection<S, T>) -> Driver
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let task = tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "target connection closed with an error");
        }
    });
    Driver(Some(task.abort_handle()))
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

    #[test]
    fn recognises_dsql_endpoints_through_privatelink() {
        assert_eq!(
            dsql_region("abcdefghijklmnopqrstuvwxyz.dsql-fnh4.us-east-1.on.aws"),
            Some("us-east-1")
        );
        assert_eq!(dsql_region("x.dsql-.us-east-1.on.aws"), None);
        assert_eq!(dsql_region("x.dsqlfnh4.us-east-1.on.aws"), None);
        assert_eq!(dsql_region("x.dsql-FN.us-east-1.on.aws"), None);
        assert_eq!(dsql_region(".dsql.us-east-1.on.aws"), None);
        assert_eq!(dsql_region("dsql.us-east-1.on.aws"), None);
    }
}
